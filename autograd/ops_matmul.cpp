// autograd/ops_matmul.cpp: the (batched) matrix product and its backward.
#include <string>

#include "autograd/ops.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul.h"

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

  const bool on_cuda = A.device() == Device::CUDA;
  if (on_cuda)  // cuBLAS: the `steps` products in one strided-batched call
    cuda::gemm(A.dtype(), transpose_a, transpose_b, rows, N, K, A.raw(), a_step, Bt.raw(), b_step, C.raw(), c_step,
               steps, false);
  else dispatch_float(A.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < steps; ++i)
      cpu::gemm<T>(transpose_a, transpose_b, rows, N, K, A.data<T>() + i * a_step,
                   Bt.data<T>() + i * b_step, C.data<T>() + i * c_step, false);
  });

  return make_op_result(OpId::Matmul, C, {a, b}, [=](const Tensor& dC) {
    // C = op(A) op(B)  =>  d op(A) = dC op(B)^T,  d op(B) = op(A)^T dC
    if (on_cuda) {  // the same products as below, batched; a shared b's dB (stride 0) sums in order
      const DType t = A.dtype();
      if (a.requires_grad()) {
        void* dA = a.grad_buffer().raw();
        if (!transpose_a) cuda::gemm(t, false, !transpose_b, rows, K, N, dC.raw(), c_step, Bt.raw(), b_step, dA, a_step, steps, true);
        else cuda::gemm(t, transpose_b, true, K, M, N, Bt.raw(), b_step, dC.raw(), c_step, dA, a_step, steps, true);
      }
      if (b.requires_grad()) {
        void* dB = b.grad_buffer().raw();
        if (!transpose_b) cuda::gemm(t, !transpose_a, false, K, N, rows, A.raw(), a_step, dC.raw(), c_step, dB, b_step, steps, true);
        else cuda::gemm(t, true, transpose_a, N, K, rows, dC.raw(), c_step, A.raw(), a_step, dB, b_step, steps, true);
      }
      return;
    }
    dispatch_float(A.dtype(), "matmul backward", [&](auto zero) {
      using T = decltype(zero);
      for (int64_t i = 0; i < steps; ++i) {
        const T* Ai = A.data<T>() + i * a_step;
        const T* Bi = Bt.data<T>() + i * b_step;
        const T* dCi = dC.data<T>() + i * c_step;
        if (a.requires_grad()) {
          T* dA = a.grad_buffer().data<T>() + i * a_step;
          if (!transpose_a) cpu::gemm<T>(false, !transpose_b, rows, K, N, dCi, Bi, dA, true);  // dA = dC op(B)^T
          else cpu::gemm<T>(transpose_b, true, K, M, N, Bi, dCi, dA, true);                     // dA = op(B) dC^T
        }
        if (b.requires_grad()) {
          T* dB = b.grad_buffer().data<T>() + i * b_step;  // a shared b sums over the batch
          if (!transpose_b) cpu::gemm<T>(!transpose_a, false, K, N, rows, Ai, dCi, dB, true);   // dB = op(A)^T dC
          else cpu::gemm<T>(true, transpose_a, N, K, rows, dCi, Ai, dB, true);                 // dB = dC^T op(A)
        }
      }
    });
  });
}

}  // namespace swiattn
