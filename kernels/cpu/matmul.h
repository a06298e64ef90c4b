// kernels/cpu/matmul.h: one 2-D matrix product, C = op(A) op(B) (+ C), row-major.
//
// op(X) is X or X^T. Sizes are those of the product: op(A) is (M, K), op(B) is (K, N), C is
// (M, N). A is stored (M, K), or (K, M) when transpose_a; B is stored (K, N), or (N, K) when
// transpose_b. With accumulate, C += op(A) op(B) (the backward pass's += convention); otherwise
// C = op(A) op(B).
#pragma once

#include <cstdint>

namespace swiattn::cpu {

// Eigen's blocked GEMM (multi-threaded by OpenMP when called outside a parallel region).
template <class T>
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const T* A,
          const T* B, T* C, bool accumulate);

// The same product as three plain loops: the readable definition gemm() is tested against.
template <class T>
void gemm_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K,
                    const T* A, const T* B, T* C, bool accumulate);

}  // namespace swiattn::cpu
