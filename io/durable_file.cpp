// io/durable_file.cpp: see io/durable_file.h. Each operation asks fault_point first; an injected
// failure sets errno = ENOSPC and takes the same error path as a real one.
#include "io/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/fault_injection.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace fs = std::filesystem;

namespace {

std::string system_reason() { return std::strerror(errno); }

// True when the operation may go ahead; false (errno = ENOSPC) for an injected failure.
bool go_ahead(const char* what, const std::string& path) {
  if (!fault_point(what, path)) return true;
  errno = ENOSPC;
  return false;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_path_(path + ".tmp") {
  fd_ = go_ahead("create", tmp_path_) ? ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
  if (fd_ < 0) throw Error("write " + path_ + ": cannot create " + tmp_path_ + " (" + system_reason() + ")");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  if (!go_ahead("write", tmp_path_)) throw Error("write " + tmp_path_ + ": " + system_reason());
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd_, p, bytes);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) throw Error("write " + tmp_path_ + ": " + system_reason());
    p += written;
    bytes -= static_cast<size_t>(written);
  }
}

void AtomicFileWriter::commit() {
  if (!go_ahead("fsync", tmp_path_) || ::fsync(fd_) != 0)
    throw Error("write " + tmp_path_ + ": fsync failed (" + system_reason() + ")");
  const int fd = fd_;
  fd_ = -1;
  const bool injected = !go_ahead("close", tmp_path_);
  if (injected || ::close(fd) != 0) {
    const std::string reason = system_reason();
    if (injected) ::close(fd);  // the descriptor is still open
    throw Error("write " + tmp_path_ + ": close failed (" + reason + ")");
  }
  if (!go_ahead("rename", path_) || ::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    throw Error("write " + path_ + ": cannot rename " + tmp_path_ + " over it (" + system_reason() + ")");
  committed_ = true;
  const std::string dir = fs::path(path_).parent_path().string();
  sync_directory(dir.empty() ? "." : dir);  // the rename itself reaches the disk
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFileWriter file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

void make_directories(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return;
  if (!go_ahead("mkdir", path)) throw Error("cannot create the directory " + path + " (" + system_reason() + ")");
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create the directory " + path + " (" + ec.message() + ")");
}

void rename_path(const std::string& from, const std::string& to) {
  if (!go_ahead("rename", to) || ::rename(from.c_str(), to.c_str()) != 0)
    throw Error("cannot rename " + from + " to " + to + " (" + system_reason() + ")");
}

void make_symlink(const std::string& target, const std::string& link) {
  if (!go_ahead("symlink", link) || ::symlink(target.c_str(), link.c_str()) != 0)
    throw Error("cannot create the link " + link + " -> " + target + " (" + system_reason() + ")");
}

void sync_directory(const std::string& path) {
  if (!go_ahead("fsync directory", path)) throw Error("fsync of the directory " + path + " failed (" + system_reason() + ")");
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open the directory " + path + " to fsync it (" + system_reason() + ")");
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  // EINVAL: this file system cannot fsync a directory (some network and FUSE ones); nothing to do.
  if (result != 0 && error != EINVAL)
    throw Error("fsync of the directory " + path + " failed (" + std::strerror(error) + ")");
}

void remove_file(const std::string& path) {
  if (!go_ahead("remove", path) || (::unlink(path.c_str()) != 0 && errno != ENOENT))
    throw Error("cannot remove " + path + " (" + system_reason() + ")");
}

void remove_tree(const std::string& path) {
  if (!go_ahead("remove", path)) throw Error("cannot remove " + path + " (" + system_reason() + ")");
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw Error("cannot remove " + path + " (" + ec.message() + ")");
}

}  // namespace swiattn
