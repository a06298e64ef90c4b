// tensor/cuda/api.h: how the CUDA backend is declared to plain C++ code.
//
// The kernels live in kernels/cuda/*.cu, compiled by nvcc into the swiattn_cuda library, which
// defines SWIATTN_HAVE_CUDA for everything linked with it. Their headers are plain C++ (tensors
// and sizes in, no CUDA types), so tensor/ and autograd/ compile with g++ alone. Each function
// is declared through SWIATTN_CUDA_FUNCTION: with the backend, an ordinary declaration; without
// it (SWIATTN_CUDA=OFF), an inline body that throws. The throwing bodies are never reached in
// practice: no CUDA tensor can be created without the backend (Storage refuses), and every op
// takes its CUDA path only for CUDA tensors.
//
// Conventions of all kernels/cuda functions (stated once):
//   - Tensors are handles: an output passed as `const Tensor&` is written through.
//   - An undefined Tensor for a gradient means "that input needs no gradient".
//   - Backward functions ADD into gradients (+=), like the CPU kernels.
//   - float32 and bfloat16 storage; arithmetic in float32 (double where the CPU kernel uses
//     double: sums and the log-sum-exp of cross-entropy, RMSNorm's mean square). Statistics a
//     backward reads (log-sum-exp, 1/rms, the two branch outputs of switch attention) are kept
//     in float32 whatever the input dtype.
//   - Everything runs on the default stream of device 0, in order; results are read back by
//     copies, which wait for the kernels before them.
#pragma once

#include "tensor/tensor.h"

#ifdef SWIATTN_HAVE_CUDA
#define SWIATTN_CUDA_FUNCTION(...) __VA_ARGS__;
#else
#define SWIATTN_CUDA_FUNCTION(...)                                                      \
  [[noreturn]] inline __VA_ARGS__ {                                                     \
    throw ::swiattn::Error("cuda: the CUDA backend is not compiled in (SWIATTN_CUDA=OFF)"); \
  }
#endif
