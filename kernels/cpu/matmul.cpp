#include "kernels/cpu/matmul.h"

#include <Eigen/Core>

namespace swiattn::cpu {

template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const T* A,
          const T* B, T* C, bool accumulate) {
  // Stored shapes; Eigen applies the transposes without copying.
  Eigen::Map<const RowMajor<T>> a(A, transpose_a ? K : M, transpose_a ? M : K);
  Eigen::Map<const RowMajor<T>> b(B, transpose_b ? N : K, transpose_b ? K : N);
  Eigen::Map<RowMajor<T>> c(C, M, N);
  auto write = [&](const auto& product) {
    if (accumulate) c.noalias() += product;
    else c.noalias() = product;
  };
  if (!transpose_a && !transpose_b) write(a * b);
  if (!transpose_a && transpose_b) write(a * b.transpose());
  if (transpose_a && !transpose_b) write(a.transpose() * b);
  if (transpose_a && transpose_b) write(a.transpose() * b.transpose());
}

template <class T>
void gemm_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K,
                    const T* A, const T* B, T* C, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a_ik = transpose_a ? A[k * M + i] : A[i * K + k];
        const T b_kj = transpose_b ? B[j * K + k] : B[k * N + j];
        acc += a_ik * b_kj;
      }
      C[i * N + j] = accumulate ? C[i * N + j] + acc : acc;
    }
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*, bool);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, const double*, double*, bool);
template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*, bool);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, const double*, const double*, double*, bool);

}  // namespace swiattn::cpu
