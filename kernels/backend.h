// kernels/backend.h: what every backend-neutral kernel entry (kernels/*.h) shares.
//
// The seam. Each op family has one header here (kernels/norm.h, kernels/attention.h, ...) whose
// functions take Tensors, look at the device ONCE, and call either the CPU reference
// (kernels/cpu/, templated loops on raw pointers: dispatch_float picks float or double) or the
// CUDA kernel (kernels/cuda/, Tensors in). autograd/, model/ and train/ call only these entries,
// so an op reads as its math and the plumbing lives here.
//
// Conventions (those of kernels/cuda, tensor/cuda/api.h):
//   - Tensors are handles: an output passed as `const Tensor&` is written through.
//   - An undefined Tensor for a gradient means "that input needs no gradient".
//   - Backward entries ADD into gradients (+=).
#pragma once

#include "tensor/tensor.h"

namespace swiattn::kernels {

inline bool on_cuda(const Tensor& t) { return t.device() == Device::CUDA; }

// The dtype of the statistics a backward reads (1/rms, log-sum-exp, per-row losses, the branch
// outputs of switch attention): float32 on CUDA whatever the input dtype, the input's own on the
// CPU (float32 or float64).
inline DType statistics_dtype(const Tensor& input) { return on_cuda(input) ? DType::F32 : input.dtype(); }

// The float dtypes a backend holds (what a cast may convert between): float32 and bfloat16 on both;
// float64 on the CPU only. (The CPU stores bfloat16 but computes in float32 / float64; CUDA
// computes in float32 / bfloat16.)
inline bool holds_float_dtype(Device device, DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || (dtype == DType::F64 && device == Device::CPU);
}

// The CPU kernels' "null = no gradient": t's data, or nullptr for an undefined tensor.
template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace swiattn::kernels
