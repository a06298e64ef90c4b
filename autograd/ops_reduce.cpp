// autograd/ops_reduce.cpp: sum and mean of all elements (kernels/reduce.h).
#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace swiattn {

// Shared by sum (c = 1) and mean (c = 1/n): y = c * sum_i x_i, and dx_i += c * dy.
static Var scaled_total(OpId op, const Var& x, double c) {
  const Tensor& X = x.value();
  check_float_any_device(op_name(op), X);
  const Tensor y = kernels::sum_scaled(X, c);  // a () tensor on X's device
  return make_op_result(op, y, {x}, [c, dx = GradSlot(x)](const Tensor& dy) {
    // y = c sum_i x_i  =>  dx_i += c dy
    kernels::sum_scaled_backward(c, dy, dx.buffer());
  });
}

Var sum(const Var& x) { return scaled_total(OpId::Sum, x, 1.0); }

Var mean(const Var& x) {
  const int64_t n = x.value().numel();
  if (n == 0) throw Error("mean: empty tensor of shape " + shape_str(x.shape()));
  return scaled_total(OpId::Mean, x, 1.0 / static_cast<double>(n));
}

}  // namespace swiattn
