#include "tensor/cuda/device.h"

#include <cuda_runtime.h>

#include <atomic>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_description() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  if (n == 0) return "no CUDA device";
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "CUDA device 0: properties unavailable";
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.totalGlobalMem >> 30) + " GiB)";
}

size_t total_memory_bytes() {
  if (device_count() == 0) return 0;
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return p.totalGlobalMem;
}

// ---------------------------------------------------------------------------------------------
// Error checks (declared in common.cuh)

static std::atomic<bool> g_debug_sync{false};

void set_debug_sync(bool on) { g_debug_sync = on; }

static std::atomic<bool> g_deterministic{false};
void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }

static std::atomic<bool> g_float32_attention_in_bf16{false};
void set_float32_attention_in_bf16(bool on) { g_float32_attention_in_bf16 = on; }
bool float32_attention_in_bf16() { return g_float32_attention_in_bf16; }

void synchronize() { SWIATTN_CUDA_CHECK(cudaDeviceSynchronize()); }

void throw_cuda_error(const char* what, const char* why, const char* file, int line) {
  throw Error(std::string("cuda error at ") + file + ":" + std::to_string(line) + ": " + what +
              ": " + why);
}

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();  // a bad launch configuration shows here at once
  if (err == cudaSuccess && g_debug_sync) err = cudaDeviceSynchronize();  // a fault in the kernel
  if (err != cudaSuccess)
    throw_cuda_error((std::string("kernel ") + kernel).c_str(), cudaGetErrorString(err), file, line);
}

}  // namespace swiattn::cuda
