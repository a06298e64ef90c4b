#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tensor/tensor.h"

namespace swiattn::cpu {

template <class T> void softmax_forward(int64_t N, int64_t C, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    T* yr = y + n * C;
    const T mx = *std::max_element(xr, xr + C);  // subtract the max: exp never overflows
    T total = 0;
    for (int64_t c = 0; c < C; ++c) total += (yr[c] = std::exp(xr[c] - mx));
    for (int64_t c = 0; c < C; ++c) yr[c] /= total;
  }
}

template <class T> void softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx) {
  // y = softmax(x)  =>  dx_c += y_c (dy_c - sum_k y_k dy_k)
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    const T* yr = y + n * C;
    const T* dyr = dy + n * C;
    T dot = 0;
    for (int64_t c = 0; c < C; ++c) dot += yr[c] * dyr[c];
    for (int64_t c = 0; c < C; ++c) dx[n * C + c] += yr[c] * (dyr[c] - dot);
  }
}

template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                              int32_t ignore_index, T* nll, T* lse) {
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    if (targets[n] < 0 || targets[n] >= V)
      throw Error("cross_entropy: target " + std::to_string(targets[n]) + " at row " +
                  std::to_string(n) + " is outside [0, " + std::to_string(V) +
                  ") and is not the ignore index " + std::to_string(ignore_index));
    ++counted;
  }
#pragma omp parallel for schedule(static) if (N * V > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    const T* row = logits + n * V;
    const T mx = *std::max_element(row, row + V);
    double total = 0.0;
    for (int64_t v = 0; v < V; ++v) total += std::exp(double(row[v] - mx));
    lse[n] = static_cast<T>(mx + std::log(total));
    nll[n] = targets[n] == ignore_index ? T(0) : lse[n] - row[targets[n]];
  }
  return counted;
}

template <class T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                            int32_t ignore_index, const T* lse, const T* dnll, T* dlogits) {
  // nll = lse(x) - x_y  =>  dx_v += dnll (softmax_v - [v == y])
#pragma omp parallel for schedule(static) if (N * V > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    const T* row = logits + n * V;
    T* drow = dlogits + n * V;
    for (int64_t v = 0; v < V; ++v) drow[v] += dnll[n] * std::exp(row[v] - lse[n]);
    drow[targets[n]] -= dnll[n];
  }
}

#define SWIATTN_INSTANTIATE(T)                                                                     \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*);                                \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*);                     \
  template int64_t cross_entropy_forward<T>(int64_t, int64_t, const T*, const int32_t*, int32_t,   \
                                            T*, T*);                                               \
  template void cross_entropy_backward<T>(int64_t, int64_t, const T*, const int32_t*, int32_t,     \
                                          const T*, const T*, T*);
SWIATTN_INSTANTIATE(float)
SWIATTN_INSTANTIATE(double)
#undef SWIATTN_INSTANTIATE

}  // namespace swiattn::cpu
