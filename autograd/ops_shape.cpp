// autograd/ops_shape.cpp: reshape (a view), transpose (a copy), stop-gradient, cast (a dtype
// conversion), head splitting.
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce.h"

namespace swiattn {

Var reshape(const Var& x, const Shape& shape) {
  const Tensor& X = x.value();
  Tensor y = X.reshape(shape);  // shares storage
  return make_op_result(OpId::Reshape, y, {x}, [=](const Tensor& dy) {
    // y = x viewed as `shape`  =>  dx += dy viewed as x's shape
    if (X.device() == Device::CUDA) return cuda::scale_backward(1.0, dy, x.grad_buffer());
    dispatch_float(X.dtype(), "reshape", [&](auto zero) {
      using T = decltype(zero);
      cpu::scale_backward<T>(X.numel(), T(1), dy.data<T>(), x.grad_buffer().data<T>());
    });
  });
}

Var transpose(const Var& x, int dim0, int dim1) {
  const Tensor& X = x.value();
  check_float_any_device("transpose", X);
  const int n = X.ndim();
  const int d0 = dim0 < 0 ? dim0 + n : dim0, d1 = dim1 < 0 ? dim1 + n : dim1;
  if (d0 < 0 || d0 >= n || d1 < 0 || d1 >= n)
    throw Error("transpose: dims " + std::to_string(dim0) + ", " + std::to_string(dim1) +
                " out of range for shape " + shape_str(X.shape()));
  Shape out_shape = X.shape();
  std::swap(out_shape[d0], out_shape[d1]);
  Tensor y = Tensor::empty(out_shape, X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::transpose_copy(X.shape(), d0, d1, X, y, false);
  else dispatch_float(X.dtype(), "transpose", [&](auto zero) {
    using T = decltype(zero);
    cpu::transpose_copy<T>(X.shape(), d0, d1, X.data<T>(), y.data<T>(), false);
  });
  return make_op_result(OpId::Transpose, y, {x}, [=](const Tensor& dy) {
    // y = x with dims d0, d1 swapped  =>  dx += dy with the same dims swapped back
    if (X.device() == Device::CUDA) return cuda::transpose_copy(out_shape, d0, d1, dy, x.grad_buffer(), true);
    dispatch_float(X.dtype(), "transpose", [&](auto zero) {
      using T = decltype(zero);
      cpu::transpose_copy<T>(out_shape, d0, d1, dy.data<T>(), x.grad_buffer().data<T>(), true);
    });
  });
}

Var stop_gradient(const Var& x) {
  // Same value; no inputs and no backward, so the graph ends here: d(stop_gradient(x))/dx = 0.
  return make_op_result(OpId::StopGradient, x.value(), {}, nullptr);
}

// dst += src, both of dst's dtype and device. The CPU holds bfloat16 but does not compute on it:
// there the sum is formed in double and rounded once.
static void add_into(Tensor dst, const Tensor& src) {  // dst: a handle, written through
  if (dst.device() == Device::CUDA) return cuda::scale_backward(1.0, src, dst);
  if (dst.dtype() == DType::BF16) {
    const Tensor sum = dst.to(DType::F64);
    cpu::scale_backward<double>(sum.numel(), 1.0, src.to(DType::F64).data<double>(), sum.data<double>());
    return dst.copy_from(sum);
  }
  dispatch_float(dst.dtype(), "cast", [&](auto zero) {
    using T = decltype(zero);
    cpu::scale_backward<T>(dst.numel(), T(1), src.data<T>(), dst.data<T>());
  });
}

Var cast(const Var& x, DType dtype) {
  const Tensor& X = x.value();
  for (DType d : {X.dtype(), dtype})
    if (d == DType::I32 || (X.device() == Device::CUDA && d == DType::F64))
      throw Error(std::string("cast: ") + dtype_name(X.dtype()) + " -> " + dtype_name(dtype) + " on " +
                  device_name(X.device()) + " is not supported (float32, bfloat16" +
                  (X.device() == Device::CPU ? ", float64" : "") + "), tensor of shape " + shape_str(X.shape()));
  Tensor y = X.to(dtype);  // a copy, rounded once
  return make_op_result(OpId::Cast, y, {x}, [=](const Tensor& dy) {
    // y = round_dtype(x)  =>  dx += dy, converted to x's dtype (the rounding's derivative is 1)
    add_into(x.grad_buffer(), dy.dtype() == X.dtype() ? dy : dy.to(X.dtype()));
  });
}

Var split_heads(const Var& x, int64_t heads) {
  const Tensor& X = x.value();
  check_ndim("split_heads", X, 3, "(B, T, H * D)");
  if (heads < 1 || X.dim(2) % heads != 0)
    throw Error("split_heads: " + std::to_string(heads) + " heads do not divide the last dim of " +
                shape_str(X.shape()));
  return reshape(x, {X.dim(0), X.dim(1), heads, X.dim(2) / heads});
}

Var merge_heads(const Var& x) {
  const Tensor& X = x.value();
  check_ndim("merge_heads", X, 4, "(B, T, H, D)");
  return reshape(x, {X.dim(0), X.dim(1), X.dim(2) * X.dim(3)});
}

}  // namespace swiattn
