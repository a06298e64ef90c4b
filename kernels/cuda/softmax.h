// kernels/cuda/softmax.h: softmax over the last dim and the fused cross-entropy on CUDA
// (kernels/cpu/softmax.h). One block per row.
#pragma once

#include <cstdint>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// y[n, :] = softmax(x[n, :]) over the last dim C.
SWIATTN_CUDA_FUNCTION(void softmax_forward(const Tensor& x, const Tensor& y))
// y = softmax(x)  =>  dx += y (dy - sum(y dy))
SWIATTN_CUDA_FUNCTION(void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx))

// logits (N, V), targets (N) int32 on either device (checked on the host, as on the CPU:
// a target outside [0, V) that is not ignore_index throws). Writes nll and lse (N, float32;
// nll = 0 for ignored rows), lse accumulated in double; returns the number of counted rows.
SWIATTN_CUDA_FUNCTION(int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                                    int32_t ignore_index, const Tensor& nll,
                                                    const Tensor& lse))
// dlogits[n, :] += dloss * scale * (softmax(logits[n, :]) - onehot(target[n])) for counted rows;
// dloss is the () loss gradient on the device, scale = 1 / counted.
SWIATTN_CUDA_FUNCTION(void cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                                  int32_t ignore_index, const Tensor& lse,
                                                  const Tensor& dloss, double scale,
                                                  const Tensor& dlogits))

}  // namespace swiattn::cuda
