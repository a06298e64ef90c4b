// tests/test_train.cpp: the optimizer (AdamW against hand-computed steps, decoupled decay,
// convergence on a small quadratic, state restore), gradient clipping, the learning-rate
// schedule, and the run configuration (JSON, overrides, and every rejection naming its key).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>  // getpid
#include <vector>

#include "autograd/ops.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace swiattn {
namespace {

using testing::contains;
using testing::error_of;

using nlohmann::json;

Var parameter(const std::vector<double>& values, const Shape& shape, DType dtype,
              const std::string& name = "") {
  return Var(Tensor::from_vector(values, shape, dtype), /*requires_grad=*/true, name);
}

void set_grad(const Var& p, const std::vector<double>& g) {
  p.grad_buffer().copy_from(Tensor::from_vector(g, p.shape(), DType::F64));
}

void check_values(const Tensor& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << ": got " << actual.at(static_cast<int64_t>(i)) << ", expected "
                    << expected[i]);
    CHECK(std::abs(actual.at(static_cast<int64_t>(i)) - expected[i]) <= tolerance);
  }
}

// ---------------------------------------------------------------------------------------------
// AdamW
// ---------------------------------------------------------------------------------------------

TEST_CASE("train: AdamW first two steps match hand-computed values, float32 and float64") {
  for (DType dtype : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dtype));
    const double tol = dtype == DType::F64 ? 1e-12 : 2e-6;
    const double lr = 0.01, eps = 1e-8, wd = 0.1;
    Var gain = parameter({1.0, -2.0, 0.5}, {3}, dtype, "gain");             // 1-D: no decay
    Var matrix = parameter({1.0, -1.0, 2.0, 0.5}, {2, 2}, dtype, "matrix");  // 2-D: decay
    AdamW adam({gain, matrix}, AdamWOptions{0.9, 0.95, eps, wd});
    CHECK(adam.steps_taken() == 0);
    CHECK(adam.first_moments()[1].dtype() == dtype);  // moments live in the parameter's dtype

    // Step 1: m = 0.1 g, v = 0.05 g^2, mhat = g, vhat = g^2, so the update is g / (|g| + eps),
    // i.e. lr * sign(g) up to eps. A zero gradient moves nothing (0 / (0 + eps) = 0).
    set_grad(gain, {0.3, -0.1, 0.0});
    set_grad(matrix, {0.2, -0.4, 0.0, 0.0});
    adam.step(lr);
    CHECK(adam.steps_taken() == 1);
    check_values(gain.value(), {1.0 - lr * 0.3 / (0.3 + eps), -2.0 + lr * 0.1 / (0.1 + eps), 0.5},
                 tol);
    check_values(gain.value(), {1.0 - lr, -2.0 + lr, 0.5}, 1e-9 + tol);  // ~ p - lr * sign(g)
    check_values(matrix.value(),
                 {1.0 - lr * (0.2 / (0.2 + eps) + wd * 1.0), -1.0 - lr * (-0.4 / (0.4 + eps) + wd * -1.0),
                  2.0 - lr * wd * 2.0, 0.5 - lr * wd * 0.5},
                 tol);
    check_values(adam.first_moments()[0], {0.03, -0.01, 0.0}, tol);
    check_values(adam.second_moments()[0], {0.05 * 0.09, 0.05 * 0.01, 0.0}, tol);

    // Step 2 on gain[0] with g = -0.1 (previous m = 0.03, v = 0.0045):
    //   m = 0.9 * 0.03 + 0.1 * (-0.1) = 0.017          mhat = 0.017 / (1 - 0.9^2)    = 0.017 / 0.19
    //   v = 0.95 * 0.0045 + 0.05 * 0.01 = 0.004775     vhat = 0.004775 / (1 - 0.95^2) = 0.004775 / 0.0975
    const double p1 = gain.value().at(0);
    set_grad(gain, {-0.1, 0.0, 0.0});
    matrix.zero_grad();  // skipped entirely on this step: not even decayed
    const std::vector<double> matrix_before = matrix.value().to_vector();
    adam.step(lr);
    const double mhat = 0.017 / 0.19, vhat = 0.004775 / 0.0975;
    CHECK(std::abs(gain.value().at(0) - (p1 - lr * mhat / (std::sqrt(vhat) + eps))) <= tol);
    CHECK(std::abs(adam.first_moments()[0].at(0) - 0.017) <= tol);
    CHECK(std::abs(adam.second_moments()[0].at(0) - 0.004775) <= tol);
    CHECK(matrix.value().to_vector() == matrix_before);
  }
}

