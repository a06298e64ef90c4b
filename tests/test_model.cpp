// tests/test_model.cpp: the transformer end to end: gradients of every parameter against finite
// differences, causality, the per-layer window, and that plain gradient descent lowers the loss.
#include <doctest/doctest.h>

#include <cmath>

#include "model/sampling.h"
#include "model/transformer.h"
#include "tensor/random.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

using testing::random_ids;
using testing::tiny_model_config;

void check_whole_model_gradients(const ModelConfig& config) {
  Transformer model(config, DType::F64, 42);
  const Tensor ids = random_ids({2, 7}, 11, 1);
  std::vector<int32_t> t = random_ids({2, 7}, 11, 2).to_ints();
  t[3] = -100;  // one ignored target
  const Tensor targets = Tensor::from_ints(t, {2, 7});
  const auto r = testing::gradcheck_inputs(
      [&](const std::vector<Var>&) { return model.loss(ids, targets); }, model.parameters());
  MESSAGE("whole model: ", r.checked, " parameters, max abs error ", r.max_abs_error,
          ", max rel error ", r.max_rel_error);
  INFO(r.first_failure);
  CHECK(r.ok());
  CHECK(r.checked == model.parameter_count());
}

TEST_CASE("model: every parameter's gradient matches finite differences (full + swa layers, tied)") {
  check_whole_model_gradients(tiny_model_config());
}

TEST_CASE("model: every parameter's gradient matches finite differences (untied head, swa first)") {
  ModelConfig c = tiny_model_config();
  c.tie_word_embeddings = false;
  c.layer_types = {"swa", "full"};
  c.num_key_value_heads = 2;
  check_whole_model_gradients(c);
}

TEST_CASE("model: parameters are named and counted") {
  ModelConfig c = tiny_model_config();
  Transformer model(c, DType::F32, 1);
  CHECK(model.parameters().front().name() == "embed.weight");
  CHECK(model.parameters()[2].name() == "layers.0.attn.q_proj.weight");
  const int64_t C = 8, F = 12, V = 11;
  const int64_t per_layer = 2 * C + C * 8 + 2 * (C * 4) + 8 * C + 3 * C * F;
  CHECK(model.parameter_count() == V * C + 2 * per_layer + C);
}

TEST_CASE("model: logits at position t do not depend on tokens after t") {
  Transformer model(tiny_model_config(), DType::F64, 3);
  std::vector<int32_t> a = random_ids({1, 9}, 11, 4).to_ints(), b = a;
  b[6] = (b[6] + 1) % 11;  // change token 6 only
  NoGradGuard no_grad;
  const Tensor la = model.forward(Tensor::from_ints(a, {1, 9})).value();
  const Tensor lb = model.forward(Tensor::from_ints(b, {1, 9})).value();
  for (int64_t t = 0; t < 9; ++t) {
    double diff = 0.0;
    for (int64_t v = 0; v < 11; ++v) diff = std::max(diff, std::abs(la.at(t * 11 + v) - lb.at(t * 11 + v)));
    if (t < 6) CHECK(diff == 0.0);
    else CHECK(diff > 1e-9);
  }
}

TEST_CASE("model: an all-swa model cannot see further back than the receptive field") {
  // Two swa layers with w = 3: position t sees tokens >= t - 2 * (3 - 1) = t - 4.
  ModelConfig c = tiny_model_config();
  c.layer_types = {"swa", "swa"};
  Transformer model(c, DType::F64, 5);
  std::vector<int32_t> a = random_ids({1, 12}, 11, 6).to_ints(), b = a;
  b[2] = (b[2] + 5) % 11;
  NoGradGuard no_grad;
  const Tensor la = model.forward(Tensor::from_ints(a, {1, 12})).value();
  const Tensor lb = model.forward(Tensor::from_ints(b, {1, 12})).value();
  auto row_diff = [&](int64_t t) {
    double d = 0.0;
    for (int64_t v = 0; v < 11; ++v) d = std::max(d, std::abs(la.at(t * 11 + v) - lb.at(t * 11 + v)));
    return d;
  };
  CHECK(row_diff(6) > 1e-9);   // 6 - 4 = 2: still inside the receptive field
  CHECK(row_diff(7) == 0.0);   // 7 - 4 = 3 > 2: out of reach
  CHECK(row_diff(11) == 0.0);
}

TEST_CASE("model: gradient descent lowers the loss on a repeating sequence") {
  ModelConfig c = tiny_model_config();
  c.initializer_range = 0.1;
  Transformer model(c, DType::F32, 9);
  std::vector<int32_t> seq;
  for (int i = 0; i < 13; ++i) seq.push_back(i % 5);
  const Tensor ids = Tensor::from_ints(std::vector<int32_t>(seq.begin(), seq.end() - 1), {1, 12});
  const Tensor targets = Tensor::from_ints(std::vector<int32_t>(seq.begin() + 1, seq.end()), {1, 12});
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 150; ++step) {
    for (const Var& p : model.parameters()) p.zero_grad();
    Var loss = model.loss(ids, targets);
    loss.backward();
    (step == 0 ? first : last) = loss.value().item();
    for (const Var& p : model.parameters()) {  // plain SGD, lr 0.5
      float* w = p.value().data<float>();
      const float* g = p.grad().data<float>();
      for (int64_t i = 0; i < p.value().numel(); ++i) w[i] -= 0.5f * g[i];
    }
  }
  MESSAGE("loss ", first, " -> ", last);
  CHECK(first > 2.0);   // about log(11) = 2.40 at initialisation
  CHECK(last < 0.5);
}

TEST_CASE("model: bad inputs are rejected with clear errors") {
  Transformer model(tiny_model_config(), DType::F32, 1);
  CHECK_THROWS_WITH_AS(model.forward(Tensor::zeros({1, 17}, DType::I32)),
                       doctest::Contains("max_position_embeddings"), Error);
  CHECK_THROWS_WITH_AS(model.forward(Tensor::zeros({1, 3}, DType::F32)), doctest::Contains("int32"), Error);
  CHECK_THROWS_WITH_AS(model.forward(Tensor::full({1, 3}, 11, DType::I32)), doctest::Contains("vocabulary"), Error);
  ModelConfig bad = tiny_model_config();
  bad.num_key_value_heads = 3;
  CHECK_THROWS_WITH_AS(Transformer(bad, DType::F32, 1), doctest::Contains("num_key_value_heads"), Error);
}

TEST_CASE("model: sampling is reproducible and near-greedy at low temperature") {
  Rng a(7), b(7);
  const std::vector<double> logits{0.1, 3.0, -1.0, 2.9};
  CHECK(sample_token(logits, 1.0, a) == sample_token(logits, 1.0, b));
  Rng c(1);
  for (int i = 0; i < 20; ++i) CHECK(sample_token(logits, 1e-3, c) == 1);
  Transformer model(tiny_model_config(), DType::F32, 1);
  Rng r1(3), r2(3);
  const auto s1 = generate(model, {1, 2, 3}, 5, 1.0, 16, r1);
  const auto s2 = generate(model, {1, 2, 3}, 5, 1.0, 16, r2);
  CHECK(s1.size() == 8);
  CHECK(s1 == s2);
}

}  // namespace
}  // namespace swiattn
