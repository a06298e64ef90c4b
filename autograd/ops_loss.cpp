// autograd/ops_loss.cpp: softmax and the fused cross-entropy.
#include "autograd/ops.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/softmax.h"

namespace swiattn {

Var softmax(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("softmax", X);
  if (X.ndim() < 1) throw Error("softmax: needs at least one dim, got a scalar");
  const int64_t C = X.dim(-1), N = C ? X.numel() / C : 0;
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::softmax_forward(X, y);
  else dispatch_float(X.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    cpu::softmax_forward<T>(N, C, X.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Softmax, y, {x}, [=](const Tensor& dy) {
    // y = softmax(x)  =>  dx += y (dy - sum(y dy))
    if (X.device() == Device::CUDA) return cuda::softmax_backward(y, dy, x.grad_buffer());
    dispatch_float(X.dtype(), "softmax", [&](auto zero) {
      using T = decltype(zero);
      cpu::softmax_backward<T>(N, C, y.data<T>(), dy.data<T>(), x.grad_buffer().data<T>());
    });
  });
}

Var cross_entropy(const Var& logits, const Tensor& targets, int32_t ignore_index,
                  Tensor* per_token_nll) {
  const Tensor& X = logits.value();
  check_float_any_device("cross_entropy", X);
  check_ndim("cross_entropy", X, 2, "(N, V) of logits");
  if (targets.dtype() != DType::I32 || targets.ndim() != 1 || targets.dim(0) != X.dim(0))
    shape_error("cross_entropy", "targets must be int32 (N) for logits (N, V)", X, targets);
  const int64_t N = X.dim(0), V = X.dim(1);
  const bool on_cuda = X.device() == Device::CUDA;
  // CUDA keeps nll and lse in float32 (and the loss on the device: a () tensor).
  Tensor nll = Tensor::empty({N}, on_cuda ? DType::F32 : X.dtype(), X.device());
  Tensor lse = Tensor::empty({N}, on_cuda ? DType::F32 : X.dtype(), X.device());
  int64_t counted = 0;
  double total = 0.0;  // CPU: the sum of the per-row losses, on the host
  if (on_cuda) {
    counted = cuda::cross_entropy_forward(X, targets, ignore_index, nll, lse);  // targets on either device
  } else {
    counted = dispatch_float(X.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      return cpu::cross_entropy_forward<T>(N, V, X.data<T>(), targets.data<int32_t>(), ignore_index,
                                           nll.data<T>(), lse.data<T>());
    });
    for (int64_t n = 0; n < N; ++n) total += nll.at(n);
  }
  const double inv_count = counted ? 1.0 / static_cast<double>(counted) : 0.0;
  if (per_token_nll) *per_token_nll = nll.clone();
  Tensor loss;
  if (on_cuda) {  // the mean stays on the device
    loss = Tensor::empty({}, X.dtype(), Device::CUDA);
    cuda::sum_scaled(nll, inv_count, loss);
  } else {
    loss = Tensor::scalar(total * inv_count, X.dtype());
  }
  return make_op_result(OpId::CrossEntropy, loss, {logits}, [=](const Tensor& dloss) {
    // loss = (1/count) sum_n (lse_n - x_n,y_n)  =>  dx_n += dloss/count (softmax(x_n) - onehot(y_n))
    if (on_cuda)
      return cuda::cross_entropy_backward(X, targets, ignore_index, lse, dloss, inv_count, logits.grad_buffer());
    dispatch_float(X.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      Tensor dnll = Tensor::full({N}, dloss.item() * inv_count, X.dtype());
      cpu::cross_entropy_backward<T>(N, V, X.data<T>(), targets.data<int32_t>(), ignore_index,
                                     lse.data<T>(), dnll.data<T>(), logits.grad_buffer().data<T>());
    });
  });
}

}  // namespace swiattn
