// kernels/cuda/norm.h: RMSNorm, RoPE and the embedding lookup on CUDA (kernels/cpu/norm.h).
#pragma once

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// RMSNorm over the last dim C of N rows: y = x / sqrt(mean(x^2) + eps) * gain. One block per
// row, the mean square accumulated in double as on the CPU. inv_rms (N) is float32.
SWIATTN_CUDA_FUNCTION(void rms_norm_forward(const Tensor& x, const Tensor& gain, double eps,
                                            const Tensor& y, const Tensor& inv_rms))
// dgain_c += sum_n dy_nc xhat_nc;  dx_c += r (g_c dy_c - xhat_c mean_k(g_k dy_k xhat_k))
SWIATTN_CUDA_FUNCTION(void rms_norm_backward(const Tensor& x, const Tensor& gain,
                                             const Tensor& inv_rms, const Tensor& dy,
                                             const Tensor& dx, const Tensor& dgain))

// Rotary embedding of x (B, T, H, D), the half-split convention of cpu::rope_apply; angles and
// their cos / sin in double as on the CPU. inverse rotates back (the backward). row_positions:
// undefined, or (B) int32 on the device, each row's first position (added to position_offset),
// read there (a decode step uploads it once for every layer).
SWIATTN_CUDA_FUNCTION(void rope_apply(const Tensor& x, double base, int64_t position_offset,
                                      const Tensor& row_positions, const Tensor& y, bool inverse,
                                      bool accumulate))

// out[n, :] = weight[ids[n], :]; ids int32 on either device (checked on the host: an id
// outside [0, V) throws Error as on the CPU). The backward groups the positions by id on the
// host and sums each id's rows in position order (no atomics: the same bits on every run).
SWIATTN_CUDA_FUNCTION(void embedding_forward(const Tensor& ids, const Tensor& weight, const Tensor& out))
SWIATTN_CUDA_FUNCTION(void embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight))

// int32 indices on the device: ids itself when it is there, else a copy.
inline Tensor ids_on_device(const Tensor& ids) { return ids.device() == Device::CUDA ? ids : ids.to_device(); }

}  // namespace swiattn::cuda
