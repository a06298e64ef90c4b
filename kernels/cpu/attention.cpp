#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace swiattn::cpu {

template <class T> static inline T dot(int64_t D, const T* a, const T* b) {
  T acc = 0;
  for (int64_t d = 0; d < D; ++d) acc += a[d] * b[d];
  return acc;
}

template <class T>
T attend_range_forward(int64_t D, T scale, const T* q_row, const T* k, const T* v,
                       int64_t key_stride, int64_t lo, int64_t hi, T* out_row) {
  // Two passes over the keys: the max score (for a stable exp), then the weighted sum of values.
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t j = lo; j <= hi; ++j) mx = std::max(mx, scale * dot(D, q_row, k + j * key_stride));
  T total = 0;
  for (int64_t d = 0; d < D; ++d) out_row[d] = 0;
  for (int64_t j = lo; j <= hi; ++j) {
    const T p = std::exp(scale * dot(D, q_row, k + j * key_stride) - mx);
    total += p;
    const T* vj = v + j * key_stride;
    for (int64_t d = 0; d < D; ++d) out_row[d] += p * vj[d];
  }
  for (int64_t d = 0; d < D; ++d) out_row[d] /= total;
  return mx + std::log(total);
}

template <class T>
void attend_range_backward(int64_t D, T scale, const T* q_row, const T* k, const T* v,
                           int64_t key_stride, int64_t lo, int64_t hi, const T* out_row, T lse,
                           const T* dout_row, T* dq_row, T* dk, T* dv) {
  const T dout_dot_out = dot(D, dout_row, out_row);  // sum_j p_j (dout . v_j)
  for (int64_t j = lo; j <= hi; ++j) {
    const T* kj = k + j * key_stride;
    const T* vj = v + j * key_stride;
    const T p = std::exp(scale * dot(D, q_row, kj) - lse);
    const T ds = p * (dot(D, dout_row, vj) - dout_dot_out);  // dL/dscore_j
    T* dkj = dk + j * key_stride;
    T* dvj = dv + j * key_stride;
    for (int64_t d = 0; d < D; ++d) {
      dq_row[d] += scale * ds * kj[d];
      dkj[d] += scale * ds * q_row[d];
      dvj[d] += p * dout_row[d];
    }
  }
}

template <class T>
void attention_forward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                       const T* v, T* out, T* lse) {
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const int64_t key_stride = s.Hkv * s.D;
#pragma omp parallel for collapse(3) schedule(dynamic, 16)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t h = 0; h < s.Hq; ++h) {
        const int64_t row = (b * s.T + t) * s.Hq + h;
        const int64_t kv = b * s.T * key_stride + (h / s.group()) * s.D;  // key 0 of this head
        lse[row] = attend_range_forward(s.D, scale, q + row * s.D, k + kv, v + kv, key_stride,
                                        window_first_key(t, window), t, out + row * s.D);
      }
}

template <class T>
void attention_backward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const int64_t key_stride = s.Hkv * s.D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t g = 0; g < s.Hkv; ++g) {
      const int64_t kv = b * s.T * key_stride + g * s.D;
      for (int64_t h = g * s.group(); h < (g + 1) * s.group(); ++h)
        for (int64_t t = 0; t < s.T; ++t) {
          const int64_t row = (b * s.T + t) * s.Hq + h;
          attend_range_backward(s.D, scale, q + row * s.D, k + kv, v + kv, key_stride,
                                window_first_key(t, window), t, out + row * s.D, lse[row],
                                dout + row * s.D, dq + row * s.D, dk + kv, dv + kv);
        }
    }
}

template <class T>
void attention_forward_reference(const AttentionShape& s, int64_t window, const T* q, const T* k,
                                 const T* v, T* out) {
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const T neg_inf = -std::numeric_limits<T>::infinity();
  std::vector<T> scores(s.T * s.T);
  auto at = [&](const T* x, int64_t b, int64_t t, int64_t heads, int64_t h) {
    return x + ((b * s.T + t) * heads + h) * s.D;
  };
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t g = h / s.group();
      for (int64_t t = 0; t < s.T; ++t) {
        for (int64_t j = 0; j < s.T; ++j) {
          const bool legal = j <= t && j >= window_first_key(t, window);
          scores[t * s.T + j] = legal ? scale * dot(s.D, at(q, b, t, s.Hq, h), at(k, b, j, s.Hkv, g)) : neg_inf;
        }
        T mx = neg_inf, total = 0;
        for (int64_t j = 0; j < s.T; ++j) mx = std::max(mx, scores[t * s.T + j]);
        for (int64_t j = 0; j < s.T; ++j) total += (scores[t * s.T + j] = std::exp(scores[t * s.T + j] - mx));
        T* o = out + ((b * s.T + t) * s.Hq + h) * s.D;
        for (int64_t d = 0; d < s.D; ++d) {
          T acc = 0;
          for (int64_t j = 0; j < s.T; ++j) acc += scores[t * s.T + j] / total * at(v, b, j, s.Hkv, g)[d];
          o[d] = acc;
        }
      }
    }
}

#define SWIATTN_INSTANTIATE(T)                                                                   \
  template T attend_range_forward<T>(int64_t, T, const T*, const T*, const T*, int64_t, int64_t, \
                                     int64_t, T*);                                               \
  template void attend_range_backward<T>(int64_t, T, const T*, const T*, const T*, int64_t,      \
                                         int64_t, int64_t, const T*, T, const T*, T*, T*, T*);   \
  template void attention_forward<T>(const AttentionShape&, int64_t, const T*, const T*,         \
                                     const T*, T*, T*);                                          \
  template void attention_backward<T>(const AttentionShape&, int64_t, const T*, const T*,        \
                                      const T*, const T*, const T*, const T*, T*, T*, T*);       \
  template void attention_forward_reference<T>(const AttentionShape&, int64_t, const T*,         \
                                               const T*, const T*, T*);
SWIATTN_INSTANTIATE(float)
SWIATTN_INSTANTIATE(double)
#undef SWIATTN_INSTANTIATE

}  // namespace swiattn::cpu
