// kernels/cuda/switch_attention.h: both attention branches of a switch layer and their mix, on
// CUDA (kernels/cpu/switch_attention.h states the math). gate (B, T) has q's dtype; o_full,
// o_swa (B, T, Hq, D), lse_full, lse_swa (B, T, Hq) and diff_sq (B, T) are float32.
#pragma once

#include "kernels/cpu/attention.h"
#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// One pass: warp per query row; the window part [max(0, t-w+1), t] gives O_SWA, the far part
// [0, t-w] is merged with it by their log-sum-exps into O_FULL;
// out = gate O_FULL + (1 - gate) O_SWA (Eq. 6). Without both_branches the far part is skipped
// for rows whose gate is 0 (o_full then equals o_swa), as on the CPU.
SWIATTN_CUDA_FUNCTION(void switch_attention_forward(const cpu::AttentionShape& s, int64_t window,
                                                    const Tensor& q, const Tensor& k,
                                                    const Tensor& v, const Tensor& gate,
                                                    bool both_branches, const Tensor& out,
                                                    const Tensor& o_full, const Tensor& o_swa,
                                                    const Tensor& lse_full, const Tensor& lse_swa))
// The two-pass reference: attention_forward twice (full, then windowed), then Eq. 6.
SWIATTN_CUDA_FUNCTION(void switch_attention_forward_two_pass(
    const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& gate, const Tensor& out, const Tensor& o_full, const Tensor& o_swa,
    const Tensor& lse_full, const Tensor& lse_swa))

// dgate_t += sum over heads and dims of dout_t (O_FULL_t - O_SWA_t); then each branch's
// attention backward (attention.h) with its share of dout: gate dout over keys [0, t] with
// lse_full, (1 - gate) dout over the window with lse_swa.
SWIATTN_CUDA_FUNCTION(void switch_attention_backward(
    const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& gate, const Tensor& o_full, const Tensor& o_swa, const Tensor& lse_full,
    const Tensor& lse_swa, const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
    const Tensor& dgate))

// diff_sq_t = ||O_FULL_t - O_SWA_t||^2 over all heads and dims (Eq. 8's branch difference).
SWIATTN_CUDA_FUNCTION(void branch_difference_sq(const cpu::AttentionShape& s, const Tensor& o_full,
                                                const Tensor& o_swa, const Tensor& diff_sq))

}  // namespace swiattn::cuda
