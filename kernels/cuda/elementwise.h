// kernels/cuda/elementwise.h: pointwise arithmetic on CUDA, forward and backward side by side.
// The same functions as kernels/cpu/elementwise.h (same formulas, same broadcasting plan), on
// CUDA tensors of float32 or bfloat16; see tensor/cuda/api.h for the conventions.
#pragma once

#include "kernels/cpu/elementwise.h"
#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// ---- binary ops with numpy broadcasting (the plan of cpu::plan_broadcast, at most 8 dims) ----
SWIATTN_CUDA_FUNCTION(void binary_forward(cpu::BinaryKind kind, const cpu::BroadcastPlan& plan,
                                          const Tensor& a, const Tensor& b, const Tensor& out))
// out = a + b: da += dout, db += dout;  a - b: db -= dout;  a * b: da += dout b, db += dout a,
// summed over the positions where an input repeats (in a fixed order, in double: no atomics,
// the same bits on every run). Only mul reads a and b (add, sub: they may be undefined).
SWIATTN_CUDA_FUNCTION(void binary_backward(cpu::BinaryKind kind, const cpu::BroadcastPlan& plan,
                                           const Tensor& a, const Tensor& b, const Tensor& dout,
                                           const Tensor& da, const Tensor& db))

// ---- unary ops ----
SWIATTN_CUDA_FUNCTION(void scale_forward(double c, const Tensor& x, const Tensor& y))
SWIATTN_CUDA_FUNCTION(void scale_backward(double c, const Tensor& dy, const Tensor& dx))

SWIATTN_CUDA_FUNCTION(void sigmoid_forward(const Tensor& x, const Tensor& y))
// The backward reads x, not the stored y: dx += dy s (1 - s) with s = sigmoid(x) recomputed in
// float32. Mathematically the CPU's dy y (1 - y); but with bfloat16 storage 1 - y keeps no
// correct bits where y is near 1 (measured: 1.3e-2 relative error from y, 1.6e-3 from x).
SWIATTN_CUDA_FUNCTION(void sigmoid_backward(const Tensor& x, const Tensor& dy, const Tensor& dx))

SWIATTN_CUDA_FUNCTION(void silu_forward(const Tensor& x, const Tensor& y))
SWIATTN_CUDA_FUNCTION(void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx))

SWIATTN_CUDA_FUNCTION(void softplus_forward(const Tensor& x, const Tensor& y))
SWIATTN_CUDA_FUNCTION(void softplus_backward(const Tensor& x, const Tensor& dy, const Tensor& dx))

SWIATTN_CUDA_FUNCTION(void swiglu_forward(const Tensor& a, const Tensor& b, const Tensor& y))
SWIATTN_CUDA_FUNCTION(void swiglu_backward(const Tensor& a, const Tensor& b, const Tensor& dy,
                                           const Tensor& da, const Tensor& db))

}  // namespace swiattn::cuda
