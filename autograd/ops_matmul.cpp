// autograd/ops_matmul.cpp: the (batched) matrix product and its backward (kernels/matmul.h:
// Eigen on the CPU, cuBLAS on CUDA).
#include <string>

#include "autograd/ops.h"
#include "kernels/matmul.h"

namespace swiattn {

Var matmul(const Var& a, const Var& b, bool transpose_a, bool transpose_b) {
  const Tensor& A = a.value();
  const Tensor& Bt = b.value();
  check_float_any_device("matmul", A);
  check_float_any_device("matmul", Bt);
  check_same_device("matmul", A, Bt);
  check_same_dtype("matmul", A, Bt);
  if (A.ndim() < 2 || Bt.ndim() < 2) shape_error("matmul", "operands must have at least 2 dims", A, Bt);
  const bool b_shared = Bt.ndim() == 2 && A.ndim() > 2;  // one matrix for every batch entry
  if (!b_shared && A.ndim() != Bt.ndim()) shape_error("matmul", "batch dims differ", A, Bt);
  const int64_t M = transpose_a ? A.dim(-1) : A.dim(-2);
  const int64_t K = transpose_a ? A.dim(-2) : A.dim(-1);
  const int64_t Kb = transpose_b ? Bt.dim(-1) : Bt.dim(-2);
  const int64_t N = transpose_b ? Bt.dim(-2) : Bt.dim(-1);
  if (K != Kb) shape_error("matmul", "inner dimensions differ", A, Bt);
  Shape batch(A.shape().begin(), A.shape().end() - 2);
  if (!b_shared && Shape(Bt.shape().begin(), Bt.shape().end() - 2) != batch)
    shape_error("matmul", "batch dims differ", A, Bt);
  const int64_t batches = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor C = Tensor::empty(out_shape, A.dtype(), A.device());

  // With a shared b and no transpose of a, the batch folds into M: one large product.
  const bool fold = b_shared && !transpose_a;
  const int64_t rows = fold ? batches * M : M;
  const int64_t steps = fold ? 1 : batches;
  const int64_t a_step = M * K, b_step = b_shared ? 0 : K * N, c_step = M * N;

  kernels::gemm(transpose_a, transpose_b, rows, N, K, A, a_step, Bt, b_step, C, c_step, steps, false);
  return make_op_result(OpId::Matmul, C, {a, b}, [=, da = GradSlot(a), db = GradSlot(b)](const Tensor& dC) {
    // C = op(A) op(B)  =>  d op(A) = dC op(B)^T,  d op(B) = op(A)^T dC, per batch entry; a shared
    // b's dB (stride 0) sums over the batch, in order.
    if (da.required()) {
      const Tensor& dA = da.buffer();
      if (!transpose_a)  // dA = dC op(B)^T
        kernels::gemm(false, !transpose_b, rows, K, N, dC, c_step, Bt, b_step, dA, a_step, steps, true);
      else  // dA = op(B) dC^T
        kernels::gemm(transpose_b, true, K, M, N, Bt, b_step, dC, c_step, dA, a_step, steps, true);
    }
    if (db.required()) {
      const Tensor& dB = db.buffer();
      if (!transpose_b)  // dB = op(A)^T dC
        kernels::gemm(!transpose_a, false, K, N, rows, A, a_step, dC, c_step, dB, b_step, steps, true);
      else  // dB = dC^T op(A)
        kernels::gemm(true, transpose_a, N, K, rows, dC, c_step, A, a_step, dB, b_step, steps, true);
    }
  });
}

}  // namespace swiattn
