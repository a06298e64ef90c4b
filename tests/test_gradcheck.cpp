// tests/test_gradcheck.cpp: the CPU modes of the op-test table (tests/op_cases.h). Every
// differentiable op of autograd/op_list.h has rows there (an op without a case there does not
// compile; "gradcheck: every op has a row in the table" fails for an op without a CPU row).
//
// Each CPU row is checked twice:
//   1. float64 against central finite differences (tests/gradcheck.h states the tolerances);
//   2. float32 forward against the float64 forward on the same inputs (rel. error <= 1e-4),
//      so both instantiations of every kernel are exercised.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "tensor/random.h"
#include "tests/gradcheck.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

using testing::GradCheckOptions;
using testing::OpCase;
using testing::op_cases;

TEST_CASE("gradcheck: every op has a row in the table") {
  for (testing::OpMode mode : {testing::kGradcheck, testing::kFloat32}) {
    std::set<OpId> covered;
    for (const OpCase& c : op_cases(mode)) covered.insert(c.op);
    for (int i = 0; i < kNumOps; ++i) {
      INFO("op without a ", mode == testing::kGradcheck ? "gradient check" : "float32 check", ": ",
           op_name(static_cast<OpId>(i)));
      CHECK(covered.count(static_cast<OpId>(i)) == 1);
    }
  }
}

TEST_CASE("gradcheck: float64 analytic gradients match central finite differences") {
  std::printf("%-44s %10s %10s %8s\n", "op test", "max abs", "max rel", "elements");
  for (const OpCase& c : op_cases(testing::kGradcheck)) {
    GradCheckOptions options;
    options.input_scale = c.input_scale;
    const auto r = testing::gradcheck(c.f, c.inputs, options, c.surrogate);
    std::printf("%-44s %10.2e %10.2e %8lld\n", c.name.c_str(), r.max_abs_error, r.max_rel_error,
                (long long)r.checked);
    INFO(c.name, ": ", r.first_failure);
    CHECK(r.ok());
  }
}

TEST_CASE("gradcheck: float32 forward agrees with float64 forward") {
  for (const OpCase& c : op_cases(testing::kFloat32)) {
    std::vector<Var> x64, x32;
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      Tensor t = Tensor::randn(c.inputs[k], DType::F64, derive_seed(77, k), 0.0, c.input_scale);
      x64.emplace_back(t);
      x32.emplace_back(t.to(DType::F32));
    }
    const Tensor y64 = c.f(x64).value();
    const Tensor y32 = c.f(x32).value();
    REQUIRE(y32.dtype() == DType::F32);
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < y64.numel(); ++i) {
      err += std::pow(y64.at(i) - y32.at(i), 2);
      norm += std::pow(y64.at(i), 2);
    }
    INFO(c.name, ": relative error ", std::sqrt(err / std::max(norm, 1e-30)));
    CHECK(std::sqrt(err) <= 1e-4 * std::sqrt(norm) + 1e-6);
  }
}

TEST_CASE("gradcheck: the checker catches a wrong backward") {
  // y = x^2 with a deliberately wrong derivative 3x: the checker must report it.
  auto broken_square = [](const std::vector<Var>& x) {
    const Tensor X = x[0].value();
    Tensor y = Tensor::empty(X.shape(), DType::F64);
    for (int64_t i = 0; i < X.numel(); ++i) y.data<double>()[i] = X.at(i) * X.at(i);
    return make_op_result(OpId::Scale, y, {x[0]}, [X, dx = GradSlot(x[0])](const Tensor& dy) {
      for (int64_t i = 0; i < X.numel(); ++i) dx.buffer().data<double>()[i] += dy.at(i) * 3.0 * X.at(i);
    });
  };
  const auto r = testing::gradcheck(broken_square, {{7}});
  CHECK_FALSE(r.ok());
  CHECK(r.failed == 7);
}

}  // namespace
}  // namespace swiattn