TEST_CASE("train: AdamW weight decay is decoupled and applied to matrices only") {
  for (DType dtype : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dtype));
    const double lr = 0.1, wd = 0.5;
    Var gain = parameter({1.0, -3.0}, {2}, dtype);
    Var embedding = parameter({2.0, -4.0, 1.0, 8.0, 0.25, -1.0}, {3, 2}, dtype);
    AdamW adam({gain, embedding}, AdamWOptions{0.9, 0.95, 1e-8, wd});
    // Zero gradients: the Adam term is exactly 0, so only decay can move a parameter.
    // Decoupled decay gives p * (1 - lr * wd); L2 decay folded into g would instead move every
    // entry by ~lr (Adam normalises wd * p to ~sign(p)), which these values rule out.
    set_grad(gain, {0.0, 0.0});
    set_grad(embedding, std::vector<double>(6, 0.0));
    adam.step(lr);
    CHECK(gain.value().to_vector() == std::vector<double>{1.0, -3.0});
    const double keep = 1.0 - lr * wd;
    check_values(embedding.value(), {2.0 * keep, -4.0 * keep, 1.0 * keep, 8.0 * keep,
                                     0.25 * keep, -1.0 * keep}, 1e-6);
  }
}

TEST_CASE("train: AdamW minimises a small quadratic built from autograd ops") {
  for (DType dtype : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dtype));
    // loss = mean((X W^T - X W*^T)^2) + sum((g - g*)^2): minimum 0 at W = W*, g = g*.
    const Tensor x = Tensor::randn({8, 3}, dtype, 11);
    const Tensor w_target = Tensor::from_vector({0.5, -1.0, 2.0, 1.5, 0.0, -0.75}, {2, 3}, dtype);
    const std::vector<double> g_target = {0.3, -0.2, 1.1, 0.8};
    Var w = Var(Tensor::zeros({2, 3}, dtype), true, "w");
    Var g = Var(Tensor::full({4}, 1.0, dtype), true, "g");
    const Var X(x), Y = matmul(X, Var(w_target), false, true), G(Tensor::from_vector(g_target, {4}, dtype));
    auto loss_of = [&]() {
      Var r = sub(matmul(X, w, false, true), Y);  // (8, 2)
      Var e = sub(g, G);                          // (4)
      return add(mean(mul(r, r)), sum(mul(e, e)));
    };
    AdamW adam({w, g}, AdamWOptions{0.9, 0.95, 1e-8, /*weight_decay=*/0.0});
    const double initial_loss = loss_of().value().item();
    const int64_t steps = 400;
    for (int64_t s = 0; s < steps; ++s) {
      adam.zero_grad();
      loss_of().backward();
      adam.step(learning_rate_at(s, 0.05, 1e-4, 20, steps));
    }
    const double final_loss = loss_of().value().item();
    INFO("loss " << initial_loss << " -> " << final_loss);
    CHECK(final_loss < 1e-10 * initial_loss);  // measured ~1e-13
    check_values(w.value(), w_target.to_vector(), 1e-5);  // measured < 1e-6
    check_values(g.value(), g_target, 1e-5);
  }
}

