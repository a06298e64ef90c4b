// kernels/cuda/attention.cu: causal / sliding-window grouped-query attention, forward and
// backward, one warp per row (see attention.h and attention.cuh).
#include "kernels/cuda/attention.h"

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/flash_backward.h"

namespace swiattn::cuda {

// ---------------------------------------------------------------------------------------------
// Forward: warp `row` = (b * T + t) * Hq + h attends to keys window_first_key(t) .. t of kv head
// h / group, in one online-softmax pass.

template <class T, class TO>
__global__ void attention_forward_kernel(AttentionDims s, const T* q, const T* k, const T* v, TO* out, float* lse) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= s.B * s.T * s.Hq) return;
  const int64_t h = row % s.Hq, t = (row / s.Hq) % s.T, b = row / (s.Hq * s.T);
  const int64_t key_stride = s.Hkv * s.D;
  const int64_t kv = b * s.T * key_stride + (h / s.group) * s.D;  // key 0 of this head
  float qr[kPerLane];
  load_row(q + row * s.D, s.D, qr);
  OnlineSoftmax st;
  attend_range(s, qr, k + kv, v + kv, key_stride, window_first_key(t, s.window), t, st);
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < s.D) out[row * s.D + d] = from_float<TO>(st.acc[i] / st.l);
  }
  if (lane == 0) lse[row] = st.m + logf(st.l);
}

// Calls f(T{}, TO{}) for q's dtype T and out's dtype TO (TO = T, or float32).
template <class F> static void dispatch_q_out(const char* op, const Tensor& q, const Tensor& out, F&& f) {
  dispatch(q.dtype(), op, [&](auto zq) {
    using T = decltype(zq);
    if (out.dtype() == DType::F32) return f(zq, float{});
    if (out.dtype() == q.dtype()) return f(zq, T{});
    throw Error(std::string(op) + ": output dtype " + dtype_name(out.dtype()) + " for " + dtype_name(q.dtype()) + " inputs");
  });
}

void attention_forward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& out, const Tensor& lse) {
  const AttentionDims dims = attention_dims("attention", s, window);
  const int64_t rows = s.B * s.T * s.Hq;
  if (rows == 0) return;
  if (flash_attention_supported(s, q)) {  // tensor cores (flash_attention.h)
    flash_attention_forward(s, window, q, k, v, out, lse);
    return;
  }
  dispatch_q_out("attention", q, out, [&](auto zq, auto zo) {
    using T = decltype(zq);
    using TO = decltype(zo);
    attention_forward_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock>>>(dims, ptr<T>(q), ptr<T>(k), ptr<T>(v),
                                                                       ptr<TO>(out), ptr<float>(lse));
    SWIATTN_CUDA_CHECK_LAUNCH("attention_forward");
  });
}

// ---------------------------------------------------------------------------------------------
// Backward

// w_t: the share of dout this attention receives (1, gate_t or 1 - gate_t).
template <class T>
__device__ __forceinline__ float row_weight(const T* gate, bool complement, int64_t bt) {
  if (!gate) return 1.0f;
  const float g = to_float(gate[bt]);
  return complement ? 1.0f - g : g;
}

// Warp per query row: delta = (w dout) . out (kept for the dk / dv kernel), and
// dq += scale sum_j ds_j k_j over the row's keys.
template <class T, class TO>
__global__ void attention_backward_dq_kernel(AttentionDims s, const T* q, const T* k, const T* v, const TO* out,
                                             const float* lse, const T* dout, const T* gate, bool complement,
                                             float* delta, T* dq) {
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= s.B * s.T * s.Hq) return;
  const int64_t h = row % s.Hq, t = (row / s.Hq) % s.T, b = row / (s.Hq * s.T);
  const int lane = threadIdx.x & 31;
  const float w = row_weight(gate, complement, b * s.T + t);
  float g[kPerLane];  // w dout
  load_row(dout + row * s.D, s.D, g);
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) g[i] *= w;
  const float dlt = warp_dot(g, out + row * s.D, s.D);
  if (lane == 0) delta[row] = dlt;
  if (!dq || w == 0.0f) return;

  const int64_t key_stride = s.Hkv * s.D;
  const int64_t kv = b * s.T * key_stride + (h / s.group) * s.D;
  float qr[kPerLane], acc[kPerLane] = {};
  load_row(q + row * s.D, s.D, qr);
  for (int64_t j = window_first_key(t, s.window); j <= t; ++j) {
    const T* kj = k + kv + j * key_stride;
    const float p = expf(s.scale * warp_dot(qr, kj, s.D) - lse[row]);
    const float ds = p * (warp_dot(g, v + kv + j * key_stride, s.D) - dlt);  // dL/dscore_j
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < s.D) acc[i] += s.scale * ds * to_float(kj[d]);
    }
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < s.D) add_to(dq, row * s.D + d, acc[i]);
  }
}

