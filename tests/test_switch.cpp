// tests/test_switch.cpp: the SwiAttn-specific gradient checks (spec §3-5).
//   - the one-pass method equals the two-pass reference to 1e-12 (forward and every gradient);
//   - with hard 0/1 gates, the gate's gradient is the finite difference of the surrogate
//     O(c) = c O_FULL + (1 - c) O_SWA in c at c = m;
//   - the router's straight-through gradient equals the finite difference of the surrogate
//     sigma = m0 + p(w) - p(w0) (m0, p0 frozen at the unperturbed point);
//   - every other parameter of a switch model gets the true gradient of the hard-routed forward;
//   - the regulariser's gradient (gamma detached) and gamma itself (Eq. 8);
//   - edge cases: all tokens FA, all SWA, T < w, w = 1, odd T.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/cpu/switch_attention.h"
#include "model/router.h"
#include "model/transformer.h"
#include "tensor/random.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"
#include "train/regularizer.h"

namespace swiattn {
namespace {

using testing::contains;
using testing::error_of;

Tensor random_routes(int64_t B, int64_t T, uint64_t seed, double p_full) {
  std::vector<double> m(static_cast<size_t>(B * T));
  Rng rng(seed);
  for (double& x : m) x = rng.uniform() < p_full ? 1.0 : 0.0;
  return Tensor::from_vector(m, {B, T}, DType::F64);
}

struct SwitchInputs {
  std::vector<Var> x;  // q, k, v, gate
};

SwitchInputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, const Tensor& gate, uint64_t seed) {
  SwitchInputs in;
  in.x.emplace_back(Tensor::randn({B, T, H, D}, DType::F64, derive_seed(seed, 0)), true);
  in.x.emplace_back(Tensor::randn({B, T, Hkv, D}, DType::F64, derive_seed(seed, 1)), true);
  in.x.emplace_back(Tensor::randn({B, T, Hkv, D}, DType::F64, derive_seed(seed, 2)), true);
  in.x.emplace_back(gate.clone(), true);
  return in;
}

// Forward value and every input gradient under L = sum(R * out), for one method.
std::vector<Tensor> value_and_grads(const SwitchInputs& in, int64_t w, SwitchMethod method) {
  for (const Var& v : in.x) v.zero_grad();
  Var out = switch_attention(in.x[0], in.x[1], in.x[2], w, in.x[3], nullptr, method);
  const Tensor R = Tensor::randn(out.shape(), DType::F64, 4242);
  sum(mul(out, Var(R))).backward();
  std::vector<Tensor> result{out.value().clone()};
  for (const Var& v : in.x) result.push_back(v.grad().clone());
  return result;
}

struct EdgeCase {
  const char* name;
  int64_t B, T, H, Hkv, D, w;
  double p_full;  // fraction of tokens routed to FA
};

const EdgeCase kEdgeCases[] = {
    {"mixed routes", 2, 13, 4, 2, 3, 4, 0.4},
    {"all tokens FA", 1, 9, 2, 1, 4, 3, 1.0},
    {"all tokens SWA", 1, 9, 2, 1, 4, 3, 0.0},
    {"T < w", 1, 5, 2, 2, 4, 8, 0.5},
    {"w = 1", 2, 7, 2, 1, 2, 1, 0.5},
    {"odd T = 33, GQA 3:1", 1, 33, 3, 1, 2, 6, 0.3},
};

TEST_CASE("switch: one-pass equals the two-pass reference to 1e-12, forward and backward") {
  for (const EdgeCase& c : kEdgeCases) {
    const SwitchInputs in = make_inputs(c.B, c.T, c.H, c.Hkv, c.D, random_routes(c.B, c.T, 7, c.p_full), 11);
    const auto one = value_and_grads(in, c.w, SwitchMethod::OnePass);
    const auto two = value_and_grads(in, c.w, SwitchMethod::TwoPassReference);
    for (size_t i = 0; i < one.size(); ++i) {
      INFO(c.name, ": output/gradient ", i);
      CHECK(testing::max_abs_diff(one[i], two[i]) <= 1e-12);
    }
  }
}

TEST_CASE("switch: with hard gates, the gate gradient is the surrogate's finite difference at c = m") {
  // gradcheck perturbs every input, the 0/1 gate included: its finite difference is exactly
  // d/dc [c O_FULL + (1 - c) O_SWA] at c = m, the STE's definition; q, k, v get true gradients.
  for (const EdgeCase& c : kEdgeCases) {
    const SwitchInputs in = make_inputs(c.B, c.T, c.H, c.Hkv, c.D, random_routes(c.B, c.T, 3, c.p_full), 5);
    const auto r = testing::gradcheck_inputs(
        [&](const std::vector<Var>& x) { return switch_attention(x[0], x[1], x[2], c.w, x[3]); }, in.x);
    INFO(c.name, ": ", r.first_failure);
    CHECK(r.ok());
  }
}

TEST_CASE("switch: edge cases reduce to the plain attention branches") {
  const int64_t B = 1, T = 9, H = 2, Hkv = 1, D = 4, w = 3;
  NoGradGuard no_grad;
  const SwitchInputs fa = make_inputs(B, T, H, Hkv, D, Tensor::full({B, T}, 1.0, DType::F64), 1);
  const SwitchInputs swa = make_inputs(B, T, H, Hkv, D, Tensor::zeros({B, T}, DType::F64), 1);
  const Tensor full_attn = attention(fa.x[0], fa.x[1], fa.x[2], 0).value();
  const Tensor window_attn = attention(fa.x[0], fa.x[1], fa.x[2], w).value();
  CHECK(testing::max_abs_diff(switch_attention(fa.x[0], fa.x[1], fa.x[2], w, fa.x[3]).value(), full_attn) <= 1e-14);
  CHECK(testing::max_abs_diff(switch_attention(swa.x[0], swa.x[1], swa.x[2], w, swa.x[3]).value(), window_attn) <= 1e-14);
  // T <= w: the two branches read the same keys, and the branch difference is zero.
  Tensor diff;
  switch_attention(fa.x[0], fa.x[1], fa.x[2], T, fa.x[3], &diff);
  for (int64_t i = 0; i < diff.numel(); ++i) CHECK(diff.at(i) == 0.0);
  // Positions t < w have O_FULL = O_SWA for any w.
  switch_attention(fa.x[0], fa.x[1], fa.x[2], w, fa.x[3], &diff);
  for (int64_t t = 0; t < T; ++t) CHECK((t < w ? diff.at(t) == 0.0 : diff.at(t) > 1e-6));
}

TEST_CASE("switch: inference skips the far keys of SWA-routed queries without changing the output") {
  const SwitchInputs in = make_inputs(2, 11, 2, 1, 4, random_routes(2, 11, 9, 0.5), 2);
  const Tensor trained = switch_attention(in.x[0], in.x[1], in.x[2], 3, in.x[3]).value();
  NoGradGuard no_grad;
  const Tensor served = switch_attention(in.x[0], in.x[1], in.x[2], 3, in.x[3]).value();
  CHECK(testing::max_abs_diff(trained, served) == 0.0);
}

TEST_CASE("switch: the router's straight-through gradient equals the surrogate's finite difference") {
  // Inputs: u (B, T, C) the router reads, w_r (1, C), b_r (1), and q, k, v.
  const int64_t B = 2, T = 9, C = 5, H = 2, Hkv = 1, D = 4, w = 3;
  std::vector<Var> x;
  x.emplace_back(Tensor::randn({B, T, C}, DType::F64, 1), true);
  x.emplace_back(Tensor::randn({1, C}, DType::F64, 2), true);
  x.emplace_back(Tensor::randn({1}, DType::F64, 3, 0.0, 0.1), true);
  x.emplace_back(Tensor::randn({B, T, H, D}, DType::F64, 4), true);
  x.emplace_back(Tensor::randn({B, T, Hkv, D}, DType::F64, 5), true);
  x.emplace_back(Tensor::randn({B, T, Hkv, D}, DType::F64, 6), true);
  const double tau = 0.5;
  auto hard_routed = [&](const std::vector<Var>& in) {
    const RouterDecision r = route_tokens(in[0], in[1], in[2], tau);
    return switch_attention(in[3], in[4], in[5], w, r.gate);
  };
  // The surrogate: sigma = m0 + p(u, w_r, b_r) - p0, with m0 and p0 from the unperturbed inputs.
  Tensor m0, p0;
  {
    NoGradGuard probe;
    const RouterDecision r0 = route_tokens(x[0], x[1], x[2], tau);
    m0 = r0.route.clone();
    p0 = r0.prob.value().clone();
  }
  double routed = 0.0;
  for (int64_t i = 0; i < m0.numel(); ++i) routed += m0.at(i);
  REQUIRE(routed > 0);
  REQUIRE(routed < m0.numel());  // both branches in use
  auto surrogate = [&](const std::vector<Var>& in, const std::vector<Tensor>&) {
    const RouterDecision r = route_tokens(in[0], in[1], in[2], tau);
    return switch_attention(in[3], in[4], in[5], w, add(Var(m0), sub(r.prob, Var(p0))));
  };
  const auto r = testing::gradcheck_inputs(hard_routed, x, {}, surrogate);
  INFO(r.first_failure);
  CHECK(r.ok());
  // The router really receives a gradient (a dropped STE would leave w_r's gradient at zero).
  double router_grad = 0.0;
  for (int64_t i = 0; i < x[1].grad().numel(); ++i) router_grad += std::abs(x[1].grad().at(i));
  CHECK(router_grad > 1e-3);
}

TEST_CASE("switch: the gate's value is exactly the hard route") {
  const Var u(Tensor::randn({2, 7, 3}, DType::F32, 1), true);
  const Var wr(Tensor::randn({1, 3}, DType::F32, 2), true);
  const Var br(Tensor::zeros({1}, DType::F32), true);
  const RouterDecision r = route_tokens(u, wr, br, 0.5);
  for (int64_t i = 0; i < r.route.numel(); ++i) {
    CHECK(r.gate.value().at(i) == r.route.at(i));
    CHECK(r.route.at(i) == (r.prob.value().at(i) > 0.5 ? 1.0 : 0.0));
  }
}

// The tiny model with two switch layers whose router logits lie far from the threshold.
ModelConfig switch_model_config() {
  ModelConfig c = testing::tiny_model_config();
  c.layer_types = {"switch", "switch"};
  c.router_init_std = 1.0;  // router logits far from the threshold: no route flips under e
  return c;
}

TEST_CASE("switch: a switch model's non-router parameters get the true gradient of the hard-routed forward") {
  Transformer model(switch_model_config(), DType::F64, 17);
  Rng rng(3);
  std::vector<int32_t> ids(14), targets(14);
  for (auto& i : ids) i = static_cast<int32_t>(rng.below(11));
  for (auto& t : targets) t = static_cast<int32_t>(rng.below(11));
  const Tensor I = Tensor::from_ints(ids, {2, 7}), Y = Tensor::from_ints(targets, {2, 7});
  // The routes must be mixed and every router probability well away from tau, so that a
  // finite-difference step cannot flip one (the hard forward is then smooth around the point).
  {
    NoGradGuard no_grad;
    const ForwardResult f = model.forward_with_routing(I, false);
    double routed = 0.0, closest = 1.0;
    for (const LayerRouting& r : f.routing)
      for (int64_t i = 0; i < r.route.numel(); ++i) {
        routed += r.route.at(i);
        closest = std::min(closest, std::abs(1.0 / (1.0 + std::exp(-r.logit.value().at(i))) - 0.5));
      }
    REQUIRE(routed > 0);
    REQUIRE(routed < 28);
    REQUIRE(closest > 1e-3);
  }
  std::vector<Var> non_router;
  for (const Var& p : model.parameters())
    if (p.name().find("router") == std::string::npos) non_router.push_back(p);
  const auto r = testing::gradcheck_inputs([&](const std::vector<Var>&) { return model.loss(I, Y); }, non_router);
  MESSAGE("switch model: ", r.checked, " non-router parameters, max abs error ", r.max_abs_error);
  INFO(r.first_failure);
  CHECK(r.ok());

  // With the router input attached, the STE signal also reaches the parameters upstream of the
  // router (embeddings, norms, earlier layers): their gradient is then no longer the hard forward's.
  ModelConfig attached = switch_model_config();
  attached.router_detach_input = false;
  Transformer model2(attached, DType::F64, 17);
  std::vector<Var> upstream{model2.parameters().front()};  // embed.weight
  const auto r2 = testing::gradcheck_inputs([&](const std::vector<Var>&) { return model2.loss(I, Y); }, upstream);
  CHECK_FALSE(r2.ok());
}

TEST_CASE("switch: router init modes") {
  ModelConfig c = switch_model_config();
  c.router_init = "full";
  Transformer full_init(c, DType::F64, 1);
  c.layer_types = {"full", "full"};
  Transformer plain(c, DType::F64, 1);
  // "full" routes every token to full attention: the same function as the all-full model with
  // the same weights (the router parameters are the only extra ones).
  const Tensor ids = Tensor::from_ints({1, 2, 3, 4, 5, 6, 7, 8}, {1, 8});
  NoGradGuard no_grad;
  const ForwardResult f = full_init.forward_with_routing(ids, false);
  for (const LayerRouting& r : f.routing)
    for (int64_t i = 0; i < r.route.numel(); ++i) CHECK(r.route.at(i) == 1.0);
  CHECK(full_init.parameters().size() == plain.parameters().size() + 4);
}

TEST_CASE("switch: gamma follows Eq. 8 and the regulariser's gradient matches finite differences") {
  RegularizerConfig cfg;  // adaptive, gamma_base 1e-3, eps 0.1, alpha 100
  const Tensor nll = Tensor::from_vector({0.5, 2.0, 0.0}, {3}, DType::F64);
  const Tensor diff = Tensor::from_vector({0.0, 0.01, 1.0}, {1, 3}, DType::F64);
  const Tensor gamma = adaptive_gamma(nll, diff, cfg, 1e-3);
  CHECK(gamma.at(0) == doctest::Approx(1e-3 / 0.6).epsilon(1e-12));
  CHECK(gamma.at(1) == doctest::Approx(1e-3 / 3.1).epsilon(1e-12));
  CHECK(gamma.at(2) == doctest::Approx(1e-3 / 100.1).epsilon(1e-12));

  // Two switch layers' logits as inputs; gamma is detached, so plain finite differences apply.
  const Tensor nll2 = Tensor::rand_uniform({2 * 5}, DType::F64, 1, 0.0, 4.0);
  const Tensor d0 = Tensor::rand_uniform({2, 5}, DType::F64, 2, 0.0, 0.05);
  const Tensor d1 = Tensor::rand_uniform({2, 5}, DType::F64, 3, 0.0, 0.05);
  for (const char* mode : {"adaptive", "fixed"}) {
    cfg.mode = mode;
    auto reg = [&](const std::vector<Var>& s) {
      std::vector<LayerRouting> routing{{0, s[0], hard_route(sigmoid(s[0]).value(), 0.5), d0},
                                        {1, s[1], hard_route(sigmoid(s[1]).value(), 0.5), d1}};
      return efficiency_regularizer(routing, nll2, cfg, 1e-3, 2).loss;
    };
    testing::GradCheckOptions opt;
    opt.atol = 1e-10;  // the regulariser is ~1e-3 in size
    const auto r = testing::gradcheck(reg, {{2, 5}, {2, 5}}, opt);
    INFO(mode, ": ", r.first_failure);
    CHECK(r.ok());
  }
}

TEST_CASE("switch: routing ratios, and the target-ratio controller's bias step") {
  RegularizerConfig cfg;
  const Var s(Tensor::from_vector({1, -1, 1, 1, -1, -1, 1, -1}, {2, 4}, DType::F64), true);
  const std::vector<LayerRouting> routing{{0, s, hard_route(sigmoid(s).value(), 0.5),
                                           Tensor::zeros({2, 4}, DType::F64)}};
  const RegularizerResult r = efficiency_regularizer(routing, Tensor::zeros({8}, DType::F64), cfg, 1e-3, 2);
  CHECK(r.ratio == doctest::Approx(0.5));
  CHECK(r.effective_ratio == doctest::Approx(0.75));  // t >= 2: routes {1, 1} and {1, 0}
  CHECK(r.layers.at(0).mean_gamma == doctest::Approx(1e-2));  // 1e-3 / (0.1 + 0 + 0)

  // The controller's shift: the one that routes exactly the target share of the step's logits
  // (threshold tau = 0.5: logit 0). Logits 3, 2, 1, -1 with target 0.5: q = (2 + 1) / 2, delta = -1.5
  // clamped to -1; target 0.25: q = 2.5; 0: q = the largest (3), so s + delta = 0 is not > 0;
  // 1: just below the smallest.
  CHECK(ratio_controller_shift({1, 3, -1, 2}, 0.5, 0.5, 1.0) == -1.0);
  CHECK(ratio_controller_shift({1, 3, -1, 2}, 0.5, 0.5, 0.5) == doctest::Approx(-0.75));
  CHECK(ratio_controller_shift({0.1, 0.3, -0.1, 0.2}, 0.25, 0.5, 1.0) == doctest::Approx(-0.25));
  CHECK(ratio_controller_shift({0.1, 0.3, -0.1, 0.2}, 0.0, 0.5, 1.0) == doctest::Approx(-0.3));
  CHECK(ratio_controller_shift({0.1, 0.3, -0.1, 0.2}, 1.0, 0.5, 1.0) == doctest::Approx(0.1).epsilon(1e-4));
  CHECK(ratio_controller_shift({-5, -4, -6}, 1.0 / 3.0, 0.5, 1.0) == 1.0);  // |delta| <= 1 logit a step
  CHECK(ratio_controller_shift({0.1, 0.3, -0.1, 0.2}, 0.5, 0.9, 0.4) == doctest::Approx(0.4 * (std::log(9.0) - 0.15)));
  CHECK(contains(error_of([&] { ratio_controller_shift({1.0, NAN}, 0.5, 0.5, 1.0); }), "not finite"));

  // It moves every switch layer's router bias by that shift, and nothing else: afterwards the
  // step's tokens, re-scored by the routers, go to full attention in exactly the target share.
  ModelConfig mc;
  mc.layer_types = {"switch", "full", "switch", "swa"};
  mc.router_init_std = 0.05;  // logits of about +-0.5: the needed shift is inside the 1-logit bound
  Transformer model(mc, DType::F64, 7);
  auto biases = [&] {
    std::vector<double> b;
    for (const TransformerLayer& layer : model.layers())
      if (layer.type == LayerType::Switch) b.push_back(layer.attn.router_bias.value().item());
    return b;
  };
  std::vector<int32_t> ids(2 * 40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % 256);
  const ForwardResult f = model.forward_with_routing(Tensor::from_ints(ids, {2, 40}), false);
  auto share_routed = [&] {
    double above = 0, n = 0;
    for (const LayerRouting& r : f.routing)
      for (double x : model.router_logits(r.layer, r.input).to_vector()) above += x > 0.0, n += 1;
    return above / n;
  };
  const std::vector<double> before = biases();
  CHECK(share_routed() > 0.3);  // a mixed share to start from
  cfg.target_ratio = 0.25;
  CHECK(apply_ratio_controller(model, f.routing, cfg) == 0.0);  // off by default: nothing moves
  CHECK(biases() == before);
  cfg.controller = "bias";
  const double delta = apply_ratio_controller(model, f.routing, cfg);
  CHECK(delta < 0.0);
  CHECK(delta > -1.0);  // not clamped
  const std::vector<double> after = biases();
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i] == doctest::Approx(before[i] + delta));
  CHECK(share_routed() == 0.25);  // 40 of the 160 (token, layer) pairs: exactly the target
  CHECK(contains(error_of([&] { (void)model.router_logits(1, f.routing[0].input); }), "not a switch layer"));
  cfg.mode = "off";
  CHECK_FALSE(efficiency_regularizer(routing, Tensor::zeros({8}, DType::F64), cfg, 1e-3, 2).loss.defined());
}

}  // namespace
}  // namespace swiattn
