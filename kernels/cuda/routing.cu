// kernels/cuda/routing.cu: hard route, adaptive gamma, routing sums (routing.h).
#include "kernels/cuda/routing.h"

#include <type_traits>

#include "kernels/cpu/window.h"
#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

template <class T, class M> __global__ void hard_route_kernel(int64_t n, const T* p, float threshold, M* m) {
  // m = [p > tau], compared in float32 (the CPU compares in the tensor's dtype: float32 here)
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    const bool full = to_float(p[i]) > threshold;
    if constexpr (std::is_same_v<M, int32_t>) m[i] = full ? 1 : 0;
    else m[i] = from_float<M>(full ? 1.0f : 0.0f);
  }
}

void hard_route(const Tensor& p, double threshold, const Tensor& m) {
  if (p.numel() != m.numel()) shape_error("hard_route", "one route per probability", p, m);
  if (m.dtype() != DType::I32) {
    check_same_shape("hard_route", p, m);
    check_same_dtype("hard_route", p, m);
  }
  if (p.numel() == 0) return;
  dispatch(p.dtype(), "hard_route", [&](auto zero) {
    using T = decltype(zero);
    if (m.dtype() == DType::I32)
      hard_route_kernel<<<grid_for(p.numel()), kThreads>>>(p.numel(), ptr<T>(p), static_cast<float>(threshold), ptr<int32_t>(m));
    else
      hard_route_kernel<<<grid_for(p.numel()), kThreads>>>(p.numel(), ptr<T>(p), static_cast<float>(threshold), ptr<T>(m));
    SWIATTN_CUDA_CHECK_LAUNCH("hard_route");
  });
}

template <class N, class D, class G>
__global__ void adaptive_gamma_kernel(int64_t n, const N* nll, const D* diff, double eps, double alpha,
                                      double gamma_base, G* gamma) {
  // Eq. 8: gamma = gamma_base / (eps + NLL + alpha ||O_FULL - O_SWA||^2)
  SWIATTN_GRID_STRIDE_LOOP(i, n)
  gamma[i] = from_double<G>(gamma_base / (eps + double(to_float(nll[i])) + alpha * double(to_float(diff[i]))));
}

void adaptive_gamma(const Tensor& nll, const Tensor& diff, double eps, double alpha, double gamma_base,
                    const Tensor& gamma) {
  if (nll.numel() != gamma.numel() || diff.numel() != gamma.numel())
    shape_error("adaptive_gamma", "one NLL and one branch difference per token", nll, diff);
  if (gamma.numel() == 0) return;
  dispatch(nll.dtype(), "adaptive_gamma", [&](auto n0) {
    dispatch(diff.dtype(), "adaptive_gamma", [&](auto d0) {
      dispatch(gamma.dtype(), "adaptive_gamma", [&](auto g0) {
        using N = decltype(n0);
        using D = decltype(d0);
        using G = decltype(g0);
        adaptive_gamma_kernel<<<grid_for(gamma.numel()), kThreads>>>(gamma.numel(), ptr<N>(nll), ptr<D>(diff), eps,
                                                                     alpha, gamma_base, ptr<G>(gamma));
        SWIATTN_CUDA_CHECK_LAUNCH("adaptive_gamma");
      });
    });
  });
}

template <class R, class G>
__global__ void routing_sums_kernel(int64_t B, int64_t T, const R* route, const G* gamma, int64_t window,
                                    double* stats) {
  double routed = 0.0, routed_late = 0.0, gamma_sum = 0.0;
  for (int64_t i = threadIdx.x; i < B * T; i += blockDim.x) {
    const double m = to_float(route[i]);
    routed += m;
    if (window_has_far_keys(i % T, window)) routed_late += m;
    if (gamma) gamma_sum += to_float(gamma[i]);
  }
  routed = block_sum(routed);
  routed_late = block_sum(routed_late);
  gamma_sum = block_sum(gamma_sum);
  if (threadIdx.x == 0) {
    stats[0] = routed;
    stats[1] = routed_late;
    stats[2] = gamma_sum;
  }
}

void routing_sums(const Tensor& route, const Tensor& gamma, int64_t window, const Tensor& stats) {
  if (route.ndim() != 2) throw Error("routing_sums: route must be (B, T), got " + shape_str(route.shape()));
  if (gamma.defined()) check_same_shape("routing_sums", route, gamma);
  if (stats.dtype() != DType::F64 || stats.numel() != 3 || stats.device() != Device::CUDA)
    throw Error("routing_sums: stats must be a float64 CUDA tensor of 3 elements");
  const DType gamma_dtype = gamma.defined() ? gamma.dtype() : route.dtype();
  dispatch(route.dtype(), "routing_sums", [&](auto r0) {
    dispatch(gamma_dtype, "routing_sums", [&](auto g0) {
      using R = decltype(r0);
      using G = decltype(g0);
      routing_sums_kernel<<<1, 1024>>>(route.dim(0), route.dim(1), ptr<R>(route), ptr<G>(gamma), window,
                                       ptr<double>(stats));
      SWIATTN_CUDA_CHECK_LAUNCH("routing_sums");
    });
  });
}

}  // namespace swiattn::cuda