// Warp per key row (b, j, kv head g): walks every query that reads key j, that is the group's
// query heads at t = j .. last_query(j), and sums dk_j += scale ds q_t, dv_j += p w dout_t.
template <class T>
__global__ void attention_backward_dkdv_kernel(AttentionDims s, const T* q, const T* k, const T* v, const float* lse,
                                               const T* dout, const T* gate, bool complement, const float* delta,
                                               T* dk, T* dv) {
  const int64_t key_row = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (key_row >= s.B * s.T * s.Hkv) return;
  const int64_t kv_head = key_row % s.Hkv, j = (key_row / s.Hkv) % s.T, b = key_row / (s.Hkv * s.T);
  const int lane = threadIdx.x & 31;
  float kr[kPerLane], vr[kPerLane], dk_acc[kPerLane] = {}, dv_acc[kPerLane] = {};
  load_row(k + key_row * s.D, s.D, kr);
  load_row(v + key_row * s.D, s.D, vr);
  const int64_t last = window_last_query(j, s.window, s.T);  // j >= window_first_key(t)
  for (int64_t h = kv_head * s.group; h < (kv_head + 1) * s.group; ++h)
    for (int64_t t = j; t <= last; ++t) {
      const float w = row_weight(gate, complement, b * s.T + t);
      if (w == 0.0f) continue;
      const int64_t row = (b * s.T + t) * s.Hq + h;
      float qt[kPerLane], g[kPerLane];
      load_row(q + row * s.D, s.D, qt);
      load_row(dout + row * s.D, s.D, g);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) g[i] *= w;
      const float p = expf(s.scale * warp_dot(qt, kr) - lse[row]);
      const float ds = p * (warp_dot(g, vr) - delta[row]);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        dk_acc[i] += s.scale * ds * qt[i];
        dv_acc[i] += p * g[i];
      }
    }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d >= s.D) continue;
    if (dk) add_to(dk, key_row * s.D + d, dk_acc[i]);
    if (dv) add_to(dv, key_row * s.D + d, dv_acc[i]);
  }
}

void attention_backward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                        const Tensor& gate, bool complement, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const AttentionDims dims = attention_dims("attention", s, window);
  const int64_t rows = s.B * s.T * s.Hq, key_rows = s.B * s.T * s.Hkv;
  if (rows == 0) return;
  if (flash_backward_supported(s, q, k, v, dout)) {  // tensor cores (flash_backward.h)
    flash_attention_backward(s, window, q, k, v, out, lse, dout, gate, complement, dq, dk, dv);
    return;
  }
  const Tensor delta = Tensor::empty({s.B, s.T, s.Hq}, DType::F32, Device::CUDA);
  dispatch_q_out("attention", q, out, [&](auto zq, auto zo) {
    using T = decltype(zq);
    using TO = decltype(zo);
    attention_backward_dq_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock>>>(
        dims, ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<TO>(out), ptr<float>(lse), ptr<T>(dout), ptr<T>(gate),
        complement, ptr<float>(delta), ptr<T>(dq));
    SWIATTN_CUDA_CHECK_LAUNCH("attention_backward_dq");
    if (!dk.defined() && !dv.defined()) return;
    attention_backward_dkdv_kernel<<<warp_blocks(key_rows), 32 * kWarpsPerBlock>>>(
        dims, ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<float>(lse), ptr<T>(dout), ptr<T>(gate), complement,
        ptr<float>(delta), ptr<T>(dk), ptr<T>(dv));
    SWIATTN_CUDA_CHECK_LAUNCH("attention_backward_dkdv");
  });
}

}  // namespace swiattn::cuda
