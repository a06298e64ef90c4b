// kernels/cuda/flash_attention.h: fast attention forwards on the tensor cores
// (FlashAttention-2 style), for bfloat16 q, k, v with head dim D of 64 or 128 and grouped-query
// heads (Hq a multiple of Hkv). The same functions as kernels/cuda/attention.h and
// switch_attention.h compute, which stay the reference and the fallback for everything else.
//
// Layout as everywhere: q (B, T, Hq, D); k, v (B, T, Hkv, D); out (B, T, Hq, D); lse (B, T, Hq)
// float32; query head h reads kv head h / (Hq / Hkv); a window w > 0 gives query t the keys
// [max(0, t - w + 1), t], w = 0 (or w >= T) the keys [0, t].
//
// Two kernel families compute these functions (FlashKernel below picks): on an H100 / H200
// (compute capability 9.0) with sm_90a code in the binary, the Hopper kernel of
// kernels/cuda/hopper_attention.cu (wgmma, TMA, a producer and two consumer warpgroups; its
// header draws the schedule); elsewhere the sm_80 kernel, described next.
//
// How (kernels/cuda/flash_attention.cu, the sm_80 kernel): one CTA takes a tile of 16 x (warps) query rows of one
// (b, h), 16 rows per warp (default 8 warps, 128 rows: measured faster on the H100 than 4 warps,
// 64 rows; SWIATTN_FLASH_CONFIG picks another, see the .cu); the rows' Q stays in registers; K
// and V come through shared memory in tiles of 64 keys, double-buffered with cp.async;
// S = Q K^T and O += P V run on mma.sync m16n8k16 (bf16 in, float32 accumulate) with an online
// softmax in between. Key tiles outside every row's range are never visited; a tile that is
// partly outside is masked. No T x T matrix is ever formed.
//
// Precision: scores, the softmax state and O accumulate in float32; P is rounded to bfloat16
// for P V (as in FlashAttention). out is rounded once at the end.
#pragma once

#include <string>

#include "kernels/cpu/attention.h"
#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// Which kernel family the functions below run:
//   Auto    the Hopper kernel where it can run (device 0 of compute capability 9.0, sm_90a code
//           in this binary), else the sm_80 kernel (the default)
//   Sm80    always the sm_80 kernel (mma.sync; older GPUs take it anyway)
//   Hopper  always the Hopper kernel; the functions throw, saying why, where it cannot run
// The process starts with SWIATTN_ATTENTION_KERNEL=auto | sm80 | hopper (unset: auto); tests and
// benchmarks switch with set_flash_kernel. The backward (flash_backward.h) has its own choice
// (SWIATTN_ATTENTION_BACKWARD, set_flash_backward_kernel; auto takes its sm_90a kernel where it can run).
enum class FlashKernel { Auto, Sm80, Hopper };
SWIATTN_CUDA_FUNCTION(void set_flash_kernel(FlashKernel kernel))
SWIATTN_CUDA_FUNCTION(FlashKernel flash_kernel())
// "hopper" or "sm80": the family the next call takes ("hopper (unavailable)" when Hopper is
// forced where it cannot run); hopper_kernel_status() says why, in words (e.g. "sm_90a kernel on
// NVIDIA H200 (sm_90)" or "... this binary has no sm_90a code ...").
SWIATTN_CUDA_FUNCTION(std::string flash_kernel_in_use())
SWIATTN_CUDA_FUNCTION(std::string hopper_kernel_status())
SWIATTN_CUDA_FUNCTION(bool hopper_kernel_available())

// Whether the fast kernels take this problem: q bfloat16, D 64 or 128, Hq a multiple of Hkv.
inline bool flash_attention_supported(const cpu::AttentionShape& s, const Tensor& q) {
  return q.dtype() == DType::BF16 && (s.D == 64 || s.D == 128) && s.Hkv > 0 && s.Hq % s.Hkv == 0;
}

// out_t = softmax over the legal keys of q_t K^T / sqrt(D), times V; lse_t its log-sum-exp.
// out is bfloat16 or float32; lse float32 (B, T, Hq), or undefined (not written).
SWIATTN_CUDA_FUNCTION(void flash_attention_forward(const cpu::AttentionShape& s, int64_t window,
                                                   const Tensor& q, const Tensor& k,
                                                   const Tensor& v, const Tensor& out,
                                                   const Tensor& lse))

// Inference with hard routes (spec: a token routed to 1 takes full causal attention, to 0 the
// window): route (B, T) bfloat16, each entry 0 or 1 (any nonzero entry counts as 1). A scan
// kernel compacts each batch row's positions into a full list and a window list on the device;
// CTAs then take tiles of gathered queries (128 by default), over only their legal keys (a full
// tile: [0, its last t]; a window tile: [its first t - w + 1, its last t]), and scatter their
// outputs back to out (B, T, Hq, D), bfloat16. Nothing else is written (no lse, no branch
// outputs). window 0 or >= T: every token attends fully (one flash_attention_forward).
SWIATTN_CUDA_FUNCTION(void routed_attention_prefill(const cpu::AttentionShape& s, int64_t window,
                                                    const Tensor& q, const Tensor& k,
                                                    const Tensor& v, const Tensor& route,
                                                    const Tensor& out))

// Whether every entry of gate (B, T) (bfloat16, on CUDA) is exactly 0 or 1: the condition for
// routed_attention_prefill to compute switch attention's output. One reduction and a 4-byte copy
// back (it waits for the device).
SWIATTN_CUDA_FUNCTION(bool is_hard_route(const Tensor& gate))

// Training forward of switch attention in one pass (same contract as
// cuda::switch_attention_forward): per query tile the window keys [t - w + 1, t] first, whose
// softmax state is O_SWA (o_swa, lse_swa written there), then the far keys [0, t - w] continue
// the same state into O_FULL (the log-sum-exp merge happens by itself: it is one online softmax
// over the union); out = g O_FULL + (1 - g) O_SWA (Eq. 6), bfloat16.
// o_full, o_swa (B, T, Hq, D) and lse_full, lse_swa (B, T, Hq) are float32 -- the backward
// (kernels/cuda/flash_backward.cu) reads them as float32. Without both_branches a row whose gate
// is 0 skips its far keys (its o_full is then its o_swa), as the reference kernel does.
SWIATTN_CUDA_FUNCTION(void flash_switch_attention_forward(
    const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& gate, bool both_branches, const Tensor& out, const Tensor& o_full,
    const Tensor& o_swa, const Tensor& lse_full, const Tensor& lse_swa))

}  // namespace swiattn::cuda
