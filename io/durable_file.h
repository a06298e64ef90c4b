// io/durable_file.h: the file-system operations that write checkpoints, each durable and each
// failing with an Error that names the path and the system's reason.
//
// A file is written to `NAME.tmp`, fsynced, closed and renamed over `NAME` (atomic on POSIX file
// systems), and then its directory is fsynced, so the rename survives a power cut too. A crash
// leaves either the old file or the complete new one, plus perhaps a stale `NAME.tmp` that no
// reader looks at. Every operation here passes a fault_point (io/fault_injection.h) first, so a
// test can kill the process, or fail the operation with ENOSPC, at any one of them.
#pragma once

#include <cstddef>
#include <string>

namespace swiattn {

// Writes one file atomically; the destructor removes an unfinished NAME.tmp.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // creates NAME.tmp
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  // fsync, close, rename over NAME, fsync the directory.
  void commit();

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// `bytes` to `path` through an AtomicFileWriter.
void write_file_atomically(const std::string& path, const std::string& bytes);

// mkdir -p.
void make_directories(const std::string& path);
// rename(2): atomic replacement of `to` (a file, an empty directory or a symbolic link).
void rename_path(const std::string& from, const std::string& to);
// A symbolic link at `link` whose content is `target` (relative to the link's directory).
void make_symlink(const std::string& target, const std::string& link);
// fsync of a directory: its entries (new names, renames) reach the disk.
void sync_directory(const std::string& path);
// Removes a file or link (absent: nothing to do) or a whole directory tree.
void remove_file(const std::string& path);
void remove_tree(const std::string& path);

}  // namespace swiattn
