#include "framework/regular_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "framework/error.hpp"

namespace fg {

namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

}  // namespace

RegularFile::RegularFile(const std::string& path, uint64_t max_bytes) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) throw Error(fmt::format("cannot open file: {}", std::strerror(errno))).in_file(path);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw Error("cannot stat file: " + why).in_file(path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(fmt::format("is {}, expected a regular file", kind_of(st.st_mode)))
        .in_file(path)
        .hint("only regular files are read (no pipes, devices or directories)");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > max_bytes) {
    ::close(fd_);
    throw Error(
        fmt::format("the file has {} bytes, more than the limit of {} bytes", size_, max_bytes))
        .in_file(path)
        .hint("see docs/limits.md");
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RegularFile::read_exact(void* dst, uint64_t bytes) {
  auto* p = static_cast<unsigned char*>(dst);
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::read(
        fd_, p + done, static_cast<size_t>(std::min<uint64_t>(bytes - done, uint64_t(1) << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("cannot read file: {}", std::strerror(errno))).in_file(path_);
    if (n == 0)
      throw Error(fmt::format("the file ended after {} of {} bytes (it changed while being read)",
                              done, bytes))
          .in_file(path_);
    done += static_cast<uint64_t>(n);
  }
}

std::string read_regular_file(const std::string& path, uint64_t max_bytes) {
  RegularFile file(path, max_bytes);
  std::string text(static_cast<size_t>(file.size()), '\0');
  file.read_exact(text.data(), file.size());
  return text;
}

}  // namespace fg
