// kernels/cuda/attention.h: causal attention with an optional sliding window, grouped-query, on
// CUDA. The same function as kernels/cpu/attention.h (same layout, window and scale), written
// simply: one warp per query row, an online softmax over its keys; head dim D <= 256.
//
// Layout: q (B, T, Hq, D); k, v (B, T, Hkv, D); out (B, T, Hq, D); lse (B, T, Hq) float32.
#pragma once

#include "kernels/cpu/attention.h"
#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// out_t = sum_j softmax_j(q_t . k_j / sqrt(D)) v_j over the keys j of cpu::window_begin(t,
// window) .. t; lse_t = log sum_j e^score_j. out is q's dtype or float32.
SWIATTN_CUDA_FUNCTION(void attention_forward(const cpu::AttentionShape& s, int64_t window,
                                             const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& out, const Tensor& lse))

// The backward of attention_forward, given its out and lse, for the output gradient w_t dout_t:
// w_t = 1 without a gate; gate_t, or 1 - gate_t with complement, given a gate (B, T) (the two
// branches of switch attention). With p_j = exp(score_j - lse) and
// delta = (w dout) . out, ds_j = p_j ((w dout) . v_j - delta):
//   dq += scale sum_j ds_j k_j;  dk_j += scale ds_j q;  dv_j += p_j w dout
// Two kernels, no atomics: one warp per query row for dq, one warp per key row for dk and dv
// (it walks the queries that read that key). Undefined dq / dk / dv are skipped.
SWIATTN_CUDA_FUNCTION(void attention_backward(const cpu::AttentionShape& s, int64_t window,
                                              const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& out, const Tensor& lse,
                                              const Tensor& dout, const Tensor& gate,
                                              bool complement, const Tensor& dq, const Tensor& dk,
                                              const Tensor& dv))

}  // namespace swiattn::cuda
