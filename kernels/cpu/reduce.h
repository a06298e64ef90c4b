// kernels/cpu/reduce.h: reductions and layout changes.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace swiattn::cpu {

// Sum of n elements, accumulated in double in fixed-size chunks: the result does not depend on
// the number of OpenMP threads.
template <class T> double sum_all(int64_t n, const T* x);
// The backward of c * sum_all: dx_i += g (g = c * dy, rounded to T once).
template <class T> void add_constant(int64_t n, T g, T* dx);

// Generic transpose of two dimensions of a contiguous row-major tensor into `out`, whose shape
// is `shape` with dims d0 and d1 swapped. With accumulate, out += transposed x (the backward).
template <class T>
void transpose_copy(const Shape& shape, int d0, int d1, const T* x, T* out, bool accumulate);

}  // namespace swiattn::cpu
