// tests/test_gradcheck.cpp: THE op-test table. Every differentiable op of autograd/op_list.h has
// at least one row here; "gradcheck: every op has a row" fails otherwise, and the static_assert
// below fails to compile when an op is added until its count is updated here (after adding rows).
//
// Each row is checked twice:
//   1. float64 against central finite differences (tests/gradcheck.h states the tolerances);
//   2. float32 forward against the float64 forward on the same inputs (rel. error <= 1e-4),
//      so both instantiations of every kernel are exercised.
// Sizes are deliberately odd (1, 3, 7, 13, 33); attention rows cover the window edge cases
// w = 1, w >= T, and t < w (early rows of every windowed case), plus grouped-query heads.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "tensor/random.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

using testing::GradCheckOptions;
using testing::OpFunction;
using testing::SurrogateFunction;

static_assert(kNumOps == 22, "a new op? add its rows to kGradCases below, then update this count");

struct GradCase {
  std::string name;  // what a failure prints
  OpId op;           // the op under test
  std::vector<Shape> inputs;
  OpFunction f;
  SurrogateFunction surrogate = nullptr;  // see tests/gradcheck.h
  double input_scale = 1.0;
};

// Attention rows: (B, T, H, Hkv, D, window).
GradCase attention_case(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w) {
  char name[96];
  std::snprintf(name, sizeof name, "attention B%lld T%lld H%lld Hkv%lld D%lld w%lld", (long long)B,
                (long long)T, (long long)H, (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::Attention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}},
          [w](const std::vector<Var>& x) { return attention(x[0], x[1], x[2], w); }};
}

// Switch attention rows: the gate is a real-valued input here (the op is linear in it: Eq. 6 for
// any c); hard 0/1 gates, the STE and the one-pass = two-pass identity are in test_switch.cpp.
GradCase switch_case(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w, SwitchMethod method) {
  char name[112];
  std::snprintf(name, sizeof name, "switch_attention %s B%lld T%lld H%lld Hkv%lld D%lld w%lld",
                method == SwitchMethod::OnePass ? "1-pass" : "2-pass", (long long)B, (long long)T,
                (long long)H, (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::SwitchAttention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}, {B, T}},
          [w, method](const std::vector<Var>& x) { return switch_attention(x[0], x[1], x[2], w, x[3], nullptr, method); }};
}

