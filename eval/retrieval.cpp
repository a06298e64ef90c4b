// eval/retrieval.cpp: see eval/retrieval.h.
#include "eval/retrieval.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>

#include "data/synthetic.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
double ratio(double num, double den) { return den > 0 ? num / den : kNaN; }

// The predictions at every answer's predicting positions, in one call of the predictor: per answer
// its argmax and NLL vectors (NLL empty when the predictor gives none); `routes` receives the routes.
struct AnswerPredictions {
  std::vector<std::vector<int32_t>> argmax;
  std::vector<std::vector<double>> nll;
  std::vector<std::vector<int64_t>> positions;
  Routes routes;
};

AnswerPredictions predict_answers(const Predictor& predict, const RetrievalExample& ex) {
  AnswerPredictions out;
  std::vector<int64_t> all;
  for (const auto& span : ex.answers) {
    out.positions.push_back(predicting_positions(span));
    all.insert(all.end(), out.positions.back().begin(), out.positions.back().end());
  }
  Prediction p = predict(ex.tokens, all);
  if (p.argmax.size() != all.size() || (!p.nll.empty() && p.nll.size() != all.size()))
    throw Error("evaluate: the predictor returned " + std::to_string(p.argmax.size()) + " predictions (" +
                std::to_string(p.nll.size()) + " NLL values) for " + std::to_string(all.size()) + " positions");
  size_t at = 0;
  for (const auto& pos : out.positions) {
    const auto first = static_cast<int64_t>(at), last = static_cast<int64_t>(at + pos.size());
    out.argmax.emplace_back(p.argmax.begin() + first, p.argmax.begin() + last);
    out.nll.emplace_back();
    if (!p.nll.empty()) out.nll.back().assign(p.nll.begin() + first, p.nll.begin() + last);
    at += pos.size();
  }
  out.routes = std::move(p.routes);
  return out;
}

// Per token of the span: 1 when it is scored per token (scored_answer_token).
std::vector<uint8_t> scored_flags(const Tokenizer& tokenizer, const RetrievalExample& ex, size_t answer) {
  std::vector<uint8_t> flags;
  for (int64_t j = ex.answers[answer].first; j < ex.answers[answer].second; ++j)
    flags.push_back(scored_answer_token(tokenizer, ex.tokens[static_cast<size_t>(j)]) ? 1 : 0);
  return flags;
}

AnswerScore score(const Tokenizer& tokenizer, const RetrievalExample& ex, const AnswerPredictions& p, size_t answer) {
  return score_answer(ex.tokens, ex.answers[answer], p.argmax[answer], p.nll[answer], scored_flags(tokenizer, ex, answer));
}

// The FA ratio of each layer at the given positions ((L) values; empty without routes).
std::vector<double> fa_per_layer(const Routes& routes, const std::vector<int64_t>& positions) {
  std::vector<double> out;
  for (const auto& layer : routes) out.push_back(full_attention_ratio(Routes{layer}, positions));
  return out;
}

void add_to(std::vector<double>& sum, const std::vector<double>& x) {
  if (x.empty()) return;
  if (sum.empty()) sum.assign(x.size(), 0.0);
  for (size_t i = 0; i < x.size() && i < sum.size(); ++i) sum[i] += x[i];
}

std::vector<double> divided(std::vector<double> v, double n) {
  if (n <= 0) return {};
  for (double& x : v) x /= n;
  return v;
}
}  // namespace

double PasskeyCell::accuracy() const { return ratio(static_cast<double>(correct), static_cast<double>(trials)); }
double PasskeyResult::accuracy() const { return ratio(static_cast<double>(correct), static_cast<double>(trials)); }
double PasskeyResult::beyond_accuracy() const {
  return ratio(static_cast<double>(beyond_correct), static_cast<double>(beyond_trials));
}
double PasskeyResult::inside_accuracy() const {
  return ratio(static_cast<double>(correct - beyond_correct), static_cast<double>(trials - beyond_trials));
}

