// kernels/matmul.h: the backend-neutral entry of the matrix product (kernels/backend.h).
// CPU: cpu::gemm (kernels/cpu/matmul.h, Eigen); CUDA: cuda::gemm (kernels/cuda/matmul.h, cuBLAS).
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace swiattn::kernels {

// C_i = op(A_i) op(B_i) (+ C_i with accumulate) for i < batches, row-major: op(A_i) is (M, K),
// op(B_i) (K, N), C_i (M, N); A is stored (M, K), or (K, M) when transpose_a; B (K, N), or
// (N, K) when transpose_b. Operand i starts `stride` elements after operand i - 1: a stride of 0
// shares one matrix, and a C stride of 0 adds every product into the same C, in order of i.
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const Tensor& A, int64_t a_stride,
          const Tensor& B, int64_t b_stride, const Tensor& C, int64_t c_stride, int64_t batches, bool accumulate);

}  // namespace swiattn::kernels
