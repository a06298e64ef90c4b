// kernels/cuda/device.h: what CUDA devices this process can use.
// Without the CUDA backend compiled in (SWIATTN_CUDA=OFF) there are none.
#pragma once

#include <string>

namespace swiattn::cuda {

#ifdef SWIATTN_HAVE_CUDA
int device_count();                // 0 when no driver or no GPU is present (never throws)
std::string device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" or why there is none
#else
inline int device_count() { return 0; }
inline std::string device_description() { return "CUDA backend not compiled (SWIATTN_CUDA=OFF)"; }
#endif

}  // namespace swiattn::cuda
