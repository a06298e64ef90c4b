// data/cache_dir.cpp: see data/cache_dir.h. CMake defines SWIATTN_SOURCE_TREE for this file only.
#include "data/cache_dir.h"

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "tensor/tensor.h"

namespace swiattn {

namespace fs = std::filesystem;

namespace {

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

}  // namespace

std::string resolve_cache_dir(const std::string& cache_dir) {
  if (cache_dir.empty()) throw Error("data.cache_dir is empty: set it to the folder `make data` fills (data/cache)");
  const fs::path given(cache_dir);
  if (given.is_absolute()) return cache_dir;
  std::vector<fs::path> tried;
  std::error_code ec;
  tried.push_back(fs::current_path(ec) / given);
#ifdef SWIATTN_SOURCE_TREE
  tried.push_back(fs::path(SWIATTN_SOURCE_TREE) / given);
#endif
  if (const std::string exe = executable_dir(); !exe.empty()) tried.push_back(fs::path(exe).parent_path() / given);
  for (const fs::path& p : tried)
    if (fs::is_directory(p, ec)) return p.lexically_normal().string();
  std::string places;
  for (const fs::path& p : tried) places += (places.empty() ? "" : ", ") + p.lexically_normal().string();
  throw Error("data.cache_dir \"" + cache_dir + "\" is not a folder in any of: " + places +
              " (run `make data` in the source tree, or --set data.cache_dir=/path/to/data/cache)");
}

}  // namespace swiattn
