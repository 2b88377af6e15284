#include "engine/file_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "framework/error.hpp"

namespace fg {

namespace {
std::string sys_error() {
  return std::strerror(errno);
}
}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open file: " + sys_error()).in_file(path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = sys_error();
    ::close(fd);
    throw Error("cannot stat file: " + why).in_file(path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(S_ISDIR(st.st_mode) ? "is a directory, expected a file" : "is not a regular file")
        .in_file(path);
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = sys_error();
      ::close(fd);
      throw Error("cannot memory-map file: " + why).in_file(path);
    }
    file->data_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);  // the mapping stays valid
  return file;
}

void MappedFile::release_resident() const {
  if (data_ != nullptr && size_ > 0)
    ::madvise(const_cast<unsigned char*>(data_), size_, MADV_DONTNEED);
}

void MappedFile::release_resident(const void* begin, size_t bytes) const {
  const auto* b = static_cast<const unsigned char*>(begin);
  if (data_ == nullptr || b < data_ || b + bytes > data_ + size_) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
  uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + bytes) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error("cannot write: cannot create temporary file '" + tmp + "': " + sys_error())
        .in_file(path);
  }
  auto fail = [&](const std::string& what) {
    std::string why = sys_error();
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error("cannot write: " + what + ": " + why).in_file(path);
  };
  for (std::string_view part : parts) {
    const char* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw fail("writing '" + tmp + "' failed");
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) throw fail("fsync of '" + tmp + "' failed");
  if (::close(fd) != 0) {
    std::string why = sys_error();
    ::unlink(tmp.c_str());
    throw Error("cannot write: closing '" + tmp + "' failed: " + why).in_file(path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = sys_error();
    ::unlink(tmp.c_str());
    throw Error("cannot write: renaming '" + tmp + "' to the target failed: " + why).in_file(path);
  }
}

}  // namespace fg
