// kernels/cuda/device.h: what CUDA devices this process can use.
// Without the CUDA backend compiled in (SWIATTN_CUDA=OFF) there are none.
#pragma once

#include <string>

#include "tensor/tensor.h"

namespace swiattn::cuda {

#ifdef SWIATTN_HAVE_CUDA
int device_count();                // 0 when no driver or no GPU is present (never throws)
std::string device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" or why there is none
// Waits for all work queued on the device; throws Error on an asynchronous kernel error.
void synchronize();
// Debugging and tests: synchronise after every kernel launch, so that an error in a kernel is
// reported with that kernel's name, file and line instead of at the next copy.
void set_debug_sync(bool on);
#else
inline int device_count() { return 0; }
inline std::string device_description() { return "CUDA backend not compiled (SWIATTN_CUDA=OFF)"; }
inline void synchronize() {}
inline void set_debug_sync(bool) {}
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
