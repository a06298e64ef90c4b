// model/router.cpp: the per-token router of a switch layer (model/router.h); the hard decision
// is kernels/routing.h (CPU: kernels/cpu/routing.cpp, CUDA: kernels/cuda/routing.cu).
#include "model/router.h"

#include "kernels/routing.h"

namespace swiattn {

Tensor hard_route(const Tensor& prob, double threshold) {
  Tensor m = Tensor::empty(prob.shape(), prob.dtype(), prob.device());
  kernels::hard_route(prob, threshold, m);  // m = [p > tau]
  return m;
}

void hard_route_into(const Tensor& prob, double threshold, const Tensor& route) {
  if (route.dtype() != DType::I32 || route.numel() != prob.numel())
    shape_error("hard_route_into", "route must be int32 with one entry per probability", prob, route);
  check_same_device("hard_route_into", prob, route);
  kernels::hard_route(prob, threshold, route);
}

RouterDecision route_tokens(const Var& input, const Var& weight, const Var& bias, double threshold) {
  const Tensor& X = input.value();
  check_ndim("router", X, 3, "(B, T, C)");
  RouterDecision r;
  r.logit = add(reshape(matmul(input, weight, false, true), {X.dim(0), X.dim(1)}), bias);  // s = w_r . x + b_r
  r.prob = sigmoid(r.logit);                                                                // Eq. 1
  r.route = hard_route(r.prob.value(), threshold);                                          // m = [p > tau]
  r.gate = add(Var(r.route), sub(r.prob, stop_gradient(r.prob)));                          // Eq. 2
  return r;
}

}  // namespace swiattn
