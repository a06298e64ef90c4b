// kernels/cuda/switch_attention.cu: switch attention (spec §4, Eq. 4-6) on CUDA.
#include "kernels/cuda/switch_attention.h"

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/flash_backward.h"

namespace swiattn::cuda {

// ---------------------------------------------------------------------------------------------
// One pass. The window part's online-softmax state is O_SWA; the far part's state, merged into
// a copy of it by rescaling both to their common max, is O_FULL:
//   m = max(m_win, m_far),  l = l_win e^(m_win - m) + l_far e^(m_far - m),  same for acc.

template <class T>
__global__ void switch_attention_forward_kernel(AttentionDims s, const T* q, const T* k, const T* v, const T* gate,
                                                bool both_branches, T* out, float* o_full, float* o_swa,
                                                float* lse_full, float* lse_swa) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= s.B * s.T * s.Hq) return;
  const int64_t h = row % s.Hq, t = (row / s.Hq) % s.T, b = row / (s.Hq * s.T);
  const int64_t key_stride = s.Hkv * s.D;
  const int64_t kv = b * s.T * key_stride + (h / s.group) * s.D;
  const float g = to_float(gate[b * s.T + t]);
  float qr[kPerLane];
  load_row(q + row * s.D, s.D, qr);

  const int64_t lo = window_first_key(t, s.window);
  OnlineSoftmax win;  // the window part [lo, t]: O_SWA
  attend_range(s, qr, k + kv, v + kv, key_stride, lo, t, win);
  OnlineSoftmax full = win;
  if (lo > 0 && (both_branches || g != 0.0f)) {  // t < w: both branches read the same keys
    OnlineSoftmax far;  // the far part [0, lo - 1]
    attend_range(s, qr, k + kv, v + kv, key_stride, int64_t(0), lo - 1, far);
    full.m = fmaxf(win.m, far.m);
    const float a = expf(win.m - full.m), c = expf(far.m - full.m);
    full.l = win.l * a + far.l * c;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) full.acc[i] = win.acc[i] * a + far.acc[i] * c;
  }
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d >= s.D) continue;
    const float os = win.acc[i] / win.l, of = full.acc[i] / full.l;
    o_swa[row * s.D + d] = os;
    o_full[row * s.D + d] = of;
    out[row * s.D + d] = from_float<T>(g * of + (1.0f - g) * os);  // Eq. 6
  }
  if (lane == 0) {
    lse_swa[row] = win.m + logf(win.l);
    lse_full[row] = full.m + logf(full.l);
  }
}

void switch_attention_forward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& gate, bool both_branches, const Tensor& out,
                              const Tensor& o_full, const Tensor& o_swa, const Tensor& lse_full,
                              const Tensor& lse_swa) {
  const AttentionDims dims = attention_dims("switch_attention", s, window);
  const int64_t rows = s.B * s.T * s.Hq;
  if (rows == 0) return;
  if (flash_attention_supported(s, q)) {  // tensor cores (flash_attention.h)
    flash_switch_attention_forward(s, window, q, k, v, gate, both_branches, out, o_full, o_swa, lse_full, lse_swa);
    return;
  }
  dispatch(q.dtype(), "switch_attention", [&](auto zero) {
    using T = decltype(zero);
    switch_attention_forward_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock>>>(
        dims, ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(gate), both_branches, ptr<T>(out), ptr<float>(o_full),
        ptr<float>(o_swa), ptr<float>(lse_full), ptr<float>(lse_swa));
    SWIATTN_CUDA_CHECK_LAUNCH("switch_attention_forward");
  });
}

// ---------------------------------------------------------------------------------------------
// The two-pass reference and the per-token kernels (one block per token (b, t), reducing over
// its Hq * D outputs).

template <class T>
__global__ void mix_branches_kernel(int64_t n, int64_t row_size, const T* gate, const float* o_full,
                                    const float* o_swa, T* out) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    const float g = to_float(gate[i / row_size]);
    out[i] = from_float<T>(g * o_full[i] + (1.0f - g) * o_swa[i]);  // Eq. 6
  }
}

