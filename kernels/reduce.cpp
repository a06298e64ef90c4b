// kernels/reduce.cpp: the device choice of sum and transpose (kernels/reduce.h): kernels/cuda/
// reduce.h for CUDA tensors, kernels/cpu/reduce.h for CPU ones.
#include "kernels/reduce.h"

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/reduce.h"

namespace swiattn::kernels {

Tensor sum_scaled(const Tensor& x, double c) {
  if (on_cuda(x)) {
    Tensor y = Tensor::empty({}, x.dtype(), Device::CUDA);
    cuda::sum_scaled(x, c, y);
    return y;
  }
  const double total = dispatch_float(x.dtype(), "sum", [&](auto zero) {
    using T = decltype(zero);
    return cpu::sum_all<T>(x.numel(), x.data<T>());
  });
  return Tensor::scalar(c * total, x.dtype());
}

void sum_scaled_backward(double c, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(dx)) return cuda::sum_scaled_backward(c, dy, dx);
  dispatch_float(dx.dtype(), "sum", [&](auto zero) {
    using T = decltype(zero);
    cpu::add_constant<T>(dx.numel(), static_cast<T>(c * dy.item()), dx.data<T>());
  });
}

void transpose_copy(const Shape& shape, int d0, int d1, const Tensor& x, const Tensor& out, bool accumulate) {
  if (on_cuda(x)) return cuda::transpose_copy(shape, d0, d1, x, out, accumulate);
  dispatch_float(x.dtype(), "transpose", [&](auto zero) {
    using T = decltype(zero);
    cpu::transpose_copy<T>(shape, d0, d1, x.data<T>(), out.data<T>(), accumulate);
  });
}

}  // namespace swiattn::kernels
