// tensor/random.h: counter-based random numbers.
//
// Every random value is a pure function of (seed, counter): there is no hidden global state, so
// results are identical across runs and thread counts, and a generator's whole state is two
// integers (easy to checkpoint). The mixing function is SplitMix64's finaliser.
#pragma once

#include <cstdint>

namespace swiattn {

// A well-mixed 64-bit hash of x (SplitMix64 finaliser).
uint64_t mix64(uint64_t x);
// A seed for the named sub-stream `stream` of `seed` (e.g. one per parameter tensor).
uint64_t derive_seed(uint64_t seed, uint64_t stream);
// Uniform in [0, 1), and standard normal (Box-Muller), as functions of (seed, index).
double uniform_at(uint64_t seed, uint64_t index);
double normal_at(uint64_t seed, uint64_t index);

// A sequential generator: state = (seed, counter).
struct Rng {
  uint64_t seed = 0;
  uint64_t counter = 0;
  explicit Rng(uint64_t seed_ = 0) : seed(seed_) {}
  double uniform() { return uniform_at(seed, counter++); }
  double normal() { return normal_at(seed, counter++); }
  uint64_t next_u64() { return mix64(derive_seed(seed, counter++)); }
  // Uniform integer in [0, n); n > 0.
  uint64_t below(uint64_t n) { return next_u64() % n; }
};

}  // namespace swiattn
