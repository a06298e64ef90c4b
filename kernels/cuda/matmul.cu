// kernels/cuda/matmul.cu: row-major products through cuBLAS's column-major GEMM.
//
// cuBLAS sees a row-major (r, c) matrix as the column-major (c, r) matrix, its transpose. So
// the row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the
// operands, keep each operand's transpose flag, and pass each one's stored row length as its
// leading dimension.
#include "kernels/cuda/matmul.h"

#include <cublas_v2.h>

#include <limits>
#include <mutex>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

static const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

#define SWIATTN_CUBLAS_CHECK(call)                                                        \
  do {                                                                                    \
    const cublasStatus_t status_ = (call);                                                \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::swiattn::cuda::throw_cuda_error(#call, cublas_status_name(status_), __FILE__, __LINE__); \
  } while (0)

// One handle for the process, created on first use (on the default stream). Never destroyed:
// its teardown at exit would race with the CUDA runtime's own.
static cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    SWIATTN_CUBLAS_CHECK(cublasCreate(&created));
    // No TF32 (the default math mode never trades mantissa bits), and no split-K partial sums
    // rounded to bfloat16: every reduction stays in float32.
    SWIATTN_CUBLAS_CHECK(cublasSetMathMode(
        created, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    return created;
  }();
  return h;
}

static int as_int(int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max())
    throw Error(std::string("matmul: ") + what + " = " + std::to_string(v) + " is out of cuBLAS's int range");
  return static_cast<int>(v);
}

void gemm(DType dtype, bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K,
          const void* A, int64_t a_stride, const void* B, int64_t b_stride, void* C,
          int64_t c_stride, int64_t batches, bool accumulate) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    throw Error(std::string("matmul: dtype ") + dtype_name(dtype) + " is not supported on CUDA (float32 or bfloat16)");
  if (M == 0 || N == 0 || batches == 0) return;
  const size_t elem = dtype_size(dtype);
  if (K == 0) {  // an empty sum: C = 0, or C unchanged when accumulating
    if (!accumulate)
      for (int64_t i = 0; i < (c_stride ? batches : 1); ++i)
        SWIATTN_CUDA_CHECK(cudaMemset(static_cast<char*>(C) + i * c_stride * elem, 0, size_t(M * N) * elem));
    return;
  }
  if (c_stride == 0 && batches > 1) {  // every entry adds into one C: in order, no race
    for (int64_t i = 0; i < batches; ++i)
      gemm(dtype, transpose_a, transpose_b, M, N, K, static_cast<const char*>(A) + i * a_stride * elem, 0,
           static_cast<const char*>(B) + i * b_stride * elem, 0, C, 0, 1, accumulate || i > 0);
    return;
  }
  const cudaDataType type = dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Column-major view: C^T (N, M) = op(B)^T (N, K) op(A)^T (K, M).
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = as_int(transpose_b ? K : N, "ldb"), lda = as_int(transpose_a ? M : K, "lda");
  SWIATTN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle(), op_b, op_a, as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha,
      B, type, ldb, b_stride, A, type, lda, a_stride, &beta,
      C, type, as_int(N, "ldc"), c_stride, as_int(batches, "batches"), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
  SWIATTN_CUDA_CHECK_LAUNCH("cublasGemmStridedBatchedEx");
}

}  // namespace swiattn::cuda
