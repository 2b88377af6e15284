#include "engine/file_io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "framework/error.hpp"
#include "framework/regular_file.hpp"

namespace fg {

namespace {
std::string sys_error() {
  return std::strerror(errno);
}
}  // namespace

std::shared_ptr<const FileContents> FileContents::read(const std::string& path,
                                                       uint64_t max_bytes) {
  RegularFile file(path, max_bytes);
  std::shared_ptr<FileContents> contents(new FileContents());
  contents->path_ = path;
  contents->size_ = static_cast<size_t>(file.size());
  if (contents->size_ > 0) {
    try {
      contents->data_ =
          static_cast<unsigned char*>(::operator new[](contents->size_, std::align_val_t(64)));
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("cannot allocate {} bytes to read the file", contents->size_))
          .in_file(path);
    }
    file.read_exact(contents->data_, contents->size_);
  }
  return contents;
}

FileContents::~FileContents() {
  if (data_ != nullptr) ::operator delete[](data_, std::align_val_t(64));
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
