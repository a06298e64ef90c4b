// kernels/softmax.cpp: the device choice of softmax and cross-entropy (kernels/softmax.h):
// kernels/cuda/softmax.h for CUDA tensors (the loss stays on the device), kernels/cpu/softmax.h
// for CPU ones (the per-row losses summed on the host, in row order).
#include "kernels/softmax.h"

#include "kernels/cpu/softmax.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/softmax.h"

namespace swiattn::kernels {

void softmax_forward(const Tensor& x, const Tensor& y) {
  if (on_cuda(x)) return cuda::softmax_forward(x, y);
  const int64_t C = x.dim(-1), N = C ? x.numel() / C : 0;
  dispatch_float(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    cpu::softmax_forward<T>(N, C, x.data<T>(), y.data<T>());
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  if (on_cuda(y)) return cuda::softmax_backward(y, dy, dx);
  const int64_t C = y.dim(-1), N = C ? y.numel() / C : 0;
  dispatch_float(y.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    cpu::softmax_backward<T>(N, C, y.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  CrossEntropyForward f;
  f.nll = Tensor::empty({N}, statistics_dtype(logits), logits.device());
  f.lse = Tensor::empty({N}, statistics_dtype(logits), logits.device());
  if (on_cuda(logits)) {  // targets on either device; the mean stays on the device
    const int64_t counted = cuda::cross_entropy_forward(logits, targets, ignore_index, f.nll, f.lse);
    f.inv_count = counted ? 1.0 / static_cast<double>(counted) : 0.0;
    f.loss = Tensor::empty({}, logits.dtype(), Device::CUDA);
    cuda::sum_scaled(f.nll, f.inv_count, f.loss);
    return f;
  }
  const int64_t counted = dispatch_float(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    return cpu::cross_entropy_forward<T>(N, V, logits.data<T>(), targets.data<int32_t>(), ignore_index,
                                         f.nll.data<T>(), f.lse.data<T>());
  });
  f.inv_count = counted ? 1.0 / static_cast<double>(counted) : 0.0;
  double total = 0.0;  // the sum of the per-row losses, on the host
  for (int64_t n = 0; n < N; ++n) total += f.nll.at(n);
  f.loss = Tensor::scalar(total * f.inv_count, logits.dtype());
  return f;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int32_t ignore_index, const Tensor& lse,
                            const Tensor& dloss, double inv_count, const Tensor& dlogits) {
  if (on_cuda(logits))
    return cuda::cross_entropy_backward(logits, targets, ignore_index, lse, dloss, inv_count, dlogits);
  const int64_t N = logits.dim(0), V = logits.dim(1);
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    const Tensor dnll = Tensor::full({N}, dloss.item() * inv_count, logits.dtype());  // dloss / count per row
    cpu::cross_entropy_backward<T>(N, V, logits.data<T>(), targets.data<int32_t>(), ignore_index, lse.data<T>(),
                                   dnll.data<T>(), dlogits.data<T>());
  });
}

}  // namespace swiattn::kernels