std::vector<GradCase> grad_cases() {
  const Tensor ids = testing::random_ids({3, 7}, 13, 7);  // repeated ids: their gradients must accumulate
  std::vector<int32_t> t = testing::random_ids({7}, 13, 8).to_ints();
  t[2] = -100;  // an ignored row
  const Tensor targets = Tensor::from_ints(t, {7});
  const Tensor all_ignored = Tensor::from_ints(std::vector<int32_t>(3, -100), {3});
  using X = const std::vector<Var>&;
  return {
      {"matmul (7,3)x(3,5)", OpId::Matmul, {{7, 3}, {3, 5}}, [](X x) { return matmul(x[0], x[1]); }},
      {"matmul A^T (3,7)^T x(3,5)", OpId::Matmul, {{3, 7}, {3, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
      {"matmul B^T (7,3)x(5,3)^T", OpId::Matmul, {{7, 3}, {5, 3}}, [](X x) { return matmul(x[0], x[1], false, true); }},
      {"matmul A^T B^T", OpId::Matmul, {{3, 7}, {5, 3}}, [](X x) { return matmul(x[0], x[1], true, true); }},
      {"matmul batched (2,3,7,5)x(2,3,5,1)", OpId::Matmul, {{2, 3, 7, 5}, {2, 3, 5, 1}}, [](X x) { return matmul(x[0], x[1]); }},
      {"matmul linear (3,7,13)x(5,13)^T", OpId::Matmul, {{3, 7, 13}, {5, 13}}, [](X x) { return matmul(x[0], x[1], false, true); }},
      {"matmul shared B, A^T (2,7,3)^T x(7,5)", OpId::Matmul, {{2, 7, 3}, {7, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
      {"matmul M=1 (1,33)x(33,1)", OpId::Matmul, {{1, 33}, {33, 1}}, [](X x) { return matmul(x[0], x[1]); }},
      {"add same shape (3,7)", OpId::Add, {{3, 7}, {3, 7}}, [](X x) { return add(x[0], x[1]); }},
      {"add bias (3,7,5)+(5)", OpId::Add, {{3, 7, 5}, {5}}, [](X x) { return add(x[0], x[1]); }},
      {"add (3,7,5)+(3,7,1)", OpId::Add, {{3, 7, 5}, {3, 7, 1}}, [](X x) { return add(x[0], x[1]); }},
      {"add scalar (7)+()", OpId::Add, {{7}, {}}, [](X x) { return add(x[0], x[1]); }},
      {"sub (1,5)-(7,1)", OpId::Sub, {{1, 5}, {7, 1}}, [](X x) { return sub(x[0], x[1]); }},
      {"sub same shape (13)", OpId::Sub, {{13}, {13}}, [](X x) { return sub(x[0], x[1]); }},
      {"mul same shape (3,7)", OpId::Mul, {{3, 7}, {3, 7}}, [](X x) { return mul(x[0], x[1]); }},
      {"mul route (3,7,1)*(3,7,5)", OpId::Mul, {{3, 7, 1}, {3, 7, 5}}, [](X x) { return mul(x[0], x[1]); }},
      {"mul self x*x", OpId::Mul, {{7}}, [](X x) { return mul(x[0], x[0]); }},
      {"scale (3,7) by -2.5", OpId::Scale, {{3, 7}}, [](X x) { return scale(x[0], -2.5); }},
      {"sum (3,7)", OpId::Sum, {{3, 7}}, [](X x) { return sum(x[0]); }},
      {"mean (33)", OpId::Mean, {{33}}, [](X x) { return mean(x[0]); }},
      {"embedding (13,5)[3,7]", OpId::Embedding, {{13, 5}}, [ids](X x) { return embedding(x[0], ids); }},
      {"rms_norm (3,7,13)", OpId::RmsNorm, {{3, 7, 13}, {13}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }},
      {"rms_norm C=1 (7,1)", OpId::RmsNorm, {{7, 1}, {1}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }},
      {"rope (2,7,3,8)", OpId::Rope, {{2, 7, 3, 8}}, [](X x) { return rope(x[0], 10000.0); }},
      {"rope offset 5, base 100 (1,13,1,2)", OpId::Rope, {{1, 13, 1, 2}}, [](X x) { return rope(x[0], 100.0, 5); }},
      {"rope row positions {0, 9, 2} + offset 1 (3,5,2,4)", OpId::Rope, {{3, 5, 2, 4}},
       [](X x) { return rope(x[0], 100.0, 1, Tensor::from_ints({0, 9, 2}, {3})); }},
      {"sigmoid (3,7)", OpId::Sigmoid, {{3, 7}}, [](X x) { return sigmoid(x[0]); }, nullptr, 4.0},
      {"silu (3,7)", OpId::Silu, {{3, 7}}, [](X x) { return silu(x[0]); }, nullptr, 4.0},
      {"softplus (3,7)", OpId::Softplus, {{3, 7}}, [](X x) { return softplus(x[0]); }, nullptr, 4.0},
      {"swiglu (13,7)", OpId::Swiglu, {{13, 7}, {13, 7}}, [](X x) { return swiglu(x[0], x[1]); }, nullptr, 3.0},
      {"softmax (7,13)", OpId::Softmax, {{7, 13}}, [](X x) { return softmax(x[0]); }, nullptr, 3.0},
      {"softmax C=1 (3,1)", OpId::Softmax, {{3, 1}}, [](X x) { return softmax(x[0]); }},
      {"cross_entropy (7,13), one row ignored", OpId::CrossEntropy, {{7, 13}},
       [targets](X x) { return cross_entropy(x[0], targets); }, nullptr, 3.0},
      {"cross_entropy all rows ignored", OpId::CrossEntropy, {{3, 13}},
       [all_ignored](X x) { return add(cross_entropy(x[0], all_ignored), sum(x[0])); }},
      // stop_gradient: the gradient of x * stop_gradient(x) is that of x * c with c = x frozen.
      {"stop_gradient x*sg(x)", OpId::StopGradient, {{3, 7}},
       [](X x) { return mul(x[0], stop_gradient(x[0])); },
       [](X x, const std::vector<Tensor>& x0) { return mul(x[0], Var(x0[0])); }},
      {"reshape (3,7,2)->(6,7)", OpId::Reshape, {{3, 7, 2}}, [](X x) { return mul(reshape(x[0], {6, 7}), reshape(x[0], {6, 7})); }},
      {"split_heads / merge_heads", OpId::Reshape, {{2, 3, 12}}, [](X x) { return merge_heads(rope(split_heads(x[0], 3), 10000.0)); }},
      {"transpose (3,7,5) dims 0,2", OpId::Transpose, {{3, 7, 5}}, [](X x) { return transpose(x[0], 0, 2); }},
      {"transpose (2,3,7,5) dims 1,2", OpId::Transpose, {{2, 3, 7, 5}}, [](X x) { return transpose(x[0], 1, 2); }},
      // cast to the input's own dtype is the identity (a copy). Through float32 and back the value
      // is rounded, which finite differences would see as steps: the gradient must be that of
      // the identity (the rounding's derivative is taken as 1), checked against the surrogate x.
      // (Through bfloat16 the gradient itself is stored in bfloat16, 2^-9 relative: that path is
      // in tests/test_cuda_ops.cpp and tests/test_cuda_train.cpp.)
      {"cast to its own dtype", OpId::Cast, {{3, 7}, {3, 7}}, [](X x) { return mul(cast(x[0], x[0].dtype()), x[1]); }},
      {"cast round trip through float32", OpId::Cast, {{3, 7}},
       [](X x) { return cast(cast(x[0], DType::F32), x[0].dtype()); },
       [](X x, const std::vector<Tensor>&) { return x[0]; }},
      attention_case(1, 1, 1, 1, 4, 0),   // T = 1
      attention_case(2, 7, 2, 2, 3, 0),   // full causal, odd head dim
      attention_case(1, 7, 2, 1, 4, 1),   // w = 1: each query reads only itself
      attention_case(1, 7, 4, 2, 4, 3),   // GQA, w = 3 < T: rows t < 3 see fewer than w keys
      attention_case(1, 13, 2, 1, 4, 13), // w = T
      attention_case(1, 7, 2, 2, 4, 33),  // w > T: same as full
      attention_case(1, 33, 3, 1, 2, 7),  // longer T, 3 query heads on one kv head
      switch_case(2, 7, 2, 1, 4, 3, SwitchMethod::OnePass),
      switch_case(1, 13, 4, 2, 3, 1, SwitchMethod::OnePass),   // w = 1
      switch_case(1, 7, 2, 2, 4, 13, SwitchMethod::OnePass),   // T < w: the branches coincide
      switch_case(1, 33, 2, 1, 2, 5, SwitchMethod::OnePass),
      switch_case(2, 7, 2, 1, 4, 3, SwitchMethod::TwoPassReference),
  };
}

TEST_CASE("gradcheck: every op has a row in the table") {
  std::set<OpId> covered;
  for (const GradCase& c : grad_cases()) covered.insert(c.op);
  for (int i = 0; i < kNumOps; ++i) {
    INFO("op without a gradient check: ", op_name(static_cast<OpId>(i)));
    CHECK(covered.count(static_cast<OpId>(i)) == 1);
  }
}

TEST_CASE("gradcheck: float64 analytic gradients match central finite differences") {
  std::printf("%-44s %10s %10s %8s\n", "op test", "max abs", "max rel", "elements");
  for (const GradCase& c : grad_cases()) {
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
  for (const GradCase& c : grad_cases()) {
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
    return make_op_result(OpId::Scale, y, {x[0]}, [X, x](const Tensor& dy) {
      for (int64_t i = 0; i < X.numel(); ++i) x[0].grad_buffer().data<double>()[i] += dy.at(i) * 3.0 * X.at(i);
    });
  };
  const auto r = testing::gradcheck(broken_square, {{7}});
  CHECK_FALSE(r.ok());
  CHECK(r.failed == 7);
}

}  // namespace
}  // namespace swiattn
