// data/read_file.h: whole-file reading and writing with errors that name the file.
#pragma once

#include <string>

namespace swiattn {

bool file_exists(const std::string& path);
// The file's bytes, unchanged. Throws swiattn::Error "<what>: cannot read <path>" on failure.
std::string read_whole_file(const std::string& path, const std::string& what);
// Writes `bytes` to `path` atomically: a temporary file beside it, flushed, fsync-ed, renamed
// into place, so a reader sees the old file or the whole new one, never a part. Throws
// swiattn::Error "<what>: cannot write <path> (<reason>)" and leaves no temporary file behind.
void write_whole_file(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace swiattn
