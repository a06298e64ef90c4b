// kernels/cuda/device.h: what CUDA devices this process can use.
// Without the CUDA backend compiled in (SWIATTN_CUDA=OFF) there are none.
#pragma once

#include <cstddef>
#include <string>

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
#else
inline int device_count() { return 0; }
inline std::string device_description() { return "CUDA backend not compiled (SWIATTN_CUDA=OFF)"; }
inline size_t total_memory_bytes() { return 0; }
inline void synchronize() {}
inline void set_debug_sync(bool) {}
#endif

}  // namespace swiattn::cuda
