// kernels/cuda/reduce.h: reductions and layout changes on CUDA (kernels/cpu/reduce.h).
#pragma once

#include "kernels/cuda/api.h"

namespace swiattn::cuda {

// y () = c * sum of all elements of x, accumulated in double in a fixed order (deterministic:
// per-block partial sums, then one block adds them). x and y float32 or bfloat16, each its own.
SWIATTN_CUDA_FUNCTION(void sum_scaled(const Tensor& x, double c, const Tensor& y))
// The backward of sum_scaled: dx_i += c * dy, dy a () tensor on the device (read there, so
// the host does not wait for it).
SWIATTN_CUDA_FUNCTION(void sum_scaled_backward(double c, const Tensor& dy, const Tensor& dx))

// out = x with dims d0 and d1 swapped (contiguous, at most 8 dims); with accumulate, out += it
// (the backward). Each output element has exactly one source, so no atomics.
SWIATTN_CUDA_FUNCTION(void transpose_copy(const Shape& shape, int d0, int d1, const Tensor& x,
                                          const Tensor& out, bool accumulate))

}  // namespace swiattn::cuda
