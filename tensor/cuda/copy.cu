// tensor/cuda/copy.cu: host <-> device copies, fill, dtype conversion, and the float32 scatter
// buffer of common.cuh.
#include "tensor/cuda/copy.h"

#include <cmath>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  const cudaMemcpyKind kind =
      src_device == Device::CPU ? (dst_device == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice)
                                : (dst_device == Device::CPU ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice);
  SWIATTN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

// ---------------------------------------------------------------------------------------------
// fill

template <class T> __global__ void fill_kernel(int64_t n, T value, T* out) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) out[i] = value;
}

template <class T> static void launch_fill(const Tensor& t, T value) {
  fill_kernel<<<grid_for(t.numel()), kThreads>>>(t.numel(), value, ptr<T>(t));
  SWIATTN_CUDA_CHECK_LAUNCH("fill");
}

void fill(const Tensor& t, double value) {
  if (t.numel() == 0) return;
  // +0 is all-zero bytes in every dtype: the driver's memset (in stream order, like the kernels)
  // writes it at close to copy bandwidth; a fill kernel of one element per thread did not
  // (gradient buffers start as zeros: 1.1 ms of an 8 ms training step).
  if (value == 0.0 && !std::signbit(value)) {
    SWIATTN_CUDA_CHECK(cudaMemsetAsync(t.raw(), 0, t.numel() * dtype_size(t.dtype())));
    return;
  }
  switch (t.dtype()) {
    case DType::F32: return launch_fill<float>(t, static_cast<float>(value));
    case DType::F64: return launch_fill<double>(t, value);
    case DType::I32: return launch_fill<int32_t>(t, static_cast<int32_t>(value));
    case DType::BF16: {
      const bfloat16 b = bf16_from_double(value);  // the host conversion: same bits as the CPU
      return launch_fill<uint16_t>(t, b.bits);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// convert: through double, which holds float32 and bfloat16 exactly, so one rounding at most.

__device__ __forceinline__ double to_double(float x) { return x; }
__device__ __forceinline__ double to_double(double x) { return x; }
__device__ __forceinline__ double to_double(bf16 x) { return __bfloat162float(x); }
template <class D> __device__ __forceinline__ D cast_from_double(double x);
template <> __device__ __forceinline__ float cast_from_double<float>(double x) { return static_cast<float>(x); }
template <> __device__ __forceinline__ double cast_from_double<double>(double x) { return x; }
template <> __device__ __forceinline__ bf16 cast_from_double<bf16>(double x) { return __double2bfloat16(x); }

template <class D, class S> __global__ void convert_kernel(int64_t n, const S* src, D* dst) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) dst[i] = cast_from_double<D>(to_double(src[i]));
}

template <class F> static void dispatch_all_floats(DType dtype, F&& f) {
  if (dtype == DType::F32) return f(float{});
  if (dtype == DType::F64) return f(double{});
  if (dtype == DType::BF16) return f(bf16{});
  throw Error(std::string("convert: dtype ") + dtype_name(dtype) +
              " cannot be converted on CUDA (float32, float64 or bfloat16)");
}

void convert(const Tensor& src, const Tensor& dst) {
  if (src.numel() != dst.numel()) shape_error("convert", "sizes differ", src, dst);
  if (src.numel() == 0) return;
  dispatch_all_floats(src.dtype(), [&](auto s) {
    using S = decltype(s);
    dispatch_all_floats(dst.dtype(), [&](auto d) {
      using D = decltype(d);
      convert_kernel<D, S><<<grid_for(src.numel()), kThreads>>>(src.numel(), ptr<S>(src), ptr<D>(dst));
      SWIATTN_CUDA_CHECK_LAUNCH("convert");
    });
  });
}

}  // namespace swiattn::cuda
