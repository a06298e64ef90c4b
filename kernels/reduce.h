// kernels/reduce.h: the backend-neutral entries of the reductions and layout changes
// (kernels/backend.h). CPU: kernels/cpu/reduce.h; CUDA: kernels/cuda/reduce.h.
#pragma once

#include "kernels/backend.h"

namespace swiattn::kernels {

// y () = c * sum of all elements of x, accumulated in double (a () tensor on x's device: on CUDA
// the total stays there); dx_i += c * dy.
Tensor sum_scaled(const Tensor& x, double c);
void sum_scaled_backward(double c, const Tensor& dy, const Tensor& dx);

// out = x (of `shape`) with dims d0 and d1 swapped; with accumulate, out += it (the backward).
void transpose_copy(const Shape& shape, int d0, int d1, const Tensor& x, const Tensor& out, bool accumulate);

}  // namespace swiattn::kernels
