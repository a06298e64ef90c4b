// autograd/ops_attention.cpp: causal attention with an optional sliding window (spec §2), and
// switch attention's two branches mixed by the router's gate (spec §4). The arithmetic, and the
// choice of kernel (CPU loops, CUDA kernels, float32 attention in bfloat16), is behind
// kernels/attention.h.
#include "autograd/ops.h"
#include "kernels/attention.h"

namespace swiattn {

// Checks q (B, T, H, D), k and v (B, T, Hkv, D) with H a multiple of Hkv; returns the sizes.
static kernels::AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k,
                                               const Tensor& v) {
  check_float_any_device(op, q);
  check_float_any_device(op, k);
  check_float_any_device(op, v);
  check_same_device(op, q, k);
  check_same_device(op, q, v);
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
  const kernels::AttentionShape s = attention_shape("attention", q.value(), k.value(), v.value());
  if (window < 0) throw Error("attention: window must be >= 1 (or 0 for full causal), got " + std::to_string(window));
  const kernels::AttentionSaved saved = kernels::attention_forward(s, window, q.value(), k.value(), v.value());
  return make_op_result(OpId::Attention, saved.out, {q, k, v},
                        [=, dq = GradSlot(q), dk = GradSlot(k), dv = GradSlot(v)](const Tensor& dout) {
    // out_t = sum_j softmax_j(q_t . k_j / sqrt(D)) v_j over the legal keys j; the softmax is
    // recomputed from the saved log-sum-exp (see cpu::attend_range_backward).
    kernels::attention_backward(s, window, saved, dout, dq.if_required(), dk.if_required(), dv.if_required());
  });
}

Var switch_attention(const Var& q, const Var& k, const Var& v, int64_t window, const Var& gate,
                     Tensor* branch_diff_sq, SwitchMethod method) {
  const Tensor& Q = q.value();
  const Tensor& G = gate.value();
  const kernels::AttentionShape s = attention_shape("switch_attention", Q, k.value(), v.value());
  if (window < 1) throw Error("switch_attention: window must be >= 1, got " + std::to_string(window));
  check_same_device("switch_attention", Q, G);
  check_same_dtype("switch_attention", Q, G);
  if (G.shape() != Shape{s.B, s.T}) shape_error("switch_attention", "gate must be (B, T) for q (B, T, H, D)", G, Q);
  const bool both_branches = grad_enabled() || branch_diff_sq != nullptr;
  const kernels::SwitchAttentionForward f =
      kernels::switch_attention_forward(s, window, Q, k.value(), v.value(), G, both_branches,
                                        method == SwitchMethod::TwoPassReference, branch_diff_sq);
  if (!f.has_backward) return make_op_result(OpId::SwitchAttention, f.out, {q, k, v, gate}, nullptr);
  const kernels::SwitchAttentionSaved saved = f.saved;
  return make_op_result(OpId::SwitchAttention, f.out, {q, k, v, gate},
                        [=, dq = GradSlot(q), dk = GradSlot(k), dv = GradSlot(v),
                         dgate = GradSlot(gate)](const Tensor& dout) {
    // out_t = g_t O_FULL_t + (1 - g_t) O_SWA_t:
    //   dg_t += sum dout_t (O_FULL_t - O_SWA_t); O_FULL gets g dout, O_SWA gets (1 - g) dout,
    //   each through its own attention backward (see cpu::switch_attention_backward).
    kernels::switch_attention_backward(s, window, saved, dout, dq.if_required(), dk.if_required(),
                                       dv.if_required(), dgate.if_required());
  });
}

}  // namespace swiattn
