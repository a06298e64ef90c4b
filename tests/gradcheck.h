// tests/gradcheck.h: the finite-difference gradient checker behind the op-test table.
//
// For a function f of some float64 inputs, the checker draws a fixed random projection R of f's
// output and differentiates the scalar L = sum(R * f(x)):
//   analytic  : L.backward(), the autograd gradient of every input;
//   numerical : central differences (L(x + e) - L(x - e)) / 2e per input element, e = 1e-5.
// An element passes when |analytic - numerical| <= atol + rtol * |numerical|. In float64 the
// central difference is accurate to about e^2 |L'''| + 1e-16 |L| / e, which is 1e-9 or less on
// the table's cases (the largest error the table prints is about 1.2e-9); the default tolerances
// (atol 1e-7, rtol 1e-6) leave two orders of magnitude for that, while a wrong backward (a
// dropped term, a wrong sign, a missing factor) misses by many orders more.
//
// Some gradients are by definition not the derivative of f: a stop-gradient, or the router's
// straight-through estimator. Then `surrogate` names the function whose finite difference the
// analytic gradient must equal; it receives the (perturbed) inputs and their unperturbed values.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace swiattn::testing {

using OpFunction = std::function<Var(const std::vector<Var>& inputs)>;
using SurrogateFunction =
    std::function<Var(const std::vector<Var>& inputs, const std::vector<Tensor>& unperturbed)>;

struct GradCheckResult {
  double max_abs_error = 0.0;  // max |analytic - numerical| over all input elements
  double max_rel_error = 0.0;  // max |analytic - numerical| / |numerical| where |numerical| > 1e-6
  int64_t checked = 0;         // input elements checked
  int64_t failed = 0;          // elements outside the tolerance
  std::string first_failure;   // "input 1 element 17: analytic 0.25 numerical 0.5"
  bool ok() const { return failed == 0 && checked > 0; }
};

struct GradCheckOptions {
  double step = 1e-5;
  double atol = 1e-7;
  double rtol = 1e-6;
  uint64_t seed = 1234;
  double input_scale = 1.0;  // inputs are N(0, input_scale^2)
};

// Checks f on fresh float64 inputs of the given shapes (drawn from options.seed).
GradCheckResult gradcheck(const OpFunction& f, const std::vector<Shape>& input_shapes,
                          const GradCheckOptions& options = {},
                          const SurrogateFunction& surrogate = nullptr);

// Checks f on the given inputs (float64 leaves that require gradients; values are restored).
GradCheckResult gradcheck_inputs(const OpFunction& f, const std::vector<Var>& inputs,
                                 const GradCheckOptions& options = {},
                                 const SurrogateFunction& surrogate = nullptr);

// Max |a - b| over two tensors of the same shape.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace swiattn::testing
