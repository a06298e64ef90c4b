// kernels/cuda/optimizer.h: the optimizer's arithmetic on CUDA: one AdamW step, the global
// gradient norm and its clipping, and the count of non-finite values (the training guard).
// The CPU reference is kernels/cpu/optimizer.h, both reached through kernels/optimizer.h (by
// AdamW::step, global_grad_norm, clip_grad_norm in train/optimizer.cpp and all_finite in
// train/nonfinite.cpp): same formulas, same order of operations per element, and
// tests/test_cuda_train.cpp holds the two together. See tensor/cuda/api.h for the conventions.
//
// Nothing here reads a value back to the host: the norm, the clip factor and the counts stay in
// small device tensors until the caller copies them (once per step, or when it logs).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// One AdamW step of one float32 parameter p with its gradient g and moments m, v (all float32,
// same shape), per element in double as on the CPU:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ((m / bias_correction1) / (sqrt(v / bias_correction2) + eps) + wd * p)
// bias_correction1 = 1 - b1^t and bias_correction2 = 1 - b2^t come from the host.
SWIATTN_CUDA_FUNCTION(void adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                                      double lr, double b1, double b2, double eps, double wd,
                                      double bias_correction1, double bias_correction2))

// sum_of_squares[slot] = sum_k g[k]^2 (double accumulation; one block, a fixed order: the result
// does not vary between runs). sum_of_squares is a float64 CUDA tensor (slots).
SWIATTN_CUDA_FUNCTION(void sum_of_squares(const Tensor& g, const Tensor& sum_of_squares, int64_t slot))

// norm_and_factor (2) float64 = { sqrt(sum of all slots), the clip factor }, the factor being
// max_norm / norm when max_norm > 0, norm > max_norm and norm is finite, else 1 (the rule of
// clip_grad_norm on the CPU).
SWIATTN_CUDA_FUNCTION(void grad_norm_and_clip_factor(const Tensor& sum_of_squares, double max_norm,
                                                     const Tensor& norm_and_factor))

// g *= norm_and_factor[1], read on the device (float32 or bfloat16 g; skipped when factor == 1).
SWIATTN_CUDA_FUNCTION(void scale_by_clip_factor(const Tensor& g, const Tensor& norm_and_factor))

// counts[slot] += the number of NaN or infinite elements of x (float32 or bfloat16); counts is
// an int32 CUDA tensor.
SWIATTN_CUDA_FUNCTION(void count_nonfinite(const Tensor& x, const Tensor& counts, int64_t slot))
// The same for many tensors, counts[i] += the count of xs[i], in one launch per 32.
SWIATTN_CUDA_FUNCTION(void count_nonfinite_each(const std::vector<Tensor>& xs, const Tensor& counts))

}  // namespace swiattn::cuda
