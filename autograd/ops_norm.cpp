// autograd/ops_norm.cpp: embedding lookup, RMSNorm and RoPE.
#include "autograd/ops.h"
#include "kernels/cpu/norm.h"
#include "kernels/cuda/norm.h"

namespace swiattn {

Var embedding(const Var& weight, const Tensor& ids) {
  const Tensor& W = weight.value();
  check_float_any_device("embedding", W);
  check_ndim("embedding", W, 2, "(V, C)");
  if (ids.dtype() != DType::I32) shape_error("embedding", "ids must be int32", W, ids);
  const int64_t V = W.dim(0), C = W.dim(1), N = ids.numel();
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape, W.dtype(), W.device());
  if (W.device() == Device::CUDA) cuda::embedding_forward(ids, W, out);  // ids on either device
  else dispatch_float(W.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    cpu::embedding_forward<T>(N, V, C, ids.data<int32_t>(), W.data<T>(), out.data<T>());
  });
  return make_op_result(OpId::Embedding, out, {weight}, [=](const Tensor& dout) {
    // out[n] = W[ids[n]]  =>  dW[ids[n]] += dout[n]
    if (W.device() == Device::CUDA) return cuda::embedding_backward(ids, dout, weight.grad_buffer());
    dispatch_float(W.dtype(), "embedding", [&](auto zero) {
      using T = decltype(zero);
      cpu::embedding_backward<T>(N, C, ids.data<int32_t>(), dout.data<T>(), weight.grad_buffer().data<T>());
    });
  });
}

Var rms_norm(const Var& x, const Var& gain, double eps) {
  const Tensor& X = x.value();
  const Tensor& G = gain.value();
  check_float_any_device("rms_norm", X);
  check_float_any_device("rms_norm", G);
  check_same_device("rms_norm", X, G);
  check_same_dtype("rms_norm", X, G);
  if (G.ndim() != 1 || X.ndim() < 1 || X.dim(-1) != G.dim(0))
    shape_error("rms_norm", "gain must be (C) with C the last dim of x", X, G);
  const int64_t C = G.dim(0), N = X.numel() / C;
  const bool on_cuda = X.device() == Device::CUDA;
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  Tensor inv_rms = Tensor::empty({N}, on_cuda ? DType::F32 : X.dtype(), X.device());  // CUDA: float32
  if (on_cuda) cuda::rms_norm_forward(X, G, eps, y, inv_rms);
  else dispatch_float(X.dtype(), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    cpu::rms_norm_forward<T>(N, C, eps, X.data<T>(), G.data<T>(), y.data<T>(), inv_rms.data<T>());
  });
  return make_op_result(OpId::RmsNorm, y, {x, gain}, [=](const Tensor& dy) {
    // y = x r g with r = (mean(x^2) + eps)^(-1/2)  (see cpu::rms_norm_backward for the algebra)
    if (on_cuda)
      return cuda::rms_norm_backward(X, G, inv_rms, dy, x.requires_grad() ? x.grad_buffer() : Tensor(),
                                     gain.requires_grad() ? gain.grad_buffer() : Tensor());
    dispatch_float(X.dtype(), "rms_norm", [&](auto zero) {
      using T = decltype(zero);
      cpu::rms_norm_backward<T>(N, C, X.data<T>(), G.data<T>(), inv_rms.data<T>(), dy.data<T>(),
                                x.requires_grad() ? x.grad_buffer().data<T>() : nullptr,
                                gain.requires_grad() ? gain.grad_buffer().data<T>() : nullptr);
    });
  });
}

Var rope(const Var& x, double base, int64_t position_offset, const Tensor& row_positions) {
  const Tensor& X = x.value();
  check_float_any_device("rope", X);
  check_ndim("rope", X, 4, "(B, T, H, D)");
  if (X.dim(3) % 2 != 0) throw Error("rope: head dim must be even, got shape " + shape_str(X.shape()));
  const int64_t B = X.dim(0), T_ = X.dim(1), H = X.dim(2), D = X.dim(3);
  if (row_positions.defined() && (row_positions.dtype() != DType::I32 || row_positions.shape() != Shape{B}))
    shape_error("rope", "row_positions must be int32 (B) for x (B, T, H, D)", X, row_positions);
  if (row_positions.defined()) check_same_device("rope", X, row_positions);
  const int32_t* rows = row_positions.defined() && X.device() == Device::CPU ? row_positions.data<int32_t>() : nullptr;
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::rope_apply(X, base, position_offset, row_positions, y, false, false);
  else dispatch_float(X.dtype(), "rope", [&](auto zero) {
    using T = decltype(zero);
    cpu::rope_apply<T>(B, T_, H, D, base, position_offset, rows, X.data<T>(), y.data<T>(), false, false);
  });
  return make_op_result(OpId::Rope, y, {x}, [=](const Tensor& dy) {
    // y = R(p) x, a rotation per pair  =>  dx += R(p)^T dy = R(-p) dy
    if (X.device() == Device::CUDA)
      return cuda::rope_apply(dy, base, position_offset, row_positions, x.grad_buffer(), true, true);
    dispatch_float(X.dtype(), "rope", [&](auto zero) {
      using T = decltype(zero);
      cpu::rope_apply<T>(B, T_, H, D, base, position_offset, rows, dy.data<T>(), x.grad_buffer().data<T>(), true, true);
    });
  });
}

}  // namespace swiattn
