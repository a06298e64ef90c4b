// autograd/ops_norm.cpp: embedding lookup, RMSNorm and RoPE. The arithmetic is behind the
// backend-neutral entries of kernels/norm.h (CPU: kernels/cpu/norm.h, CUDA: kernels/cuda/norm.h).
#include "autograd/ops.h"
#include "kernels/norm.h"

namespace swiattn {

Var embedding(const Var& weight, const Tensor& ids) {
  const Tensor& W = weight.value();
  check_float_any_device("embedding", W);
  check_ndim("embedding", W, 2, "(V, C)");
  if (ids.dtype() != DType::I32) shape_error("embedding", "ids must be int32", W, ids);
  Shape out_shape = ids.shape();
  out_shape.push_back(W.dim(1));
  Tensor out = Tensor::empty(out_shape, W.dtype(), W.device());
  kernels::embedding_forward(ids, W, out);  // CUDA weights: ids on either device
  return make_op_result(OpId::Embedding, out, {weight}, [ids, dW = GradSlot(weight)](const Tensor& dout) {
    // out[n] = W[ids[n]]  =>  dW[ids[n]] += dout[n]
    kernels::embedding_backward(ids, dout, dW.buffer());
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
  const int64_t N = X.numel() / G.dim(0);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  Tensor inv_rms = Tensor::empty({N}, kernels::statistics_dtype(X), X.device());
  kernels::rms_norm_forward(X, G, eps, y, inv_rms);
  return make_op_result(OpId::RmsNorm, y, {x, gain},
                        [X, G, inv_rms, dx = GradSlot(x), dg = GradSlot(gain)](const Tensor& dy) {
    // y = x r g with r = (mean(x^2) + eps)^(-1/2)  (see cpu::rms_norm_backward for the algebra)
    kernels::rms_norm_backward(X, G, inv_rms, dy, dx.if_required(), dg.if_required());
  });
}

Var rope(const Var& x, double base, int64_t position_offset, const Tensor& row_positions) {
  const Tensor& X = x.value();
  check_float_any_device("rope", X);
  check_ndim("rope", X, 4, "(B, T, H, D)");
  if (X.dim(3) % 2 != 0) throw Error("rope: head dim must be even, got shape " + shape_str(X.shape()));
  if (row_positions.defined() && (row_positions.dtype() != DType::I32 || row_positions.shape() != Shape{X.dim(0)}))
    shape_error("rope", "row_positions must be int32 (B) for x (B, T, H, D)", X, row_positions);
  if (row_positions.defined()) check_same_device("rope", X, row_positions);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::rope_apply(X, base, position_offset, row_positions, y, false, false);
  return make_op_result(OpId::Rope, y, {x}, [=, dx = GradSlot(x)](const Tensor& dy) {
    // y = R(p) x, a rotation per pair  =>  dx += R(p)^T dy = R(-p) dy
    kernels::rope_apply(dy, base, position_offset, row_positions, dx.buffer(), true, true);
  });
}

}  // namespace swiattn
