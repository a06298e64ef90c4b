// kernels/norm.h: the backend-neutral entries of the per-row transforms (kernels/backend.h):
// the embedding lookup, RMSNorm and RoPE, forward and backward side by side.
// CPU: kernels/cpu/norm.h; CUDA: kernels/cuda/norm.h.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace swiattn::kernels {

// out (N..., C) = weight (V, C)[ids (N...)], ids int32 (on either device for CUDA weights);
// dweight[ids[n]] += dout[n].
void embedding_forward(const Tensor& ids, const Tensor& weight, const Tensor& out);
void embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight);

// y = x / sqrt(mean(x^2) + eps) * gain over the last dim C; inv_rms (N) of statistics_dtype(x)
// is saved for the backward, which adds into dx and dgain (either may be undefined).
void rms_norm_forward(const Tensor& x, const Tensor& gain, double eps, const Tensor& y, const Tensor& inv_rms);
void rms_norm_backward(const Tensor& x, const Tensor& gain, const Tensor& inv_rms, const Tensor& dy,
                       const Tensor& dx, const Tensor& dgain);

// Rotary embedding of x (B, T, H, D) at positions position_offset + row_positions[b] + t
// (row_positions: undefined, or (B) int32 on x's device). inverse rotates back; with accumulate
// y += the result: rope_apply(dy, ..., dx, true, true) is the backward.
void rope_apply(const Tensor& x, double base, int64_t position_offset, const Tensor& row_positions,
                const Tensor& y, bool inverse, bool accumulate);

}  // namespace swiattn::kernels
