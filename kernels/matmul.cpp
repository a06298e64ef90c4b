// kernels/matmul.cpp: the device choice of the batched matrix product (kernels/matmul.h): one
// strided-batched cuBLAS call for CUDA tensors, a loop of Eigen products for CPU ones.
#include "kernels/matmul.h"

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul.h"

namespace swiattn::kernels {

void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const Tensor& A, int64_t a_stride,
          const Tensor& B, int64_t b_stride, const Tensor& C, int64_t c_stride, int64_t batches, bool accumulate) {
  if (on_cuda(A))
    return cuda::gemm(A.dtype(), transpose_a, transpose_b, M, N, K, A.raw(), a_stride, B.raw(), b_stride, C.raw(),
                      c_stride, batches, accumulate);
  dispatch_float(A.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < batches; ++i)
      cpu::gemm<T>(transpose_a, transpose_b, M, N, K, A.data<T>() + i * a_stride, B.data<T>() + i * b_stride,
                   C.data<T>() + i * c_stride, accumulate);
  });
}

}  // namespace swiattn::kernels
