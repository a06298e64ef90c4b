// kernels/cuda/attention.cuh: the device code the two attention files share (nvcc only).
// A warp owns one query row: lane l holds the head-dim entries d = l, l + 32, ... (at most
// kPerLane of them, so D <= 256), and every dot product is a warp sum.
#pragma once

#include <cmath>
#include <string>

#include "kernels/cpu/attention.h"
#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

constexpr int kPerLane = 8;              // head-dim entries per lane
constexpr int kMaxHeadDim = 32 * kPerLane;
constexpr int kWarpsPerBlock = 4;        // query (or key) rows per block

struct AttentionDims {
  int64_t B, T, Hq, Hkv, D, group, window;
  float scale;  // 1 / sqrt(D), rounded to float as on the CPU
};

inline AttentionDims attention_dims(const char* op, const cpu::AttentionShape& s, int64_t window) {
  if (s.D > kMaxHeadDim)
    throw Error(std::string(op) + ": head dim " + std::to_string(s.D) + " is not supported on CUDA (at most " +
                std::to_string(kMaxHeadDim) + ")");
  return {s.B, s.T, s.Hq, s.Hkv, s.D, s.group(), window, static_cast<float>(1.0 / std::sqrt(double(s.D)))};
}

inline unsigned warp_blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

// This lane's entries of a D-vector, as float (0 past D).
template <class T>
__device__ __forceinline__ void load_row(const T* row, int64_t D, float (&r)[kPerLane]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    r[i] = d < D ? to_float(row[d]) : 0.0f;
  }
}

// a . row over the warp (every lane gets the sum).
template <class T>
__device__ __forceinline__ float warp_dot(const float (&a)[kPerLane], const T* row, int64_t D) {
  const int lane = threadIdx.x & 31;
  float partial = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < D) partial += a[i] * to_float(row[d]);
  }
  return warp_sum(partial);
}

// a . b over the warp, both held in registers.
__device__ __forceinline__ float warp_dot(const float (&a)[kPerLane], const float (&b)[kPerLane]) {
  float partial = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) partial += a[i] * b[i];  // 0 past D
  return warp_sum(partial);
}

// The running state of an online softmax over some keys: max score m, sum of e^(score - m) l,
// and sum of e^(score - m) v in acc. The output is acc / l, the log-sum-exp m + log l.
struct OnlineSoftmax {
  float m = -INFINITY, l = 0.0f;
  float acc[kPerLane] = {};
};

// Adds the keys [lo, hi] (stored every key_stride elements from k and v) to the state.
template <class T>
__device__ void attend_range(const AttentionDims& s, const float (&q)[kPerLane], const T* k, const T* v,
                             int64_t key_stride, int64_t lo, int64_t hi, OnlineSoftmax& st) {
  const int lane = threadIdx.x & 31;
  for (int64_t j = lo; j <= hi; ++j) {
    const float score = s.scale * warp_dot(q, k + j * key_stride, s.D);
    const float m_new = fmaxf(st.m, score);
    const float rescale = expf(st.m - m_new);  // 0 at the first key (m = -inf)
    const float p = expf(score - m_new);
    st.l = st.l * rescale + p;
    const T* vj = v + j * key_stride;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < s.D) st.acc[i] = st.acc[i] * rescale + p * to_float(vj[d]);
    }
    st.m = m_new;
  }
}

}  // namespace swiattn::cuda
