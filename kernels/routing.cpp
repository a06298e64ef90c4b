// kernels/routing.cpp: the device choice of the routing and regulariser kernels
// (kernels/routing.h): kernels/cuda/routing.h for CUDA tensors, kernels/cpu/routing.h for CPU ones.
#include "kernels/routing.h"

#include "kernels/cpu/routing.h"
#include "kernels/cuda/routing.h"

namespace swiattn::kernels {

void hard_route(const Tensor& p, double threshold, const Tensor& m) {
  if (on_cuda(p)) return cuda::hard_route(p, threshold, m);
  dispatch_float(p.dtype(), "hard_route", [&](auto zero) {
    using T = decltype(zero);
    if (m.dtype() == DType::I32) cpu::hard_route<T, int32_t>(p.numel(), p.data<T>(), threshold, m.data<int32_t>());
    else cpu::hard_route<T, T>(p.numel(), p.data<T>(), threshold, m.data<T>());
  });
}

Tensor adaptive_gamma(const Tensor& nll, const Tensor& diff, double eps, double alpha, double gamma_base) {
  Tensor gamma = Tensor::empty(diff.shape(), statistics_dtype(diff), diff.device());
  if (on_cuda(diff)) {  // float32 gamma whatever the inputs' dtype
    cuda::adaptive_gamma(nll, diff, eps, alpha, gamma_base, gamma);
    return gamma;
  }
  check_same_dtype("adaptive_gamma", nll, diff);
  dispatch_float(gamma.dtype(), "adaptive_gamma", [&](auto zero) {
    using T = decltype(zero);
    cpu::adaptive_gamma<T>(gamma.numel(), nll.data<T>(), diff.data<T>(), eps, alpha, gamma_base, gamma.data<T>());
  });
  return gamma;
}

void routing_sums(const Tensor& route, const Tensor& gamma, int64_t window, const Tensor& stats) {
  if (on_cuda(route)) return cuda::routing_sums(route, gamma, window, stats);
  if (gamma.defined()) check_same_dtype("routing_sums", route, gamma);
  dispatch_float(route.dtype(), "routing_sums", [&](auto zero) {
    using T = decltype(zero);
    cpu::routing_sums<T>(route.dim(0), route.dim(1), route.data<T>(), data_or_null<T>(gamma), window,
                         stats.data<double>());
  });
}

}  // namespace swiattn::kernels
