#include "kernels/cpu/norm.h"

#include <cmath>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace swiattn::cpu {

template <class T>
void rms_norm_forward(int64_t N, int64_t C, double eps, const T* x, const T* gain, T* y, T* inv_rms) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    double ms = 0.0;
    for (int64_t c = 0; c < C; ++c) ms += double(xr[c]) * xr[c];
    const T r = static_cast<T>(1.0 / std::sqrt(ms / C + eps));
    inv_rms[n] = r;
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = xr[c] * r * gain[c];
  }
}

template <class T>
void rms_norm_backward(int64_t N, int64_t C, const T* x, const T* gain, const T* inv_rms,
                       const T* dy, T* dx, T* dgain) {
  // y_c = xhat_c g_c with xhat = x r, r = (mean(x^2) + eps)^(-1/2).
  // dgain_c += sum_n dy_nc xhat_nc
  // dx_c    += r (g_c dy_c - xhat_c * mean_k(g_k dy_k xhat_k))
  if (dx) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = x + n * C;
      const T* dyr = dy + n * C;
      const T r = inv_rms[n];
      double dot = 0.0;  // sum_k g_k dy_k xhat_k
      for (int64_t c = 0; c < C; ++c) dot += double(gain[c]) * dyr[c] * xr[c] * r;
      const T mean_dot = static_cast<T>(dot / C);
      for (int64_t c = 0; c < C; ++c) dx[n * C + c] += r * (gain[c] * dyr[c] - xr[c] * r * mean_dot);
    }
  }
  if (dgain) {
    // Columns in parallel, rows in order: race-free and deterministic.
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
    for (int64_t c = 0; c < C; ++c) {
      double acc = 0.0;
      for (int64_t n = 0; n < N; ++n) acc += double(dy[n * C + c]) * x[n * C + c] * inv_rms[n];
      dgain[c] += static_cast<T>(acc);
    }
  }
}

template <class T>
void rope_apply(int64_t B, int64_t T_, int64_t H, int64_t D, double base, int64_t position_offset,
                const int32_t* row_positions, const T* x, T* y, bool inverse, bool accumulate) {
  const int64_t half = D / 2;
  // Inverse frequencies base^(-2i/D), computed once per call.
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(base, -2.0 * i / D);
  const double sign = inverse ? -1.0 : 1.0;
#pragma omp parallel for collapse(2) schedule(static) if (B * T_ * H * D > (1 << 15))
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T_; ++t) {
      const double pos = static_cast<double>(position_offset + (row_positions ? row_positions[b] : 0) + t);
      for (int64_t i = 0; i < half; ++i) {
        const T cs = static_cast<T>(std::cos(pos * inv_freq[i]));
        const T sn = static_cast<T>(sign * std::sin(pos * inv_freq[i]));
        for (int64_t h = 0; h < H; ++h) {
          const int64_t row = ((b * T_ + t) * H + h) * D;
          const T x1 = x[row + i], x2 = x[row + i + half];
          const T y1 = x1 * cs - x2 * sn;  // (y1, y2) = R(angle) (x1, x2)
          const T y2 = x1 * sn + x2 * cs;
          if (accumulate) {
            y[row + i] += y1;
            y[row + i + half] += y2;
          } else {
            y[row + i] = y1;
            y[row + i + half] = y2;
          }
        }
      }
    }
  }
}

template <class T>
void embedding_forward(int64_t N, int64_t V, int64_t C, const int32_t* ids, const T* weight, T* out) {
  for (int64_t n = 0; n < N; ++n)
    if (ids[n] < 0 || ids[n] >= V)
      throw Error("embedding: token id " + std::to_string(ids[n]) + " at position " +
                  std::to_string(n) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = weight[int64_t(ids[n]) * C + c];
}

template <class T>
void embedding_backward(int64_t N, int64_t C, const int32_t* ids, const T* dout, T* dweight) {
  // out[n] = weight[ids[n]]  =>  dweight[ids[n]] += dout[n]  (repeated ids accumulate; serial)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) dweight[int64_t(ids[n]) * C + c] += dout[n * C + c];
}

#define SWIATTN_INSTANTIATE(T)                                                                   \
  template void rms_norm_forward<T>(int64_t, int64_t, double, const T*, const T*, T*, T*);       \
  template void rms_norm_backward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*,   \
                                     T*, T*);                                                    \
  template void rope_apply<T>(int64_t, int64_t, int64_t, int64_t, double, int64_t, const int32_t*, \
                              const T*, T*, bool, bool);                                         \
  template void embedding_forward<T>(int64_t, int64_t, int64_t, const int32_t*, const T*, T*);   \
  template void embedding_backward<T>(int64_t, int64_t, const int32_t*, const T*, T*);
SWIATTN_INSTANTIATE(float)
SWIATTN_INSTANTIATE(double)
#undef SWIATTN_INSTANTIATE

}  // namespace swiattn::cpu
