// tests/op_cases.h: THE op-test table, one list of op cases run in three modes (ggml's
// test-backend-ops pattern):
//   Gradcheck  float64 analytic gradients against central finite differences (tests/gradcheck.h;
//              tests/test_gradcheck.cpp)
//   Float32    the float32 forward against the float64 forward on the same inputs
//              (tests/test_gradcheck.cpp)
//   Cuda       CUDA float32 and bfloat16, forward and backward, against the CPU (2x a low-precision
//              control; tests/test_cuda_ops.cpp, skipped loudly without a device)
// Each row says which modes run it: small odd sizes run everywhere; the sizes that only a GPU run
// affords (1031, 100003, head dims 64 .. 256) or that test device-only paths are Cuda rows; a few
// rows whose numbers mean something only in float64 (C = 1 cancellation, a float32 round trip
// checked against a surrogate) are CPU rows.
//
// The rows are grouped by op in a switch over OpId without a default (tests/op_cases.cpp, built
// with -Werror=switch there): an op added to autograd/op_list.h without rows does not compile,
// and "op table: every op has a row in every mode" fails for an op with no row in some mode.
#pragma once

#include <string>
#include <vector>

#include "autograd/op_list.h"
#include "tests/gradcheck.h"

namespace swiattn::testing {

enum OpMode : unsigned {
  kGradcheck = 1u,
  kFloat32 = 2u,
  kCuda = 4u,
  kCpuModes = kGradcheck | kFloat32,
  kAllModes = kGradcheck | kFloat32 | kCuda,
};

struct OpCase {
  std::string name;            // what a failure prints
  OpId op;                     // the op under test (OpId::Leaf: a chain of ops, not counted for coverage)
  std::vector<Shape> inputs;   // shapes of the float inputs, drawn N(0, input_scale^2)
  OpFunction f;
  double input_scale = 1.0;
  unsigned modes = kAllModes;  // which modes run the row (OpMode bits)
  SurrogateFunction surrogate = nullptr;  // Gradcheck: the function whose derivative the gradient is
};

// Every row of the table, grouped by op in op_list.h's order, the chain rows last.
std::vector<OpCase> op_cases();
// The rows a mode runs.
std::vector<OpCase> op_cases(OpMode mode);

}  // namespace swiattn::testing
