// tests/test_decode.cpp: incremental decoding with the unified KV cache (spec §7-8), on the CPU.
//   - decoding token by token (step mode from an empty cache) gives the full forward's logits to
//     1e-10 in float64, for full, swa, static hybrid and switch models, T < w, T = w and T > w,
//     batches of different content;
//   - a control shows the comparison can fail: SWA and FA logits of the same weights differ
//     beyond the window, so matching them proves each token read the right key range;
//   - switch layers take, token by token, the routes forward_with_routing takes, and sequences of
//     one batch take different branches in the same step;
//   - the keys-read counter equals spec §8's m(t+1) + (1-m)min(t+1, w) from the forward's routes;
//   - prefill (the forward in sequence mode, storing k, v) of prompts of different lengths, then
//     steps at different positions, decodes exactly; prefill batches split by the token budget;
//   - generate_batch equals per-prompt generation by full forwards (greedy and sampled), prompts
//     of one batch do not influence each other, and the output keeps the input order;
//   - RoPE with per-row positions equals per-row RoPE with offsets;
//   - errors for overflow and mismatches, before anything changes.
// Sampling (top-k, top-p, greedy) on known logits: tests/test_sampling.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "model/decode.h"
#include "model/sampling.h"
#include "tensor/random.h"
#include "tests/gradcheck.h"

namespace swiattn {
namespace {

constexpr int64_t kWindow = 4;

ModelConfig decode_config(const std::vector<std::string>& layer_types) {
  ModelConfig c;
  c.vocab_size = 13;
  c.hidden_size = 10;
  c.num_hidden_layers = static_cast<int64_t>(layer_types.size());
  c.num_attention_heads = 6;
  c.num_key_value_heads = 3;  // GQA 2:1 with several kv heads: checks the head -> kv head offsets
  c.head_dim = 4;
  c.intermediate_size = 14;
  c.sliding_window = kWindow;
  c.layer_types = layer_types;
  c.max_position_embeddings = 24;
  c.initializer_range = 0.5;  // large weights: attention is far from uniform, windows matter
  c.router_init_std = 1.0;    // s_t spreads over several units: routes are mixed
  return c;
}

// Trained models have norm gains away from 1 and router biases away from 0; at initialisation
// (gains 1, b_r = 0) the route [w_r . u > 0] of the first layer would not depend on whether the
// router reads u = RMSNorm(x) or x (a positive rescaling), so this moves them.
void move_gains_and_router_biases(const Transformer& model, uint64_t seed) {
  Rng rng(seed);
  for (const Var& p : model.parameters()) {
    const bool gain = p.name().find("norm.weight") != std::string::npos;
    const bool router_bias = p.name().find("router.bias") != std::string::npos;
    if (!gain && !router_bias) continue;
    double* x = p.value().data<double>();  // float64 models only
    for (int64_t i = 0; i < p.value().numel(); ++i) x[i] = gain ? 1.0 + 0.3 * rng.normal() : 0.5 * rng.normal();
  }
}

Tensor random_ids(int64_t B, int64_t T, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(vocab));
  return Tensor::from_ints(ids, {B, T});
}

struct DecodeRun {
  Tensor logits;  // (B, T, V), row (b, t) = the step's logits after token t of sequence b
  DecodeStats stats;
};

// Feeds ids (B, T) column by column through Decoder::step on a cache of capacity exactly T.
DecodeRun decode_all(const Transformer& model, const Tensor& ids) {
  const int64_t B = ids.dim(0), T = ids.dim(1), V = model.config().vocab_size;
  Decoder decoder(model, B, T);
  DecodeRun run;
  run.logits = Tensor::zeros({B, T, V}, DType::F64);
  const std::vector<int32_t> all = ids.to_ints();
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> tokens(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) tokens[b] = all[b * T + t];
    const std::vector<double> step = decoder.step(tokens, &run.stats).to_vector();  // (B, V)
    double* out = run.logits.data<double>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t v = 0; v < V; ++v) out[(b * T + t) * V + v] = step[b * V + v];
  }
  return run;
}

