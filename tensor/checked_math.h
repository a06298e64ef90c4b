// tensor/checked_math.h: size arithmetic that cannot overflow silently, and the one range check
// every reader of sizes uses (configurations, checkpoints, the command line).
//
// Sizes are int64_t everywhere. A product of sizes read from a file (elements of a tensor, bytes
// of an allocation, tokens of a run) is computed with checked_mul, which throws an Error instead
// of wrapping around; a size is checked with require_size before anything uses it, so a value the
// program cannot honour (2^62 hidden units, a batch of 2^32 + 1 rows that a 32-bit kernel argument
// would truncate to 1) is refused with a message naming the key, never silently changed.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "tensor/tensor.h"

namespace swiattn {

// The largest count a size key may hold: the kernels and the data loaders take sizes as 32-bit
// ints (sequence length, batch rows, head counts, ...), so anything larger would be truncated.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();  // 2^31 - 1

// a * b for a, b >= 0, or an Error "<what>: <a> x <b> does not fit in 64 bits".
inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t product;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product))
    throw Error(what + ": " + std::to_string(a) + " x " + std::to_string(b) + " does not fit in 64 bits");
  return product;
}

// a + b for a, b >= 0, or an Error "<what>: <a> + <b> does not fit in 64 bits".
inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t sum;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum))
    throw Error(what + ": " + std::to_string(a) + " + " + std::to_string(b) + " does not fit in 64 bits");
  return sum;
}

// min <= value <= max, or an Error "<key>: must be in [min, max]<why>, got <value>".
inline void require_size(const std::string& key, int64_t value, int64_t min, int64_t max,
                         const std::string& why = "") {
  if (value < min || value > max)
    throw Error(key + ": must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]" + why +
                ", got " + std::to_string(value));
}

}  // namespace swiattn
