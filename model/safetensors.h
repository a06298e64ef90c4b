// model/safetensors.h: reading and writing the safetensors file format.
//
// Layout of a file (all integers little-endian):
//   bytes [0, 8)        u64 N, the length of the header
//   bytes [8, 8 + N)    the header: UTF-8 JSON, padded with spaces so that N % 8 == 0
//                         {"__metadata__": {"key": "value", ...},            (optional)
//                          "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//                          ...}
//   bytes [8 + N, end)  the data region: each tensor's elements, row-major, little-endian;
//                       data_offsets [begin, end) count from the start of the data region.
// Supported dtypes: F32, F64, BF16, I32 (the four of tensor/tensor.h).
//
// The reader trusts nothing: every field is checked against the file before any memory is
// allocated by it, and every problem is an Error of one line naming the file, the field and
// what was expected. It also applies the reference implementation's rule that the tensors tile
// the data region exactly (no overlap, no gap, no trailing bytes), so a file this reader
// accepts is one the Hugging Face loaders accept too.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/durable_file.h"  // write_file_atomically: every file of a checkpoint
#include "tensor/tensor.h"

namespace swiattn {

// The largest header the reader will look at, as in the reference implementation.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Writes `tensors` (CPU tensors, unique non-empty names) in the given order, each one's bytes
// right after the previous one's, and `metadata` as the header's "__metadata__" (omitted when
// empty). Atomic: the bytes go to `path.tmp`, are flushed to disk, and the file is renamed over
// `path`, so `path` is always either the old file or the complete new one.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::vector<std::string> names;              // in file order (increasing data offsets)
  std::map<std::string, Tensor> tensors;       // name -> tensor (CPU, the file's dtype)
  std::map<std::string, std::string> metadata; // the header's "__metadata__"; may be empty
};

// Reads and validates a whole file. Throws Error on any malformed or hostile input.
SafetensorsFile read_safetensors(const std::string& path);

// The safetensors name of a dtype ("F32", "F64", "BF16", "I32").
const char* safetensors_dtype_name(DType dtype);

}  // namespace swiattn