Tensor forward_logits(const Transformer& model, const Tensor& ids) {
  NoGradGuard no_grad;
  return model.forward(ids).value().to(DType::F64);  // (B, T, V)
}

// Max |a - b| over the rows t in [t_begin, t_end) of two (B, T, V) tensors.
double max_diff_over_positions(const Tensor& a, const Tensor& b, int64_t t_begin, int64_t t_end) {
  const int64_t B = a.dim(0), T = a.dim(1), V = a.dim(2);
  double worst = 0;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = t_begin; t < t_end; ++t)
      for (int64_t v = 0; v < V; ++v)
        worst = std::max(worst, std::abs(a.at((i * T + t) * V + v) - b.at((i * T + t) * V + v)));
  return worst;
}

TEST_CASE("decode: cached decoding gives the full forward's logits (full, swa, static hybrid; T < w, = w, > w)") {
  const std::vector<std::vector<std::string>> patterns = {
      {"full", "full", "full"}, {"swa", "swa", "swa"}, {"swa", "full", "swa", "full"}};
  for (const auto& types : patterns)
    for (int64_t T : {3, 4, 11}) {
      const Transformer model(decode_config(types), DType::F64, 7);
      move_gains_and_router_biases(model, 1);
      const Tensor ids = random_ids(3, T, 13, 100 + T);  // 3 sequences of different content
      const double diff = testing::max_abs_diff(decode_all(model, ids).logits, forward_logits(model, ids));
      INFO("layers ", types.size(), " first ", types[0], ", T = ", T, ", max abs diff ", diff);
      CHECK(diff <= 1e-10);
    }
}

TEST_CASE("decode: control: SWA and FA logits of the same weights differ beyond the window, agree within it") {
  // Same shapes and seed: "full" and "swa" models hold identical weights. If decoding read a
  // wrong key range, one of the two comparisons above would fail by about this much.
  const Transformer swa_model(decode_config({"swa", "swa", "swa"}), DType::F64, 7);
  const Transformer full_model(decode_config({"full", "full", "full"}), DType::F64, 7);
  const int64_t T = 11;
  const Tensor ids = random_ids(3, T, 13, 100 + T);
  const Tensor swa_decoded = decode_all(swa_model, ids).logits;
  const Tensor full_forward = forward_logits(full_model, ids);
  CHECK(max_diff_over_positions(swa_decoded, full_forward, 0, kWindow) <= 1e-10);  // t < w: same keys
  CHECK(max_diff_over_positions(swa_decoded, full_forward, kWindow, T) > 1e-3);    // t >= w: fewer keys
}

// The routes forward_with_routing takes: routes[l][b * T + t] = m_t of switch layer l (full
// layers 1, swa layers 0), for every layer l.
std::vector<std::vector<double>> forward_routes(const Transformer& model, const Tensor& ids) {
  NoGradGuard no_grad;
  const ForwardResult r = model.forward_with_routing(ids, false);
  const ModelConfig& c = model.config();
  std::vector<std::vector<double>> routes;
  size_t next_switch = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (c.layer_type(l) == LayerType::Switch) {
      REQUIRE(r.routing.at(next_switch).layer == l);
      routes.push_back(r.routing[next_switch++].route.to_vector());
    } else {
      routes.emplace_back(ids.numel(), c.layer_type(l) == LayerType::Full ? 1.0 : 0.0);
    }
  }
  return routes;
}

