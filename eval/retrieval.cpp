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

// The predictions at every answer's predicting positions, in one call of the predictor.
// Returns, per answer, its argmax vector; `routes` receives the routes.
std::vector<std::vector<int32_t>> predict_answers(const Predictor& predict, const RetrievalExample& ex,
                                                  Routes& routes, std::vector<std::vector<int64_t>>& positions) {
  std::vector<int64_t> all;
  positions.clear();
  for (const auto& span : ex.answers) {
    positions.push_back(predicting_positions(span));
    all.insert(all.end(), positions.back().begin(), positions.back().end());
  }
  Prediction p = predict(ex.tokens, all);
  if (p.argmax.size() != all.size())
    throw Error("evaluate: the predictor returned " + std::to_string(p.argmax.size()) + " predictions for " +
                std::to_string(all.size()) + " positions");
  std::vector<std::vector<int32_t>> out;
  size_t at = 0;
  for (const auto& pos : positions) {
    out.emplace_back(p.argmax.begin() + static_cast<int64_t>(at), p.argmax.begin() + static_cast<int64_t>(at + pos.size()));
    at += pos.size();
  }
  routes = std::move(p.routes);
  return out;
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
        Routes routes;
        std::vector<std::vector<int64_t>> positions;
        const auto argmax = predict_answers(predict, ex, routes, positions);
        const bool ok = span_predicted(ex.tokens, ex.answers[0], argmax[0]);
        const int64_t distance = evidence_distance(ex, 0);
        const bool beyond = distance >= settings.window;
        const double answer_fa = full_attention_ratio(routes, positions[0]);
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
    Routes routes;
    std::vector<std::vector<int64_t>> positions;
    const auto argmax = predict_answers(predict, ex, routes, positions);
    for (size_t a = 0; a < ex.answers.size(); ++a) {
      result.distances.push_back(evidence_distance(ex, a));
      result.correct.push_back(span_predicted(ex.tokens, ex.answers[a], argmax[a]) ? 1 : 0);
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
