// kernels/cuda/norm.cu: RMSNorm, RoPE and the embedding lookup.
#include "kernels/cuda/norm.h"

#include <cmath>
#include <string>
#include <vector>

#include "tensor/cuda/common.cuh"

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

// dgain_c += sum_n dy_nc x_nc r_n in a fixed order (the same bits on every run): a thread per
// column sums a chunk of rows in double into partial[chunk][c]; then the chunks are summed in
// order, and rounded once when added to dgain.
constexpr int kRowsPerChunk = 64;
template <class T>
__global__ void rms_norm_backward_dgain_kernel(int64_t N, int64_t C, const T* x, const float* inv_rms,
                                               const T* dy, double* partial) {
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;  // grid: (row chunks, column blocks)
  if (c >= C) return;
  const int64_t begin = int64_t(blockIdx.x) * kRowsPerChunk, end = min(N, begin + kRowsPerChunk);
  double acc = 0.0;
  for (int64_t n = begin; n < end; ++n) acc += double(to_float(dy[n * C + c])) * to_float(x[n * C + c]) * inv_rms[n];
  partial[int64_t(blockIdx.x) * C + c] = acc;
}

template <class T> __global__ void add_chunks_kernel(int64_t C, int64_t chunks, const double* partial, T* dgain) {
  SWIATTN_GRID_STRIDE_LOOP(c, C) {
    double sum = 0.0;
    for (int64_t k = 0; k < chunks; ++k) sum += partial[k * C + c];
    dgain[c] = from_double<T>(double(to_float(dgain[c])) + sum);
  }
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
      const int64_t chunks = (N + kRowsPerChunk - 1) / kRowsPerChunk;
      const Tensor partial = Tensor::empty({chunks, C}, DType::F64, Device::CUDA);  // every element written
      const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>((C + kRowThreads - 1) / kRowThreads));
      rms_norm_backward_dgain_kernel<<<grid, kRowThreads>>>(N, C, ptr<T>(x), ptr<float>(inv_rms), ptr<T>(dy),
                                                            ptr<double>(partial));
      SWIATTN_CUDA_CHECK_LAUNCH("rms_norm_backward_dgain");
      add_chunks_kernel<<<grid_for(C), kThreads>>>(C, chunks, ptr<double>(partial), ptr<T>(dgain));
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

// out[n] = weight[ids[n]]  =>  dweight[ids[n]] += sum of dout[n] over the positions n with that id.
// The positions are grouped by id on the host (a counting sort, so ascending within an id):
// rows[u] is the u-th distinct id, its positions order[start[u]] .. order[start[u + 1] - 1].
// Block (u, column chunk): a thread per column sums its id's positions in that order in float32,
// then adds once into dweight: no atomics, the same bits on every run.
template <class T>
__global__ void embedding_backward_kernel(int64_t C, const int32_t* rows, const int32_t* start, const int32_t* order,
                                          const T* dout, T* dweight) {
  const int64_t u = blockIdx.x, c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int32_t k = start[u]; k < start[u + 1]; ++k) acc += to_float(dout[int64_t(order[k]) * C + c]);
  add_to(dweight, int64_t(rows[u]) * C + c, acc);
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
  const int64_t V = dweight.dim(0), C = dweight.dim(1);
  if (dout.numel() == 0 || C == 0) return;
  if (dout.dtype() != dweight.dtype())
    throw Error(std::string("embedding: gradient dtypes differ: dout ") + dtype_name(dout.dtype()) + ", dweight " +
                dtype_name(dweight.dtype()));
  // Group the positions by id (counting sort): [rows (U) | start (U + 1) | order (N)] in one upload.
  const std::vector<int32_t> id = ids.to_ints();  // on the host already when the loader made them
  const int64_t N = static_cast<int64_t>(id.size());
  if (N >= (int64_t(1) << 31)) throw Error("embedding: 2^31 or more positions are not supported on CUDA");
  std::vector<int32_t> begin(size_t(V) + 1, 0);  // begin[v]: where id v's positions start in `order`
  for (int64_t n = 0; n < N; ++n) {
    if (id[n] < 0 || id[n] >= V)
      throw Error("embedding: token id " + std::to_string(id[n]) + " at position " + std::to_string(n) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
    ++begin[size_t(id[n]) + 1];
  }
  for (int64_t v = 0; v < V; ++v) begin[size_t(v) + 1] += begin[size_t(v)];
  std::vector<int32_t> packed;  // rows, then start, then order
  for (int64_t v = 0; v < V; ++v)
    if (begin[size_t(v) + 1] > begin[size_t(v)]) packed.push_back(int32_t(v));
  const int64_t U = static_cast<int64_t>(packed.size());
  for (int64_t u = 0; u < U; ++u) packed.push_back(begin[size_t(packed[size_t(u)])]);
  packed.push_back(int32_t(N));
  packed.resize(size_t(2 * U + 1 + N));
  for (int64_t n = 0; n < N; ++n) packed[size_t(2 * U + 1 + begin[size_t(id[n])]++)] = int32_t(n);  // ascending n
  const Tensor dev = Tensor::from_ints(packed, {int64_t(packed.size())}).to_device();
  const int32_t* base = ptr<int32_t>(dev);
  dispatch(dout.dtype(), "embedding", [&](auto zero) {
    using T = decltype(zero);
    const dim3 grid(unsigned(U), unsigned((C + kRowThreads - 1) / kRowThreads));
    embedding_backward_kernel<<<grid, kRowThreads>>>(C, base, base + U, base + 2 * U + 1, ptr<T>(dout), ptr<T>(dweight));
    SWIATTN_CUDA_CHECK_LAUNCH("embedding_backward");
  });
}

}  // namespace swiattn::cuda
