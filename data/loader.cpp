// data/loader.cpp: random-window training batches (optionally mixed with synthetic retrieval
// examples) and sequential validation batches.
#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "data/synthetic.h"

namespace swiattn {

namespace {

void check_sizes(const char* who, size_t num_tokens, int batch_size, int context_length) {
  if (batch_size < 1)
    throw Error(std::string(who) + ": batch_size must be >= 1, got " + std::to_string(batch_size));
  if (context_length < 1)
    throw Error(std::string(who) + ": context_length must be >= 1, got " +
                std::to_string(context_length));
  if (num_tokens < static_cast<size_t>(context_length) + 1)
    throw Error(std::string(who) + ": tokens has " + std::to_string(num_tokens) +
                " tokens, need at least context_length + 1 = " +
                std::to_string(context_length + 1));
}

// Copies the window starting at `start` into row `row` of inputs / targets (both (B, T)).
void copy_window(const std::vector<int32_t>& tokens, size_t start, int context_length, int row,
                 int32_t* inputs, int32_t* targets) {
  const int32_t* window = tokens.data() + start;
  std::copy(window, window + context_length, inputs + static_cast<size_t>(row) * context_length);
  std::copy(window + 1, window + 1 + context_length,
            targets + static_cast<size_t>(row) * context_length);
}

// Copies a synthetic example of T + 1 tokens into row `row`: inputs = ex[0, T), targets = ex[1, T].
void copy_example(const RetrievalExample& ex, int context_length, int row, int32_t* inputs,
                  int32_t* targets) {
  copy_window(ex.tokens, 0, context_length, row, inputs, targets);
}

std::string percent(double x) {
  std::ostringstream s;
  s << std::round(x * 1000.0) / 10.0 << "%";
  return s.str();
}

}  // namespace

std::pair<int64_t, int64_t> RowShard::rows(int64_t batch_size) const {
  if (world < 1 || rank < 0 || rank >= world)
    throw Error("RowShard: rank " + std::to_string(rank) + " of " + std::to_string(world) + " ranks");
  if (batch_size < 1 || batch_size % world != 0)
    throw Error("RowShard: a batch of " + std::to_string(batch_size) + " rows does not split evenly over " +
                std::to_string(world) + " ranks (train.batch_size, and every curriculum stage's batch_size, "
                "must be a multiple of the number of ranks)");
  const int64_t local = batch_size / world;
  return {rank * local, (rank + 1) * local};
}

BatchLoader::BatchLoader(std::vector<int32_t> tokens, int batch_size, int context_length,
                         uint64_t seed, SyntheticMixture mixture, RowShard shard)
    : tokens_(std::move(tokens)),
      batch_size_(batch_size),
      context_length_(context_length),
      rng_(seed),
      mixture_(mixture),
      shard_(shard) {
  check_sizes("BatchLoader", tokens_.size(), batch_size, context_length);
  (void)shard_.rows(batch_size);  // a shard that does not divide the batch fails here
  const SyntheticMixture& m = mixture_;
  if (!(m.fraction >= 0.0 && m.fraction <= 1.0))
    throw Error("BatchLoader: data.synthetic_fraction must be in [0, 1], got " + std::to_string(m.fraction));
  if (m.fraction == 0.0) return;
  if (!(m.passkey_weight >= 0.0 && m.mqar_weight >= 0.0 && m.passkey_weight + m.mqar_weight > 0.0))
    throw Error("BatchLoader: data.passkey_weight and data.mqar_weight must be >= 0 and not both 0, got " +
                std::to_string(m.passkey_weight) + " and " + std::to_string(m.mqar_weight));
  if (m.tokenizer == nullptr)
    throw Error("BatchLoader: a synthetic mixture (data.synthetic_fraction > 0) needs a tokenizer");
  if (m.min_needle_distance < 0)
    throw Error("BatchLoader: data.min_needle_distance must be >= 0 here, got " +
                std::to_string(m.min_needle_distance));

  // Probe once, with a generator of its own, so a length too short fails here with the key to
  // change, and so the passkey depths that keep the needle far enough are known.
  const int64_t length = static_cast<int64_t>(context_length) + 1;
  const std::string hint = " (train.seq_len + 1 = " + std::to_string(length) +
                           " tokens per synthetic row; raise train.seq_len or lower the synthetic settings)";
  try {
    if (m.passkey_weight > 0.0) {
      Rng probe(0), probe_far(0);
      depth0_distance_ = evidence_distance(make_passkey_example(*m.tokenizer, tokens_, length, 0.0, probe_far), 0);
      const int64_t depth1_distance =
          evidence_distance(make_passkey_example(*m.tokenizer, tokens_, length, 1.0, probe), 0);
      // distance(depth) = depth0_distance - depth * (depth0_distance - depth1_distance), rounded.
      const double span = static_cast<double>(depth0_distance_ - depth1_distance);
      const double room = static_cast<double>(depth0_distance_ - m.min_needle_distance);
      max_passkey_depth_ = span > 0 ? std::clamp(room / span, 0.0, 1.0) : 1.0;
    }
    if (m.mqar_weight > 0.0) {
      Rng probe(0);
      (void)make_mqar_example(*m.tokenizer, tokens_, length, m.mqar_pairs, probe);
    }
  } catch (const Error& e) {
    throw Error(std::string("BatchLoader: synthetic mixture: ") + e.what() + hint);
  }
}

std::string BatchLoader::mixture_description() const {
  const SyntheticMixture& m = mixture_;
  if (m.fraction == 0.0) return "text windows only (data.synthetic_fraction 0)";
  const double passkey_share = m.passkey_weight / (m.passkey_weight + m.mqar_weight);
  std::ostringstream s;
  s << percent(m.fraction) << " of rows synthetic (passkey " << percent(passkey_share) << ", MQAR "
    << percent(1.0 - passkey_share) << " with " << m.mqar_pairs << " pairs), filler from the training split";
  if (m.passkey_weight > 0.0) {
    if (depth0_distance_ >= m.min_needle_distance)
      s << "; passkey needle >= " << m.min_needle_distance << " tokens before its answer (depth <= "
        << std::round(max_passkey_depth_ * 100.0) / 100.0 << ")";
    else
      s << "; passkey needle at depth 0 (" << depth0_distance_ << " tokens before its answer: the length does not allow "
        << m.min_needle_distance << ")";
  }
  return s.str();
}

void BatchLoader::next(Tensor& inputs, Tensor& targets) {
  // This shard's rows [begin, end) of the whole batch; row b is drawn at counter first + b.
  const auto [begin, end] = shard_.rows(batch_size_);
  const int rows = static_cast<int>(end - begin);
  const uint64_t first = rng_.counter;
  rng_.counter = first + static_cast<uint64_t>(begin);
  inputs = Tensor::empty({rows, context_length_}, DType::I32);   // (B_local, T)
  targets = Tensor::empty({rows, context_length_}, DType::I32);  // (B_local, T)
  last_rows_.assign(static_cast<size_t>(rows), BatchRow{});
  const uint64_t num_starts = tokens_.size() - context_length_;  // starts 0 .. N - T - 1
  for (int row = 0; row < rows; ++row) {
    if (mixture_.fraction == 0.0) {  // text only: exactly the loader without a mixture
      const size_t start = static_cast<size_t>(rng_.below(num_starts));
      copy_window(tokens_, start, context_length_, row, inputs.data<int32_t>(), targets.data<int32_t>());
      last_rows_[static_cast<size_t>(row)].source = "text";
      last_rows_[static_cast<size_t>(row)].start = static_cast<int64_t>(start);
      continue;
    }
    // One draw of the loader's stream seeds the row's own generator, so the counter still
    // advances by exactly one per row whatever the row turns out to be.
    Rng row_rng(rng_.next_u64());
    next_mixed_row(row_rng, row, inputs.data<int32_t>(), targets.data<int32_t>());
  }
  rng_.counter = first + static_cast<uint64_t>(batch_size_);  // the whole batch is consumed
}

void BatchLoader::next_mixed_row(Rng& row_rng, int row, int32_t* inputs, int32_t* targets) {
  const SyntheticMixture& m = mixture_;
  BatchRow& info = last_rows_[static_cast<size_t>(row)];
  if (!(row_rng.uniform() < m.fraction)) {  // a text window
    const size_t start = static_cast<size_t>(row_rng.below(tokens_.size() - context_length_));
    copy_window(tokens_, start, context_length_, row, inputs, targets);
    info.source = "text";
    info.start = static_cast<int64_t>(start);
    return;
  }
  const int64_t length = static_cast<int64_t>(context_length_) + 1;
  const bool passkey = row_rng.uniform() * (m.passkey_weight + m.mqar_weight) < m.passkey_weight;
  RetrievalExample ex;
  if (passkey) {
    const double depth = row_rng.uniform() * max_passkey_depth_;
    const Rng before = row_rng;
    ex = make_passkey_example(*m.tokenizer, tokens_, length, depth, row_rng);
    if (evidence_distance(ex, 0) < m.min_needle_distance && depth > 0.0) {
      // Rounding (or a key that encodes to more tokens) brought the needle too close: the same
      // example at depth 0, the farthest place.
      row_rng = before;
      ex = make_passkey_example(*m.tokenizer, tokens_, length, 0.0, row_rng);
    }
  } else {
    ex = make_mqar_example(*m.tokenizer, tokens_, length, m.mqar_pairs, row_rng);
  }
  copy_example(ex, context_length_, row, inputs, targets);
  info.source = passkey ? "passkey" : "mqar";
  info.answers = ex.answers;
  info.evidence = ex.evidence;
  info.answer_text = ex.answer_text;
}

std::vector<std::pair<Tensor, Tensor>> sequential_batches(const std::vector<int32_t>& tokens,
                                                          int batch_size, int context_length,
                                                          int max_batches) {
  check_sizes("sequential_batches", tokens.size(), batch_size, context_length);
  const size_t num_windows = (tokens.size() - 1) / context_length;
  size_t num_batches = num_windows / batch_size;
  if (num_batches == 0)
    throw Error("sequential_batches: tokens has " + std::to_string(tokens.size()) +
                " tokens, only " + std::to_string(num_windows) + " windows of context_length " +
                std::to_string(context_length) + ", fewer than batch_size " +
                std::to_string(batch_size));
  if (max_batches > 0) num_batches = std::min(num_batches, static_cast<size_t>(max_batches));

  std::vector<std::pair<Tensor, Tensor>> batches;
  for (size_t batch = 0; batch < num_batches; ++batch) {
    Tensor inputs = Tensor::empty({batch_size, context_length}, DType::I32);   // (B, T)
    Tensor targets = Tensor::empty({batch_size, context_length}, DType::I32);  // (B, T)
    for (int row = 0; row < batch_size; ++row) {
      const size_t window = batch * batch_size + row;
      copy_window(tokens, window * context_length, context_length, row, inputs.data<int32_t>(),
                  targets.data<int32_t>());
    }
    batches.emplace_back(std::move(inputs), std::move(targets));
  }
  return batches;
}

}  // namespace swiattn
