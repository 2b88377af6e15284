// Low-level file helpers shared by the weight and tensor readers/writers:
// a file's contents read into owned memory and kept alive by shared_ptr, and atomic writes (temp
// file + rename).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fg {

// A whole file read into owned, 64-byte aligned memory. Tensors that borrow from it hold a
// shared_ptr to it. Once read, the file on disk is never touched again: rewriting, truncating
// or deleting it cannot change or crash whoever holds the contents (docs/limits.md).
class FileContents {
 public:
  // Reads regular files only (fg::Error naming the file for a FIFO, device or directory, which
  // are never opened blocking), of at most `max_bytes`.
  static std::shared_ptr<const FileContents> read(const std::string& path,
                                                  uint64_t max_bytes = UINT64_MAX);
  ~FileContents();
  FileContents(const FileContents&) = delete;
  FileContents& operator=(const FileContents&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  FileContents() = default;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Writes `parts` one after the other to `path` atomically: to "<path>.tmp.<pid>" first, then
// rename. On any failure the temp file is removed, `path` is left as it was, and fg::Error is
// thrown naming the file and the system error.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);

}  // namespace fg
