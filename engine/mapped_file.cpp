#include "engine/mapped_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "framework/error.hpp"

namespace fg {

namespace {

// Closes the descriptor on every path out of open().
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  Descriptor file;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked next.
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (file.fd < 0)
    throw Error(fmt::format("cannot open the file: {}", std::strerror(errno))).in_file(path);
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    throw Error(fmt::format("cannot stat the file: {}", std::strerror(errno))).in_file(path);
  if (!S_ISREG(st.st_mode)) {
    throw Error(S_ISDIR(st.st_mode) ? std::string("is a directory, not a file")
                                    : std::string("is not a regular file (a FIFO, socket or "
                                                  "device is not read)"))
        .in_file(path);
  }
  std::shared_ptr<MappedFile> out(new MappedFile());
  out->path_ = path;
  out->size_ = static_cast<size_t>(st.st_size);
  if (out->size_ == 0) return out;
  void* p = ::mmap(nullptr, out->size_, PROT_READ, MAP_SHARED, file.fd, 0);
  if (p == MAP_FAILED) {
    throw Error(fmt::format("cannot map the file ({} bytes) into memory: {}", out->size_,
                            std::strerror(errno)))
        .in_file(path);
  }
  out->data_ = static_cast<unsigned char*>(p);
  return out;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

}  // namespace fg
