// autograd/ops_attention.cpp: causal attention with an optional sliding window (spec §2).
#include "autograd/ops.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/switch_attention.h"
#include "kernels/cuda/attention.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/elementwise.h"
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

// ---- float32 attention on the bfloat16 tensor-core kernels (cuda::float32_attention_in_bf16,
// train.float32_attention "bfloat16"): q, k, v (and the gate) are rounded to bfloat16 once; the
// outputs and statistics stay float32 (switch's out is its bf16 mix, converted); the backward
// rounds dout to bfloat16, runs the tensor-core backward into bfloat16 gradients and adds them
// into the float32 ones. The error is that of bfloat16 attention (docs/cuda.md).
static bool float32_in_bf16(const Tensor& Q, const cpu::AttentionShape& s) {
  return Q.device() == Device::CUDA && Q.dtype() == DType::F32 && cuda::float32_attention_in_bf16() &&
         (s.D == 64 || s.D == 128) && s.Hkv > 0 && s.Hq % s.Hkv == 0;
}
static Tensor bf16_grad_for(const Var& x) {  // a zero bfloat16 gradient, or undefined (not needed)
  return x.requires_grad() ? Tensor::zeros(x.value().shape(), DType::BF16, Device::CUDA) : Tensor();
}
static void add_bf16_grad(const Var& x, const Tensor& g16) {  // x.grad += g16, in float32
  if (g16.defined()) cuda::scale_backward(1.0, g16.to(DType::F32), x.grad_buffer());
}

static Var attention_in_bf16(const Var& q, const Var& k, const Var& v, const cpu::AttentionShape& s, int64_t window) {
  const Tensor q16 = q.value().to(DType::BF16), k16 = k.value().to(DType::BF16), v16 = v.value().to(DType::BF16);
  Tensor out = Tensor::empty(q.value().shape(), DType::F32, Device::CUDA);
  Tensor lse = Tensor::empty({s.B, s.T, s.Hq}, DType::F32, Device::CUDA);
  cuda::attention_forward(s, window, q16, k16, v16, out, lse);  // bf16 inputs: the tensor-core kernels
  return make_op_result(OpId::Attention, out, {q, k, v}, [=](const Tensor& dout) {
    const Tensor dq = bf16_grad_for(q), dk = bf16_grad_for(k), dv = bf16_grad_for(v);
    cuda::attention_backward(s, window, q16, k16, v16, out, lse, dout.to(DType::BF16), Tensor(), false, dq, dk, dv);
    add_bf16_grad(q, dq);
    add_bf16_grad(k, dk);
    add_bf16_grad(v, dv);
  });
}

static Var switch_attention_in_bf16(const Var& q, const Var& k, const Var& v, int64_t window, const Var& gate,
                                    Tensor* branch_diff_sq, const cpu::AttentionShape& s, bool both_branches) {
  const Tensor q16 = q.value().to(DType::BF16), k16 = k.value().to(DType::BF16), v16 = v.value().to(DType::BF16);
  const Tensor g16 = gate.value().to(DType::BF16);  // the hard route's 0 / 1: exact
  const Shape rows{s.B, s.T, s.Hq};
  Tensor out16 = Tensor::empty(q.value().shape(), DType::BF16, Device::CUDA);
  Tensor o_full = Tensor::empty(q.value().shape(), DType::F32, Device::CUDA);
  Tensor o_swa = Tensor::empty(q.value().shape(), DType::F32, Device::CUDA);
  Tensor lse_full = Tensor::empty(rows, DType::F32, Device::CUDA), lse_swa = Tensor::empty(rows, DType::F32, Device::CUDA);
  cuda::switch_attention_forward(s, window, q16, k16, v16, g16, both_branches, out16, o_full, o_swa, lse_full, lse_swa);
  if (branch_diff_sq) {
    *branch_diff_sq = Tensor::empty({s.B, s.T}, DType::F32, Device::CUDA);
    cuda::branch_difference_sq(s, o_full, o_swa, *branch_diff_sq);
  }
  return make_op_result(OpId::SwitchAttention, out16.to(DType::F32), {q, k, v, gate}, [=](const Tensor& dout) {
    const Tensor dq = bf16_grad_for(q), dk = bf16_grad_for(k), dv = bf16_grad_for(v), dg = bf16_grad_for(gate);
    cuda::switch_attention_backward(s, window, q16, k16, v16, g16, o_full, o_swa, lse_full, lse_swa,
                                    dout.to(DType::BF16), dq, dk, dv, dg);
    add_bf16_grad(q, dq);
    add_bf16_grad(k, dk);
    add_bf16_grad(v, dv);
    add_bf16_grad(gate, dg);
  });
}

Var attention(const Var& q, const Var& k, const Var& v, int64_t window) {
  const Tensor& Q = q.value();
  const Tensor& K = k.value();
  const Tensor& V = v.value();
  const cpu::AttentionShape s = attention_shape("attention", Q, K, V);
  if (window < 0) throw Error("attention: window must be >= 1 (or 0 for full causal), got " + std::to_string(window));
  if (float32_in_bf16(Q, s)) return attention_in_bf16(q, k, v, s, window);
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
  if (method == SwitchMethod::OnePass && float32_in_bf16(Q, s))
    return switch_attention_in_bf16(q, k, v, window, gate, branch_diff_sq, s, both_branches);
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
