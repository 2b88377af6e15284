// A regular file mapped read-only into memory (mmap): the pages are read from disk when first
// touched, so a file larger than memory can be used in pieces. Data sets hold their files this
// way (engine/training/dataset.hpp). Unlike FileContents, the file must not be truncated or
// rewritten in place while mapped (the kernel would then fault the reader: docs/limits.md).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace fg {

class MappedFile {
 public:
  // Maps a regular file (fg::Error naming the file for a missing file, a directory, a FIFO or
  // device, which is never opened blocking, or a failed mmap). An empty file maps to nothing:
  // data() is null and size() 0.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace fg
