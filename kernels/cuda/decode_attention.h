// kernels/cuda/decode_attention.h: one decode step of routed attention for a batch of sequences,
// over the unified KV cache, on CUDA. The same function as kernels/cpu/decode_attention.h (its
// legend and key ranges), for the GPU's decode loop (model/kv_cache.h calls both):
//
//   q          (S, Hq, D)        bf16 or float32, the new token's query of every sequence
//   k_cache,   (S, P, Hkv, D)    q's dtype: one layer's cache (model/kv_cache.h), the new key
//   v_cache                      already stored at position lengths[s] - 1
//   lengths    (S) int32         on the device: keys per sequence, the new one included
//   route      (S) int32         on the device, written by the router in the same step:
//                                nonzero = full attention, keys [0, len - 1];
//                                0 = sliding window,  keys [max(0, len - w), len - 1]
//   out        (S, Hq, D)        q's dtype
//   lse        (S, Hq) float32   log-sum-exp of the scores, natural log (undefined: not written)
//
// Nothing is read back to the host: the routes and lengths stay on the device, mixed routes run
// in one launch, and the whole step is ONE kernel (no separate combine launch). How
// (decode_attention.cu has the schedule):
//   - the key range of every (sequence, kv head) is cut into tiles of a few KB of K and V; all
//     tiles of the batch form one list, and a persistent grid (the resident CTAs) splits that
//     list into equal contiguous chunks, one per CTA ("stream-K"): every CTA streams the same
//     number of bytes whatever the routes, so short window ranges and long full ranges balance;
//   - a CTA copies its tiles global -> shared with cp.async, several stages in flight, so the
//     loads of the next tiles overlap the arithmetic on this one (short SWA ranges keep enough
//     bytes in flight);
//   - a chunk that covers a whole (sequence, kv head) writes the output directly; a range cut
//     between CTAs leaves one partial (output, lse) per piece, and the CTA that finishes the last
//     piece merges them (a counter per range), so the step needs no second launch.
//
// Supported: D in {64, 128}; Hq / Hkv in {1, 2, 4, 8}; S <= 1024. Others raise an Error
// saying so.
// Lengths are the caller's contract (1 <= len <= P, as KvCache checks on the host); a length
// past P is clamped to P, and len <= 0 gives out = 0 and lse = -inf, so the kernel never reads
// outside the cache.
#pragma once

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// Whether decode_attention_forward supports a head dim and a GQA group (Hq / Hkv): the shapes
// listed above. Plain C++, so callers can choose another path before any launch.
inline bool decode_attention_supported(int64_t head_dim, int64_t group) {
  return (head_dim == 64 || head_dim == 128) && (group == 1 || group == 2 || group == 4 || group == 8);
}

// ctas: the persistent grid's size; 0 = every resident CTA of the device (the default; tests
// pass small and large grids to exercise ranges cut into many pieces, or one CTA walking every
// range). max_length: a host-side upper bound on the lengths (0 = the capacity P); it bounds
// the tile list the host sizes the partial buffer for.
SWIATTN_CUDA_FUNCTION(void decode_attention_forward(int64_t window, const Tensor& q,
                                                    const Tensor& k_cache, const Tensor& v_cache,
                                                    const Tensor& lengths, const Tensor& route,
                                                    const Tensor& out, const Tensor& lse,
                                                    int64_t ctas = 0, int64_t max_length = 0))

// One decode step's new keys and values into the cache (kernels/cpu/decode_attention.h,
// kv_cache_append): k_cache[s, positions[s]] = k[s], the same for v. k, v (S, Hkv, D) and the
// caches (S, P, Hkv, D) share a dtype (float32 or bfloat16); positions (S) int32 on the device
// (read there; a position outside [0, P) writes nothing).
SWIATTN_CUDA_FUNCTION(void kv_cache_append(const Tensor& k, const Tensor& v, const Tensor& positions,
                                           const Tensor& k_cache, const Tensor& v_cache))

}  // namespace swiattn::cuda