PasskeyResult evaluate_passkey(const Predictor& predict, const Tokenizer& tokenizer,
                               const std::vector<int32_t>& filler, const PasskeySettings& settings,
                               std::ostream* progress) {
  if (settings.lengths.empty() || settings.depths.empty() || settings.trials < 1)
    throw Error("evaluate_passkey: need at least one length, one depth and one trial");
  if (settings.window < 1) throw Error("evaluate_passkey: window must be >= 1");
  PasskeyResult result;
  double inside_fa = 0.0, beyond_fa = 0.0, inside_fa_n = 0.0, beyond_fa_n = 0.0;
  for (size_t i = 0; i < settings.lengths.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    int64_t length_correct = 0;
    for (size_t j = 0; j < settings.depths.size(); ++j) {
      PasskeyCell cell;
      cell.length = settings.lengths[i];
      cell.depth = settings.depths[j];
      for (int64_t k = 0; k < settings.trials; ++k) {
        Rng rng(derive_seed(derive_seed(settings.seed, i), j * static_cast<uint64_t>(settings.trials) + static_cast<uint64_t>(k)));
        const RetrievalExample ex = make_passkey_example(tokenizer, filler, cell.length, cell.depth, rng);
        const AnswerPredictions p = predict_answers(predict, ex);
        const Routes& routes = p.routes;
        const AnswerScore answer = score(tokenizer, ex, p, 0);
        const bool ok = answer.exact;
        const int64_t distance = evidence_distance(ex, 0);
        const bool beyond = distance >= settings.window;
        const double answer_fa = full_attention_ratio(routes, p.positions[0]);
        cell.tally.add(answer);
        (beyond ? result.beyond : result.inside).add(answer);
        cell.trials += 1;
        cell.correct += ok;
        cell.beyond_trials += beyond;
        cell.beyond_correct += beyond && ok;
        cell.mean_distance += static_cast<double>(distance) / static_cast<double>(settings.trials);
        (beyond ? cell.answer_fa_beyond_sum : cell.answer_fa_inside_sum) += answer_fa;
        cell.all_fa_sum += full_attention_ratio(routes, 0, static_cast<int64_t>(ex.tokens.size()));
        if (!std::isnan(answer_fa)) {
          (beyond ? beyond_fa : inside_fa) += answer_fa;
          (beyond ? beyond_fa_n : inside_fa_n) += 1.0;
        }
      }
      result.trials += cell.trials;
      result.correct += cell.correct;
      result.beyond_trials += cell.beyond_trials;
      result.beyond_correct += cell.beyond_correct;
      length_correct += cell.correct;
      result.cells.push_back(cell);
    }
    if (progress) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      *progress << "  passkey length " << settings.lengths[i] << ": " << length_correct << "/"
                << settings.trials * static_cast<int64_t>(settings.depths.size()) << " retrieved ("
                << std::fixed << std::setprecision(1) << secs << " s)\n" << std::flush;
    }
  }
  result.answer_fa_inside = ratio(inside_fa, inside_fa_n);
  result.answer_fa_beyond = ratio(beyond_fa, beyond_fa_n);
  return result;
}

std::vector<int64_t> default_passkey_distances(const Tokenizer& tokenizer, int64_t length, int64_t window) {
  // Plain variables, not a structured binding: a lambda may not capture those in C++17 (clang refuses).
  const std::pair<int64_t, int64_t> range = passkey_distance_range(tokenizer, length);
  const int64_t lo = range.first, hi = range.second;
  std::vector<int64_t> d;
  auto push = [&](int64_t x) {
    if (x >= lo && x <= hi && (d.empty() || d.back() != x)) d.push_back(x);
  };
  if (window - 1 >= lo)
    for (int k = 0; k <= 2; ++k) push(lo + (window - 1 - lo) * k / 2);
  const int64_t first_beyond = std::max(window, lo);
  if (hi >= first_beyond)
    for (int k = 0; k <= 4; ++k) push(first_beyond + (hi - first_beyond) * k / 4);
  return d;
}

