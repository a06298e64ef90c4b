// kernels/cuda/softmax.cu: softmax and cross-entropy, one block per row.
#include "kernels/cuda/softmax.h"

#include <cmath>

#include "tensor/cuda/common.cuh"
#include "kernels/cuda/norm.h"

namespace swiattn::cuda {

constexpr int kRowThreads = 128;

template <class T> __global__ void softmax_forward_kernel(int64_t C, const T* x, T* y) {
  const T* xr = x + int64_t(blockIdx.x) * C;
  T* yr = y + int64_t(blockIdx.x) * C;
  float mx = -INFINITY;  // subtract the max: exp never overflows
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, to_float(xr[c]));
  mx = block_max(mx);
  float total = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) total += expf(to_float(xr[c]) - mx);
  total = block_sum(total);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = from_float<T>(expf(to_float(xr[c]) - mx) / total);
}

template <class T> __global__ void softmax_backward_kernel(int64_t C, const T* y, const T* dy, T* dx) {
  // y = softmax(x)  =>  dx_c += y_c (dy_c - sum_k y_k dy_k)
  const int64_t row = int64_t(blockIdx.x) * C;
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += to_float(y[row + c]) * to_float(dy[row + c]);
  dot = block_sum(dot);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    add_to(dx, row + c, to_float(y[row + c]) * (to_float(dy[row + c]) - dot));
}

void softmax_forward(const Tensor& x, const Tensor& y) {
  const int64_t C = x.dim(-1), N = C ? x.numel() / C : 0;
  if (N == 0) return;
  dispatch(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_forward_kernel<<<N, kRowThreads>>>(C, ptr<T>(x), ptr<T>(y));
    SWIATTN_CUDA_CHECK_LAUNCH("softmax_forward");
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const int64_t C = y.dim(-1), N = C ? y.numel() / C : 0;
  if (N == 0) return;
  dispatch(y.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_kernel<<<N, kRowThreads>>>(C, ptr<T>(y), ptr<T>(dy), ptr<T>(dx));
    SWIATTN_CUDA_CHECK_LAUNCH("softmax_backward");
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy: nll[n] = logsumexp(logits[n, :]) - logits[n, target[n]]

template <class T>
__global__ void cross_entropy_forward_kernel(int64_t V, const T* logits, const int32_t* targets, int32_t ignore_index,
                                             float* nll, float* lse) {
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, to_float(row[v]));
  mx = block_max(mx);
  double total = 0.0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) total += exp(double(to_float(row[v]) - mx));
  total = block_sum(total);
  if (threadIdx.x == 0) {
    const float l = static_cast<float>(mx + log(total));
    lse[n] = l;
    nll[n] = targets[n] == ignore_index ? 0.0f : l - to_float(row[targets[n]]);
  }
}

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, int32_t ignore_index, const Tensor& nll,
                              const Tensor& lse) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  const std::vector<int32_t> host = targets.to_ints();
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (host[n] == ignore_index) continue;
    if (host[n] < 0 || host[n] >= V)
      throw Error("cross_entropy: target " + std::to_string(host[n]) + " at row " + std::to_string(n) +
                  " is outside [0, " + std::to_string(V) + ") and is not the ignore index " +
                  std::to_string(ignore_index));
    ++counted;
  }
  if (N == 0) return counted;
  const Tensor dev = ids_on_device(targets);
  dispatch(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_forward_kernel<<<N, kRowThreads>>>(V, ptr<T>(logits), ptr<int32_t>(dev), ignore_index,
                                                     ptr<float>(nll), ptr<float>(lse));
    SWIATTN_CUDA_CHECK_LAUNCH("cross_entropy_forward");
  });
  return counted;
}

// nll = lse(x) - x_y  =>  dx_v += dnll (softmax_v - [v == y]), dnll = dloss / counted
template <class T>
__global__ void cross_entropy_backward_kernel(int64_t n_total, int64_t V, const T* logits, const int32_t* targets,
                                              int32_t ignore_index, const float* lse, const T* dloss, double scale,
                                              T* dlogits) {
  const float dnll = static_cast<float>(scale * to_float(dloss[0]));
  SWIATTN_GRID_STRIDE_LOOP(i, n_total) {
    const int64_t n = i / V, v = i % V;
    if (targets[n] == ignore_index) continue;
    const float p = expf(to_float(logits[i]) - lse[n]);
    add_to(dlogits, i, dnll * (p - (v == targets[n] ? 1.0f : 0.0f)));
  }
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int32_t ignore_index, const Tensor& lse,
                            const Tensor& dloss, double scale, const Tensor& dlogits) {
  if (logits.numel() == 0) return;
  const Tensor dev = ids_on_device(targets);
  dispatch(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_kernel<<<grid_for(logits.numel()), kThreads>>>(
        logits.numel(), logits.dim(1), ptr<T>(logits), ptr<int32_t>(dev), ignore_index, ptr<float>(lse),
        ptr<T>(dloss), scale, ptr<T>(dlogits));
    SWIATTN_CUDA_CHECK_LAUNCH("cross_entropy_backward");
  });
}

}  // namespace swiattn::cuda
