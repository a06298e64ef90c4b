// kernels/decode_attention.h: the backend-neutral entries of one decode step over the unified KV
// cache (kernels/backend.h): appending the new keys and values, and routed attention of the new
// queries. CPU: kernels/cpu/decode_attention.h; CUDA: kernels/cuda/decode_attention.h. The cache
// itself (capacity, lengths, routes) is model/kv_cache.h.
//
// Shapes: S sequences, P capacity, Hq / Hkv heads, D head dim; q (S, Hq, D); k, v (S, Hkv, D);
// the caches (S, P, Hkv, D); positions, lengths, route (S) int32 on the caches' device.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace swiattn::kernels {

// k_cache[s, positions[s]] = k[s], the same for v.
void kv_cache_append(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
                     const Tensor& v_cache);

// out (S, Hq, D): each sequence's new query over its keys: [0, lengths[s] - 1] where route[s] is
// 1 (full attention), the last `window` of them where it is 0. max_length: a host-side bound on
// the lengths (sizes the CUDA kernel's tile list).
void decode_attention_forward(int64_t window, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const Tensor& lengths, const Tensor& route, const Tensor& out, int64_t max_length);

}  // namespace swiattn::kernels
