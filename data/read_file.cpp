#include "data/read_file.h"

#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "tensor/tensor.h"

namespace swiattn {

bool file_exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what + ": cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw Error(what + ": error while reading " + path);
  return contents.str();
}

}  // namespace swiattn
