// kernels/cuda/reduce.h: reductions and layout changes on CUDA (kernels/cpu/reduce.h).
#pragma once

#include "tensor/cuda/api.h"

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

// out[n] (int32) = the index of the maximum of row n of x (N, V), float32 or bfloat16: the lowest
// index among equal maxima (the CPU's argmax in model/sampling.cpp), or -1 when the row holds a
// NaN. One block per row; comparisons only, so the result is exact.
SWIATTN_CUDA_FUNCTION(void argmax_rows(const Tensor& x, const Tensor& out))

}  // namespace swiattn::cuda