TEST_CASE("decode: switch layers route each token as the full forward does, and the logits match") {
  std::vector<std::vector<std::vector<double>>> routes_by_input;
  for (const std::string router_input : {"normed", "residual"}) {
    ModelConfig config = decode_config({"switch", "switch", "swa", "switch"});
    config.router_input = router_input;
    const Transformer model(config, DType::F64, 11);
    move_gains_and_router_biases(model, 12);
    const int64_t B = 3, T = 13;
    const Tensor ids = random_ids(B, T, 13, 5);
    const DecodeRun run = decode_all(model, ids);
    const double diff = testing::max_abs_diff(run.logits, forward_logits(model, ids));
    INFO("router_input ", router_input, ", max abs diff ", diff);
    CHECK(diff <= 1e-10);

    const auto routes = forward_routes(model, ids);
    REQUIRE(run.stats.tokens.size() == static_cast<size_t>(B * T));
    int64_t mismatches = 0, fa_late = 0, swa_late = 0, split_steps = 0;
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      if (config.layer_type(l) != LayerType::Switch) continue;
      std::vector<std::vector<int>> by_step(static_cast<size_t>(T));  // routes taken at step t
      for (const DecodedToken& token : run.stats.tokens) {
        CHECK_FALSE(token.prefill);
        const double m = routes[l][token.sequence * T + token.position];
        mismatches += token.full_attention[l] != static_cast<uint8_t>(m);
        if (token.position >= kWindow) (m > 0.5 ? fa_late : swa_late) += 1;
        by_step[token.position].push_back(token.full_attention[l]);
      }
      for (int64_t t = kWindow; t < T; ++t)
        split_steps += std::count(by_step[t].begin(), by_step[t].end(), 1) % B != 0;
    }
    INFO("FA routes at t >= w: ", fa_late, ", SWA: ", swa_late, ", steps with split branches: ", split_steps);
    CHECK(mismatches == 0);
    CHECK(fa_late > 0);      // routes are mixed where the branches differ ...
    CHECK(swa_late > 0);
    CHECK(split_steps > 0);  // ... and one batch step sends sequences down different branches
    routes_by_input.push_back(routes);
  }
  CHECK(routes_by_input[0] != routes_by_input[1]);  // the router_input knob changes the routes
}

TEST_CASE("decode: keys read per step and layer equal spec §8's formula from the forward's routes") {
  const ModelConfig config = decode_config({"switch", "full", "swa", "switch"});
  const Transformer model(config, DType::F64, 3);
  move_gains_and_router_biases(model, 1);
  const int64_t B = 2, T = 9, w = kWindow;
  const Tensor ids = random_ids(B, T, 13, 17);
  const DecodeStats stats = decode_all(model, ids).stats;
  const auto routes = forward_routes(model, ids);
  const double bytes_per_token = 2.0 * config.num_key_value_heads * config.head_dim * sizeof(double);

  REQUIRE(stats.tokens.size() == static_cast<size_t>(B * T));
  CHECK(stats.bytes_per_element == 8);
  for (size_t i = 0; i < stats.tokens.size(); ++i) {
    const DecodedToken& token = stats.tokens[i];
    const int64_t t = token.position;
    double expected_mean = 0;
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const double m = routes[l][token.sequence * T + t];
      const double expected = m * (t + 1) + (1 - m) * std::min<int64_t>(t + 1, w);  // spec §8
      CHECK(static_cast<double>(token.keys_read[l]) == expected);
      expected_mean += expected / config.num_hidden_layers;
    }
    CHECK(stats.keys_read_tokens(i) == doctest::Approx(expected_mean).epsilon(1e-12));
    CHECK(stats.keys_read_bytes(i) == doctest::Approx(expected_mean * bytes_per_token).epsilon(1e-12));
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    double ratio = 0;
    for (double m : routes[l]) ratio += m / static_cast<double>(routes[l].size());
    CHECK(stats.full_attention_ratio(l) == doctest::Approx(ratio).epsilon(1e-12));
    for (int64_t b = 0; b < B; ++b) {  // per sequence (every token decoded here, none prefilled)
      double per_seq = 0;
      for (int64_t t = 0; t < T; ++t) per_seq += routes[l][b * T + t] / static_cast<double>(T);
      CHECK(stats.decoded_full_attention_ratio(l, b) == doctest::Approx(per_seq).epsilon(1e-12));
    }
  }
  MESSAGE("mean keys read per layer ", stats.mean_keys_read_tokens(), " tokens vs dense ", (T + 1) / 2.0);
}

