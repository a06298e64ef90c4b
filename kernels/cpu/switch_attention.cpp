#include "kernels/cpu/switch_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace swiattn::cpu {

template <class T>
void switch_attention_forward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                              const T* v, const T* gate, bool both_branches, T* out, T* o_full,
                              T* o_swa, T* lse_full, T* lse_swa) {
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const int64_t key_stride = s.Hkv * s.D;
#pragma omp parallel
  {
    std::vector<T> o_far(s.D);  // the far part's output, per thread
#pragma omp for collapse(3) schedule(dynamic, 16)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.Hq; ++h) {
          const int64_t row = (b * s.T + t) * s.Hq + h;
          const int64_t kv = b * s.T * key_stride + (h / s.group()) * s.D;
          const T g = gate[b * s.T + t];
          T* of = o_full + row * s.D;
          T* os = o_swa + row * s.D;
          // Window part [lo, t]: this is O_SWA.
          const int64_t lo = window_first_key(t, window);
          const T l_win = attend_range_forward(s.D, scale, q + row * s.D, k + kv, v + kv, key_stride, lo, t, os);
          lse_swa[row] = l_win;
          const bool has_far = lo > 0 && (both_branches || g != T(0));
          if (!has_far) {  // t < w: both branches read the same keys (or O_FULL is not needed)
            for (int64_t d = 0; d < s.D; ++d) of[d] = os[d];
            lse_full[row] = l_win;
          } else {
            // Far part [0, lo - 1], merged with the window part by their log-sum-exps.
            const T l_far = attend_range_forward(s.D, scale, q + row * s.D, k + kv, v + kv, key_stride,
                                                 int64_t(0), lo - 1, o_far.data());
            const T mx = std::max(l_win, l_far);
            const T a = std::exp(l_win - mx), c = std::exp(l_far - mx);
            for (int64_t d = 0; d < s.D; ++d) of[d] = (a * os[d] + c * o_far[d]) / (a + c);
            lse_full[row] = mx + std::log(a + c);
          }
          T* o = out + row * s.D;
          for (int64_t d = 0; d < s.D; ++d) o[d] = g * of[d] + (T(1) - g) * os[d];  // Eq. 6
        }
  }
}

template <class T>
void switch_attention_forward_two_pass(const AttentionShape& s, int64_t window, const T* q,
                                       const T* k, const T* v, const T* gate, T* out, T* o_full,
                                       T* o_swa, T* lse_full, T* lse_swa) {
  attention_forward(s, 0, q, k, v, o_full, lse_full);     // Eq. 4: O_FULL
  attention_forward(s, window, q, k, v, o_swa, lse_swa);  // Eq. 5: O_SWA
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t) {
      const T g = gate[b * s.T + t];
      for (int64_t i = (b * s.T + t) * s.Hq * s.D; i < (b * s.T + t + 1) * s.Hq * s.D; ++i)
        out[i] = g * o_full[i] + (T(1) - g) * o_swa[i];  // Eq. 6
    }
}

template <class T>
void switch_attention_backward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                               const T* v, const T* gate, const T* o_full, const T* o_swa,
                               const T* lse_full, const T* lse_swa, const T* dout, T* dq, T* dk,
                               T* dv, T* dgate) {
  const T scale = static_cast<T>(1.0 / std::sqrt(double(s.D)));
  const int64_t key_stride = s.Hkv * s.D;
  const int64_t row_size = s.Hq * s.D;  // one token's heads, concatenated

  // dgate_t = sum over heads, dims of dout_t (O_FULL_t - O_SWA_t): the router's signal.
  if (dgate) {
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < s.B * s.T; ++bt) {
      T acc = 0;
      for (int64_t i = bt * row_size; i < (bt + 1) * row_size; ++i) acc += dout[i] * (o_full[i] - o_swa[i]);
      dgate[bt] += acc;
    }
  }

  // Each branch's attention backward, with its share of dout. Threads own (b, kv head) slices.
#pragma omp parallel
  {
    std::vector<T> d_full(s.D), d_swa(s.D);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.Hkv; ++g) {
        const int64_t kv = b * s.T * key_stride + g * s.D;
        for (int64_t h = g * s.group(); h < (g + 1) * s.group(); ++h)
          for (int64_t t = 0; t < s.T; ++t) {
            const int64_t row = (b * s.T + t) * s.Hq + h;
            const T gt = gate[b * s.T + t];
            for (int64_t d = 0; d < s.D; ++d) {
              d_full[d] = gt * dout[row * s.D + d];          // out = gate O_FULL + ...
              d_swa[d] = (T(1) - gt) * dout[row * s.D + d];  //     ... + (1 - gate) O_SWA
            }
            const T* qr = q + row * s.D;
            T* dqr = dq + row * s.D;
            if (gt != T(0))
              attend_range_backward(s.D, scale, qr, k + kv, v + kv, key_stride, int64_t(0), t,
                                    o_full + row * s.D, lse_full[row], d_full.data(), dqr, dk + kv, dv + kv);
            if (gt != T(1))
              attend_range_backward(s.D, scale, qr, k + kv, v + kv, key_stride, window_first_key(t, window), t,
                                    o_swa + row * s.D, lse_swa[row], d_swa.data(), dqr, dk + kv, dv + kv);
          }
      }
  }
}

template <class T>
void branch_difference_sq(const AttentionShape& s, const T* o_full, const T* o_swa, T* diff_sq) {
  const int64_t row_size = s.Hq * s.D;
  for (int64_t bt = 0; bt < s.B * s.T; ++bt) {
    T acc = 0;
    for (int64_t i = bt * row_size; i < (bt + 1) * row_size; ++i) acc += (o_full[i] - o_swa[i]) * (o_full[i] - o_swa[i]);
    diff_sq[bt] = acc;
  }
}

#define SWIATTN_INSTANTIATE(T)                                                                   \
  template void switch_attention_forward<T>(const AttentionShape&, int64_t, const T*, const T*,  \
                                            const T*, const T*, bool, T*, T*, T*, T*, T*);       \
  template void switch_attention_forward_two_pass<T>(const AttentionShape&, int64_t, const T*,   \
                                                     const T*, const T*, const T*, T*, T*, T*,   \
                                                     T*, T*);                                    \
  template void switch_attention_backward<T>(const AttentionShape&, int64_t, const T*, const T*, \
                                             const T*, const T*, const T*, const T*, const T*,   \
                                             const T*, const T*, T*, T*, T*, T*);                \
  template void branch_difference_sq<T>(const AttentionShape&, const T*, const T*, T*);
SWIATTN_INSTANTIATE(float)
SWIATTN_INSTANTIATE(double)
#undef SWIATTN_INSTANTIATE

}  // namespace swiattn::cpu
