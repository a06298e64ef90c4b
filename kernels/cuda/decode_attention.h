// kernels/cuda/decode_attention.h: one decode step of routed attention for a batch of sequences,
// over the unified KV cache, on CUDA. The same function as kernels/cpu/decode_attention.h (its
// legend and key ranges), for the GPU's decode loop:
//
//   q          (S, Hq, D)        bf16 or float32, the new token's query of every sequence
//   k_cache,   (S, P, Hkv, D)    q's dtype: one layer's cache (model/kv_cache.h), the new key
//   v_cache                      already stored at position lengths[s] - 1
//   lengths    (S) int32         on the device: keys per sequence, the new one included
//   route      (S) int32         on the device, written by the router in the same step:
//                                1 = full attention, keys [0, len - 1];
//                                0 = sliding window,  keys [max(0, len - w), len - 1]
//   out        (S, Hq, D)        q's dtype or float32
//   lse        (S, Hq) float32   log-sum-exp of the scores (undefined: not written)
//
// Nothing is read back to the host: the routes and lengths stay on the device, mixed routes run
// in one launch. Work item = (sequence, split, kv head): the key range [lo, hi] of a sequence is
// cut into splits of keys_per_split keys, so the number of splits follows the range (a 1024-key
// window gets 1024 / keys_per_split, a 32K full-attention range 32K / keys_per_split). One CTA
// serves all Hq / Hkv query heads of its kv head (each K / V byte is read once), each thread
// loading 16 bytes of a key row at a time; it leaves a partial (output, lse) per query head,
// and a combine kernel merges the splits by their log-sum-exps.
//
// Supported: D in {64, 128}; Hq / Hkv in {1, 2, 4, 8}; S <= 1024. Others raise an Error
// saying so.
// Lengths are the caller's contract (1 <= len <= P, as KvCache checks on the host); a length
// past P is clamped to P, and len <= 0 gives out = 0 and lse = -inf, so the kernel never reads
// outside the cache.
#pragma once

#include "kernels/cuda/api.h"

namespace swiattn::cuda {

// keys_per_split: 0 = the default, max_length / 32 clamped to [256, 1024] (measured; the .cu).
// max_length: a host-side upper bound on the lengths (for sizing the grid and the partial
// buffer); 0 = the capacity P.
SWIATTN_CUDA_FUNCTION(void decode_attention_forward(int64_t window, const Tensor& q,
                                                    const Tensor& k_cache, const Tensor& v_cache,
                                                    const Tensor& lengths, const Tensor& route,
                                                    const Tensor& out, const Tensor& lse,
                                                    int64_t keys_per_split = 0,
                                                    int64_t max_length = 0))

}  // namespace swiattn::cuda
