// Reading untrusted paths safely: only regular files are read. The file is opened non-blocking
// (so a FIFO, a terminal or a device does not block the open), checked with fstat, and only then
// read in blocking mode. Every reader of a user-given path goes through here (graph files,
// weights, .npy inputs); see docs/limits.md.
#pragma once

#include <cstdint>
#include <string>

namespace fg {

// An open regular file; closes itself.
class RegularFile {
 public:
  // Throws fg::Error naming the file when it cannot be opened, is not a regular file (a
  // directory, FIFO, socket or device), or is larger than `max_bytes`.
  RegularFile(const std::string& path, uint64_t max_bytes);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  uint64_t size() const { return size_; }
  // Reads exactly `bytes` from the current position into `dst`; a short read (the file shrank
  // while being read) or an I/O error throws fg::Error naming the file.
  void read_exact(void* dst, uint64_t bytes);

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole file as a string (graph files). The same checks.
std::string read_regular_file(const std::string& path, uint64_t max_bytes);

}  // namespace fg
