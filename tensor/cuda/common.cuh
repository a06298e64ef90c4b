// tensor/cuda/common.cuh: what every kernels/cuda/*.cu file shares (nvcc only).
//   - SWIATTN_CUDA_CHECK(call): every CUDA runtime call; throws swiattn::Error naming the call,
//     the file, the line and cudaGetErrorString.
//   - SWIATTN_CUDA_CHECK_LAUNCH(name): after every kernel launch (cudaGetLastError, and a device
//     synchronisation too in debug-sync mode, see device.h).
//   - load/store between the storage types (float, __nv_bfloat16) and float32 arithmetic.
//   - dispatch(dtype): calls f(float{}) or f(bf16{}); float64 throws "not supported on CUDA".
//   - warp and block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace swiattn::cuda {

using bf16 = __nv_bfloat16;

[[noreturn]] void throw_cuda_error(const char* what, const char* why, const char* file, int line);
void check_launch(const char* kernel, const char* file, int line);
inline void check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(what, cudaGetErrorString(err), file, line);
}

#define SWIATTN_CUDA_CHECK(call) ::swiattn::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define SWIATTN_CUDA_CHECK_LAUNCH(name) ::swiattn::cuda::check_launch(name, __FILE__, __LINE__)

// ---- storage type <-> float32 ----
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }
template <class T> __device__ __forceinline__ T from_double(double x);
template <> __device__ __forceinline__ float from_double<float>(double x) { return static_cast<float>(x); }
template <> __device__ __forceinline__ bf16 from_double<bf16>(double x) { return __double2bfloat16(x); }
// p[i] += x with one rounding to the storage type (the caller owns element i).
template <class T> __device__ __forceinline__ void add_to(T* p, int64_t i, float x) {
  p[i] = from_float<T>(to_float(p[i]) + x);
}

// Typed device pointer of a CUDA tensor (nullptr for an undefined one).
template <class T> T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw()) : nullptr; }

template <class F>
void dispatch(DType dtype, const char* op, F&& f) {
  if (dtype == DType::F32) return f(float{});
  if (dtype == DType::BF16) return f(bf16{});
  throw Error(std::string(op) + ": dtype " + dtype_name(dtype) +
              " is not supported on CUDA (float32 or bfloat16 expected)");
}

// ---- launch shapes ----
constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements (n > 0).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < (int64_t(1) << 20) ? blocks : (int64_t(1) << 20));
}
#define SWIATTN_GRID_STRIDE_LOOP(i, n)                                           \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);    \
       i += int64_t(gridDim.x) * blockDim.x)

// ---- reductions ----
template <class A> __device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A> __device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max) over the whole block, returned to every thread. blockDim.x is a multiple of 32.
// Safe to call several times in a row (the barriers order the shared slots' reuse).
template <class A, bool kMax = false>
__device__ A block_reduce(A v) {
  __shared__ A partial[32];
  __shared__ A result;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    A w = lane < warps ? partial[lane] : partial[0];  // partial[0] is neutral for max
    if (!kMax && lane >= warps) w = A(0);
    w = kMax ? warp_max(w) : warp_sum(w);
    if (lane == 0) result = w;
  }
  __syncthreads();
  return result;
}
template <class A> __device__ A block_sum(A v) { return block_reduce<A, false>(v); }
template <class A> __device__ A block_max(A v) { return block_reduce<A, true>(v); }

}  // namespace swiattn::cuda
