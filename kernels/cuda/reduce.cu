// kernels/cuda/reduce.cu: sum of all elements, its backward, and the two-dim transpose.
#include "kernels/cuda/reduce.h"

#include <utility>
#include <vector>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

constexpr int kSumBlocks = 256;  // fixed: the partial sums, and so the result, never vary

template <class T> __global__ void sum_partial_kernel(int64_t n, const T* x, double* partial) {
  double acc = 0.0;
  SWIATTN_GRID_STRIDE_LOOP(i, n) acc += to_float(x[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <class T> __global__ void sum_final_kernel(int blocks, const double* partial, double c, T* y) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) y[0] = from_double<T>(c * acc);
}

void sum_scaled(const Tensor& x, double c, const Tensor& y) {
  const Tensor partial = Tensor::zeros({kSumBlocks}, DType::F64, Device::CUDA);
  const int64_t n = x.numel();
  if (n > 0) {
    dispatch(x.dtype(), "sum", [&](auto zero) {
      using T = decltype(zero);
      sum_partial_kernel<<<kSumBlocks, kThreads>>>(n, ptr<T>(x), ptr<double>(partial));
      SWIATTN_CUDA_CHECK_LAUNCH("sum_partial");
    });
  }
  dispatch(y.dtype(), "sum", [&](auto zero) {
    using T = decltype(zero);
    sum_final_kernel<<<1, kThreads>>>(kSumBlocks, ptr<double>(partial), c, ptr<T>(y));
    SWIATTN_CUDA_CHECK_LAUNCH("sum_final");
  });
}

template <class T> __global__ void sum_backward_kernel(int64_t n, double c, const T* dy, T* dx) {
  const float g = static_cast<float>(c * to_float(dy[0]));  // y = c sum_i x_i  =>  dx_i += c dy
  SWIATTN_GRID_STRIDE_LOOP(i, n) add_to(dx, i, g);
}

void sum_scaled_backward(double c, const Tensor& dy, const Tensor& dx) {
  if (dx.numel() == 0) return;
  dispatch(dx.dtype(), "sum", [&](auto zero) {
    using T = decltype(zero);
    sum_backward_kernel<<<grid_for(dx.numel()), kThreads>>>(dx.numel(), c, ptr<T>(dy), ptr<T>(dx));
    SWIATTN_CUDA_CHECK_LAUNCH("sum_backward");
  });
}

// ---------------------------------------------------------------------------------------------
// transpose: thread i reads input element i, finds its multi-index, writes the output element
// whose index has dims d0 and d1 swapped.

constexpr int kMaxDims = 8;
struct TransposeIndex {
  int ndim;
  int64_t shape[kMaxDims];       // input shape
  int64_t out_stride[kMaxDims];  // stride in the output of each input dim
};

template <class T>
__global__ void transpose_kernel(TransposeIndex ix, int64_t n, const T* x, T* out, bool accumulate) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    int64_t rest = i, o = 0;
    for (int d = ix.ndim - 1; d >= 0; --d) {
      o += (rest % ix.shape[d]) * ix.out_stride[d];
      rest /= ix.shape[d];
    }
    if (accumulate) add_to(out, o, to_float(x[i]));
    else out[o] = x[i];
  }
}

void transpose_copy(const Shape& shape, int d0, int d1, const Tensor& x, const Tensor& out, bool accumulate) {
  const int n = static_cast<int>(shape.size());
  if (n > kMaxDims)
    throw Error("transpose: more than " + std::to_string(kMaxDims) + " dims are not supported on CUDA, shape " +
                shape_str(shape));
  Shape out_shape = shape;
  std::swap(out_shape[d0], out_shape[d1]);
  TransposeIndex ix{};
  ix.ndim = n;
  int64_t s = 1;
  std::vector<int64_t> stride_of_out_dim(n);
  for (int d = n; d-- > 0;) {
    stride_of_out_dim[d] = s;
    s *= out_shape[d];
  }
  for (int d = 0; d < n; ++d) {
    ix.shape[d] = shape[d];
    ix.out_stride[d] = stride_of_out_dim[d == d0 ? d1 : d == d1 ? d0 : d];
  }
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  dispatch(x.dtype(), "transpose", [&](auto zero) {
    using T = decltype(zero);
    transpose_kernel<<<grid_for(total), kThreads>>>(ix, total, ptr<T>(x), ptr<T>(out), accumulate);
    SWIATTN_CUDA_CHECK_LAUNCH("transpose");
  });
}

// ---- argmax per row (greedy decoding: only the token ids come back to the host) ----

// (value, index) pairs: the better one is the larger value, then the lower index; NaN wins
// everything (and is reported as index -1).
struct ArgMax {
  float value;
  int index;
  bool nan;
};
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  if (a.nan || b.nan) return {0.0f, a.nan ? a.index : b.index, true};
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

template <class T> __global__ void argmax_rows_kernel(int64_t V, const T* x, int32_t* out) {
  const T* row = x + int64_t(blockIdx.x) * V;
  ArgMax best{-INFINITY, INT32_MAX, false};
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = to_float(row[i]);
    best = better(best, {v, int(i), isnan(v)});
  }
  for (int o = 16; o > 0; o >>= 1) {  // within the warp
    const ArgMax other{__shfl_xor_sync(0xffffffffu, best.value, o), __shfl_xor_sync(0xffffffffu, best.index, o),
                       __shfl_xor_sync(0xffffffffu, int(best.nan), o) != 0};
    best = better(best, other);
  }
  __shared__ ArgMax warps[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warps[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w) best = better(best, warps[w]);
    out[blockIdx.x] = best.nan ? -1 : (best.index == INT32_MAX ? 0 : best.index);
  }
}

void argmax_rows(const Tensor& x, const Tensor& out) {
  if (x.ndim() != 2 || out.dtype() != DType::I32 || out.shape() != Shape{x.dim(0)})
    shape_error("argmax_rows", "x must be (N, V) and out int32 (N)", x, out);
  if (x.dim(1) >= INT32_MAX) throw Error("argmax_rows: rows of 2^31 or more elements are not supported");
  const int64_t N = x.dim(0);
  if (N == 0) return;
  if (N >= (int64_t(1) << 31)) throw Error("argmax_rows: too many rows");
  dispatch(x.dtype(), "argmax_rows", [&](auto zero) {
    using T = decltype(zero);
    argmax_rows_kernel<<<unsigned(N), kThreads>>>(x.dim(1), ptr<T>(x), ptr<int32_t>(out));
    SWIATTN_CUDA_CHECK_LAUNCH("argmax_rows");
  });
}

}  // namespace swiattn::cuda
