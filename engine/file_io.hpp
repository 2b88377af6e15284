// Low-level file helpers shared by the weight and tensor readers/writers:
// a read-only memory mapping kept alive by shared_ptr, and atomic writes (temp file + rename).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fg {

// A whole file mapped read-only. Tensors that borrow from it hold a shared_ptr to it.
class MappedFile {
 public:
  // Throws fg::Error (naming the file) if it cannot be opened, is a directory, or mmap fails.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the mapping's pages from this process's resident set (they stay in the page cache
  // and fault back in on the next access). The mapping stays valid.
  void release_resident() const;
  // The same for the whole pages inside [begin, begin + bytes) when they lie in this mapping.
  void release_resident(const void* begin, size_t bytes) const;

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Writes `parts` one after the other to `path` atomically: to "<path>.tmp.<pid>" first, then
// rename. On any failure the temp file is removed, `path` is left as it was, and fg::Error is
// thrown naming the file and the system error.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);

}  // namespace fg
