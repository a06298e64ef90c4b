// model/router.h: the per-token router of a switch layer (spec §3, Eq. 1-2).
//
//   s_t     = w_r . input_t + b_r                  router logit, (B, T)
//   p_t     = sigmoid(s_t)                         Eq. 1, soft gate
//   m_t     = 1 if p_t > tau else 0                hard route: 1 = full attention
//   sigma_t = m_t + p_t - stopgrad(p_t)            Eq. 2, straight-through estimator
//
// sigma's value is exactly m_t (p - p = 0 in floating point), and its gradient is dL/dp_t:
// the router learns from dL/dsigma_t = sum over heads and dims of dL/dO_t * (O_FULL_t - O_SWA_t).
#pragma once

#include "autograd/ops.h"

namespace swiattn {

struct RouterDecision {
  Var logit;     // s_t (B, T)
  Var prob;      // p_t (B, T)
  Tensor route;  // m_t (B, T), 0 or 1, constant
  Var gate;      // sigma_t (B, T): the value m_t, the gradient of p_t
};

// input (B, T, C); weight (1, C); bias (1); threshold tau in (0, 1).
RouterDecision route_tokens(const Var& input, const Var& weight, const Var& bias, double threshold);

// m_t = 1 where p_t > tau, else 0 (same shape and dtype as p).
Tensor hard_route(const Tensor& prob, double threshold);
// The same decision written into `route`: int32 0 / 1, p's element count, on p's device (the
// form the KV-cache attention reads a layer's routes in: model/kv_cache.h).
void hard_route_into(const Tensor& prob, double threshold, const Tensor& route);

}  // namespace swiattn
