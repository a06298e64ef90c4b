// kernels/routing.h: the backend-neutral entries of the router's hard decision and the
// regulariser's per-token arithmetic (kernels/backend.h). CPU: kernels/cpu/routing.h; CUDA:
// kernels/cuda/routing.h. model/router.cpp and train/regularizer.cpp keep the algorithm.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace swiattn::kernels {

// m = 1 where p > threshold, else 0: m of p's shape and dtype, or int32 with p's element count.
void hard_route(const Tensor& p, double threshold, const Tensor& m);

// Eq. 8: gamma (one per token) = gamma_base / (eps + nll + alpha * diff), detached;
// statistics_dtype(diff) (float32 on CUDA; on the CPU nll and diff share a dtype).
Tensor adaptive_gamma(const Tensor& nll, const Tensor& diff, double eps, double alpha, double gamma_base);

// One switch layer's routing statistics into stats (3) float64 on route's device (stays there on
// CUDA until read): { sum of m, sum of m over t >= window, sum of gamma (0 when undefined) };
// route and gamma (B, T).
void routing_sums(const Tensor& route, const Tensor& gamma, int64_t window, const Tensor& stats);

}  // namespace swiattn::kernels
