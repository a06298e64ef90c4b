// data/read_file.h: whole-file reading with errors that name the file.
#pragma once

#include <string>

namespace swiattn {

bool file_exists(const std::string& path);
// The file's bytes, unchanged. Throws swiattn::Error "<what>: cannot read <path>" on failure.
std::string read_whole_file(const std::string& path, const std::string& what);

}  // namespace swiattn
