// kernels/cuda/routing.h: the router's hard decision and the regulariser's per-token weights on
// CUDA (spec §3 Eq. 1-2, §5 Eq. 8). The CPU versions are kernels/cpu/routing.h, both reached
// through kernels/routing.h (by hard_route in model/router.cpp, adaptive_gamma /
// efficiency_regularizer in train/regularizer.cpp); tests/test_cuda_train.cpp compares them.
// See tensor/cuda/api.h for the conventions.
#pragma once

#include <cstdint>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// m = 1 where p > threshold, else 0; p and m the same shape and dtype (float32 or bfloat16), or
// m int32 with p's element count (the form the decode attention reads its routes in).
SWIATTN_CUDA_FUNCTION(void hard_route(const Tensor& p, double threshold, const Tensor& m))

// Eq. 8: gamma = gamma_base / (eps + nll + alpha * diff), in double, stored as gamma's dtype.
// nll, diff, gamma have one element per token (float32 or bfloat16 each).
SWIATTN_CUDA_FUNCTION(void adaptive_gamma(const Tensor& nll, const Tensor& diff, double eps, double alpha,
                                          double gamma_base, const Tensor& gamma))

// The routing statistics of one switch layer, into stats (3) float64 on the device:
//   stats[0] = sum over (b, t) of m,  stats[1] = the same over t >= window,
//   stats[2] = sum of gamma (0 when gamma is undefined).
// route (B, T) and gamma (B, T): float32 or bfloat16. One block, fixed order: deterministic.
SWIATTN_CUDA_FUNCTION(void routing_sums(const Tensor& route, const Tensor& gamma, int64_t window,
                                        const Tensor& stats))

}  // namespace swiattn::cuda
