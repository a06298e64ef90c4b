// autograd/ops_elementwise.cpp: broadcasting add / sub / mul, scale, and the pointwise
// nonlinearities (sigmoid, SiLU, softplus, the SwiGLU product).
// The arithmetic is behind the backend-neutral entries of kernels/elementwise.h (CPU:
// kernels/cpu/elementwise.h, CUDA: kernels/cuda/elementwise.h: same formulas, same plan).
#include "autograd/ops.h"
#include "kernels/elementwise.h"

namespace swiattn {

static Var binary_op(OpId op, kernels::BinaryKind kind, const Var& a, const Var& b) {
  const char* name = op_name(op);
  const Tensor& A = a.value();
  const Tensor& B = b.value();
  check_float_any_device(name, A);
  check_float_any_device(name, B);
  check_same_device(name, A, B);
  check_same_dtype(name, A, B);
  const kernels::BroadcastPlan plan = kernels::plan_broadcast(name, A.shape(), B.shape());
  Tensor out = Tensor::empty(plan.out, A.dtype(), A.device());
  kernels::binary_forward(kind, plan, A, B, out);
  // Only mul's backward reads the operands; add and sub keep neither (they can be freed).
  const bool reads_operands = kind == kernels::BinaryKind::Mul;
  const Tensor saved_a = reads_operands ? A : Tensor(), saved_b = reads_operands ? B : Tensor();
  return make_op_result(op, out, {a, b},
                        [=, da = GradSlot(a), db = GradSlot(b)](const Tensor& dout) {
    // add: da += dout, db += dout;  sub: db -= dout;  mul: da += dout b, db += dout a
    kernels::binary_backward(kind, plan, saved_a, saved_b, dout, da.if_required(), db.if_required());
  });
}

Var add(const Var& a, const Var& b) { return binary_op(OpId::Add, kernels::BinaryKind::Add, a, b); }
Var sub(const Var& a, const Var& b) { return binary_op(OpId::Sub, kernels::BinaryKind::Sub, a, b); }
Var mul(const Var& a, const Var& b) { return binary_op(OpId::Mul, kernels::BinaryKind::Mul, a, b); }

Var scale(const Var& x, double c) {
  const Tensor& X = x.value();
  check_float_any_device("scale", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::scale_forward(c, X, y);
  return make_op_result(OpId::Scale, y, {x}, [c, dx = GradSlot(x)](const Tensor& dy) {
    // y = c x  =>  dx += c dy
    kernels::scale_backward(c, dy, dx.buffer());
  });
}

Var sigmoid(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("sigmoid", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::sigmoid_forward(X, y);
  return make_op_result(OpId::Sigmoid, y, {x}, [X, y, dx = GradSlot(x)](const Tensor& dy) {
    // y = sigmoid(x)  =>  dx += dy y (1 - y)
    kernels::sigmoid_backward(X, y, dy, dx.buffer());
  });
}

Var silu(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("silu", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::silu_forward(X, y);
  return make_op_result(OpId::Silu, y, {x}, [X, dx = GradSlot(x)](const Tensor& dy) {
    // y = x sigmoid(x)  =>  dx += dy (s + x s (1 - s))
    kernels::silu_backward(X, dy, dx.buffer());
  });
}

Var softplus(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("softplus", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  kernels::softplus_forward(X, y);
  return make_op_result(OpId::Softplus, y, {x}, [X, dx = GradSlot(x)](const Tensor& dy) {
    // y = log(1 + e^x)  =>  dx += dy sigmoid(x)
    kernels::softplus_backward(X, dy, dx.buffer());
  });
}

Var swiglu(const Var& a, const Var& b) {
  const Tensor& A = a.value();
  const Tensor& B = b.value();
  check_float_any_device("swiglu", A);
  check_float_any_device("swiglu", B);
  check_same_device("swiglu", A, B);
  check_same_dtype("swiglu", A, B);
  check_same_shape("swiglu", A, B);
  Tensor y = Tensor::empty(A.shape(), A.dtype(), A.device());
  kernels::swiglu_forward(A, B, y);
  return make_op_result(OpId::Swiglu, y, {a, b}, [A, B, da = GradSlot(a), db = GradSlot(b)](const Tensor& dy) {
    // y = silu(a) b  =>  da += dy b silu'(a),  db += dy silu(a)
    kernels::swiglu_backward(A, B, dy, da.if_required(), db.if_required());
  });
}

}  // namespace swiattn
