// eval/metrics.h: the arithmetic of the evaluation (spec §8, §10), on plain vectors, so every
// number `swiattn eval` reports can be checked by hand in tests/test_eval.cpp.
//
// Shape legend: L layers, T positions of one sequence, W sliding_window, H query heads, D head_dim.
//
// Conventions:
//   - Position t (0-based) is the query that predicts token t + 1 (next-token prediction).
//   - Routes (L, T): m_t^l per layer and position, 1 = full attention (FA), 0 = sliding window
//     (SWA). A "full" layer is all 1, a "swa" layer all 0, a "switch" layer its router's choice.
//   - Keys a query reads (spec §8): pairs(t) = m_t (t + 1) + (1 - m_t) min(t + 1, W).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace swiattn {

using Routes = std::vector<std::vector<uint8_t>>;  // (L, T), 1 = FA

// What a model (or a test's oracle) says about one sequence: the argmax next token at the
// positions asked for, and the routes of every layer at every position.
struct Prediction {
  std::vector<int32_t> argmax;  // (P) argmax of the logits at positions[p]
  Routes routes;                // (L, T); may have 0 layers (then no routing numbers)
  // (P) -log p(tokens[positions[p] + 1]) under the model (nats); empty when the predictor gives
  // no probabilities (then every answer NLL is NaN). A position whose next token lies past the
  // sequence has NaN.
  std::vector<double> nll;
};
// tokens (T) and the positions whose argmax is needed -> Prediction.
using Predictor = std::function<Prediction(const std::vector<int32_t>& tokens,
                                           const std::vector<int64_t>& positions)>;

// ---- answer scoring (teacher forcing over the span = greedy exact match) ----

// The positions that predict the tokens of span [begin, end): begin - 1, ..., end - 2.
std::vector<int64_t> predicting_positions(std::pair<int64_t, int64_t> span);
// True when argmax[i] == tokens[begin + i] for every token of the span; argmax holds the
// predictions at predicting_positions(span), in order. Throws on size mismatches or begin < 1.
bool span_predicted(const std::vector<int32_t>& tokens, std::pair<int64_t, int64_t> span,
                    const std::vector<int32_t>& argmax);

// One answer span's score: exact match over the whole span (span_predicted), and per token over
// its scored tokens (the digits; data/synthetic.h scored_answer_token): how many the argmax gets
// right and their summed NLL. A model that gets 3 of a key's 5 digits scores 3 of 5 per token
// and not exact.
struct AnswerScore {
  bool exact = false;
  int64_t scored_tokens = 0;
  int64_t correct_tokens = 0;
  double nll_sum = 0.0;  // NaN when the predictor gives no NLL
};
// argmax and nll hold the predictions at predicting_positions(span), in order (nll may be empty);
// scored has one flag per token of the span (1 = scored per token).
AnswerScore score_answer(const std::vector<int32_t>& tokens, std::pair<int64_t, int64_t> span,
                         const std::vector<int32_t>& argmax, const std::vector<double>& nll,
                         const std::vector<uint8_t>& scored);

// Sums of AnswerScores: exact-match accuracy, per-token (per-digit) accuracy, mean answer NLL.
struct AnswerTally {
  int64_t answers = 0, exact = 0, scored_tokens = 0, correct_tokens = 0;
  double nll_sum = 0.0;
  void add(const AnswerScore& s);
  void add(const AnswerTally& t);
  double exact_accuracy() const;  // exact / answers; NaN when there are no answers
  double token_accuracy() const;  // correct_tokens / scored_tokens; NaN when none
  double mean_nll() const;        // nll_sum / scored_tokens, nats per scored token; NaN when none
};

// ---- routing ----

// Mean of m over every layer and the given positions; NaN when routes has no layers or no positions.
double full_attention_ratio(const Routes& routes, const std::vector<int64_t>& positions);
// Mean of m over every layer and positions [begin, end).
double full_attention_ratio(const Routes& routes, int64_t begin, int64_t end);

// ---- position buckets ----

// Bucket edges 0 = e_0 < e_1 < ... < e_k = T: bucket i holds positions [e_i, e_{i+1}).
// Powers of two: 0, 1, 2, 4, 8, ..., then T (T itself always the last edge).
std::vector<int64_t> power_of_two_edges(int64_t T);
// Two buckets split at the window: [0, W) and [W, T) (just [0, T) when W >= T).
std::vector<int64_t> window_edges(int64_t T, int64_t W);

// Token-weighted sums of a per-position quantity (e.g. next-token NLL) in buckets.
struct Bucket {
  int64_t begin = 0, end = 0;  // positions [begin, end)
  double count = 0.0;          // values summed
  double sum = 0.0;
  double mean() const;         // sum / count; NaN for an empty bucket
};
// values (R, T) row-major: R rows of T positions each (e.g. a batch). Edges as above.
std::vector<Bucket> bucket_by_position(const std::vector<double>& values, int64_t T,
                                       const std::vector<int64_t>& edges);
// Buckets over an arbitrary key (e.g. evidence distance): value i goes to the bucket whose
// [edge_j, edge_{j+1}) holds keys[i]; keys at or past the last edge go to the last bucket.
std::vector<Bucket> bucket_by_key(const std::vector<double>& values, const std::vector<int64_t>& keys,
                                  const std::vector<int64_t>& edges);

// ---- efficiency (spec §8) ----

// Keys one query head reads at position t: m (t + 1) + (1 - m) min(t + 1, W).
int64_t attention_pairs(uint8_t m, int64_t t, int64_t W);
// Prefill attention FLOPs at each position, summed over layers and query heads:
// sum_l H * 4 * D * pairs_l(t). (T) values.
std::vector<double> prefill_attention_flops(const Routes& routes, int64_t W, int64_t H, int64_t D);
// The same for FullAttn (m = 1 everywhere) with L layers: L * H * 4 * D * (t + 1).
std::vector<double> dense_attention_flops(int64_t T, int64_t L, int64_t H, int64_t D);
// Decode keys read at each position, in tokens, averaged over layers:
// (1/L) sum_l pairs_l(t). (T) values. Throws when routes has no layers.
std::vector<double> decode_keys_read_formula(const Routes& routes, int64_t W);

}  // namespace swiattn
