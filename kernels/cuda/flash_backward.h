// kernels/cuda/flash_backward.h: the fast attention backward on tensor cores (FlashAttention-2
// style), for bfloat16 q / k / v / dout, head dim 64 or 128, grouped-query heads (Hq % Hkv == 0).
// cuda::attention_backward and cuda::switch_attention_backward take it when it applies
// (flash_backward_supported); otherwise they keep their simple warp-per-row kernels.
//
// Layout as in attention.h: q, dq (B, T, Hq, D); k, v, dk, dv (B, T, Hkv, D); lse (B, T, Hq)
// float32; gate, dgate (B, T). Backward functions ADD into the gradients (api.h).
//
// One kernel serves both: a query t receives dout_t through one or two "branches" b, each with a
// weight w_b(t), a window W_b (0 = keys [0, t]), its output O_b and log-sum-exp lse_b:
//   attention_backward         one branch:  w = 1 (or gate, or 1 - gate), window W
//   switch_attention_backward  two branches: FULL (w = gate, W = 0), SWA (w = 1 - gate, W = w)
// With p_b = exp(score - lse_b) on the branch's keys (0 elsewhere), dP_tj = dout_t . v_j and
// Delta_b(t) = w_b dout_t . O_b(t) (spec §4, "the backward flows through the merge"):
//   dV_j  += sum_t (sum_b w_b p_b) dout_t
//   ds_tj  = sum_b p_b (w_b dP_tj - Delta_b(t))
//   dQ_t  += scale sum_j ds_tj k_j;   dK_j += scale sum_t ds_tj q_t
//   dgate_t += sum over heads of dout_t . (O_FULL_t - O_SWA_t)        (switch only)
// So the window part of every score tile carries both terms and the far part only FULL's:
// both branches cost about one causal attention backward.
//
// Kernels (flash_backward.cu): (1) a preprocessing kernel, a block per token: the Deltas, the
// weights, dgate; (2) the main kernel (sm_80, or the sm_90a one of hopper_backward.cu: below), a
// CTA per (batch, kv head, tile of 128 keys) that walks
// the group's query heads and every tile of 64 queries that can read its keys, keeping dK, dV in
// registers (no atomics: one CTA owns them) and adding dQ's partial sums into a float32 buffer
// with atomics; (3) dq += that buffer, one rounding to bfloat16.
#pragma once

#include <string>

#include "kernels/cpu/attention.h"
#include "tensor/cuda/api.h"
#include "kernels/cuda/flash_attention.h"

namespace swiattn::cuda {

// Which main kernel the functions below run (FlashKernel of flash_attention.h):
//   Auto    the sm_90a kernel (kernels/cuda/hopper_backward.cu: wgmma, TMA, a producer and two
//           consumer warpgroups) where it can run (an sm_90a build on a compute capability 9.0
//           device), as the forward does; else the sm_80 one (kHopperBackwardByDefault in
//           flash_backward.cu; docs/perf.md, "Notes: the Hopper backward")
//   Sm80    flash_backward.cu's kernel (mma.sync; the reference; any GPU from sm_80)
//   Hopper  hopper_backward.cu's kernel; the functions throw, saying why, where it cannot run
// Deterministic mode (device.h) always takes the sm_80 kernel: the fixed-order dq is its own.
// The process starts with SWIATTN_ATTENTION_BACKWARD=auto | sm80 | hopper (unset: auto).
SWIATTN_CUDA_FUNCTION(void set_flash_backward_kernel(FlashKernel kernel))
SWIATTN_CUDA_FUNCTION(FlashKernel flash_backward_kernel())
// "hopper" or "sm80": the family the next call takes ("hopper (unavailable)" when Hopper is forced
// where it cannot run).
SWIATTN_CUDA_FUNCTION(std::string flash_backward_kernel_in_use())

// True when the fast kernels apply: bfloat16 inputs, D in {64, 128}, Hq % Hkv == 0, and every
// given tensor's data 16-byte aligned (the kernels copy rows in 16-byte pieces).
SWIATTN_CUDA_FUNCTION(bool flash_backward_supported(const cpu::AttentionShape& s, const Tensor& q,
                                                    const Tensor& k, const Tensor& v,
                                                    const Tensor& dout))

// The contract of cuda::attention_backward (attention.h), on tensor cores. out is bfloat16 or
// float32; dq, dk, dv bfloat16 (each may be undefined).
SWIATTN_CUDA_FUNCTION(void flash_attention_backward(const cpu::AttentionShape& s, int64_t window,
                                                    const Tensor& q, const Tensor& k,
                                                    const Tensor& v, const Tensor& out,
                                                    const Tensor& lse, const Tensor& dout,
                                                    const Tensor& gate, bool complement,
                                                    const Tensor& dq, const Tensor& dk,
                                                    const Tensor& dv))

// The contract of cuda::switch_attention_backward (switch_attention.h), both branches in one
// pass. o_full, o_swa, lse_full, lse_swa float32; dq, dk, dv, dgate bfloat16 (may be undefined).
SWIATTN_CUDA_FUNCTION(void flash_switch_attention_backward(
    const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& gate, const Tensor& o_full, const Tensor& o_swa, const Tensor& lse_full,
    const Tensor& lse_swa, const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
    const Tensor& dgate))

}  // namespace swiattn::cuda