PasskeyDistanceResult evaluate_passkey_by_distance(const Predictor& predict, const Tokenizer& tokenizer,
                                                   const std::vector<int32_t>& filler,
                                                   const PasskeyDistanceSettings& settings, std::ostream* progress) {
  if (settings.distances.empty() || settings.trials < 1)
    throw Error("evaluate_passkey_by_distance: need at least one distance and one trial");
  if (settings.window < 1) throw Error("evaluate_passkey_by_distance: window must be >= 1");
  const auto start = std::chrono::steady_clock::now();
  PasskeyDistanceResult result;
  std::vector<double> inside_fa, beyond_fa;
  double inside_n = 0.0, beyond_n = 0.0, inside_all = 0.0, beyond_all = 0.0;
  for (size_t i = 0; i < settings.distances.size(); ++i) {
    PasskeyDistanceRow row;
    row.distance = settings.distances[i];
    row.beyond = row.distance >= settings.window;
    std::vector<double> fa_sum;
    for (int64_t k = 0; k < settings.trials; ++k) {
      Rng rng(derive_seed(settings.seed, i * static_cast<uint64_t>(settings.trials) + static_cast<uint64_t>(k)));
      const RetrievalExample ex = make_passkey_example_at_distance(tokenizer, filler, settings.length, row.distance, rng);
      const AnswerPredictions p = predict_answers(predict, ex);
      row.tally.add(score(tokenizer, ex, p, 0));
      const std::vector<double> fa = fa_per_layer(p.routes, p.positions[0]);
      add_to(fa_sum, fa);
      add_to(row.beyond ? beyond_fa : inside_fa, fa);
      (row.beyond ? beyond_n : inside_n) += fa.empty() ? 0.0 : 1.0;
      const double all = full_attention_ratio(p.routes, 0, static_cast<int64_t>(ex.tokens.size()));
      if (!std::isnan(all)) {
        row.all_fa += all / static_cast<double>(settings.trials);
        (row.beyond ? beyond_all : inside_all) += all;
      } else {
        row.all_fa = kNaN;
      }
    }
    row.answer_fa_per_layer = divided(fa_sum, static_cast<double>(settings.trials));
    row.answer_fa = kNaN;
    if (!row.answer_fa_per_layer.empty()) {
      row.answer_fa = 0.0;
      for (double x : row.answer_fa_per_layer) row.answer_fa += x / static_cast<double>(row.answer_fa_per_layer.size());
    }
    (row.beyond ? result.beyond : result.inside).add(row.tally);
    result.rows.push_back(row);
  }
  result.answer_fa_inside_per_layer = divided(inside_fa, inside_n);
  result.answer_fa_beyond_per_layer = divided(beyond_fa, beyond_n);
  result.all_fa_inside = ratio(inside_all, inside_n);
  result.all_fa_beyond = ratio(beyond_all, beyond_n);
  if (progress) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    *progress << "  passkey by distance at length " << settings.length << ": exact " << std::fixed
              << std::setprecision(3) << result.inside.exact_accuracy() << " inside the window, "
              << result.beyond.exact_accuracy() << " beyond; per digit " << result.inside.token_accuracy() << " / "
              << result.beyond.token_accuracy() << "; answer NLL " << result.inside.mean_nll() << " / "
              << result.beyond.mean_nll() << " (" << std::setprecision(1) << secs << " s)\n" << std::flush;
  }
  return result;
}

double MqarResult::accuracy() const {
  double ok = 0.0;
  for (uint8_t c : correct) ok += c;
  return ratio(ok, static_cast<double>(correct.size()));
}

double MqarResult::beyond_accuracy(int64_t window) const {
  double ok = 0.0, n = 0.0;
  for (size_t i = 0; i < correct.size(); ++i)
    if (distances[i] >= window) {
      ok += correct[i];
      n += 1.0;
    }
  return ratio(ok, n);
}

MqarResult evaluate_mqar(const Predictor& predict, const Tokenizer& tokenizer,
                         const std::vector<int32_t>& filler, const MqarSettings& settings,
                         std::ostream* progress) {
  if (settings.trials < 1) throw Error("evaluate_mqar: trials must be >= 1");
  const auto start = std::chrono::steady_clock::now();
  MqarResult result;
  for (int64_t k = 0; k < settings.trials; ++k) {
    Rng rng(derive_seed(settings.seed, static_cast<uint64_t>(k)));
    const RetrievalExample ex = make_mqar_example(tokenizer, filler, settings.length, settings.pairs, rng);
    const AnswerPredictions p = predict_answers(predict, ex);
    for (size_t a = 0; a < ex.answers.size(); ++a) {
      const AnswerScore answer = score(tokenizer, ex, p, a);
      result.distances.push_back(evidence_distance(ex, a));
      result.correct.push_back(answer.exact ? 1 : 0);
      result.all.add(answer);
      (result.distances.back() >= settings.window ? result.beyond : result.inside).add(answer);
    }
  }
  std::vector<double> values(result.correct.begin(), result.correct.end());
  result.by_distance = bucket_by_key(values, result.distances, settings.distance_edges);
  if (progress) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    *progress << "  MQAR: " << std::fixed << std::setprecision(3) << result.accuracy() << " of "
              << result.correct.size() << " answers retrieved (" << std::setprecision(1) << secs << " s)\n"
              << std::flush;
  }
  return result;
}

}  // namespace swiattn
