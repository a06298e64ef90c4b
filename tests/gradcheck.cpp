#include "tests/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/random.h"

namespace swiattn::testing {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  check_same_shape("max_abs_diff", a, b);
  double m = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.at(i) - b.at(i)));
  return m;
}

// L = sum(R * y) computed outside the graph, for the finite differences.
static double projected(const Var& y, const Tensor& R) {
  const double* py = y.value().data<double>();
  const double* pr = R.data<double>();
  double acc = 0.0;
  for (int64_t i = 0; i < R.numel(); ++i) acc += py[i] * pr[i];
  return acc;
}

GradCheckResult gradcheck_inputs(const OpFunction& f, const std::vector<Var>& inputs,
                                 const GradCheckOptions& options, const SurrogateFunction& surrogate) {
  GradCheckResult result;
  for (const Var& x : inputs) {
    if (x.dtype() != DType::F64) throw Error("gradcheck: inputs must be float64");
    x.zero_grad();
  }

  // Analytic gradients of L = sum(R * f(x)).
  Var y = f(inputs);
  const Tensor R = Tensor::randn(y.shape(), DType::F64, derive_seed(options.seed, 999));
  Var loss = sum(mul(y, Var(R)));
  loss.backward();

  std::vector<Tensor> unperturbed;
  for (const Var& x : inputs) unperturbed.push_back(x.value().clone());
  auto evaluate = [&]() {
    NoGradGuard no_grad;
    return projected(surrogate ? surrogate(inputs, unperturbed) : f(inputs), R);
  };

  for (size_t k = 0; k < inputs.size(); ++k) {
    const Var& x = inputs[k];
    if (!x.requires_grad()) continue;
    double* p = x.value().data<double>();
    const Tensor& g = x.grad();
    for (int64_t i = 0; i < x.value().numel(); ++i) {
      const double saved = p[i];
      p[i] = saved + options.step;
      const double plus = evaluate();
      p[i] = saved - options.step;
      const double minus = evaluate();
      p[i] = saved;
      const double numerical = (plus - minus) / (2.0 * options.step);
      const double analytic = g.defined() ? g.at(i) : 0.0;  // no gradient reached: zero
      const double err = std::abs(analytic - numerical);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (std::abs(numerical) > 1e-6) result.max_rel_error = std::max(result.max_rel_error, err / std::abs(numerical));
      ++result.checked;
      if (!(err <= options.atol + options.rtol * std::abs(numerical))) {  // NaN fails too
        if (result.failed++ == 0) {
          std::ostringstream s;
          s << "input " << k << " element " << i << ": analytic " << analytic << " numerical " << numerical;
          result.first_failure = s.str();
        }
      }
    }
  }
  return result;
}

GradCheckResult gradcheck(const OpFunction& f, const std::vector<Shape>& input_shapes,
                          const GradCheckOptions& options, const SurrogateFunction& surrogate) {
  std::vector<Var> inputs;
  for (size_t k = 0; k < input_shapes.size(); ++k)
    inputs.emplace_back(Tensor::randn(input_shapes[k], DType::F64, derive_seed(options.seed, k), 0.0,
                                      options.input_scale),
                        true);
  return gradcheck_inputs(f, inputs, options, surrogate);
}

}  // namespace swiattn::testing
