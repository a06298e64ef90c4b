// kernels/cpu/routing.cpp: see kernels/cpu/routing.h. Each loop restates the line it computes.
#include "kernels/cpu/routing.h"

namespace swiattn::cpu {

template <class T, class M>
void hard_route(int64_t n, const T* p, double threshold, M* m) {
  for (int64_t i = 0; i < n; ++i) m[i] = p[i] > static_cast<T>(threshold) ? M(1) : M(0);  // m = [p > tau]
}

template <class T>
void adaptive_gamma(int64_t n, const T* nll, const T* diff, double eps, double alpha, double gamma_base, T* gamma) {
  for (int64_t i = 0; i < n; ++i)  // gamma = gamma_base / (eps + NLL + alpha ||O_FULL - O_SWA||^2)
    gamma[i] = static_cast<T>(gamma_base / (eps + double(nll[i]) + alpha * double(diff[i])));
}

template <class T>
void routing_sums(int64_t B, int64_t T_, const T* route, const T* gamma, int64_t window, double* stats) {
  double routed = 0.0, routed_late = 0.0, gamma_sum = 0.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      const double m = route[b * T_ + t];
      routed += m;
      if (t >= window) routed_late += m;
    }
  if (gamma)
    for (int64_t i = 0; i < B * T_; ++i) gamma_sum += gamma[i];
  stats[0] = routed;
  stats[1] = routed_late;
  stats[2] = gamma_sum;
}

#define SWIATTN_INSTANTIATE_ROUTING(T)                                                            \
  template void hard_route<T, T>(int64_t, const T*, double, T*);                                  \
  template void hard_route<T, int32_t>(int64_t, const T*, double, int32_t*);                      \
  template void adaptive_gamma<T>(int64_t, const T*, const T*, double, double, double, T*);       \
  template void routing_sums<T>(int64_t, int64_t, const T*, const T*, int64_t, double*);
SWIATTN_INSTANTIATE_ROUTING(float)
SWIATTN_INSTANTIATE_ROUTING(double)
#undef SWIATTN_INSTANTIATE_ROUTING

}  // namespace swiattn::cpu
