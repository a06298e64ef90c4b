// kernels/softmax.h: the backend-neutral entries of softmax and the fused cross-entropy
// (kernels/backend.h). CPU: kernels/cpu/softmax.h; CUDA: kernels/cuda/softmax.h.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace swiattn::kernels {

// y[n, :] = softmax(x[n, :]) over the last dim;  dx += y (dy - sum(y dy))
void softmax_forward(const Tensor& x, const Tensor& y);
void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx);

// The forward of cross-entropy on logits (N, V) and int32 targets (N): what the loss is and what
// its backward reads.
struct CrossEntropyForward {
  Tensor loss;        // () the mean over counted rows, on the logits' device (logits' dtype)
  Tensor nll;         // (N) lse_n - x_n,y_n (0 for ignored rows), statistics_dtype(logits)
  Tensor lse;         // (N) log-sum-exp of each row, statistics_dtype(logits)
  double inv_count;   // 1 / counted rows (0 when none counts)
};
// Rows whose target is ignore_index do not count; a target outside [0, V) otherwise throws.
CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets, int32_t ignore_index);
// dlogits_n += dloss * inv_count * (softmax(x_n) - onehot(y_n)) for the counted rows.
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int32_t ignore_index, const Tensor& lse,
                            const Tensor& dloss, double inv_count, const Tensor& dlogits);

}  // namespace swiattn::kernels
