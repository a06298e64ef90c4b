// eval/retrieval.h: passkey (needle in a haystack) and MQAR accuracy of any Predictor (spec §10,
// the paper's Fig. 3 and Fig. 6), on examples from data/synthetic.h.
//
// An answer counts as retrieved when every one of its tokens is the argmax of the model given the
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
  std::vector<Bucket> by_distance; // accuracy per distance bucket (mean() = accuracy)
  double accuracy() const;         // over every answer
  double beyond_accuracy(int64_t window) const;  // answers with distance >= W; NaN if none
};

MqarResult evaluate_mqar(const Predictor& predict, const Tokenizer& tokenizer,
                         const std::vector<int32_t>& filler, const MqarSettings& settings,
                         std::ostream* progress = nullptr);

}  // namespace swiattn
