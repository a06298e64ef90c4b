// kernels/cpu/optimizer.cpp: see kernels/cpu/optimizer.h. Each loop restates the line it computes.
#include "kernels/cpu/optimizer.h"

#include <cmath>

namespace swiattn::cpu {

template <class T>
void adamw_step(int64_t n, T* p, const T* g, T* m, T* v, double lr, double b1, double b2, double eps, double wd,
                double bias_correction1, double bias_correction2) {
  for (int64_t k = 0; k < n; ++k) {
    const double gk = g[k];
    const double mk = b1 * m[k] + (1.0 - b1) * gk;       // m = b1 m + (1 - b1) g
    const double vk = b2 * v[k] + (1.0 - b2) * gk * gk;  // v = b2 v + (1 - b2) g^2
    const double mhat = mk / bias_correction1;
    const double vhat = vk / bias_correction2;
    const double pk = p[k];
    // p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)
    p[k] = static_cast<T>(pk - lr * (mhat / (std::sqrt(vhat) + eps) + wd * pk));
    m[k] = static_cast<T>(mk);
    v[k] = static_cast<T>(vk);
  }
}

template <class T>
void add_sum_of_squares(int64_t n, const T* g, double& acc) {
  for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(g[k]) * static_cast<double>(g[k]);  // sum g^2
}

template <class T>
void scale_in_place(int64_t n, double factor, T* g) {
  for (int64_t k = 0; k < n; ++k) g[k] = static_cast<T>(static_cast<double>(g[k]) * factor);  // g *= factor
}

template <class T>
int64_t count_nonfinite(int64_t n, const T* x) {
  int64_t count = 0;
  for (int64_t k = 0; k < n; ++k) count += std::isfinite(x[k]) ? 0 : 1;
  return count;
}

#define SWIATTN_INSTANTIATE_OPTIMIZER(T)                                                                      \
  template void adamw_step<T>(int64_t, T*, const T*, T*, T*, double, double, double, double, double, double, \
                              double);                                                                        \
  template void add_sum_of_squares<T>(int64_t, const T*, double&);                                            \
  template void scale_in_place<T>(int64_t, double, T*);                                                       \
  template int64_t count_nonfinite<T>(int64_t, const T*);
SWIATTN_INSTANTIATE_OPTIMIZER(float)
SWIATTN_INSTANTIATE_OPTIMIZER(double)
#undef SWIATTN_INSTANTIATE_OPTIMIZER

}  // namespace swiattn::cpu
