// data/cache_dir.h: where the fetched packages are (data.cache_dir), wherever swiattn runs from.
#pragma once

#include <string>

namespace swiattn {

// data.cache_dir as a folder that exists. An absolute path is returned as it is. A relative one
// (the default "data/cache") is looked up, in this order, in the working directory, in the source
// tree this binary was built from, and in the parent of the binary's folder (a build/ or bin/
// folder next to data/); the first that is a folder wins. Throws Error naming data.cache_dir and
// every place tried when none is.
std::string resolve_cache_dir(const std::string& cache_dir);

}  // namespace swiattn
