// eval/metrics.cpp: see eval/metrics.h.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "tensor/tensor.h"
#include "model/route_count.h"

namespace swiattn {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_edges(const std::vector<int64_t>& edges, const char* what) {
  if (edges.size() < 2) throw Error(std::string(what) + ": need at least two bucket edges");
  for (size_t i = 1; i < edges.size(); ++i)
    if (edges[i] <= edges[i - 1]) throw Error(std::string(what) + ": bucket edges must increase");
}
}  // namespace

// ---- answer scoring ----

std::vector<int64_t> predicting_positions(std::pair<int64_t, int64_t> span) {
  const auto [begin, end] = span;
  if (begin < 1 || end <= begin)
    throw Error("predicting_positions: span [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") must be non-empty and start at position >= 1");
  std::vector<int64_t> positions;
  for (int64_t j = begin; j < end; ++j) positions.push_back(j - 1);  // query j-1 predicts token j
  return positions;
}

bool span_predicted(const std::vector<int32_t>& tokens, std::pair<int64_t, int64_t> span,
                    const std::vector<int32_t>& argmax) {
  const auto [begin, end] = span;
  if (begin < 1 || end <= begin || end > static_cast<int64_t>(tokens.size()))
    throw Error("span_predicted: span [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") outside the " + std::to_string(tokens.size()) + " tokens");
  if (static_cast<int64_t>(argmax.size()) != end - begin)
    throw Error("span_predicted: " + std::to_string(argmax.size()) + " predictions for a span of " +
                std::to_string(end - begin) + " tokens");
  for (int64_t j = begin; j < end; ++j)
    if (argmax[static_cast<size_t>(j - begin)] != tokens[static_cast<size_t>(j)]) return false;
  return true;
}

AnswerScore score_answer(const std::vector<int32_t>& tokens, std::pair<int64_t, int64_t> span,
                         const std::vector<int32_t>& argmax, const std::vector<double>& nll,
                         const std::vector<uint8_t>& scored) {
  const auto [begin, end] = span;
  const size_t n = static_cast<size_t>(end - begin);
  AnswerScore s;
  s.exact = span_predicted(tokens, span, argmax);  // checks the span and argmax's size
  if (scored.size() != n)
    throw Error("score_answer: " + std::to_string(scored.size()) + " scored flags for a span of " + std::to_string(n) +
                " tokens");
  if (!nll.empty() && nll.size() != n)
    throw Error("score_answer: " + std::to_string(nll.size()) + " NLL values for a span of " + std::to_string(n) +
                " tokens");
  if (nll.empty()) s.nll_sum = kNaN;
  for (size_t i = 0; i < n; ++i) {
    if (!scored[i]) continue;
    s.scored_tokens += 1;
    s.correct_tokens += argmax[i] == tokens[static_cast<size_t>(begin) + i];
    if (!nll.empty()) s.nll_sum += nll[i];
  }
  return s;
}

void AnswerTally::add(const AnswerScore& s) {
  answers += 1;
  exact += s.exact;
  scored_tokens += s.scored_tokens;
  correct_tokens += s.correct_tokens;
  nll_sum += s.nll_sum;
}

void AnswerTally::add(const AnswerTally& t) {
  answers += t.answers;
  exact += t.exact;
  scored_tokens += t.scored_tokens;
  correct_tokens += t.correct_tokens;
  nll_sum += t.nll_sum;
}

double AnswerTally::exact_accuracy() const {
  return answers > 0 ? static_cast<double>(exact) / static_cast<double>(answers) : kNaN;
}
double AnswerTally::token_accuracy() const {
  return scored_tokens > 0 ? static_cast<double>(correct_tokens) / static_cast<double>(scored_tokens) : kNaN;
}
double AnswerTally::mean_nll() const {
  return scored_tokens > 0 ? nll_sum / static_cast<double>(scored_tokens) : kNaN;
}

// ---- routing ----

double full_attention_ratio(const Routes& routes, const std::vector<int64_t>& positions) {
  if (routes.empty() || positions.empty()) return kNaN;
  RouteCount count;
  for (const auto& layer : routes)
    for (int64_t t : positions) {
      if (t < 0 || t >= static_cast<int64_t>(layer.size()))
        throw Error("full_attention_ratio: position " + std::to_string(t) + " outside the " +
                    std::to_string(layer.size()) + " routed positions");
      count.add(layer[static_cast<size_t>(t)]);
    }
  return count.ratio();
}

double full_attention_ratio(const Routes& routes, int64_t begin, int64_t end) {
  std::vector<int64_t> positions;
  for (int64_t t = begin; t < end; ++t) positions.push_back(t);
  return full_attention_ratio(routes, positions);
}

