// autograd/ops_loss.cpp: softmax and the fused cross-entropy (kernels/softmax.h).
#include "autograd/ops.h"
#include "kernels/softmax.h"

namespace swiattn {

Var softmax(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("softmax", X);
  if (X.ndim() < 1) throw Error("softmax: needs at least one dim, got a scalar");
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::softmax_forward(X, y);
  return make_op_result(OpId::Softmax, y, {x}, [y, dx = GradSlot(x)](const Tensor& dy) {
    // y = softmax(x)  =>  dx += y (dy - sum(y dy))
    kernels::softmax_backward(y, dy, dx.buffer());
  });
}

Var cross_entropy(const Var& logits, const Tensor& targets, int32_t ignore_index,
                  Tensor* per_token_nll) {
  const Tensor& X = logits.value();
  check_float_any_device("cross_entropy", X);
  check_ndim("cross_entropy", X, 2, "(N, V) of logits");
  if (targets.dtype() != DType::I32 || targets.ndim() != 1 || targets.dim(0) != X.dim(0))
    shape_error("cross_entropy", "targets must be int32 (N) for logits (N, V)", X, targets);
  // loss = (1/count) sum_n nll_n, nll_n = lse_n - x_n,y_n over the rows that count (CUDA keeps
  // nll, lse in float32 and the loss on the device).
  const kernels::CrossEntropyForward f = kernels::cross_entropy_forward(X, targets, ignore_index);
  if (per_token_nll) *per_token_nll = f.nll.clone();
  const Tensor lse = f.lse;
  const double inv_count = f.inv_count;
  return make_op_result(OpId::CrossEntropy, f.loss, {logits}, [=, dx = GradSlot(logits)](const Tensor& dloss) {
    // loss = (1/count) sum_n (lse_n - x_n,y_n)  =>  dx_n += dloss/count (softmax(x_n) - onehot(y_n))
    kernels::cross_entropy_backward(X, targets, ignore_index, lse, dloss, inv_count, dx.buffer());
  });
}

}  // namespace swiattn
