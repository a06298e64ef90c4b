// kernels/optimizer.cpp: the device choice of the optimizer's arithmetic (kernels/optimizer.h):
// kernels/cuda/optimizer.h for CUDA tensors, kernels/cpu/optimizer.h for CPU ones.
#include "kernels/optimizer.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/optimizer.h"
#include "kernels/cuda/optimizer.h"

namespace swiattn::kernels {

void adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr, double b1, double b2,
                double eps, double wd, double bias_correction1, double bias_correction2) {
  if (on_cuda(p)) return cuda::adamw_step(p, g, m, v, lr, b1, b2, eps, wd, bias_correction1, bias_correction2);
  dispatch_float(p.dtype(), "AdamW.step", [&](auto zero) {
    using T = decltype(zero);
    cpu::adamw_step<T>(p.numel(), p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), lr, b1, b2, eps, wd,
                       bias_correction1, bias_correction2);
  });
}

Tensor grad_norm_and_clip_factor(const std::vector<Tensor>& grads, double max_norm, Device device) {
  if (device == Device::CUDA) {  // each grad's sum of squares into its slot, then the norm and factor there
    const int64_t slots = static_cast<int64_t>(std::max<size_t>(grads.size(), 1));
    const Tensor sums = Tensor::zeros({slots}, DType::F64, Device::CUDA);
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined()) cuda::sum_of_squares(grads[i], sums, static_cast<int64_t>(i));
    const Tensor norm_and_factor = Tensor::empty({2}, DType::F64, Device::CUDA);
    cuda::grad_norm_and_clip_factor(sums, max_norm, norm_and_factor);
    return norm_and_factor;
  }
  double sum_of_squares = 0.0;  // over grads and elements, in order
  for (const Tensor& g : grads) {
    if (!g.defined()) continue;
    dispatch_float(g.dtype(), "global_grad_norm", [&](auto zero) {
      using T = decltype(zero);
      cpu::add_sum_of_squares<T>(g.numel(), g.data<T>(), sum_of_squares);
    });
  }
  const double norm = std::sqrt(sum_of_squares);
  const bool clip = max_norm > 0 && std::isfinite(norm) && norm > max_norm;
  return Tensor::from_vector({norm, clip ? max_norm / norm : 1.0}, {2}, DType::F64);  // g *= max_norm / norm
}

void scale_by_clip_factor(const Tensor& g, const Tensor& norm_and_factor) {
  if (on_cuda(g)) return cuda::scale_by_clip_factor(g, norm_and_factor);
  const double factor = norm_and_factor.at(1);
  if (factor == 1.0) return;
  dispatch_float(g.dtype(), "clip_grad_norm", [&](auto zero) {
    using T = decltype(zero);
    cpu::scale_in_place<T>(g.numel(), factor, g.data<T>());
  });
}

void count_nonfinite(const Tensor& x, const Tensor& counts, int64_t slot) {
  if (on_cuda(x)) return cuda::count_nonfinite(x, counts, slot);
  const int64_t n = dispatch_float(x.dtype(), "all_finite", [&](auto zero) {
    using T = decltype(zero);
    return cpu::count_nonfinite<T>(x.numel(), x.data<T>());
  });
  counts.data<int32_t>()[slot] += static_cast<int32_t>(std::min<int64_t>(n, INT32_MAX));
}

void count_nonfinite_each(const std::vector<Tensor>& xs, const Tensor& counts) {
  if (static_cast<int64_t>(xs.size()) > counts.numel())
    throw Error("count_nonfinite: " + std::to_string(xs.size()) + " tensors for " + shape_str(counts.shape()) + " counts");
  if (on_cuda(counts)) return cuda::count_nonfinite_each(xs, counts);
  for (size_t i = 0; i < xs.size(); ++i) count_nonfinite(xs[i], counts, static_cast<int64_t>(i));
}

}  // namespace swiattn::kernels
