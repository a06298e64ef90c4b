#include "tensor/random.h"

#include <cmath>

namespace swiattn {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) { return mix64(mix64(seed) ^ stream); }

double uniform_at(uint64_t seed, uint64_t index) {
  // The top 53 bits of the hash, scaled to [0, 1).
  return static_cast<double>(mix64(derive_seed(seed, index)) >> 11) * 0x1.0p-53;
}

double normal_at(uint64_t seed, uint64_t index) {
  // Box-Muller on two uniforms drawn from sub-streams of this index; 1 - u keeps log() finite.
  const double u1 = 1.0 - uniform_at(seed, 2 * index);
  const double u2 = uniform_at(seed, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace swiattn
