#include "tensor/cuda/timing.h"

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

// Reads every 16 bytes of the buffer (a flush that leaves L2 holding clean lines: a memset would
// leave dirty ones, whose write-back would then be charged to the timed kernel).
__global__ void read_flush_kernel(const uint4* p, int64_t n, unsigned* sink) {
  unsigned x = 0;
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    const uint4 v = p[i];
    x ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (x == 0x9e3779b9u) *sink = x;  // keeps the loads; the buffer is zeros, so never taken
}

int64_t l2_cache_bytes() {
  int device = 0, bytes = 0;
  SWIATTN_CUDA_CHECK(cudaGetDevice(&device));
  SWIATTN_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device));
  return bytes;
}

int multiprocessor_count() {
  int device = 0, sms = 0;
  SWIATTN_CUDA_CHECK(cudaGetDevice(&device));
  SWIATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

std::vector<double> time_device_ms(const std::function<void()>& f, int warmup, int reps, bool flush_l2) {
  Tensor scratch;  // twice the L2, read before each rep
  if (flush_l2) scratch = Tensor::zeros({l2_cache_bytes() / 2}, DType::I32, Device::CUDA);  // 2 x L2 bytes
  for (int i = 0; i < warmup; ++i) f();
  cudaEvent_t start, stop;
  SWIATTN_CUDA_CHECK(cudaEventCreate(&start));
  SWIATTN_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  try {
    for (int i = 0; i < reps; ++i) {
      if (flush_l2) {
        const int64_t n = static_cast<int64_t>(scratch.nbytes() / 16);
        read_flush_kernel<<<grid_for(n), kThreads>>>(static_cast<const uint4*>(scratch.raw()), n,
                                                     static_cast<unsigned*>(scratch.raw()));
        SWIATTN_CUDA_CHECK_LAUNCH("read_flush_kernel");
      }
      SWIATTN_CUDA_CHECK(cudaEventRecord(start));
      f();
      SWIATTN_CUDA_CHECK(cudaEventRecord(stop));
      SWIATTN_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0.0f;
      SWIATTN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
  } catch (...) {
    cudaEventDestroy(start), cudaEventDestroy(stop);
    throw;
  }
  SWIATTN_CUDA_CHECK(cudaEventDestroy(start));
  SWIATTN_CUDA_CHECK(cudaEventDestroy(stop));
  return ms;
}

}  // namespace swiattn::cuda