TEST_CASE("train: AdamW state restores exactly, and bad states and params are rejected") {
  auto make = [] {
    return std::vector<Var>{parameter({0.5, -0.5, 1.0, 2.0}, {2, 2}, DType::F64),
                            parameter({1.0, 2.0}, {2}, DType::F64)};
  };
  const AdamWOptions options;
  std::vector<Var> a_params = make(), b_params = make();
  AdamW a(a_params, options), b(b_params, options);
  for (int s = 0; s < 3; ++s) {
    set_grad(a_params[0], {0.1 * s, -0.2, 0.3, 0.05 * s});
    set_grad(a_params[1], {1.0, -0.5 * s});
    a.step(0.01);
  }
  // b takes a's parameters and state, then both take the same step: identical results.
  for (size_t i = 0; i < a_params.size(); ++i) {
    Tensor b_value = b_params[i].value();  // shares storage with the parameter
    b_value.copy_from(a_params[i].value());
  }
  b.load_state(a.steps_taken(), a.first_moments(), a.second_moments());
  CHECK(b.steps_taken() == 3);
  for (auto* params : {&a_params, &b_params}) {
    set_grad((*params)[0], {0.7, 0.1, -0.3, 0.2});
    set_grad((*params)[1], {-0.4, 0.9});
  }
  a.step(0.02);
  b.step(0.02);
  for (size_t i = 0; i < a_params.size(); ++i)
    CHECK(a_params[i].value().to_vector() == b_params[i].value().to_vector());

  // A moment of the wrong shape or a missing one: rejected, state unchanged.
  std::vector<Tensor> wrong = {Tensor::zeros({4}, DType::F64), Tensor::zeros({2}, DType::F64)};
  CHECK_THROWS_AS(b.load_state(1, wrong, b.second_moments()), Error);
  CHECK_THROWS_AS(b.load_state(1, {b.first_moments()[0]}, b.second_moments()), Error);
  CHECK(b.steps_taken() == 4);

  // zero_grad drops every gradient.
  b.zero_grad();
  for (const Var& p : b_params) CHECK_FALSE(p.grad().defined());

  // A parameter listed twice would be updated twice.
  CHECK(contains(error_of([&] { AdamW twice({a_params[0], a_params[0]}); }), "more than once"));
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping
// ---------------------------------------------------------------------------------------------

TEST_CASE("train: clip_grad_norm scales to exactly max_norm and leaves small grads alone") {
  for (DType dtype : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dtype));
    Var a = parameter({0, 0}, {2}, dtype), b = parameter({0}, {1, 1}, dtype);
    Var no_grad = parameter({5}, {1}, dtype);  // never reached by backward: ignored
    const std::vector<Var> params = {a, b, no_grad};
    auto set = [&] { set_grad(a, {3.0, 4.0}); set_grad(b, {12.0}); };  // norm sqrt(9+16+144) = 13

    set();
    CHECK(global_grad_norm(params) == doctest::Approx(13.0));
    const double tol = dtype == DType::F64 ? 1e-14 : 1e-6;  // "exactly": up to rounding
    CHECK(clip_grad_norm(params, 1.3) == doctest::Approx(13.0));  // returns the norm before
    check_values(a.grad(), {0.3, 0.4}, tol);                      // scaled by 1.3 / 13 = 0.1
    check_values(b.grad(), {1.2}, tol);
    CHECK(std::abs(global_grad_norm(params) - 1.3) <= tol);
    CHECK_FALSE(no_grad.grad().defined());

    set();
    CHECK(clip_grad_norm(params, 20.0) == doctest::Approx(13.0));  // below max: unchanged
    CHECK(a.grad().to_vector() == std::vector<double>{3.0, 4.0});
    CHECK(clip_grad_norm(params, 0.0) == doctest::Approx(13.0));   // 0 disables clipping
    CHECK(b.grad().to_vector() == std::vector<double>{12.0});

    set_grad(b, {std::numeric_limits<double>::infinity()});        // non-finite: returned as is
    CHECK(std::isinf(clip_grad_norm(params, 1.0)));
    CHECK(a.grad().to_vector() == std::vector<double>{3.0, 4.0});
  }
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedule
// ---------------------------------------------------------------------------------------------

