// autograd/op_list.h: the one list of differentiable ops.
//
// Every op's result is created with its OpId (make_op_result), so an op cannot exist without an
// entry here, and an entry without rows in the op-test table (tests/op_cases.cpp, a switch over
// OpId built with -Werror=switch) does not compile.
// X(Enum name, printed name)
#pragma once

#define SWIATTN_OPS(X)                 \
  X(Matmul, "matmul")                  \
  X(Add, "add")                        \
  X(Sub, "sub")                        \
  X(Mul, "mul")                        \
  X(Scale, "scale")                    \
  X(Sum, "sum")                        \
  X(Mean, "mean")                      \
  X(Embedding, "embedding")            \
  X(RmsNorm, "rms_norm")               \
  X(Rope, "rope")                      \
  X(Silu, "silu")                      \
  X(Swiglu, "swiglu")                  \
  X(Sigmoid, "sigmoid")                \
  X(Softplus, "softplus")              \
  X(Softmax, "softmax")                \
  X(CrossEntropy, "cross_entropy")     \
  X(StopGradient, "stop_gradient")     \
  X(Reshape, "reshape")                \
  X(Transpose, "transpose")            \
  X(Cast, "cast")                      \
  X(Attention, "attention")            \
  X(SwitchAttention, "switch_attention")

namespace swiattn {

enum class OpId : int {
  Leaf = -1,  // parameters and constants
#define SWIATTN_OP_ENUM(name, str) name,
  SWIATTN_OPS(SWIATTN_OP_ENUM)
#undef SWIATTN_OP_ENUM
};

#define SWIATTN_OP_COUNT(name, str) +1
constexpr int kNumOps = 0 SWIATTN_OPS(SWIATTN_OP_COUNT);
#undef SWIATTN_OP_COUNT

const char* op_name(OpId op);

}  // namespace swiattn
