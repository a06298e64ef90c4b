// autograd/ops_reduce.cpp: sum and mean of all elements.
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/reduce.h"

namespace swiattn {

// Shared by sum (c = 1) and mean (c = 1/n): y = c * sum_i x_i, and dx_i += c * dy.
static Var scaled_total(OpId op, const Var& x, double c) {
  const Tensor& X = x.value();
  check_float_any_device(op_name(op), X);
  Tensor y;
  if (X.device() == Device::CUDA) {  // the total stays on the device: a () CUDA tensor
    y = Tensor::empty({}, X.dtype(), Device::CUDA);
    cuda::sum_scaled(X, c, y);
  } else {
    const double total = dispatch_float(X.dtype(), op_name(op), [&](auto zero) {
      using T = decltype(zero);
      return cpu::sum_all<T>(X.numel(), X.data<T>());
    });
    y = Tensor::scalar(c * total, X.dtype());
  }
  return make_op_result(op, y, {x}, [=](const Tensor& dy) {
    // y = c sum_i x_i  =>  dx_i += c dy
    if (X.device() == Device::CUDA) return cuda::sum_scaled_backward(c, dy, x.grad_buffer());
    dispatch_float(X.dtype(), op_name(op), [&](auto zero) {
      using T = decltype(zero);
      Tensor& dx = x.grad_buffer();
      const T g = static_cast<T>(c * dy.item());
      T* p = dx.data<T>();
      for (int64_t i = 0, n = dx.numel(); i < n; ++i) p[i] += g;
    });
  });
}

Var sum(const Var& x) { return scaled_total(OpId::Sum, x, 1.0); }

Var mean(const Var& x) {
  const int64_t n = x.value().numel();
  if (n == 0) throw Error("mean: empty tensor of shape " + shape_str(x.shape()));
  return scaled_total(OpId::Mean, x, 1.0 / static_cast<double>(n));
}

}  // namespace swiattn
