// kernels/attention.cpp: the device choice of attention and switch attention
// (kernels/attention.h): the CPU loops of kernels/cpu/{attention,switch_attention}.h, the CUDA
// kernels of kernels/cuda/{attention,switch_attention,flash_attention}.h, and the bfloat16 mode
// of float32 CUDA attention.
#include "kernels/attention.h"

#include "kernels/cpu/switch_attention.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/switch_attention.h"
#include "kernels/elementwise.h"
#include "tensor/cuda/device.h"

namespace swiattn::kernels {

namespace {

// float32 CUDA attention run on the bfloat16 tensor-core kernels (the file comment of
// kernels/attention.h).
bool float32_in_bf16(const Tensor& q, const AttentionShape& s) {
  return on_cuda(q) && q.dtype() == DType::F32 && cuda::float32_attention_in_bf16() && (s.D == 64 || s.D == 128) &&
         s.Hkv > 0 && s.Hq % s.Hkv == 0;
}

// A zero bfloat16 gradient for a float32 one, or undefined (not needed).
Tensor bf16_twin(const Tensor& grad) {
  return grad.defined() ? Tensor::zeros(grad.shape(), DType::BF16, Device::CUDA) : Tensor();
}

void add_bf16_grad(const Tensor& grad, const Tensor& g16) {  // grad += g16, in float32
  if (g16.defined()) add_into(grad, g16.to(DType::F32));
}

// The CPU kernels add into all of dq, dk, dv: an input that needs no gradient gets a scratch one.
Tensor grad_or_scratch(const Tensor& grad, const Tensor& like) {
  return grad.defined() ? grad : Tensor::zeros(like.shape(), like.dtype());
}

}  // namespace

// ---- attention ----

AttentionSaved attention_forward(const AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                                 const Tensor& v) {
  AttentionSaved saved;
  saved.in_bf16 = float32_in_bf16(q, s);
  saved.q = saved.in_bf16 ? q.to(DType::BF16) : q;
  saved.k = saved.in_bf16 ? k.to(DType::BF16) : k;
  saved.v = saved.in_bf16 ? v.to(DType::BF16) : v;
  saved.out = Tensor::empty(q.shape(), q.dtype(), q.device());
  saved.lse = Tensor::empty({s.B, s.T, s.Hq}, statistics_dtype(q), q.device());
  if (on_cuda(q)) {  // bfloat16 inputs: the tensor-core kernels
    cuda::attention_forward(s, window, saved.q, saved.k, saved.v, saved.out, saved.lse);
    return saved;
  }
  dispatch_float(q.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    cpu::attention_forward<T>(s, window, q.data<T>(), k.data<T>(), v.data<T>(), saved.out.data<T>(),
                              saved.lse.data<T>());
  });
  return saved;
}

void attention_backward(const AttentionShape& s, int64_t window, const AttentionSaved& saved, const Tensor& dout,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const Tensor &q = saved.q, &k = saved.k, &v = saved.v;
  if (saved.in_bf16) {
    const Tensor dq16 = bf16_twin(dq), dk16 = bf16_twin(dk), dv16 = bf16_twin(dv);
    cuda::attention_backward(s, window, q, k, v, saved.out, saved.lse, dout.to(DType::BF16), Tensor(), false, dq16,
                             dk16, dv16);
    add_bf16_grad(dq, dq16);
    add_bf16_grad(dk, dk16);
    add_bf16_grad(dv, dv16);
    return;
  }
  if (on_cuda(q))  // undefined gradients are skipped there
    return cuda::attention_backward(s, window, q, k, v, saved.out, saved.lse, dout, Tensor(), false, dq, dk, dv);
  dispatch_float(q.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    const Tensor dq_ = grad_or_scratch(dq, q), dk_ = grad_or_scratch(dk, k), dv_ = grad_or_scratch(dv, v);
    cpu::attention_backward<T>(s, window, q.data<T>(), k.data<T>(), v.data<T>(), saved.out.data<T>(),
                               saved.lse.data<T>(), dout.data<T>(), dq_.data<T>(), dk_.data<T>(), dv_.data<T>());
  });
}

// ---- switch attention ----

namespace {

// The bfloat16 mode: q, k, v, gate rounded once (the hard route's 0 / 1 exactly), one pass.
SwitchAttentionForward switch_attention_in_bf16(const AttentionShape& s, int64_t window, const Tensor& q,
                                                const Tensor& k, const Tensor& v, const Tensor& gate,
                                                bool both_branches, Tensor* branch_diff_sq) {
  SwitchAttentionForward f;
  SwitchAttentionSaved& sv = f.saved;
  sv.in_bf16 = true;
  sv.q = q.to(DType::BF16);
  sv.k = k.to(DType::BF16);
  sv.v = v.to(DType::BF16);
  sv.gate = gate.to(DType::BF16);
  const Shape rows{s.B, s.T, s.Hq};
  Tensor out16 = Tensor::empty(q.shape(), DType::BF16, Device::CUDA);
  sv.o_full = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
  sv.o_swa = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
  sv.lse_full = Tensor::empty(rows, DType::F32, Device::CUDA);
  sv.lse_swa = Tensor::empty(rows, DType::F32, Device::CUDA);
  cuda::switch_attention_forward(s, window, sv.q, sv.k, sv.v, sv.gate, both_branches, out16, sv.o_full, sv.o_swa,
                                 sv.lse_full, sv.lse_swa);
  if (branch_diff_sq) {
    *branch_diff_sq = Tensor::empty({s.B, s.T}, DType::F32, Device::CUDA);
    cuda::branch_difference_sq(s, sv.o_full, sv.o_swa, *branch_diff_sq);
  }
  f.out = out16.to(DType::F32);
  return f;
}

}  // namespace

