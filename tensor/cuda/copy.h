// tensor/cuda/copy.h: moving and converting bytes: host <-> device copies, fill, dtype casts.
// Tensor (tensor/tensor.cpp) calls these for its CUDA storage.
#pragma once

#include <cstddef>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// cudaMemcpy between any two devices (host or CUDA); waits until the copy is done.
SWIATTN_CUDA_FUNCTION(void copy_bytes(void* dst, Device dst_device, const void* src,
                                      Device src_device, size_t bytes))
// Every element of the CUDA tensor t = value (float32, float64, bfloat16 or int32).
SWIATTN_CUDA_FUNCTION(void fill(const Tensor& t, double value))
// dst = src converted, both on CUDA, same number of elements, each float32, float64 or
// bfloat16. One rounding, to nearest even (the same bits as the CPU conversion).
SWIATTN_CUDA_FUNCTION(void convert(const Tensor& src, const Tensor& dst))

}  // namespace swiattn::cuda
