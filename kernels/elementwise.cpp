// kernels/elementwise.cpp: the device choice of the pointwise ops (kernels/elementwise.h): CUDA
// tensors go to kernels/cuda/elementwise.h, CPU tensors to the float / double loops of
// kernels/cpu/elementwise.h.
#include "kernels/elementwise.h"

#include "kernels/cuda/elementwise.h"

namespace swiattn::kernels {

void binary_forward(BinaryKind kind, const BroadcastPlan& plan, const Tensor& a, const Tensor& b,
                    const Tensor& out) {
  if (on_cuda(a)) return cuda::binary_forward(kind, plan, a, b, out);
  dispatch_float(a.dtype(), "binary_forward", [&](auto zero) {
    using T = decltype(zero);
    cpu::binary_forward<T>(kind, plan, a.data<T>(), b.data<T>(), out.data<T>());
  });
}

void binary_backward(BinaryKind kind, const BroadcastPlan& plan, const Tensor& a, const Tensor& b,
                     const Tensor& dout, const Tensor& da, const Tensor& db) {
  if (on_cuda(dout)) return cuda::binary_backward(kind, plan, a, b, dout, da, db);
  dispatch_float(dout.dtype(), "binary_backward", [&](auto zero) {
    using T = decltype(zero);
    cpu::binary_backward<T>(kind, plan, data_or_null<T>(a), data_or_null<T>(b), dout.data<T>(), data_or_null<T>(da),
                            data_or_null<T>(db));
  });
}

void scale_forward(double c, const Tensor& x, const Tensor& y) {
  if (on_cuda(x)) return cuda::scale_forward(c, x, y);
  dispatch_float(x.dtype(), "scale", [&](auto zero) {
    using T = decltype(zero);
    cpu::scale_forward<T>(x.numel(), T(c), x.data<T>(), y.data<T>());
  });
}

void scale_backward(double c, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(dx)) return cuda::scale_backward(c, dy, dx);
  dispatch_float(dx.dtype(), "scale", [&](auto zero) {
    using T = decltype(zero);
    cpu::scale_backward<T>(dx.numel(), T(c), dy.data<T>(), dx.data<T>());
  });
}

void add_into(const Tensor& dst, const Tensor& src) {
  if (on_cuda(dst) || dst.dtype() != DType::BF16) return scale_backward(1.0, src, dst);
  const Tensor sum = dst.to(DType::F64);
  cpu::scale_backward<double>(sum.numel(), 1.0, src.to(DType::F64).data<double>(), sum.data<double>());
  Tensor handle = dst;  // written through
  handle.copy_from(sum);
}

void sigmoid_forward(const Tensor& x, const Tensor& y) {
  if (on_cuda(x)) return cuda::sigmoid_forward(x, y);
  dispatch_float(x.dtype(), "sigmoid", [&](auto zero) {
    using T = decltype(zero);
    cpu::sigmoid_forward<T>(x.numel(), x.data<T>(), y.data<T>());
  });
}

void sigmoid_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(x)) return cuda::sigmoid_backward(x, dy, dx);  // from x (kernels/cuda/elementwise.h)
  dispatch_float(x.dtype(), "sigmoid", [&](auto zero) {
    using T = decltype(zero);
    cpu::sigmoid_backward<T>(x.numel(), y.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

void silu_forward(const Tensor& x, const Tensor& y) {
  if (on_cuda(x)) return cuda::silu_forward(x, y);
  dispatch_float(x.dtype(), "silu", [&](auto zero) {
    using T = decltype(zero);
    cpu::silu_forward<T>(x.numel(), x.data<T>(), y.data<T>());
  });
}

void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(x)) return cuda::silu_backward(x, dy, dx);
  dispatch_float(x.dtype(), "silu", [&](auto zero) {
    using T = decltype(zero);
    cpu::silu_backward<T>(x.numel(), x.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

void softplus_forward(const Tensor& x, const Tensor& y) {
  if (on_cuda(x)) return cuda::softplus_forward(x, y);
  dispatch_float(x.dtype(), "softplus", [&](auto zero) {
    using T = decltype(zero);
    cpu::softplus_forward<T>(x.numel(), x.data<T>(), y.data<T>());
  });
}

void softplus_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(x)) return cuda::softplus_backward(x, dy, dx);
  dispatch_float(x.dtype(), "softplus", [&](auto zero) {
    using T = decltype(zero);
    cpu::softplus_backward<T>(x.numel(), x.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

void swiglu_forward(const Tensor& a, const Tensor& b, const Tensor& y) {
  if (on_cuda(a)) return cuda::swiglu_forward(a, b, y);
  dispatch_float(a.dtype(), "swiglu", [&](auto zero) {
    using T = decltype(zero);
    cpu::swiglu_forward<T>(a.numel(), a.data<T>(), b.data<T>(), y.data<T>());
  });
}

void swiglu_backward(const Tensor& a, const Tensor& b, const Tensor& dy, const Tensor& da, const Tensor& db) {
  if (on_cuda(a)) return cuda::swiglu_backward(a, b, dy, da, db);
  dispatch_float(a.dtype(), "swiglu", [&](auto zero) {
    using T = decltype(zero);
    cpu::swiglu_backward<T>(a.numel(), a.data<T>(), b.data<T>(), dy.data<T>(), data_or_null<T>(da),
                            data_or_null<T>(db));
  });
}

}  // namespace swiattn::kernels
