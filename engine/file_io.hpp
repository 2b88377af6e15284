// Low-level file helpers shared by the weight and tensor readers/writers and the command line:
// a file's contents read into owned memory and kept alive by shared_ptr, and atomic writes (of
// one file: a unique temporary beside it + fsync + rename; of a set of files: a directory
// swapped into place).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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

// Writes `parts` one after the other to `path` atomically: to a unique temporary file beside it
// ("<path>.tmp.XXXXXX", so concurrent writers of one path do not collide), fsync, then rename
// over `path`. On any failure the temporary is removed, `path` is left as it was, and fg::Error
// is thrown naming the file and the system error.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);

// Checks, before any work, that write_file_atomic(path) can succeed as far as can be known:
// `path` is not empty, not a directory, not a device or other special file, and its folder
// exists and is writable. Throws fg::Error naming `what` (e.g. "--output") and the path.
void check_file_destination(const std::string& path, const std::string& what);

// Checks, before any work, that replace_directory(dir, marker) can succeed: `dir` is not empty,
// is a directory or does not exist yet, holds nothing or a `marker` file (so that a folder the
// caller did not write is never replaced), and its parent folder is writable.
void check_directory_destination(const std::string& dir, const std::string& marker,
                                 const std::string& what);

// Writes a set of files so that a reader of `dir` sees either all of the old ones or all of the
// new ones: `fill` writes into a new temporary directory beside `dir` (its argument) and must
// write `marker` in it last; the directory is then fsynced and swapped with `dir` in one
// rename (renameat2 RENAME_EXCHANGE; a plain rename when `dir` does not exist), and the old
// contents are removed. On any failure the temporary directory is removed and `dir` is left as
// it was; fg::Error names `dir`. Checks check_directory_destination first.
void replace_directory(const std::string& dir, const std::string& marker,
                       const std::function<void(const std::string& tmp_dir)>& fill);

}  // namespace fg