// Logits after the last token of `tokens`, by one full forward of that single sequence: (V).
std::vector<double> last_forward_row(const Transformer& model, const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size()), V = model.config().vocab_size;
  const std::vector<double> all = forward_logits(model, Tensor::from_ints(tokens, {1, T})).to_vector();
  return std::vector<double>(all.end() - V, all.end());
}

double max_row_diff(const Tensor& logits /* (S, V) */, int64_t s, const std::vector<double>& row) {
  double worst = 0;
  for (size_t v = 0; v < row.size(); ++v)
    worst = std::max(worst, std::abs(logits.at(s * static_cast<int64_t>(row.size()) + v) - row[v]));
  return worst;
}

TEST_CASE("decode: prefill of prompts of different lengths, then steps at different positions, is exact") {
  // A switch + static hybrid; prompts of lengths 2, 9, 5 (shorter and longer than w = 4). Budgets:
  // all prompts in one padded forward, and one prompt per forward (the batches the budget cuts).
  for (int64_t budget : {65536, 9}) {
    CAPTURE(budget);
    const Transformer model(decode_config({"switch", "swa", "full", "switch"}), DType::F64, 23);
    move_gains_and_router_biases(model, 1);
    std::vector<std::vector<int32_t>> seqs;
    for (int64_t len : {2, 9, 5}) seqs.push_back(random_ids(1, len, 13, 40 + len).to_ints());
    Decoder decoder(model, 3, 16, budget);
    DecodeStats stats;
    Tensor logits = decoder.prefill(seqs, &stats);  // (3, V)
    // The prompt tokens are recorded with the routes of their own forward.
    REQUIRE(stats.tokens.size() == 2 + 9 + 5);
    for (int64_t s = 0; s < 3; ++s) {
      const int64_t T = static_cast<int64_t>(seqs[s].size());
      const auto routes = forward_routes(model, Tensor::from_ints(seqs[s], {1, T}));
      for (const DecodedToken& token : stats.tokens)
        if (token.sequence == s) {
          CHECK(token.prefill);
          for (int64_t l = 0; l < 4; ++l) CHECK(token.full_attention[l] == static_cast<uint8_t>(routes[l][token.position]));
        }
    }
    Rng rng(9);
    for (int64_t step = 0; step <= 4; ++step) {
      for (int64_t s = 0; s < 3; ++s) {
        CHECK(decoder.cache().length(s) == static_cast<int64_t>(seqs[s].size()));
        const double diff = max_row_diff(logits, s, last_forward_row(model, seqs[s]));
        INFO("step ", step, " sequence ", s, " at position ", seqs[s].size() - 1, ": max abs diff ", diff);
        CHECK(diff <= 1e-10);
      }
      std::vector<int32_t> next(3);
      for (int64_t s = 0; s < 3; ++s) seqs[s].push_back(next[s] = static_cast<int32_t>(rng.below(13)));
      logits = decoder.step(next, &stats);
    }
    CHECK(stats.tokens.size() == 2 + 9 + 5 + 3 * 5);
    CHECK(std::count_if(stats.tokens.begin(), stats.tokens.end(), [](const DecodedToken& t) { return t.prefill; }) == 16);
  }
}

