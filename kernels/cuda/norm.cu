// kernels/cuda/norm.cu: RMSNorm, RoPE and the embedding lookup.
#include "kernels/cuda/norm.h"

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace swiattn::cuda {

constexpr int kRowThreads = 128;  // one block per row for the row-wise kernels

// ---------------------------------------------------------------------------------------------
// RMSNorm

template <class T>
__global__ void rms_norm_forward_kernel(int64_t C, double eps, const T* x, const T* gain, T* y, float* inv_rms) {
  const int64_t n = blockIdx.x;
  const T* xr = x + n * C;
  double ms = 0.0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const double v = to_float(xr[c]);
    ms += v * v;
  }
  ms = block_sum(ms);
  const float r = static_cast<float>(1.0 / sqrt(ms / C + eps));  // 1 / rms
  if (threadIdx.x == 0) inv_rms[n] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    y[n * C + c] = from_float<T>(to_float(xr[c]) * r * to_float(gain[c]));
}

void rms_norm_forward(const Tensor& x, const Tensor& gain, double eps, const Tensor& y, const Tensor& inv_rms) {
  const int64_t C = gain.numel(), N = C ? x.numel() / C : 0;
  if (N == 0) return;
  dispatch(x.dtype(), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    rms_norm_forward_kernel<<<N, kRowThreads>>>(C, eps, ptr<T>(x), ptr<T>(gain), ptr<T>(y), ptr<float>(inv_rms));
    SWIATTN_CUDA_CHECK_LAUNCH("rms_norm_forward");
  });
}

// y_c = xhat_c g_c with xhat = x r  =>  dx_c += r (g_c dy_c - xhat_c mean_k(g_k dy_k xhat_k))
template <class T>
__global__ void rms_norm_backward_dx_kernel(int64_t C, const T* x, const T* gain, const float* inv_rms,
                                            const T* dy, T* dx) {
  const int64_t n = blockIdx.x;
  const float r = inv_rms[n];
  double dot = 0.0;  // sum_k g_k dy_k xhat_k
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    dot += double(to_float(gain[c])) * to_float(dy[n * C + c]) * to_float(x[n * C + c]) * r;
  dot = block_sum(dot);
  const float mean_dot = static_cast<float>(dot / C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xc = to_float(x[n * C + c]);
    add_to(dx, n * C + c, r * (to_float(gain[c]) * to_float(dy[n * C + c]) - xc * r * mean_dot));
  }
}

// dgain_c += sum_n dy_nc x_nc r_n: a thread per column sums a chunk of rows in double and adds
// it into a double buffer (double atomics); one rounding when the buffer is added to dgain.
constexpr int kRowsPerChunk = 64;
template <class T>
__global__ void rms_norm_backward_dgain_kernel(int64_t N, int64_t C, const T* x, const float* inv_rms,
                                               const T* dy, double* dgain_sum) {
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;  // grid: (row chunks, column blocks)
  if (c >= C) return;
  const int64_t begin = int64_t(blockIdx.x) * kRowsPerChunk, end = min(N, begin + kRowsPerChunk);
  double acc = 0.0;
  for (int64_t n = begin; n < end; ++n) acc += double(to_float(dy[n * C + c])) * to_float(x[n * C + c]) * inv_rms[n];
  atomicAdd(dgain_sum + c, acc);
}

template <class T> __global__ void add_double_kernel(int64_t n, const double* src, T* dst) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) dst[i] = from_double<T>(double(to_float(dst[i])) + src[i]);
}

void rms_norm_backward(const Tensor& x, const Tensor& gain, const Tensor& inv_rms, const Tensor& dy,
                       const Tensor& dx, const Tensor& dgain) {
  const int64_t C = gain.numel(), N = C ? x.numel() / C : 0;
  if (N == 0) return;
  dispatch(x.dtype(), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    if (dx.defined()) {
      rms_norm_backward_dx_kernel<<<N, kRowThreads>>>(C, ptr<T>(x), ptr<T>(gain), ptr<float>(inv_rms), ptr<T>(dy), ptr<T>(dx));
      SWIATTN_CUDA_CHECK_LAUNCH("rms_norm_backward_dx");
    }
    if (dgain.defined()) {
      const Tensor sum = Tensor::zeros({C}, DType::F64, Device::CUDA);
      const dim3 grid(static_cast<unsigned>((N + kRowsPerChunk - 1) / kRowsPerChunk),
                      static_cast<unsigned>((C + kRowThreads - 1) / kRowThreads));
      rms_norm_backward_dgain_kernel<<<grid, kRowThreads>>>(N, C, ptr<T>(x), ptr<float>(inv_rms), ptr<T>(dy), ptr<double>(sum));
      SWIATTN_CUDA_CHECK_LAUNCH("rms_norm_backward_dgain");
      add_double_kernel<<<grid_for(C), kThreads>>>(C, ptr<double>(sum), ptr<T>(dgain));
      SWIATTN_CUDA_CHECK_LAUNCH("rms_norm_backward_dgain_add");
    }
  });
}

