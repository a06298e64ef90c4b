// autograd/ops_elementwise.cpp: broadcasting add / sub / mul, scale, and the pointwise
// nonlinearities (sigmoid, SiLU, softplus, the SwiGLU product).
// Each op runs where its inputs are: the cpu:: kernel for CPU tensors, the cuda:: kernel of
// kernels/cuda/elementwise.h for CUDA tensors (same formulas, same broadcasting plan).
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/elementwise.h"

namespace swiattn {

static Var binary_op(OpId op, cpu::BinaryKind kind, const Var& a, const Var& b) {
  const char* name = op_name(op);
  const Tensor& A = a.value();
  const Tensor& B = b.value();
  check_float_any_device(name, A);
  check_float_any_device(name, B);
  check_same_device(name, A, B);
  check_same_dtype(name, A, B);
  const cpu::BroadcastPlan plan = cpu::plan_broadcast(name, A.shape(), B.shape());
  Tensor out = Tensor::empty(plan.out, A.dtype(), A.device());
  if (A.device() == Device::CUDA) cuda::binary_forward(kind, plan, A, B, out);
  else dispatch_float(A.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    cpu::binary_forward<T>(kind, plan, A.data<T>(), B.data<T>(), out.data<T>());
  });
  return make_op_result(op, out, {a, b}, [=](const Tensor& dout) {
    // add: da += dout, db += dout;  sub: db -= dout;  mul: da += dout b, db += dout a
    if (A.device() == Device::CUDA)
      return cuda::binary_backward(kind, plan, A, B, dout, a.requires_grad() ? a.grad_buffer() : Tensor(),
                                   b.requires_grad() ? b.grad_buffer() : Tensor());
    dispatch_float(A.dtype(), name, [&](auto zero) {
      using T = decltype(zero);
      cpu::binary_backward<T>(kind, plan, A.data<T>(), B.data<T>(), dout.data<T>(),
                              a.requires_grad() ? a.grad_buffer().data<T>() : nullptr,
                              b.requires_grad() ? b.grad_buffer().data<T>() : nullptr);
    });
  });
}

Var add(const Var& a, const Var& b) { return binary_op(OpId::Add, cpu::BinaryKind::Add, a, b); }
Var sub(const Var& a, const Var& b) { return binary_op(OpId::Sub, cpu::BinaryKind::Sub, a, b); }
Var mul(const Var& a, const Var& b) { return binary_op(OpId::Mul, cpu::BinaryKind::Mul, a, b); }

Var scale(const Var& x, double c) {
  const Tensor& X = x.value();
  check_float_any_device("scale", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::scale_forward(c, X, y);
  else dispatch_float(X.dtype(), "scale", [&](auto zero) {
    using T = decltype(zero);
    cpu::scale_forward<T>(X.numel(), T(c), X.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Scale, y, {x}, [=](const Tensor& dy) {
    // y = c x  =>  dx += c dy
    if (X.device() == Device::CUDA) return cuda::scale_backward(c, dy, x.grad_buffer());
    dispatch_float(X.dtype(), "scale", [&](auto zero) {
      using T = decltype(zero);
      cpu::scale_backward<T>(X.numel(), T(c), dy.data<T>(), x.grad_buffer().data<T>());
    });
  });
}

Var sigmoid(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("sigmoid", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::sigmoid_forward(X, y);
  else dispatch_float(X.dtype(), "sigmoid", [&](auto zero) {
    using T = decltype(zero);
    cpu::sigmoid_forward<T>(X.numel(), X.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Sigmoid, y, {x}, [=](const Tensor& dy) {
    // y = sigmoid(x)  =>  dx += dy y (1 - y)
    if (X.device() == Device::CUDA) return cuda::sigmoid_backward(X, dy, x.grad_buffer());  // from x
    dispatch_float(X.dtype(), "sigmoid", [&](auto zero) {
      using T = decltype(zero);
      cpu::sigmoid_backward<T>(X.numel(), y.data<T>(), dy.data<T>(), x.grad_buffer().data<T>());
    });
  });
}

Var silu(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("silu", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::silu_forward(X, y);
  else dispatch_float(X.dtype(), "silu", [&](auto zero) {
    using T = decltype(zero);
    cpu::silu_forward<T>(X.numel(), X.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Silu, y, {x}, [=](const Tensor& dy) {
    // y = x sigmoid(x)  =>  dx += dy (s + x s (1 - s))
    if (X.device() == Device::CUDA) return cuda::silu_backward(X, dy, x.grad_buffer());
    dispatch_float(X.dtype(), "silu", [&](auto zero) {
      using T = decltype(zero);
      cpu::silu_backward<T>(X.numel(), X.data<T>(), dy.data<T>(), x.grad_buffer().data<T>());
    });
  });
}

Var softplus(const Var& x) {
  const Tensor& X = x.value();
  check_float_any_device("softplus", X);
  Tensor y = Tensor::empty(X.shape(), X.dtype(), X.device());
  if (X.device() == Device::CUDA) cuda::softplus_forward(X, y);
  else dispatch_float(X.dtype(), "softplus", [&](auto zero) {
    using T = decltype(zero);
    cpu::softplus_forward<T>(X.numel(), X.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Softplus, y, {x}, [=](const Tensor& dy) {
    // y = log(1 + e^x)  =>  dx += dy sigmoid(x)
    if (X.device() == Device::CUDA) return cuda::softplus_backward(X, dy, x.grad_buffer());
    dispatch_float(X.dtype(), "softplus", [&](auto zero) {
      using T = decltype(zero);
      cpu::softplus_backward<T>(X.numel(), X.data<T>(), dy.data<T>(), x.grad_buffer().data<T>());
    });
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
  if (A.device() == Device::CUDA) cuda::swiglu_forward(A, B, y);
  else dispatch_float(A.dtype(), "swiglu", [&](auto zero) {
    using T = decltype(zero);
    cpu::swiglu_forward<T>(A.numel(), A.data<T>(), B.data<T>(), y.data<T>());
  });
  return make_op_result(OpId::Swiglu, y, {a, b}, [=](const Tensor& dy) {
    // y = silu(a) b  =>  da += dy b silu'(a),  db += dy silu(a)
    if (A.device() == Device::CUDA)
      return cuda::swiglu_backward(A, B, dy, a.requires_grad() ? a.grad_buffer() : Tensor(),
                                   b.requires_grad() ? b.grad_buffer() : Tensor());
    dispatch_float(A.dtype(), "swiglu", [&](auto zero) {
      using T = decltype(zero);
      cpu::swiglu_backward<T>(A.numel(), A.data<T>(), B.data<T>(), dy.data<T>(),
                              a.requires_grad() ? a.grad_buffer().data<T>() : nullptr,
                              b.requires_grad() ? b.grad_buffer().data<T>() : nullptr);
    });
  });
}

}  // namespace swiattn