TEST_CASE("decode: generate_batch equals generation by full forwards, prompt by prompt, in input order") {
  const Transformer model(decode_config({"switch", "full", "switch"}), DType::F64, 31);
  move_gains_and_router_biases(model, 4);
  const std::vector<std::vector<int32_t>> prompts = {{3, 1, 4, 1, 5}, {9}, {2, 6, 5, 3, 5, 8, 9}};
  SamplingOptions greedy;
  greedy.temperature = 0;
  Rng unused(0);
  DecodeStats stats;
  const auto batched = generate_batch(model, prompts, 8, greedy, unused, &stats);
  REQUIRE(batched.size() == 3);
  for (size_t s = 0; s < prompts.size(); ++s) {
    Rng rng(1);
    CHECK(batched[s] == generate(model, prompts[s], 8, 0.0, model.config().max_position_embeddings, rng));
    Rng alone_rng(0);  // the same prompt alone in its batch: the other sequences change nothing
    CHECK(batched[s] == generate_batch(model, {prompts[s]}, 8, greedy, alone_rng).at(0));
  }
  CHECK(unused.counter == 0);  // greedy draws nothing
  CHECK(stats.tokens.size() == 5 + 1 + 7 + 3 * 7);  // prompts, then 7 steps (the last token is not fed back)
  for (size_t s = 0; s < prompts.size(); ++s) CHECK(batched[s].size() == prompts[s].size() + 8);
}

TEST_CASE("decode: generate_with_cache samples exactly what generate samples") {
  const Transformer model(decode_config({"switch", "full", "switch"}), DType::F64, 31);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  Rng rng_cached(77), rng_full(77);
  DecodeStats stats;
  const auto cached = generate_with_cache(model, prompt, 12, 1.0, rng_cached, &stats);
  const auto full = generate(model, prompt, 12, 1.0, model.config().max_position_embeddings, rng_full);
  CHECK(cached == full);
  CHECK(cached.size() == prompt.size() + 12);
  CHECK(stats.tokens.size() == prompt.size() + 12 - 1);  // the last sampled token is not fed back
  CHECK(rng_cached.counter == rng_full.counter);
}

TEST_CASE("decode: float32 decoding matches the float32 forward") {
  const Transformer model(decode_config({"swa", "switch", "full"}), DType::F32, 5);
  const Tensor ids = random_ids(2, 10, 13, 8);
  const double diff = testing::max_abs_diff(decode_all(model, ids).logits, forward_logits(model, ids));
  INFO("max abs diff ", diff);
  CHECK(diff <= 1e-4);
}

TEST_CASE("decode: RoPE at per-row positions equals RoPE of each row at its own offset") {
  const Tensor x = Tensor::randn({3, 2, 2, 6}, DType::F64, 4);  // (B, T, H, D)
  const std::vector<int32_t> starts = {0, 7, 3};
  const Tensor batched = rope(Var(x), 100.0, 2, Tensor::from_ints(starts, {3})).value();
  for (int64_t b = 0; b < 3; ++b) {
    const Tensor alone = rope(Var(x.slice(b, b + 1)), 100.0, 2 + starts[b]).value();
    CHECK(testing::max_abs_diff(batched.slice(b, b + 1), alone) == 0.0);
  }
  CHECK(testing::max_abs_diff(batched.slice(1, 2), rope(Var(x.slice(1, 2)), 100.0, 2).value()) > 1e-3);
  CHECK_THROWS_WITH_AS(rope(Var(x), 100.0, 0, Tensor::from_ints({0, 1}, {2})), doctest::Contains("row_positions"), Error);
}

