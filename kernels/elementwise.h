// kernels/elementwise.h: the backend-neutral entries of the pointwise ops (kernels/backend.h):
// broadcasting add / sub / mul, scale, sigmoid, SiLU, softplus and the SwiGLU product, forward
// and backward side by side. CPU: kernels/cpu/elementwise.h; CUDA: kernels/cuda/elementwise.h.
// All tensors on one device; outputs are written through, gradients added into (+=).
#pragma once

#include "kernels/backend.h"
#include "kernels/cpu/elementwise.h"

namespace swiattn::kernels {

using cpu::BinaryKind;
using cpu::BroadcastPlan;
using cpu::plan_broadcast;

// out = a (op) b with the broadcasting plan of plan_broadcast(a, b).
void binary_forward(BinaryKind kind, const BroadcastPlan& plan, const Tensor& a, const Tensor& b,
                    const Tensor& out);
// add: da += dout, db += dout;  sub: db -= dout;  mul: da += dout b, db += dout a. Only mul
// reads a and b: add and sub may pass undefined tensors for them.
void binary_backward(BinaryKind kind, const BroadcastPlan& plan, const Tensor& a, const Tensor& b,
                     const Tensor& dout, const Tensor& da, const Tensor& db);

// y = c x;  dx += c dy
void scale_forward(double c, const Tensor& x, const Tensor& y);
void scale_backward(double c, const Tensor& dy, const Tensor& dx);
// dst += src, both of dst's dtype and device (a gradient arriving in its input's dtype). The CPU
// holds bfloat16 but does not compute on it: there the sum is formed in double and rounded once.
void add_into(const Tensor& dst, const Tensor& src);

// y = sigmoid(x);  dx += dy y (1 - y)  (the CPU reads y, CUDA recomputes it from x)
void sigmoid_forward(const Tensor& x, const Tensor& y);
void sigmoid_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);

// y = x sigmoid(x);  dx += dy (s + x s (1 - s))
void silu_forward(const Tensor& x, const Tensor& y);
void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx);

// y = log(1 + e^x);  dx += dy sigmoid(x)
void softplus_forward(const Tensor& x, const Tensor& y);
void softplus_backward(const Tensor& x, const Tensor& dy, const Tensor& dx);

// y = silu(a) b;  da += dy b silu'(a),  db += dy silu(a)
void swiglu_forward(const Tensor& a, const Tensor& b, const Tensor& y);
void swiglu_backward(const Tensor& a, const Tensor& b, const Tensor& dy, const Tensor& da, const Tensor& db);

}  // namespace swiattn::kernels