SwitchAttentionForward switch_attention_forward(const AttentionShape& s, int64_t window, const Tensor& q,
                                                const Tensor& k, const Tensor& v, const Tensor& gate,
                                                bool both_branches, bool two_pass_reference, Tensor* branch_diff_sq) {
  if (!two_pass_reference && float32_in_bf16(q, s))
    return switch_attention_in_bf16(s, window, q, k, v, gate, both_branches, branch_diff_sq);
  SwitchAttentionForward f;
  f.out = Tensor::empty(q.shape(), q.dtype(), q.device());
  // Inference with hard routes on the GPU: each token runs only its own branch, over only its
  // keys (kernels/cuda/flash_attention.h); no branch outputs are kept, as nothing will read them.
  if (on_cuda(q) && !both_branches && !two_pass_reference && cuda::flash_attention_supported(s, q) &&
      cuda::is_hard_route(gate)) {
    cuda::routed_attention_prefill(s, window, q, k, v, gate, f.out);
    f.has_backward = false;
    return f;
  }
  SwitchAttentionSaved& sv = f.saved;
  sv.q = q, sv.k = k, sv.v = v, sv.gate = gate;
  const DType saved = statistics_dtype(q);  // CUDA keeps the branches in float32
  sv.o_full = Tensor::empty(q.shape(), saved, q.device());
  sv.o_swa = Tensor::empty(q.shape(), saved, q.device());
  sv.lse_full = Tensor::empty({s.B, s.T, s.Hq}, saved, q.device());
  sv.lse_swa = Tensor::empty({s.B, s.T, s.Hq}, saved, q.device());
  if (branch_diff_sq) *branch_diff_sq = Tensor::empty({s.B, s.T}, saved, q.device());
  if (on_cuda(q)) {
    if (!two_pass_reference)
      cuda::switch_attention_forward(s, window, q, k, v, gate, both_branches, f.out, sv.o_full, sv.o_swa,
                                     sv.lse_full, sv.lse_swa);
    else
      cuda::switch_attention_forward_two_pass(s, window, q, k, v, gate, f.out, sv.o_full, sv.o_swa, sv.lse_full,
                                              sv.lse_swa);
    if (branch_diff_sq) cuda::branch_difference_sq(s, sv.o_full, sv.o_swa, *branch_diff_sq);
    return f;
  }
  dispatch_float(q.dtype(), "switch_attention", [&](auto zero) {
    using T = decltype(zero);
    if (!two_pass_reference)
      cpu::switch_attention_forward<T>(s, window, q.data<T>(), k.data<T>(), v.data<T>(), gate.data<T>(),
                                       both_branches, f.out.data<T>(), sv.o_full.data<T>(), sv.o_swa.data<T>(),
                                       sv.lse_full.data<T>(), sv.lse_swa.data<T>());
    else
      cpu::switch_attention_forward_two_pass<T>(s, window, q.data<T>(), k.data<T>(), v.data<T>(), gate.data<T>(),
                                                f.out.data<T>(), sv.o_full.data<T>(), sv.o_swa.data<T>(),
                                                sv.lse_full.data<T>(), sv.lse_swa.data<T>());
    if (branch_diff_sq)
      cpu::branch_difference_sq<T>(s, sv.o_full.data<T>(), sv.o_swa.data<T>(), branch_diff_sq->data<T>());
  });
  return f;
}

void switch_attention_backward(const AttentionShape& s, int64_t window, const SwitchAttentionSaved& saved,
                               const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                               const Tensor& dgate) {
  const SwitchAttentionSaved& sv = saved;
  if (sv.in_bf16) {
    const Tensor dq16 = bf16_twin(dq), dk16 = bf16_twin(dk), dv16 = bf16_twin(dv), dg16 = bf16_twin(dgate);
    cuda::switch_attention_backward(s, window, sv.q, sv.k, sv.v, sv.gate, sv.o_full, sv.o_swa, sv.lse_full,
                                    sv.lse_swa, dout.to(DType::BF16), dq16, dk16, dv16, dg16);
    add_bf16_grad(dq, dq16);
    add_bf16_grad(dk, dk16);
    add_bf16_grad(dv, dv16);
    add_bf16_grad(dgate, dg16);
    return;
  }
  if (on_cuda(sv.q))
    return cuda::switch_attention_backward(s, window, sv.q, sv.k, sv.v, sv.gate, sv.o_full, sv.o_swa, sv.lse_full,
                                           sv.lse_swa, dout, dq, dk, dv, dgate);
  dispatch_float(sv.q.dtype(), "switch_attention", [&](auto zero) {
    using T = decltype(zero);
    const Tensor dq_ = grad_or_scratch(dq, sv.q), dk_ = grad_or_scratch(dk, sv.k), dv_ = grad_or_scratch(dv, sv.v);
    cpu::switch_attention_backward<T>(s, window, sv.q.data<T>(), sv.k.data<T>(), sv.v.data<T>(), sv.gate.data<T>(),
                                      sv.o_full.data<T>(), sv.o_swa.data<T>(), sv.lse_full.data<T>(),
                                      sv.lse_swa.data<T>(), dout.data<T>(), dq_.data<T>(), dk_.data<T>(),
                                      dv_.data<T>(), data_or_null<T>(dgate));
  });
}

}  // namespace swiattn::kernels
