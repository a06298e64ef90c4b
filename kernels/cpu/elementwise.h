// kernels/cpu/elementwise.h: pointwise arithmetic, forward and backward side by side.
//
// Backward kernels ADD into the gradients they are given (dx += ...), never overwrite. A null
// gradient pointer means "that input needs no gradient".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace swiattn::cpu {

// ---- binary ops with numpy broadcasting ----
// Shapes are aligned at their last dimension; a dimension of size 1, or a missing leading one,
// repeats. E.g. (B, T, C) with (C), (B, T, C) with (B, T, 1), (B, T, C) with () (a scalar).
struct BroadcastPlan {
  Shape out;                     // the broadcast result shape
  std::vector<int64_t> a_stride;  // per output dim: element stride in a, 0 where a repeats
  std::vector<int64_t> b_stride;  // same for b
  bool same_shape = false;        // a, b and out all equal: the fast, parallel path
};
// Throws Error naming `op` and both shapes when they cannot broadcast.
BroadcastPlan plan_broadcast(const char* op, const Shape& a, const Shape& b);

enum class BinaryKind { Add, Sub, Mul };

template <class T>
void binary_forward(BinaryKind kind, const BroadcastPlan& plan, const T* a, const T* b, T* out);
// out = a + b:  da += dout,     db += dout
// out = a - b:  da += dout,     db -= dout
// out = a * b:  da += dout * b, db += dout * a
// (summed over the positions where an input was repeated)
template <class T>
void binary_backward(BinaryKind kind, const BroadcastPlan& plan, const T* a, const T* b,
                     const T* dout, T* da, T* db);

// ---- unary ops on n elements ----
template <class T> void scale_forward(int64_t n, T c, const T* x, T* y);
template <class T> void scale_backward(int64_t n, T c, const T* dy, T* dx);

template <class T> void sigmoid_forward(int64_t n, const T* x, T* y);
template <class T> void sigmoid_backward(int64_t n, const T* y, const T* dy, T* dx);

template <class T> void silu_forward(int64_t n, const T* x, T* y);
template <class T> void silu_backward(int64_t n, const T* x, const T* dy, T* dx);

template <class T> void softplus_forward(int64_t n, const T* x, T* y);
template <class T> void softplus_backward(int64_t n, const T* x, const T* dy, T* dx);

// SwiGLU's gated product: y = silu(a) * b (the MLP's W1 u and W3 u).
template <class T> void swiglu_forward(int64_t n, const T* a, const T* b, T* y);
template <class T>
void swiglu_backward(int64_t n, const T* a, const T* b, const T* dy, T* da, T* db);

// Numerically stable scalar helpers, shared with the other kernels.
template <class T> inline T sigmoid_scalar(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T> inline T softplus_scalar(T x) {  // log(1 + e^x)
  return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}

}  // namespace swiattn::cpu