void switch_attention_forward_two_pass(const cpu::AttentionShape& s, int64_t window, const Tensor& q,
                                       const Tensor& k, const Tensor& v, const Tensor& gate, const Tensor& out,
                                       const Tensor& o_full, const Tensor& o_swa, const Tensor& lse_full,
                                       const Tensor& lse_swa) {
  attention_forward(s, 0, q, k, v, o_full, lse_full);     // Eq. 4: O_FULL
  attention_forward(s, window, q, k, v, o_swa, lse_swa);  // Eq. 5: O_SWA
  if (out.numel() == 0) return;
  dispatch(q.dtype(), "switch_attention", [&](auto zero) {
    using T = decltype(zero);
    mix_branches_kernel<<<grid_for(out.numel()), kThreads>>>(out.numel(), s.Hq * s.D, ptr<T>(gate),
                                                             ptr<float>(o_full), ptr<float>(o_swa), ptr<T>(out));
    SWIATTN_CUDA_CHECK_LAUNCH("mix_branches");
  });
}

template <class T>
__global__ void gate_gradient_kernel(int64_t row_size, const T* dout, const float* o_full, const float* o_swa, T* dgate) {
  // dgate_t += sum over heads, dims of dout_t (O_FULL_t - O_SWA_t): the router's signal
  const int64_t bt = blockIdx.x;
  float acc = 0.0f;
  for (int64_t i = bt * row_size + threadIdx.x; i < (bt + 1) * row_size; i += blockDim.x)
    acc += to_float(dout[i]) * (o_full[i] - o_swa[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) add_to(dgate, bt, acc);
}

__global__ void branch_difference_kernel(int64_t row_size, const float* o_full, const float* o_swa, float* diff_sq) {
  const int64_t bt = blockIdx.x;
  float acc = 0.0f;
  for (int64_t i = bt * row_size + threadIdx.x; i < (bt + 1) * row_size; i += blockDim.x)
    acc += (o_full[i] - o_swa[i]) * (o_full[i] - o_swa[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) diff_sq[bt] = acc;
}

void switch_attention_backward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& gate, const Tensor& o_full, const Tensor& o_swa,
                               const Tensor& lse_full, const Tensor& lse_swa, const Tensor& dout, const Tensor& dq,
                               const Tensor& dk, const Tensor& dv, const Tensor& dgate) {
  if (s.B * s.T == 0) return;
  if (flash_backward_supported(s, q, k, v, dout)) {  // tensor cores, both branches in one pass
    flash_switch_attention_backward(s, window, q, k, v, gate, o_full, o_swa, lse_full, lse_swa, dout, dq, dk, dv,
                                    dgate);
    return;
  }
  if (dgate.defined()) {
    dispatch(q.dtype(), "switch_attention", [&](auto zero) {
      using T = decltype(zero);
      gate_gradient_kernel<<<s.B * s.T, 128>>>(s.Hq * s.D, ptr<T>(dout), ptr<float>(o_full), ptr<float>(o_swa),
                                               ptr<T>(dgate));
      SWIATTN_CUDA_CHECK_LAUNCH("switch_attention_gate_gradient");
    });
  }
  // out = gate O_FULL + (1 - gate) O_SWA: each branch's attention backward with its share.
  attention_backward(s, 0, q, k, v, o_full, lse_full, dout, gate, false, dq, dk, dv);
  attention_backward(s, window, q, k, v, o_swa, lse_swa, dout, gate, true, dq, dk, dv);
}

void branch_difference_sq(const cpu::AttentionShape& s, const Tensor& o_full, const Tensor& o_swa,
                          const Tensor& diff_sq) {
  if (s.B * s.T == 0) return;
  branch_difference_kernel<<<s.B * s.T, 128>>>(s.Hq * s.D, ptr<float>(o_full), ptr<float>(o_swa), ptr<float>(diff_sq));
  SWIATTN_CUDA_CHECK_LAUNCH("branch_difference_sq");
}

}  // namespace swiattn::cuda
