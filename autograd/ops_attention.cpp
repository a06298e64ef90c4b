// autograd/ops_attention.cpp: causal attention with an optional sliding window (spec §2).
#include "autograd/ops.h"
#include "kernels/cpu/attention.h"

namespace swiattn {

// Checks q (B, T, H, D), k and v (B, T, Hkv, D) with H a multiple of Hkv; returns the sizes.
static cpu::AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k,
                                           const Tensor& v) {
  check_float(op, q);
  check_float(op, k);
  check_float(op, v);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_ndim(op, q, 4, "(B, T, H, D) for q");
  check_ndim(op, k, 4, "(B, T, Hkv, D) for k");
  check_same_shape(op, k, v);
  if (k.dim(0) != q.dim(0) || k.dim(1) != q.dim(1) || k.dim(3) != q.dim(3))
    shape_error(op, "q (B, T, H, D) and k (B, T, Hkv, D) disagree", q, k);
  if (k.dim(2) < 1 || q.dim(2) % k.dim(2) != 0)
    shape_error(op, "query heads must be a multiple of kv heads", q, k);
  return {q.dim(0), q.dim(1), q.dim(2), k.dim(2), q.dim(3)};
}

Var attention(const Var& q, const Var& k, const Var& v, int64_t window) {
  const Tensor& Q = q.value();
  const Tensor& K = k.value();
  const Tensor& V = v.value();
  const cpu::AttentionShape s = attention_shape("attention", Q, K, V);
  if (window < 0) throw Error("attention: window must be >= 1 (or 0 for full causal), got " + std::to_string(window));
  Tensor out = Tensor::empty(Q.shape(), Q.dtype());
  Tensor lse = Tensor::empty({s.B, s.T, s.Hq}, Q.dtype());
  dispatch_float(Q.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    cpu::attention_forward<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), out.data<T>(), lse.data<T>());
  });
  return make_op_result(OpId::Attention, out, {q, k, v}, [=](const Tensor& dout) {
    // out_t = sum_j softmax_j(q_t . k_j / sqrt(D)) v_j over the legal keys j; the softmax is
    // recomputed from the saved log-sum-exp (see cpu::attend_range_backward).
    dispatch_float(Q.dtype(), "attention", [&](auto zero) {
      using T = decltype(zero);
      // The kernel adds into all three; inputs that need no gradient get a scratch buffer.
      Tensor dq = q.requires_grad() ? q.grad_buffer() : Tensor::zeros(Q.shape(), Q.dtype());
      Tensor dk = k.requires_grad() ? k.grad_buffer() : Tensor::zeros(K.shape(), K.dtype());
      Tensor dv = v.requires_grad() ? v.grad_buffer() : Tensor::zeros(V.shape(), V.dtype());
      cpu::attention_backward<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), out.data<T>(),
                                 lse.data<T>(), dout.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
    });
  });
}

}  // namespace swiattn
