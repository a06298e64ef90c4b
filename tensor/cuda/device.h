// tensor/cuda/device.h: what CUDA devices this process can use.
// Without the CUDA backend compiled in (SWIATTN_CUDA=OFF) there are none.
#pragma once

#include <cstddef>
#include <string>

#include "tensor/tensor.h"

namespace swiattn::cuda {

#ifdef SWIATTN_HAVE_CUDA
int device_count();                // 0 when no driver or no GPU is present (never throws)
std::string device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" or why there is none
size_t total_memory_bytes();       // device 0's global memory; 0 when there is no device (never throws)
// Waits for all work queued on the device; throws Error on an asynchronous kernel error.
void synchronize();
// Debugging and tests: synchronise after every kernel launch, so that an error in a kernel is
// reported with that kernel's name, file and line instead of at the next copy.
void set_debug_sync(bool on);
// Deterministic mode (train.deterministic, docs/cuda.md "Deterministic training"): every kernel
// whose floating-point sums could otherwise run in a varying order (the attention backward's dq,
// which adds partial sums from many CTAs) takes a fixed-order path, so that two runs on the same
// GPU give the same bits. The other reductions of the training step are in a fixed order always.
// Off by default (the fixed order costs memory and a little time: docs/perf.md).
void set_deterministic(bool on);
bool deterministic();
// Float32 attention on the bfloat16 tensor-core kernels (train.float32_attention "bfloat16",
// docs/cuda.md "Fast float32 attention"): the attention and switch-attention ops of float32
// CUDA tensors round q, k, v (and the gate) to bfloat16, keep their outputs and statistics in
// float32, and add bfloat16 gradients into the float32 ones. Off by default (exact float32).
void set_float32_attention_in_bf16(bool on);
bool float32_attention_in_bf16();
#else
inline int device_count() { return 0; }
inline std::string device_description() { return "CUDA backend not compiled (SWIATTN_CUDA=OFF)"; }
inline size_t total_memory_bytes() { return 0; }
inline void synchronize() {}
inline void set_debug_sync(bool) {}
inline void set_deterministic(bool) {}
inline bool deterministic() { return false; }
inline void set_float32_attention_in_bf16(bool) {}
inline bool float32_attention_in_bf16() { return false; }
#endif

// Throws a plain Error when no CUDA device can be used ("<what>: no CUDA device here (<why>); use
// --device cpu"): called before anything slow (reading the data, loading a checkpoint).
inline void require_cuda_device(const std::string& what) {
#ifdef SWIATTN_HAVE_CUDA
  if (device_count() > 0) return;
  std::string why = device_description();
  if (why.rfind("no CUDA device: ", 0) == 0) why = why.substr(16);
  else if (why == "no CUDA device") why = "the driver reports none";
  throw Error(what + ": no CUDA device here (" + why + "); use --device cpu");
#else
  throw Error(what + ": this swiattn was built without CUDA (SWIATTN_CUDA=OFF: no nvcc when CMake configured); "
              "use --device cpu, or rebuild with nvcc installed");
#endif
}

}  // namespace swiattn::cuda
