// kernels/cpu/decode_attention.h: one decode step of routed attention over the unified KV cache,
// on the CPU: the reference the CUDA kernel (kernels/cuda/decode_attention.h) is tested against.
//
// Shape legend: S sequences, P cache capacity, Hq query heads, Hkv kv heads, D head dim.
//   q        (S, Hq, D)        the new token's query of every sequence
//   k, v     (S, P, Hkv, D)    the cache of one layer (model/kv_cache.h); the new token's key is
//                              already stored at position lengths[s] - 1
//   lengths  (S)               keys stored per sequence, the new one included (>= 1)
//   route    (S)               1 = full attention: keys [0, len - 1];
//                              0 = sliding window: keys [max(0, len - w), len - 1]
//   out      (S, Hq, D);  lse (S, Hq)
// The key range (decode_first_key) is the training forward's rule, window_first_key of
// kernels/cpu/window.h at t = length - 1; the CUDA kernel calls the same function on the device.
// Query head h reads kv head h / (Hq / Hkv); score_j = q . k_j / sqrt(D).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/window.h"

namespace swiattn::cpu {

struct DecodeShape {
  int64_t S, P, Hq, Hkv, D;
  int64_t group() const { return Hq / Hkv; }
};

// First key a decode query of a sequence with `length` keys reads: 0 on the full route, else
// the window rule at t = length - 1.
inline int64_t decode_first_key(int64_t length, bool full, int64_t window) {
  return full ? 0 : window_first_key<int64_t>(length - 1, window);
}

// One decode step's new keys and values into the cache: k_cache[n, positions[n]] = k[n], the
// same for v; k, v (S, Hkv, D), positions (S) in [0, P) (checked: an Error, nothing written).
template <class T>
void kv_cache_append(const DecodeShape& s, const T* k, const T* v, const int32_t* positions, T* k_cache,
                     T* v_cache);

// Rows (s, h) in parallel; each row is attend_range_forward over its key range.
template <class T>
void decode_attention_forward(const DecodeShape& s, int64_t window, const T* q, const T* k, const T* v,
                              const std::vector<int64_t>& lengths, const std::vector<int32_t>& route,
                              T* out, T* lse);

}  // namespace swiattn::cpu
