// eval/retrieval.h: passkey (needle in a haystack) and MQAR accuracy of any Predictor (spec §10,
// the paper's Fig. 3 and Fig. 6), on examples from data/synthetic.h.
//
// Every answer is scored three ways (eval/metrics.h AnswerScore): exact match, per-token (per
// digit) accuracy over its scored tokens, and the mean NLL of those tokens under the model.
// An answer counts as retrieved (exact) when every one of its tokens is the argmax of the model given the
// true prefix (teacher forcing over the span, which equals greedy exact match: greedy decoding
// reproduces the span exactly iff each of its tokens is the argmax after the correct prefix).
// An answer is "beyond the window" when its evidence distance d (answer begin - evidence begin,
// data/synthetic.h) is >= W: the query that predicts the answer's first token (position
// begin - 1) reads keys [begin - W, begin - 1] in an SWA layer, so the needle starts at or
// before that window's first key. (Retrieval through SWA alone then needs several layers or,
// for small d - W, the needle's later tokens.)
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "eval/metrics.h"

namespace swiattn {

struct PasskeySettings {
  std::vector<int64_t> lengths;  // context lengths (tokens per example)
  std::vector<double> depths;    // needle depths in [0, 1]
  int64_t trials = 4;            // examples per (length, depth) cell
  int64_t window = 0;            // W, for the inside / beyond split
  uint64_t seed = 1;             // examples of cell (i, j), trial k come from Rng(derive_seed(seed, ...))
};

struct PasskeyCell {
  int64_t length = 0;
  double depth = 0.0;
  int64_t trials = 0, correct = 0;
  int64_t beyond_trials = 0, beyond_correct = 0;  // trials with evidence distance >= W
  AnswerTally tally;                              // exact, per digit, NLL over the cell's trials
  double mean_distance = 0.0;                     // mean evidence distance, tokens
  // Full-attention ratio (over layers) at the positions that predict the answer, summed over the
  // trials whose needle is inside / beyond the window (divide by inside/beyond trials). The Fig. 6 split.
  double answer_fa_inside_sum = 0.0, answer_fa_beyond_sum = 0.0;
  double all_fa_sum = 0.0;  // FA ratio over every position of the example, summed over trials
  double accuracy() const;  // correct / trials
};

struct PasskeyResult {
  std::vector<PasskeyCell> cells;  // lengths x depths, length-major
  int64_t trials = 0, correct = 0, beyond_trials = 0, beyond_correct = 0;
  AnswerTally inside, beyond;      // split at evidence distance W
  double answer_fa_inside = 0.0, answer_fa_beyond = 0.0;  // means over trials; NaN if none / no routes
  double accuracy() const;         // correct / trials
  double beyond_accuracy() const;  // beyond_correct / beyond_trials; NaN if no trial is beyond
  double inside_accuracy() const;  // the rest
};

// Every cell's examples from `filler` (real text: the validation split for `swiattn eval`).
// Progress lines (one per context length) go to *progress when given.
PasskeyResult evaluate_passkey(const Predictor& predict, const Tokenizer& tokenizer,
                               const std::vector<int32_t>& filler, const PasskeySettings& settings,
                               std::ostream* progress = nullptr);

// The passkey at controlled needle distances (all at one length, normally the trained T): the
// distances inside the window and beyond it across the training range that the headline
// numbers and the paper's Fig. 6 split use. Trial k at distance i comes from
// Rng(derive_seed(seed, i * trials + k)).
struct PasskeyDistanceSettings {
  int64_t length = 0;
  std::vector<int64_t> distances;  // evidence distances (answer begin - needle start), tokens
  int64_t trials = 4;              // examples per distance
  int64_t window = 0;              // W
  uint64_t seed = 3;
};

struct PasskeyDistanceRow {
  int64_t distance = 0;
  bool beyond = false;                    // distance >= W
  AnswerTally tally;
  double answer_fa = 0.0;                 // FA ratio over layers at the predicting positions, mean over trials
  std::vector<double> answer_fa_per_layer;  // (L) the same per layer; empty without routes
  double all_fa = 0.0;                    // FA ratio over layers and every position of the example
};

struct PasskeyDistanceResult {
  std::vector<PasskeyDistanceRow> rows;   // one per distance, in the given order
  AnswerTally inside, beyond;
  // FA ratio at the answer's predicting positions per layer, mean over the inside / beyond trials
  // (the paper's Fig. 6 at our scale); empty without routes or without such trials.
  std::vector<double> answer_fa_inside_per_layer, answer_fa_beyond_per_layer;
  // FA ratio over every position of the example (the paper's NIAH count: ~5% inside, ~30% beyond).
  double all_fa_inside = 0.0, all_fa_beyond = 0.0;  // NaN without routes or trials
};

// The default distances at `length` (docs/eval.md): three inside the window (evenly from the
// smallest possible distance to W - 1; none when the window is shorter than that) and five
// beyond it (evenly from W to the largest possible distance at this length).
std::vector<int64_t> default_passkey_distances(const Tokenizer& tokenizer, int64_t length, int64_t window);

PasskeyDistanceResult evaluate_passkey_by_distance(const Predictor& predict, const Tokenizer& tokenizer,
                                                   const std::vector<int32_t>& filler,
                                                   const PasskeyDistanceSettings& settings,
                                                   std::ostream* progress = nullptr);

struct MqarSettings {
  int64_t length = 0;     // tokens per example
  int64_t pairs = 8;      // key-value pairs per example
  int64_t trials = 8;     // examples
  int64_t window = 0;     // W
  std::vector<int64_t> distance_edges;  // buckets of evidence distance (e.g. powers of two)
  uint64_t seed = 2;
};

struct MqarResult {
  std::vector<int64_t> distances;  // (answers) evidence distance of every answer, in order
  std::vector<uint8_t> correct;    // (answers) 1 = retrieved
  AnswerTally all, inside, beyond; // exact, per digit, NLL; split at evidence distance W
  std::vector<Bucket> by_distance; // accuracy per distance bucket (mean() = accuracy)
  double accuracy() const;         // over every answer
  double beyond_accuracy(int64_t window) const;  // answers with distance >= W; NaN if none
};

MqarResult evaluate_mqar(const Predictor& predict, const Tokenizer& tokenizer,
                         const std::vector<int32_t>& filler, const MqarSettings& settings,
                         std::ostream* progress = nullptr);

}  // namespace swiattn
