// autograd/ops_attention.cpp: causal attention with an optional sliding window (spec §2).
#include "autograd/ops.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/switch_attention.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/switch_attention.h"

namespace swiattn {

// Checks q (B, T, H, D), k and v (B, T, Hkv, D) with H a multiple of Hkv; returns the sizes.
static cpu::AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k,
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
  const Tensor& Q = q.value();
  const Tensor& K = k.value();
  const Tensor& V = v.value();
  const cpu::AttentionShape s = attention_shape("attention", Q, K, V);
  if (window < 0) throw Error("attention: window must be >= 1 (or 0 for full causal), got " + std::to_string(window));
  const bool on_cuda = Q.device() == Device::CUDA;
  Tensor out = Tensor::empty(Q.shape(), Q.dtype(), Q.device());
  Tensor lse = Tensor::empty({s.B, s.T, s.Hq}, on_cuda ? DType::F32 : Q.dtype(), Q.device());  // CUDA: float32
  if (on_cuda) cuda::attention_forward(s, window, Q, K, V, out, lse);
  else dispatch_float(Q.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    cpu::attention_forward<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), out.data<T>(), lse.data<T>());
  });
  return make_op_result(OpId::Attention, out, {q, k, v}, [=](const Tensor& dout) {
    // out_t = sum_j softmax_j(q_t . k_j / sqrt(D)) v_j over the legal keys j; the softmax is
    // recomputed from the saved log-sum-exp (see cpu::attend_range_backward).
    if (on_cuda)  // undefined gradients are skipped there: no scratch buffers needed
      return cuda::attention_backward(s, window, Q, K, V, out, lse, dout, Tensor(), false,
                                      q.requires_grad() ? q.grad_buffer() : Tensor(),
                                      k.requires_grad() ? k.grad_buffer() : Tensor(),
                                      v.requires_grad() ? v.grad_buffer() : Tensor());
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

Var switch_attention(const Var& q, const Var& k, const Var& v, int64_t window, const Var& gate,
                     Tensor* branch_diff_sq, SwitchMethod method) {
  const Tensor& Q = q.value();
  const Tensor& K = k.value();
  const Tensor& V = v.value();
  const Tensor& G = gate.value();
  const cpu::AttentionShape s = attention_shape("switch_attention", Q, K, V);
  if (window < 1) throw Error("switch_attention: window must be >= 1, got " + std::to_string(window));
  check_same_device("switch_attention", Q, G);
  check_same_dtype("switch_attention", Q, G);
  if (G.shape() != Shape{s.B, s.T}) shape_error("switch_attention", "gate must be (B, T) for q (B, T, H, D)", G, Q);
  const bool on_cuda = Q.device() == Device::CUDA;
  const bool both_branches = grad_enabled() || branch_diff_sq != nullptr;
  Tensor out = Tensor::empty(Q.shape(), Q.dtype(), Q.device());
  // Inference with hard routes on the GPU: each token runs only its own branch, over only its
  // keys (kernels/cuda/flash_attention.h); no branch outputs are kept, as nothing will read them.
  if (on_cuda && !both_branches && method == SwitchMethod::OnePass && cuda::flash_attention_supported(s, Q) &&
      cuda::is_hard_route(G)) {
    cuda::routed_attention_prefill(s, window, Q, K, V, G, out);
    return make_op_result(OpId::SwitchAttention, out, {q, k, v, gate}, nullptr);
  }
  const DType saved = on_cuda ? DType::F32 : Q.dtype();  // CUDA keeps the branches in float32
  Tensor o_full = Tensor::empty(Q.shape(), saved, Q.device());
  Tensor o_swa = Tensor::empty(Q.shape(), saved, Q.device());
  Tensor lse_full = Tensor::empty({s.B, s.T, s.Hq}, saved, Q.device());
  Tensor lse_swa = Tensor::empty({s.B, s.T, s.Hq}, saved, Q.device());
  if (on_cuda) {
    if (method == SwitchMethod::OnePass)
      cuda::switch_attention_forward(s, window, Q, K, V, G, both_branches, out, o_full, o_swa, lse_full, lse_swa);
    else
      cuda::switch_attention_forward_two_pass(s, window, Q, K, V, G, out, o_full, o_swa, lse_full, lse_swa);
    if (branch_diff_sq) {
      *branch_diff_sq = Tensor::empty({s.B, s.T}, saved, Q.device());
      cuda::branch_difference_sq(s, o_full, o_swa, *branch_diff_sq);
    }
  } else dispatch_float(Q.dtype(), "switch_attention", [&](auto zero) {
    using T = decltype(zero);
    if (method == SwitchMethod::OnePass)
      cpu::switch_attention_forward<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), G.data<T>(),
                                       both_branches, out.data<T>(), o_full.data<T>(), o_swa.data<T>(),
                                       lse_full.data<T>(), lse_swa.data<T>());
    else
      cpu::switch_attention_forward_two_pass<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), G.data<T>(),
                                                out.data<T>(), o_full.data<T>(), o_swa.data<T>(),
                                                lse_full.data<T>(), lse_swa.data<T>());
    if (branch_diff_sq) {
      *branch_diff_sq = Tensor::empty({s.B, s.T}, Q.dtype());
      cpu::branch_difference_sq<T>(s, o_full.data<T>(), o_swa.data<T>(), branch_diff_sq->data<T>());
    }
  });
  return make_op_result(OpId::SwitchAttention, out, {q, k, v, gate}, [=](const Tensor& dout) {
    // out_t = g_t O_FULL_t + (1 - g_t) O_SWA_t:
    //   dg_t += sum dout_t (O_FULL_t - O_SWA_t); O_FULL gets g dout, O_SWA gets (1 - g) dout,
    //   each through its own attention backward (see cpu::switch_attention_backward).
    if (on_cuda)
      return cuda::switch_attention_backward(s, window, Q, K, V, G, o_full, o_swa, lse_full, lse_swa, dout,
                                             q.requires_grad() ? q.grad_buffer() : Tensor(),
                                             k.requires_grad() ? k.grad_buffer() : Tensor(),
                                             v.requires_grad() ? v.grad_buffer() : Tensor(),
                                             gate.requires_grad() ? gate.grad_buffer() : Tensor());
    dispatch_float(Q.dtype(), "switch_attention", [&](auto zero) {
      using T = decltype(zero);
      Tensor dq = q.requires_grad() ? q.grad_buffer() : Tensor::zeros(Q.shape(), Q.dtype());
      Tensor dk = k.requires_grad() ? k.grad_buffer() : Tensor::zeros(K.shape(), K.dtype());
      Tensor dv = v.requires_grad() ? v.grad_buffer() : Tensor::zeros(V.shape(), V.dtype());
      cpu::switch_attention_backward<T>(s, window, Q.data<T>(), K.data<T>(), V.data<T>(), G.data<T>(),
                                        o_full.data<T>(), o_swa.data<T>(), lse_full.data<T>(),
                                        lse_swa.data<T>(), dout.data<T>(), dq.data<T>(), dk.data<T>(),
                                        dv.data<T>(), gate.requires_grad() ? gate.grad_buffer().data<T>() : nullptr);
    });
  });
}

}  // namespace swiattn
