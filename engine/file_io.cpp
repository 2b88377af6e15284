#include "engine/file_io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

namespace {

// Writes all of `part` to `fd`; false with errno set on failure.
bool write_all(int fd, std::string_view part) {
  const char* p = part.data();
  size_t left = part.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// The folder a path lies in ("." for a bare file name).
std::string parent_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

void check_writable_folder(const std::string& folder, const std::string& path,
                           const std::string& what) {
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(fmt::format("{}: the folder '{}' does not exist", what, folder)).in_file(path);
  if (::access(folder.c_str(), W_OK | X_OK) != 0)
    throw Error(fmt::format("{}: the folder '{}' is not writable: {}", what, folder, sys_error()))
        .in_file(path);
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Where the file system cannot exchange two names at once: the old directory moves aside, the
// new one moves in (a reader may find no directory for that instant), the old one takes the
// temporary's name to be removed.
void swap_by_two_renames(const std::string& tmp, const std::string& target,
                         const std::string& dir) {
  if (errno != EINVAL && errno != ENOSYS)
    throw Error("cannot swap the new directory into place: " + sys_error()).in_file(dir);
  const std::string aside = tmp + ".old";
  if (::rename(target.c_str(), aside.c_str()) != 0)
    throw Error("cannot move the old directory aside: " + sys_error()).in_file(dir);
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = sys_error();
    ::rename(aside.c_str(), target.c_str());
    throw Error("cannot rename the new directory into place: " + why).in_file(dir);
  }
  ::rename(aside.c_str(), tmp.c_str());
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    throw Error("cannot write: cannot create temporary file beside it: " + sys_error())
        .in_file(path);
  }
  auto fail = [&](const std::string& what) {
    std::string why = sys_error();
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error("cannot write: " + what + ": " + why).in_file(path);
  };
  if (::fchmod(fd, 0644) != 0) throw fail("setting the mode of '" + tmp + "' failed");
  for (std::string_view part : parts)
    if (!write_all(fd, part)) throw fail("writing '" + tmp + "' failed");
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

void check_file_destination(const std::string& path, const std::string& what) {
  if (path.empty()) throw Error(fmt::format("{}: the file name is empty", what));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      throw Error(fmt::format("{}: '{}' is a directory, expected a file name", what, path))
          .in_file(path);
    if (!S_ISREG(st.st_mode))
      throw Error(fmt::format("{}: '{}' is not a regular file (a device, FIFO or socket); the "
                              "file is replaced by renaming, so give a regular file name",
                              what, path))
          .in_file(path);
  }
  check_writable_folder(parent_of(path), path, what);
}

void check_directory_destination(const std::string& dir, const std::string& marker,
                                 const std::string& what) {
  if (dir.empty()) throw Error(fmt::format("{}: the directory name is empty", what));
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const std::string last = std::filesystem::path(trimmed).filename().string();
  if (last.empty() || last == "." || last == "..")
    throw Error(fmt::format("{}: '{}' cannot be replaced as a whole (it is the root, the current "
                            "or a parent directory)",
                            what, dir))
        .in_file(dir)
        .hint("give a subdirectory, e.g. " + (trimmed == "/" ? std::string() : trimmed + "/") +
              "out");
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      throw Error(fmt::format("{}: '{}' exists and is not a directory", what, dir)).in_file(dir);
    std::error_code ec;
    const bool empty = std::filesystem::is_empty(dir, ec);
    if (!empty && !std::filesystem::exists(std::filesystem::path(dir) / marker))
      throw Error(fmt::format("{}: '{}' holds files that graph-runner did not write (no '{}'); "
                              "its contents would be replaced",
                              what, dir, marker))
          .in_file(dir)
          .hint("give a new or empty directory");
  }
  check_writable_folder(parent_of(trimmed), dir, what);
}

void replace_directory(const std::string& dir, const std::string& marker,
                       const std::function<void(const std::string& tmp_dir)>& fill) {
  check_directory_destination(dir, marker, dir);
  std::string target = dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  std::string tmp = target + ".tmp.XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr)
    throw Error("cannot create a temporary directory beside it: " + sys_error()).in_file(dir);
  auto remove_tmp = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  };
  try {
    ::chmod(tmp.c_str(), 0755);
    fill(tmp);
    if (!std::filesystem::exists(std::filesystem::path(tmp) / marker))
      throw Error(fmt::format("internal: '{}' was not written", marker)).in_file(dir);
    fsync_path(tmp);
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
        swap_by_two_renames(tmp, target, dir);
    } else if (::rename(tmp.c_str(), target.c_str()) != 0) {
      throw Error("cannot rename the new directory into place: " + sys_error()).in_file(dir);
    }
  } catch (...) {
    remove_tmp();
    throw;
  }
  remove_tmp();  // the old contents, after the exchange
  fsync_path(parent_of(target));
}

}  // namespace fg