TEST_CASE("train: learning_rate_at warms up linearly, then cosine-decays to the floor") {
  const double peak = 1.0, floor = 0.1;
  const int64_t warmup = 10, total = 111;  // cosine over steps 10..110, 100 intervals
  auto lr = [&](int64_t s) { return learning_rate_at(s, peak, floor, warmup, total); };
  CHECK(lr(0) == doctest::Approx(0.1));                 // peak * 1 / 10
  CHECK(lr(4) == doctest::Approx(0.5));
  CHECK(lr(9) == doctest::Approx(1.0));                 // warm-up ends at peak
  CHECK(lr(10) == doctest::Approx(1.0));                // cosine starts at peak
  CHECK(lr(60) == doctest::Approx(0.55));               // halfway: (peak + floor) / 2
  CHECK(lr(35) == doctest::Approx(0.1 + 0.9 * (1 + std::cos(std::acos(-1.0) / 4)) / 2));
  CHECK(lr(110) == doctest::Approx(0.1));               // last step: floor
  CHECK(lr(111) == doctest::Approx(0.1));               // beyond: floor
  CHECK(lr(100000) == doctest::Approx(0.1));
  for (int64_t s = warmup; s + 1 < total; ++s) CHECK(lr(s + 1) <= lr(s));

  CHECK(learning_rate_at(0, 2.0, 0.5, 0, 5) == doctest::Approx(2.0));  // no warm-up
  CHECK(learning_rate_at(0, 2.0, 0.5, 0, 1) == doctest::Approx(0.5));  // a one-step run: floor
  CHECK(learning_rate_at(4, 2.0, 0.5, 5, 5) == doctest::Approx(2.0));  // all warm-up
  CHECK_THROWS_AS(learning_rate_at(-1, 1.0, 0.1, 10, 100), Error);
  CHECK_THROWS_AS(learning_rate_at(0, 1.0, 0.1, -1, 100), Error);
  CHECK_THROWS_AS(learning_rate_at(0, 1.0, 0.1, 10, 0), Error);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

TEST_CASE("train: config defaults validate and every field round-trips through JSON") {
  CHECK_NOTHROW(validate_config(Config{}));

  Config c;
  c.model.vocab_size = 50257;  // the gpt2 tokenizer's (a larger, padded one is refused: config_bounds.cpp)
  c.model.hidden_size = 96;
  c.model.num_hidden_layers = 3;
  c.model.num_attention_heads = 6;
  c.model.num_key_value_heads = 3;
  c.model.head_dim = 16;
  c.model.intermediate_size = 257;
  c.model.sliding_window = 7;
  c.model.layer_types = {"swa", "full", "swa"};
  c.model.rope_theta = 500000.0;
  c.model.rms_norm_eps = 1e-5;
  c.model.tie_word_embeddings = false;
  c.model.max_position_embeddings = 2048;
  c.model.initializer_range = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
  c.model.router_input = "residual";
  c.model.router_init = "full";
  c.model.router_threshold = 0.25;
  c.model.router_init_std = 0.5;
  c.model.router_full_bias = 5.0;
  c.model.router_detach_input = false;
  c.train.seed = 18446744073709551615ull;  // > int64 max
  c.train.batch_size = 3;
  c.train.seq_len = 2048;
  c.train.steps = 7;
  c.train.learning_rate = 1.0 / 3.0;
  c.train.min_learning_rate = 1e-7;
  c.train.warmup_steps = 0;
  c.train.weight_decay = 0.0;
  c.train.beta1 = 0.8;
  c.train.beta2 = 0.999;
  c.train.adam_eps = 1e-12;
  c.train.grad_clip = 0.0;
  c.train.log_interval = 1;
  c.train.eval_interval = 3;
  c.train.eval_batches = 2;
  c.train.dtype = "float64";
  c.train.deterministic = true;
  c.train.threads = 4;
  c.train.sample_tokens = 0;
  c.train.sample_prompt = "Call me \"Ishmael\".\n";
  c.train.sample_temperature = 1.25;
  c.data.corpus = "moby-dick";
  c.data.tokenizer = "gpt2";
  c.data.cache_dir = "/tmp/cache";
  c.data.synthetic_fraction = 0.25;
  c.data.passkey_weight = 3.0;
  c.data.mqar_weight = 0.5;
  c.data.mqar_pairs = 5;
  c.data.min_needle_distance = 100;
  c.data.val_fraction = 0.25;
  c.reg.mode = "fixed";
  c.reg.gamma_base = 2e-3;
  c.reg.eps = 0.5;
  c.reg.alpha = 10.0;
  c.reg.controller = "bias";
  c.reg.target_ratio = 0.2;
  c.reg.controller_rate = 0.5;
  c.train.seq_len = 512;
  c.train.steps = 7;
  c.train.curriculum = {{4, 256, 32}, {3, 512, 0}};
  c.model.max_position_embeddings = 512;
  CHECK_NOTHROW(validate_config(c));

  const json written = config_to_json(c);
  CHECK(written["model"].size() == 20);
  CHECK(written["train"].size() == 29);
  CHECK(written["data"].size() == 9);
  CHECK(written["reg"].size() == 7);
  const Config back = config_from_json(json::parse(written.dump()), "round-trip");
  CHECK(config_to_json(back) == written);
  CHECK(back.train.seed == 18446744073709551615ull);
  CHECK(back.model.initializer_range == 0.1 + 0.2);
  CHECK(back.train.learning_rate == 1.0 / 3.0);
  CHECK(back.model.layer_types == std::vector<std::string>{"swa", "full", "swa"});
  CHECK(back.train.sample_prompt == c.train.sample_prompt);
  CHECK(back.model.tie_word_embeddings == false);
  CHECK(back.train.curriculum == c.train.curriculum);
  CHECK(back.reg.controller == "bias");
  CHECK(back.train.deterministic);
  // train.deterministic is a boolean: --set takes true / false, and nothing else
  Config d;
  CHECK_FALSE(d.train.deterministic);  // off by default
  apply_override(d, "train.deterministic=true");
  CHECK(d.train.deterministic);
  const std::string bad = testing::error_of([&] { apply_override(d, "train.deterministic=1"); });
  CHECK(testing::contains(bad, "train.deterministic must be true or false"));
  // train.float32_attention: "float32" or "bfloat16", the latter only on the GPU
  Config f;
  CHECK(f.train.float32_attention == "float32");
  apply_override(f, "train.float32_attention=bfloat16");
  CHECK(testing::contains(testing::error_of([&] { validate_config(f); }), "needs train.device \"cuda\""));
  apply_override(f, "train.device=cuda");
  CHECK_NOTHROW(validate_config(f));
  apply_override(f, "train.float32_attention=tf32");
  CHECK(testing::contains(testing::error_of([&] { validate_config(f); }),
                          "train.float32_attention: must be \"float32\" or \"bfloat16\", got \"tf32\""));

  // A subset: named keys change, the rest keep their defaults.
  const Config partial = config_from_json(json::parse(R"({"model": {"hidden_size": 64},
                                                          "data": {"corpus": "sotu"}})"), "partial");
  CHECK(partial.model.hidden_size == 64);
  CHECK(partial.data.corpus == "sotu");
  CHECK(partial.model.num_hidden_layers == ModelConfig{}.num_hidden_layers);
  CHECK(partial.train.learning_rate == TrainConfig{}.learning_rate);
  CHECK(config_to_json(config_from_json(json::object(), "empty")) == config_to_json(Config{}));
}

TEST_CASE("train: config overrides set ints, floats, bools, strings and arrays") {
  Config c;
  apply_override(c, "model.hidden_size=64");
  apply_override(c, "train.learning_rate=1e-3");
  apply_override(c, "train.min_learning_rate=0");  // an integer is a fine float
  apply_override(c, "model.tie_word_embeddings=false");
  apply_override(c, "data.corpus=sotu");
  apply_override(c, "model.layer_types=[\"full\",\"swa\",\"swa\",\"full\"]");
  apply_override(c, "train.seed=42");
  apply_override(c, "train.sample_prompt=42");        // a string key takes the text verbatim
  CHECK(c.model.hidden_size == 64);
  CHECK(c.train.learning_rate == 1e-3);
  CHECK(c.train.min_learning_rate == 0.0);
  CHECK(c.model.tie_word_embeddings == false);
  CHECK(c.data.corpus == "sotu");
  CHECK(c.model.layer_types == std::vector<std::string>{"full", "swa", "swa", "full"});
  CHECK(c.train.seed == 42);
  CHECK(c.train.sample_prompt == "42");
  apply_override(c, "train.sample_prompt=\"The \"");  // a JSON string literal: quotes removed
  CHECK(c.train.sample_prompt == "The ");
  apply_override(c, "train.sample_prompt=a=b");       // only the first '=' splits
  CHECK(c.train.sample_prompt == "a=b");
  CHECK_NOTHROW(validate_config(c));
}

TEST_CASE("train: config rejects unknown keys and wrong types, naming the key") {
  auto from_json = [](const char* text) {
    return error_of([&] { config_from_json(json::parse(text), "run.json"); });
  };
  auto override_ = [](const char* assignment) {
    return error_of([&] { Config c; apply_override(c, assignment); });
  };
  struct Rejection {
    std::string message;
    std::vector<std::string> must_contain;
  };
  const std::vector<Rejection> rejections = {
      {from_json(R"({"model": {"hiden_size": 64}})"),
       {"config run.json", "unknown key model.hiden_size", "did you mean model.hidden_size"}},
      {from_json(R"({"optim": {"lr": 1}})"), {"run.json", "unknown section optim"}},
      {from_json(R"({"model": 3})"), {"section model"}},
      {from_json(R"([1, 2])"), {"run.json", "JSON object"}},
      {from_json(R"({"model": {"hidden_size": 1.5}})"), {"model.hidden_size", "integer", "1.5"}},
      {from_json(R"({"model": {"hidden_size": 2.0}})"), {"model.hidden_size", "integer"}},
      {from_json(R"({"model": {"hidden_size": "64"}})"), {"model.hidden_size", "integer"}},
      {from_json(R"({"train": {"seed": -1}})"), {"train.seed", "non-negative integer"}},
      {from_json(R"({"train": {"steps": 9223372036854775808}})"), {"train.steps", "int64"}},
      {from_json(R"({"train": {"learning_rate": "fast"}})"), {"train.learning_rate", "number"}},
      {from_json(R"({"model": {"tie_word_embeddings": 1}})"),
       {"model.tie_word_embeddings", "true or false"}},
      {from_json(R"({"model": {"layer_types": "full"}})"),
       {"model.layer_types", "array of strings"}},
      {from_json(R"({"model": {"layer_types": ["full", 3]}})"),
       {"model.layer_types", "array of strings"}},
      {from_json(R"({"data": {"corpus": 7}})"), {"data.corpus", "string"}},
      {override_("model.hiden_size=64"), {"--set model.hiden_size=64", "unknown key model.hiden_size"}},
      {override_("optim.lr=1"), {"unknown section optim"}},
      {override_("model.hidden_size"), {"model.hidden_size", "="}},
      {override_("hidden_size=64"), {"hidden_size", "section.key=value"}},
      {override_("model.hidden_size=1.5"), {"model.hidden_size", "integer"}},
      {override_("model.hidden_size=big"), {"model.hidden_size", "integer", "\"big\""}},
      {override_("model.tie_word_embeddings=yes"), {"model.tie_word_embeddings", "true or false"}},
      {override_("model.layer_types=full"), {"model.layer_types", "array of strings"}},
      {override_("train.seed=-3"), {"train.seed", "non-negative"}},
      {override_("train.curriculum=3"), {"train.curriculum", "array of"}},
      {override_("train.curriculum=[{\"steps\":3}]"), {"train.curriculum[0]", "needs \"steps\" and \"seq_len\""}},
      {override_("train.curriculum=[{\"steps\":3,\"seq_len\":64,\"lr\":1}]"),
       {"train.curriculum[0]", "unknown key lr"}},
      {override_("train.curriculum=[{\"steps\":1.5,\"seq_len\":64}]"), {"train.curriculum[0].steps", "integer"}},
  };
  for (const Rejection& r : rejections) {
    INFO("message: " << r.message);
    CHECK_FALSE(r.message.empty());
    for (const std::string& part : r.must_contain) CHECK(contains(r.message, part));
  }
}

TEST_CASE("train: validate_config rejects impossible values, naming the key") {
  struct Case {
    std::vector<std::string> overrides;
    std::string expected;  // a part of the message; always includes the key
  };
  const std::vector<Case> cases = {
      {{"model.sliding_window=0"}, "model.sliding_window"},
      {{"model.num_key_value_heads=3"}, "model.num_key_value_heads"},  // 4 heads
      {{"model.head_dim=7"}, "model.head_dim"},
      {{"model.layer_types=[\"full\"]"}, "model.layer_types"},
      {{"train.seq_len=2048"}, "train.seq_len: 2048 exceeds model.max_position_embeddings 1024"},
      {{"train.seq_len=0"}, "train.seq_len"},
      {{"train.batch_size=0"}, "train.batch_size"},
      {{"train.steps=-1"}, "train.steps"},
      {{"train.learning_rate=-1"}, "train.learning_rate"},
      {{"train.min_learning_rate=0.01", "train.learning_rate=0.001"}, "train.min_learning_rate"},
      {{"train.warmup_steps=-1"}, "train.warmup_steps"},
      {{"train.weight_decay=-0.1"}, "train.weight_decay"},
      {{"train.beta1=1"}, "train.beta1"},
      {{"train.beta2=-0.5"}, "train.beta2"},
      {{"train.adam_eps=0"}, "train.adam_eps"},
      {{"train.grad_clip=-1"}, "train.grad_clip"},
      {{"train.log_interval=0"}, "train.log_interval"},
      {{"train.eval_interval=0"}, "train.eval_interval"},
      {{"train.eval_batches=0"}, "train.eval_batches"},
      {{"train.dtype=bfloat16"}, "train.dtype"},
      {{"train.threads=-2"}, "train.threads"},
      {{"train.sample_tokens=-1"}, "train.sample_tokens"},
      {{"train.sample_temperature=0"}, "train.sample_temperature"},
      {{"data.corpus=wikipedia"}, "data.corpus"},
      {{"data.tokenizer=bpe"}, "data.tokenizer"},
      {{"data.cache_dir=\"\""}, "data.cache_dir"},
      {{"data.tokenizer=gpt2"}, "model.vocab_size"},  // 256 < 50257
      {{"model.vocab_size=255"}, "model.vocab_size"},  // byte tokenizer needs 256
      {{"reg.target_ratio=-1"}, "no longer turns the controller off: set reg.controller=\"off\""},
      {{"reg.target_ratio=1.5"}, "reg.target_ratio: must be in [0, 1]"},
      {{"reg.controller=pi"}, "reg.controller: must be \"off\" or \"bias\""},
      {{"reg.controller_rate=0"}, "reg.controller_rate"},
      {{"reg.controller_rate=2"}, "reg.controller_rate"},
      {{"train.steps=10", "train.curriculum=[{\"steps\":4,\"seq_len\":64},{\"steps\":5,\"seq_len\":128}]"},
       "train.curriculum: its stages' steps sum to 9 but train.steps is 10"},
      {{"train.steps=9", "train.curriculum=[{\"steps\":4,\"seq_len\":64},{\"steps\":5,\"seq_len\":256}]"},
       "the last stage's seq_len 256 differs from train.seq_len 128"},
      {{"train.steps=9", "train.curriculum=[{\"steps\":4,\"seq_len\":4096},{\"steps\":5,\"seq_len\":128}]"},
       "train.curriculum[0].seq_len: 4096 exceeds model.max_position_embeddings 1024"},
      {{"train.steps=9", "train.curriculum=[{\"steps\":0,\"seq_len\":64},{\"steps\":9,\"seq_len\":128}]"},
       "train.curriculum[0].steps: must be >= 1"},
      {{"train.steps=9", "data.min_needle_distance=64",
        "train.curriculum=[{\"steps\":4,\"seq_len\":64},{\"steps\":5,\"seq_len\":128}]"},
       "train.curriculum[0].seq_len: 64 is not above data.min_needle_distance 64"},
  };
  for (const Case& k : cases) {
    Config c;
    for (const std::string& o : k.overrides) apply_override(c, o);
    const std::string message = error_of([&] { validate_config(c); });
    INFO("overrides " << k.overrides.front() << "; message: " << message);
    CHECK(contains(message, k.expected));
  }
  // The boundary values themselves are fine.
  Config ok;
  for (const char* o : {"train.seq_len=1024", "train.beta1=0", "train.warmup_steps=0",
                        "train.grad_clip=0", "train.threads=0", "train.sample_tokens=0",
                        "train.min_learning_rate=0.003", "data.tokenizer=gpt2",
                        "model.vocab_size=50257"})
    apply_override(ok, o);
  CHECK_NOTHROW(validate_config(ok));
}

TEST_CASE("train: load_config_file reads a file and names the path on every failure") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("swiattn_test_train_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const char* name, const char* text) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
  };
  const std::string good = write("good.json", R"({"model": {"num_hidden_layers": 2}})");
  const std::string broken = write("broken.json", R"({"model": {"num_hidden_layers": 2,}})");
  const std::string typo = write("typo.json", R"({"train": {"stepz": 2}})");
  const std::string missing = (dir / "missing.json").string();

  CHECK(load_config_file(good).model.num_hidden_layers == 2);
  const std::string not_json = error_of([&] { load_config_file(broken); });
  CHECK(contains(not_json, broken));
  CHECK(contains(not_json, "parse error"));  // the parser's own message
  const std::string unknown = error_of([&] { load_config_file(typo); });
  CHECK(contains(unknown, typo));
  CHECK(contains(unknown, "train.stepz"));
  CHECK(contains(error_of([&] { load_config_file(missing); }), missing));
  CHECK(contains(error_of([&] { load_config_file(dir.string()); }), "directory"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace swiattn

TEST_CASE("train: the example configurations in configs/ load and validate") {
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(SWIATTN_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    ++found;
    INFO(entry.path().string());
    CHECK_NOTHROW(swiattn::validate_config(swiattn::load_config_file(entry.path().string())));
  }
  CHECK(found >= 3);
}