// ---- position buckets ----

std::vector<int64_t> power_of_two_edges(int64_t T) {
  if (T < 1) throw Error("power_of_two_edges: T must be >= 1, got " + std::to_string(T));
  std::vector<int64_t> edges{0};
  for (int64_t e = 1; e < T; e *= 2) edges.push_back(e);
  edges.push_back(T);
  return edges;
}

std::vector<int64_t> window_edges(int64_t T, int64_t W) {
  if (T < 1 || W < 1) throw Error("window_edges: T and W must be >= 1");
  if (W >= T) return {0, T};
  return {0, W, T};
}

double Bucket::mean() const { return count > 0 ? sum / count : kNaN; }

std::vector<Bucket> bucket_by_position(const std::vector<double>& values, int64_t T,
                                       const std::vector<int64_t>& edges) {
  check_edges(edges, "bucket_by_position");
  if (T < 1 || values.size() % static_cast<size_t>(T) != 0)
    throw Error("bucket_by_position: " + std::to_string(values.size()) + " values are not rows of T = " +
                std::to_string(T));
  if (edges.front() != 0 || edges.back() != T)
    throw Error("bucket_by_position: edges must run from 0 to T = " + std::to_string(T));
  std::vector<Bucket> buckets(edges.size() - 1);
  for (size_t b = 0; b + 1 < edges.size(); ++b) {
    buckets[b].begin = edges[b];
    buckets[b].end = edges[b + 1];
  }
  size_t b = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t t = static_cast<int64_t>(i % static_cast<size_t>(T));
    if (t == 0) b = 0;
    while (t >= buckets[b].end) ++b;
    buckets[b].count += 1.0;
    buckets[b].sum += values[i];
  }
  return buckets;
}

std::vector<Bucket> bucket_by_key(const std::vector<double>& values, const std::vector<int64_t>& keys,
                                  const std::vector<int64_t>& edges) {
  check_edges(edges, "bucket_by_key");
  if (values.size() != keys.size())
    throw Error("bucket_by_key: " + std::to_string(values.size()) + " values but " +
                std::to_string(keys.size()) + " keys");
  std::vector<Bucket> buckets(edges.size() - 1);
  for (size_t b = 0; b + 1 < edges.size(); ++b) {
    buckets[b].begin = edges[b];
    buckets[b].end = edges[b + 1];
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (keys[i] < edges.front())
      throw Error("bucket_by_key: key " + std::to_string(keys[i]) + " below the first edge");
    size_t b = 0;
    while (b + 1 < buckets.size() && keys[i] >= buckets[b].end) ++b;
    buckets[b].count += 1.0;
    buckets[b].sum += values[i];
  }
  return buckets;
}

// ---- efficiency (spec §8) ----

int64_t attention_pairs(uint8_t m, int64_t t, int64_t W) {
  return m ? t + 1 : std::min(t + 1, W);  // m (t+1) + (1-m) min(t+1, W)
}

std::vector<double> prefill_attention_flops(const Routes& routes, int64_t W, int64_t H, int64_t D) {
  if (routes.empty()) throw Error("prefill_attention_flops: no layers");
  const size_t T = routes.front().size();
  std::vector<double> flops(T, 0.0);
  for (const auto& layer : routes) {
    if (layer.size() != T) throw Error("prefill_attention_flops: layers route different lengths");
    for (size_t t = 0; t < T; ++t)
      flops[t] += static_cast<double>(H) * 4.0 * static_cast<double>(D) *
                  static_cast<double>(attention_pairs(layer[t], static_cast<int64_t>(t), W));
  }
  return flops;
}

std::vector<double> dense_attention_flops(int64_t T, int64_t L, int64_t H, int64_t D) {
  std::vector<double> flops(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t)
    flops[static_cast<size_t>(t)] = static_cast<double>(L * H) * 4.0 * static_cast<double>(D) * static_cast<double>(t + 1);
  return flops;
}

std::vector<double> decode_keys_read_formula(const Routes& routes, int64_t W) {
  if (routes.empty()) throw Error("decode_keys_read_formula: no layers");
  const size_t T = routes.front().size();
  std::vector<double> keys(T, 0.0);
  for (const auto& layer : routes) {
    if (layer.size() != T) throw Error("decode_keys_read_formula: layers route different lengths");
    for (size_t t = 0; t < T; ++t) keys[t] += static_cast<double>(attention_pairs(layer[t], static_cast<int64_t>(t), W));
  }
  for (double& k : keys) k /= static_cast<double>(routes.size());
  return keys;
}

}  // namespace swiattn
