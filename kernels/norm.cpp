// kernels/norm.cpp: the device choice of the embedding, RMSNorm and RoPE (kernels/norm.h):
// kernels/cuda/norm.h for CUDA tensors, the loops of kernels/cpu/norm.h for CPU ones.
#include "kernels/norm.h"

#include "kernels/cpu/norm.h"
#include "kernels/cuda/norm.h"

namespace swiattn::kernels {

void embedding_forward(const Tensor& ids, const Tensor& weight, const Tensor& out) {
  if (on_cuda(weight)) return cuda::embedding_forward(ids, weight, out);
  const int64_t V = weight.dim(0), C = weight.dim(1);
  dispatch_float(weight.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    cpu::embedding_forward<T>(ids.numel(), V, C, ids.data<int32_t>(), weight.data<T>(), out.data<T>());
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight) {
  if (on_cuda(dweight)) return cuda::embedding_backward(ids, dout, dweight);
  dispatch_float(dweight.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    cpu::embedding_backward<T>(ids.numel(), dweight.dim(1), ids.data<int32_t>(), dout.data<T>(), dweight.data<T>());
  });
}

void rms_norm_forward(const Tensor& x, const Tensor& gain, double eps, const Tensor& y, const Tensor& inv_rms) {
  if (on_cuda(x)) return cuda::rms_norm_forward(x, gain, eps, y, inv_rms);
  const int64_t C = gain.dim(0), N = x.numel() / C;
  dispatch_float(x.dtype(), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    cpu::rms_norm_forward<T>(N, C, eps, x.data<T>(), gain.data<T>(), y.data<T>(), inv_rms.data<T>());
  });
}

void rms_norm_backward(const Tensor& x, const Tensor& gain, const Tensor& inv_rms, const Tensor& dy,
                       const Tensor& dx, const Tensor& dgain) {
  if (on_cuda(x)) return cuda::rms_norm_backward(x, gain, inv_rms, dy, dx, dgain);
  const int64_t C = gain.dim(0), N = x.numel() / C;
  dispatch_float(x.dtype(), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    cpu::rms_norm_backward<T>(N, C, x.data<T>(), gain.data<T>(), inv_rms.data<T>(), dy.data<T>(),
                              data_or_null<T>(dx), data_or_null<T>(dgain));
  });
}

void rope_apply(const Tensor& x, double base, int64_t position_offset, const Tensor& row_positions,
                const Tensor& y, bool inverse, bool accumulate) {
  if (on_cuda(x)) return cuda::rope_apply(x, base, position_offset, row_positions, y, inverse, accumulate);
  const int32_t* rows = row_positions.defined() ? row_positions.data<int32_t>() : nullptr;
  dispatch_float(x.dtype(), "rope", [&](auto zero) {
    using T = decltype(zero);
    cpu::rope_apply<T>(x.dim(0), x.dim(1), x.dim(2), x.dim(3), base, position_offset, rows, x.data<T>(),
                       y.data<T>(), inverse, accumulate);
  });
}

}  // namespace swiattn::kernels
