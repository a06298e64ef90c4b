#include "kernels/cpu/decode_attention.h"

#include <cmath>
#include <string>

#include "kernels/cpu/attention.h"
#include "tensor/tensor.h"

namespace swiattn::cpu {

template <class T>
void decode_attention_forward(const DecodeShape& s, int64_t window, const T* q, const T* k, const T* v,
                              const std::vector<int64_t>& lengths, const std::vector<int32_t>& route,
                              T* out, T* lse) {
  if (static_cast<int64_t>(lengths.size()) != s.S || static_cast<int64_t>(route.size()) != s.S)
    throw Error("decode_attention: need S = " + std::to_string(s.S) + " lengths and routes, got " +
                std::to_string(lengths.size()) + " and " + std::to_string(route.size()));
  if (s.Hkv <= 0 || s.Hq % s.Hkv != 0)
    throw Error("decode_attention: Hq (" + std::to_string(s.Hq) + ") must be a multiple of Hkv (" +
                std::to_string(s.Hkv) + ")");
  for (int64_t n = 0; n < s.S; ++n)
    if (lengths[n] < 1 || lengths[n] > s.P)
      throw Error("decode_attention: sequence " + std::to_string(n) + " has length " + std::to_string(lengths[n]) +
                  " (1 .. capacity " + std::to_string(s.P) + " expected)");
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const int64_t key_stride = s.Hkv * s.D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t n = 0; n < s.S; ++n)
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t key0 = n * s.P * key_stride + (h / s.group()) * s.D;  // key 0 of kv head h / group
      const int64_t hi = lengths[n] - 1, lo = decode_first_key(lengths[n], route[n] != 0, window);
      const int64_t row = n * s.Hq + h;
      const T l = attend_range_forward<T>(s.D, scale, q + row * s.D, k + key0, v + key0, key_stride, lo, hi,
                                          out + row * s.D);
      if (lse) lse[row] = l;
    }
}

template <class T>
void kv_cache_append(const DecodeShape& s, const T* k, const T* v, const int32_t* positions, T* k_cache,
                     T* v_cache) {
  for (int64_t n = 0; n < s.S; ++n)
    if (positions[n] < 0 || positions[n] >= s.P)
      throw Error("kv_cache_append: sequence " + std::to_string(n) + " at position " + std::to_string(positions[n]) +
                  " is outside the cache's capacity " + std::to_string(s.P));
  const int64_t row = s.Hkv * s.D;  // one token's (Hkv, D)
  for (int64_t n = 0; n < s.S; ++n)
    for (int64_t i = 0; i < row; ++i) {
      k_cache[(n * s.P + positions[n]) * row + i] = k[n * row + i];
      v_cache[(n * s.P + positions[n]) * row + i] = v[n * row + i];
    }
}

template void kv_cache_append<float>(const DecodeShape&, const float*, const float*, const int32_t*, float*, float*);
template void kv_cache_append<double>(const DecodeShape&, const double*, const double*, const int32_t*, double*,
                                      double*);
template void decode_attention_forward<float>(const DecodeShape&, int64_t, const float*, const float*,
                                              const float*, const std::vector<int64_t>&,
                                              const std::vector<int32_t>&, float*, float*);
template void decode_attention_forward<double>(const DecodeShape&, int64_t, const double*, const double*,
                                               const double*, const std::vector<int64_t>&,
                                               const std::vector<int32_t>&, double*, double*);

}  // namespace swiattn::cpu