TEST_CASE("decode: errors for a full cache, mismatched shapes and bad prompts, before anything changes") {
  const ModelConfig config = decode_config({"switch", "swa"});
  const Transformer model(config, DType::F64, 1);
  Decoder decoder(model, 2, 3);
  for (int i = 0; i < 3; ++i) decoder.step({1, 2});
  CHECK_THROWS_WITH_AS(decoder.step({1, 2}), doctest::Contains("is full"), Error);
  CHECK(decoder.cache().length(0) == 3);  // the failed step changed nothing

  Decoder fresh(model, 2, 3);
  CHECK_THROWS_WITH_AS(fresh.step({1}), doctest::Contains("one token per sequence"), Error);
  CHECK_THROWS_WITH_AS(fresh.step({1, 13}), doctest::Contains("outside the vocabulary"), Error);
  CHECK_THROWS_WITH_AS(fresh.step({-1, 2}), doctest::Contains("outside the vocabulary"), Error);
  CHECK(fresh.cache().length(0) == 0);
  CHECK(fresh.cache().length(1) == 0);
  CHECK_THROWS_WITH_AS(fresh.prefill({{1, 2}, {1, 2, 3, 4}}), doctest::Contains("does not fit"), Error);
  CHECK_THROWS_WITH_AS(fresh.prefill({{1, 2}, {}}), doctest::Contains("empty"), Error);
  CHECK_THROWS_WITH_AS(fresh.prefill({{1, 2}}), doctest::Contains("one prompt per sequence"), Error);
  CHECK_THROWS_WITH_AS(fresh.prefill({{1, 2}, {1, 13}}), doctest::Contains("outside the vocabulary"), Error);
  CHECK(fresh.cache().length(0) == 0);
  fresh.prefill({{1, 2}, {3}});
  CHECK_THROWS_WITH_AS(fresh.prefill({{1}, {1}}), doctest::Contains("already holds"), Error);
  CHECK(fresh.cache().length(0) == 2);
  CHECK(fresh.cache().length(1) == 1);

  KvCache cache(config, DType::F64, 2, 3);
  cache.begin_step();
  CHECK_THROWS_WITH_AS(cache.append_step(0, Tensor::zeros({2, 3, 5}, DType::F64), Tensor::zeros({2, 3, 4}, DType::F64)),
                       doctest::Contains("(2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(cache.append_step(0, Tensor::zeros({2, 3, 4}, DType::F32), Tensor::zeros({2, 3, 4}, DType::F32)),
                       doctest::Contains("dtype"), Error);
  CHECK_THROWS_WITH_AS(cache.attend_step(5, Tensor::zeros({2, 6, 4}, DType::F64), kWindow), doctest::Contains("layer 5"),
                       Error);
  CHECK_THROWS_WITH_AS(KvCache(config, DType::F64, 1, config.max_position_embeddings + 1),
                       doctest::Contains("max_position_embeddings"), Error);
  CHECK_THROWS_WITH_AS(KvCache(config, DType::F64, 0, 3), doctest::Contains("sequences"), Error);
  CHECK_THROWS_WITH_AS(KvCache(config, DType::BF16, 1, 3), doctest::Contains("not supported"), Error);
  CHECK_THROWS_WITH_AS(Decoder(model, 1, 3, 0), doctest::Contains("prefill_tokens"), Error);

  Rng rng(1);
  CHECK_THROWS_WITH_AS(generate_with_cache(model, {1, 2, 3, 4, 5}, 21, 1.0, rng),
                       doctest::Contains("exceed max_position_embeddings"), Error);
  CHECK(generate_with_cache(model, {1, 2, 3, 4, 5}, 20, 1.0, rng).size() == 25);  // 24 cached: fits
  SamplingOptions bad;
  bad.top_p = 0.0;
  CHECK_THROWS_WITH_AS(generate_batch(model, {{1}}, 2, bad, rng), doctest::Contains("top-p"), Error);
  CHECK_THROWS_WITH_AS(generate_batch(model, {{1}, {}}, 2, SamplingOptions{}, rng), doctest::Contains("prompt 1"), Error);
  CHECK_THROWS_WITH_AS(generate_batch(model, {}, 2, SamplingOptions{}, rng), doctest::Contains("no prompts"), Error);
  // The forward refuses a cache while gradients are on (decoding builds no graph).
  KvCache graph_cache(config, DType::F64, 1, 3);
  std::vector<LayerRouting> routing;
  CHECK_THROWS_WITH_AS(model.final_hidden(Tensor::from_ints({1}, {1, 1}), model.compute_weights(),
                                          KvCacheUse{&graph_cache, false, 0}, false, routing),
                       doctest::Contains("NoGradGuard"), Error);
}

}  // namespace
}  // namespace swiattn
