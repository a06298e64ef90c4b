// kernels/cpu/routing.h: the router's hard decision (spec §3) and the regulariser's per-token
// arithmetic (spec §5, Eq. 8 and the sums behind Eq. 7 / 9's statistics), on the CPU: the
// reference of kernels/cuda/routing.h (tests/test_cuda_train.cpp compares the two).
#pragma once

#include <cstdint>

namespace swiattn::cpu {

// m_i = 1 where p_i > threshold, else 0, for n probabilities; M is p's type or int32_t (the
// form the KV-cache attention reads its routes in).
template <class T, class M>
void hard_route(int64_t n, const T* p, double threshold, M* m);

// Eq. 8: gamma_i = gamma_base / (eps + nll_i + alpha * diff_i), in double, rounded to T once.
template <class T>
void adaptive_gamma(int64_t n, const T* nll, const T* diff, double eps, double alpha, double gamma_base, T* gamma);

// The routing statistics of one switch layer, route and gamma (B, T) (gamma null: none):
//   stats[0] = sum over (b, t) of m,  stats[1] = the same over t >= window,
//   stats[2] = sum of gamma (0 without gamma); in double, in index order.
template <class T>
void routing_sums(int64_t B, int64_t T_, const T* route, const T* gamma, int64_t window, double* stats);

}  // namespace swiattn::cpu
