// kernels/cuda/matmul.h: batched matrix products on CUDA through cuBLAS.
//
// C_i = op(A_i) op(B_i) (+ C_i) for i < batches, row-major, like cpu::gemm (kernels/cpu/matmul.h):
// op(A_i) is (M, K), op(B_i) (K, N), C_i (M, N); A is stored (M, K), or (K, M) when
// transpose_a; B (K, N), or (N, K) when transpose_b. Operand i starts `stride` elements after
// operand i-1; a stride of 0 shares one matrix (a linear layer's weight). A C stride of 0 means
// every batch entry adds into the same C (the weight gradient of a shared b): done as that many
// accumulating products in order, since a batched call would race on C.
// dtype float32 or bfloat16 (all three operands); the arithmetic is float32 either way
// (CUBLAS_COMPUTE_32F in the default math mode: no TF32; reductions
// never rounded to bfloat16).
#pragma once

#include <cstdint>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

SWIATTN_CUDA_FUNCTION(void gemm(DType dtype, bool transpose_a, bool transpose_b, int64_t M,
                                int64_t N, int64_t K, const void* A, int64_t a_stride,
                                const void* B, int64_t b_stride, void* C, int64_t c_stride,
                                int64_t batches, bool accumulate))

}  // namespace swiattn::cuda
