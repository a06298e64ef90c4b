// kernels/attention.h: the backend-neutral entries of causal (sliding-window) attention and of
// switch attention's two branches (kernels/backend.h), forward and backward side by side.
// CPU: kernels/cpu/attention.h, kernels/cpu/switch_attention.h; CUDA: kernels/cuda/attention.h,
// kernels/cuda/switch_attention.h, kernels/cuda/flash_attention.h (the tensor-core kernels).
//
// Layout: q (B, T, Hq, D); k, v (B, T, Hkv, D); gate (B, T); out (B, T, Hq, D); lse (B, T, Hq).
// float32 attention in bfloat16 (train.float32_attention "bfloat16", cuda::
// float32_attention_in_bf16): for float32 CUDA tensors with D 64 or 128 the entries round q, k, v
// (and the gate) to bfloat16 once, run the tensor-core kernels, keep outputs and statistics in
// float32, and the backward rounds dout to bfloat16 and adds bfloat16 gradients into the float32
// ones (the error is that of bfloat16 attention, docs/cuda.md). The choice is made here, once.
#pragma once

#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/attention.h"

namespace swiattn::kernels {

using cpu::AttentionShape;

// What the attention backward reads, as the forward left it.
struct AttentionSaved {
  Tensor q, k, v;     // the inputs as the kernels read them (bfloat16 copies in the bfloat16 mode)
  Tensor out;         // (B, T, Hq, D) the op's output, q's dtype
  Tensor lse;         // (B, T, Hq) statistics_dtype(q)
  bool in_bf16 = false;
};
// out_t = sum_j softmax_j(q_t . k_j / sqrt(D)) v_j over the keys window_begin(t, window) .. t.
AttentionSaved attention_forward(const AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                                 const Tensor& v);
// dq, dk, dv += the gradients for dout (each may be undefined: not needed).
void attention_backward(const AttentionShape& s, int64_t window, const AttentionSaved& saved, const Tensor& dout,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv);

// What the switch attention backward reads.
struct SwitchAttentionSaved {
  Tensor q, k, v, gate;       // as the kernels read them (bfloat16 copies in the bfloat16 mode)
  Tensor o_full, o_swa;       // (B, T, Hq, D) the two branches, statistics_dtype(q)
  Tensor lse_full, lse_swa;   // (B, T, Hq) statistics_dtype(q)
  bool in_bf16 = false;
};
struct SwitchAttentionForward {
  Tensor out;                 // (B, T, Hq, D) gate O_FULL + (1 - gate) O_SWA (Eq. 6), q's dtype
  SwitchAttentionSaved saved;
  bool has_backward = true;   // false: the routed inference path, which keeps no branch outputs
};
// Eq. 6 with both branches (both_branches; inference may skip the far keys of gate-0 rows), by
// the one-pass method or the two-pass reference. branch_diff_sq, when given, receives
// ||O_FULL_t - O_SWA_t||^2 (B, T) (Eq. 8). Inference with hard routes on CUDA (no
// both_branches, one pass, the tensor-core shapes) runs only each token's own branch.
SwitchAttentionForward switch_attention_forward(const AttentionShape& s, int64_t window, const Tensor& q,
                                                const Tensor& k, const Tensor& v, const Tensor& gate,
                                                bool both_branches, bool two_pass_reference, Tensor* branch_diff_sq);
// dgate_t += sum dout_t (O_FULL_t - O_SWA_t); O_FULL's attention gets gate dout, O_SWA's
// (1 - gate) dout. dq, dk, dv, dgate may each be undefined.
void switch_attention_backward(const AttentionShape& s, int64_t window, const SwitchAttentionSaved& saved,
                               const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                               const Tensor& dgate);

}  // namespace swiattn::kernels