// ---------------------------------------------------------------------------------------------
// RoPE: one thread per rotated pair (x_i, x_{i+D/2}) of one (b, t, h).

template <class T>
__global__ void rope_kernel(int64_t T_, int64_t H, int64_t D, int64_t pairs, double base, int64_t position_offset,
                            const int32_t* row_positions, const T* x, T* y, bool inverse, bool accumulate) {
  const int64_t half = D / 2;
  SWIATTN_GRID_STRIDE_LOOP(idx, pairs) {
    const int64_t i = idx % half, bth = idx / half;  // bth = (b * T + t) * H + h
    const int64_t t = (bth / H) % T_, b = bth / (H * T_);
    const int64_t p = position_offset + (row_positions ? row_positions[b] : 0) + t;
    const double angle = double(p) * pow(base, -2.0 * double(i) / double(D));
    const float cs = static_cast<float>(cos(angle));
    const float sn = static_cast<float>((inverse ? -1.0 : 1.0) * sin(angle));
    const int64_t row = bth * D;
    const float x1 = to_float(x[row + i]), x2 = to_float(x[row + i + half]);
    const float y1 = x1 * cs - x2 * sn;  // (y1, y2) = R(angle) (x1, x2)
    const float y2 = x1 * sn + x2 * cs;
    if (accumulate) {
      add_to(y, row + i, y1);
      add_to(y, row + i + half, y2);
    } else {
      y[row + i] = from_float<T>(y1);
      y[row + i + half] = from_float<T>(y2);
    }
  }
}

void rope_apply(const Tensor& x, double base, int64_t position_offset, const Tensor& row_positions, const Tensor& y,
                bool inverse, bool accumulate) {
  const int64_t T_ = x.dim(1), H = x.dim(2), D = x.dim(3);
  const int64_t pairs = x.numel() / 2;
  if (row_positions.defined() &&
      (row_positions.device() != Device::CUDA || row_positions.dtype() != DType::I32 || row_positions.shape() != Shape{x.dim(0)}))
    throw Error("rope: row_positions must be int32 (B) = (" + std::to_string(x.dim(0)) + ") on the device, got " +
                shape_str(row_positions.shape()) + " " + dtype_name(row_positions.dtype()) + " on " +
                device_name(row_positions.device()));
  if (pairs == 0) return;
  dispatch(x.dtype(), "rope", [&](auto zero) {
    using T = decltype(zero);
    rope_kernel<<<grid_for(pairs), kThreads>>>(T_, H, D, pairs, base, position_offset, ptr<int32_t>(row_positions),
                                               ptr<T>(x), ptr<T>(y), inverse, accumulate);
    SWIATTN_CUDA_CHECK_LAUNCH("rope");
  });
}

// ---------------------------------------------------------------------------------------------
// Embedding

template <class T>
__global__ void embedding_forward_kernel(int64_t n, int64_t C, const int32_t* ids, const T* weight, T* out) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) out[i] = weight[int64_t(ids[i / C]) * C + i % C];
}

template <class T>
__global__ void embedding_backward_kernel(int64_t n, int64_t C, const int32_t* ids, const T* dout, float* dweight) {
  // out[n] = weight[ids[n]]  =>  dweight[ids[n]] += dout[n]  (repeated ids: atomics)
  SWIATTN_GRID_STRIDE_LOOP(i, n) atomicAdd(dweight + int64_t(ids[i / C]) * C + i % C, to_float(dout[i]));
}

void embedding_forward(const Tensor& ids, const Tensor& weight, const Tensor& out) {
  const int64_t V = weight.dim(0), C = weight.dim(1);
  const std::vector<int32_t> host = ids.to_ints();
  for (size_t n = 0; n < host.size(); ++n)
    if (host[n] < 0 || host[n] >= V)
      throw Error("embedding: token id " + std::to_string(host[n]) + " at position " + std::to_string(n) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
  if (out.numel() == 0) return;
  const Tensor dev = ids_on_device(ids);
  dispatch(weight.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    embedding_forward_kernel<<<grid_for(out.numel()), kThreads>>>(out.numel(), C, ptr<int32_t>(dev), ptr<T>(weight), ptr<T>(out));
    SWIATTN_CUDA_CHECK_LAUNCH("embedding_forward");
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight) {
  const int64_t C = dweight.dim(1);
  if (dout.numel() == 0) return;
  const Tensor dev = ids_on_device(ids);
  ScatterTarget target(dweight);
  dispatch(dout.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    embedding_backward_kernel<<<grid_for(dout.numel()), kThreads>>>(dout.numel(), C, ptr<int32_t>(dev), ptr<T>(dout), target.data());
    SWIATTN_CUDA_CHECK_LAUNCH("embedding_backward");
  });
  target.finish();
}

}  // namespace swiattn::cuda
