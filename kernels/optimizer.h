// kernels/optimizer.h: the backend-neutral entries of the optimizer's arithmetic
// (kernels/backend.h): one AdamW step, the global gradient norm with its clip factor, the clip
// itself, and the count of non-finite values. CPU: kernels/cpu/optimizer.h; CUDA:
// kernels/cuda/optimizer.h. train/optimizer.cpp and train/nonfinite.cpp keep the algorithm.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace swiattn::kernels {

// One AdamW step of parameter p with gradient g and moments m, v (one shape and dtype):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ((m / bias_correction1) / (sqrt(v / bias_correction2) + eps) + wd * p)
void adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr, double b1, double b2,
                double eps, double wd, double bias_correction1, double bias_correction2);

// (2) float64 on `device` (the parameters') = { sqrt(sum over grads and elements of g^2), the
// clip factor }: max_norm / norm when max_norm > 0, norm > max_norm and norm is finite, else 1.
// Undefined gradients are skipped; on CUDA nothing is read back.
Tensor grad_norm_and_clip_factor(const std::vector<Tensor>& grads, double max_norm, Device device);
// g *= norm_and_factor[1] (read on g's device; nothing done when the factor is 1).
void scale_by_clip_factor(const Tensor& g, const Tensor& norm_and_factor);

// counts[slot] += the number of NaN or infinite elements of x; counts int32 on x's device.
void count_nonfinite(const Tensor& x, const Tensor& counts, int64_t slot);
// counts[i] += the count of xs[i], for every i (all on counts' device; on CUDA in few launches).
void count_nonfinite_each(const std::vector<Tensor>& xs, const Tensor& counts);

}  // namespace swiattn::kernels
