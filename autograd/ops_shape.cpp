// autograd/ops_shape.cpp: reshape (a view), transpose (a copy), stop-gradient, cast (a dtype
// conversion), head splitting.
#include "autograd/ops.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace swiattn {

Var reshape(const Var& x, const Shape& shape) {
  const Tensor& X = x.value();
  Tensor y = X.reshape(shape);  // shares storage
  return make_op_result(OpId::Reshape, y, {x}, [dx = GradSlot(x)](const Tensor& dy) {
    // y = x viewed as `shape`  =>  dx += dy viewed as x's shape
    kernels::scale_backward(1.0, dy, dx.buffer());
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
  kernels::transpose_copy(X.shape(), d0, d1, X, y, false);
  return make_op_result(OpId::Transpose, y, {x}, [=, dx = GradSlot(x)](const Tensor& dy) {
    // y = x with dims d0, d1 swapped  =>  dx += dy with the same dims swapped back
    kernels::transpose_copy(out_shape, d0, d1, dy, dx.buffer(), true);
  });
}

Var stop_gradient(const Var& x) {
  // Same value; no inputs and no backward, so the graph ends here: d(stop_gradient(x))/dx = 0.
  return make_op_result(OpId::StopGradient, x.value(), {}, nullptr);
}

Var cast(const Var& x, DType dtype) {
  const Tensor& X = x.value();
  for (DType d : {X.dtype(), dtype})
    if (!kernels::holds_float_dtype(X.device(), d))
      throw Error(std::string("cast: ") + dtype_name(X.dtype()) + " -> " + dtype_name(dtype) + " on " +
                  device_name(X.device()) + " is not supported (float32, bfloat16" +
                  (kernels::holds_float_dtype(X.device(), DType::F64) ? ", float64" : "") + "), tensor of shape " +
                  shape_str(X.shape()));
  Tensor y = X.to(dtype);  // a copy, rounded once
  const DType from = X.dtype();  // the closure keeps x's dtype, not x: the input can be freed
  return make_op_result(OpId::Cast, y, {x}, [from, dx = GradSlot(x)](const Tensor& dy) {
    // y = round_dtype(x)  =>  dx += dy, converted to x's dtype (the rounding's derivative is 1)
    kernels::add_into(dx.buffer(), dy.dtype() == from ? dy : dy.to(from));
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
