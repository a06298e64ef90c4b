// fuzz/fuzz_common.h: what the libFuzzer targets share.
//
// A target's contract: for every input the code under test either returns normally or throws
// swiattn::Error. Anything else (a crash, a sanitizer report, another exception type, a broken
// promise such as decode(encode(s)) != s) is a finding: finding() prints what happened and
// aborts, and libFuzzer saves the input as crash-<sha1> and exits non-zero.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <unistd.h>

#include "tensor/tensor.h"  // swiattn::Error

namespace swiattn_fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs f: true when it returns, false when it throws swiattn::Error (a refused input); any other
// exception is a finding, named by `what`.
template <class F>
bool accepts(const char* what, F&& f) {
  try {
    f();
    return true;
  } catch (const swiattn::Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(std::string(what) + " threw a non-swiattn exception: " + e.what());
  }
}

inline std::vector<std::string>& scratch_files() {
  static std::vector<std::string> files;
  return files;
}

inline void remove_scratch_files() {
  for (const std::string& file : scratch_files()) std::remove(file.c_str());
}

// A per-process scratch file for readers that take a path, removed when the fuzzer exits (a
// crash leaves it, next to the saved input). /dev/shm when it exists: the bytes never reach a
// disk, and the library's atomic writer pays no real fsync there.
inline std::string scratch_path(const std::string& suffix) {
  const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = std::string(dir) + "/swiattn-fuzz-" + std::to_string(::getpid()) + suffix;
  if (scratch_files().empty()) std::atexit(remove_scratch_files);
  scratch_files().push_back(path);
  return path;
}

inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) finding("cannot create the scratch file " + path);
  if (size && std::fwrite(data, 1, size, f) != size) finding("cannot write " + path);
  std::fclose(f);
}

}  // namespace swiattn_fuzz
