#include "model/router.h"

#include "kernels/cuda/routing.h"

namespace swiattn {

Tensor hard_route(const Tensor& prob, double threshold) {
  Tensor m = Tensor::empty(prob.shape(), prob.dtype(), prob.device());
  if (prob.device() == Device::CUDA) {
    cuda::hard_route(prob, threshold, m);
    return m;
  }
  dispatch_float(prob.dtype(), "hard_route", [&](auto zero) {
    using T = decltype(zero);
    const T* p = prob.data<T>();
    T* out = m.data<T>();
    for (int64_t i = 0; i < prob.numel(); ++i) out[i] = p[i] > static_cast<T>(threshold) ? T(1) : T(0);
  });
  return m;
}

void hard_route_into(const Tensor& prob, double threshold, const Tensor& route) {
  if (route.dtype() != DType::I32 || route.numel() != prob.numel())
    shape_error("hard_route_into", "route must be int32 with one entry per probability", prob, route);
  check_same_device("hard_route_into", prob, route);
  if (prob.device() == Device::CUDA) return cuda::hard_route(prob, threshold, route);
  dispatch_float(prob.dtype(), "hard_route_into", [&](auto zero) {
    using T = decltype(zero);
    const T* p = prob.data<T>();
    int32_t* out = route.data<int32_t>();
    for (int64_t i = 0; i < prob.numel(); ++i) out[i] = p[i] > static_cast<T>(threshold) ? 1 : 0;
  });
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
