// data/loader.h: (inputs, targets) batches of token windows for next-token prediction.
//
// Shapes: B = batch_size, T = context_length, N = number of tokens in the stream.
// A window starting at s gives one row:
//   inputs[b, t]  = tokens[s + t]        (B, T) int32
//   targets[b, t] = tokens[s + t + 1]    (B, T) int32, the inputs shifted left by one
//
// The synthetic mixture (data/README.md, "The training mixture"): with probability
// `fraction` a row is instead one synthetic retrieval example (data/synthetic.h: a passkey or
// an MQAR example) of T + 1 tokens built from filler taken from the SAME stream the loader
// samples text windows from (the training split); inputs = example[0, T), targets =
// example[1, T + 1). The loss treats every position of a synthetic row like text.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn {

// How many rows are synthetic retrieval examples, and of which kind. fraction = 0 (the default)
// is the plain text loader, batch for batch identical to a loader built without a mixture.
struct SyntheticMixture {
  double fraction = 0.0;          // probability that a row is synthetic, in [0, 1]
  double passkey_weight = 1.0;    // a synthetic row is a passkey with probability
  double mqar_weight = 1.0;       //   passkey_weight / (passkey_weight + mqar_weight), else MQAR
  int64_t mqar_pairs = 2;         // key-value pairs per MQAR example
  // Passkey: the needle is placed so that (answer start - needle start) >= min_needle_distance
  // where the length allows it (the needle depth is drawn uniformly from the depths that do);
  // otherwise at depth 0, the farthest possible. 0 = any depth. MQAR pairs are placed by
  // make_mqar_example (uniform cut points): no minimum distance.
  int64_t min_needle_distance = 0;
  const Tokenizer* tokenizer = nullptr;  // required when fraction > 0; must outlive the loader
};

// What one row of the last batch is: a text window or a synthetic example. Positions are in
// the row's T + 1 token sequence: inputs[b, t] = sequence[t], targets[b, t] = sequence[t + 1].
struct BatchRow {
  std::string source;                               // "text" | "passkey" | "mqar"
  int64_t start = -1;                               // text: the window's start in the stream
  std::vector<std::pair<int64_t, int64_t>> answers;  // synthetic: [begin, end) answer spans
  std::vector<int64_t> evidence;                    // synthetic: where each answer's evidence starts
  std::vector<std::string> answer_text;             // synthetic: each answer's key / value
};

// Data-parallel training (train/data_parallel.h): of every global batch of B rows, rank `rank`
// of `world` ranks reads the contiguous block of rows rows(B) = [rank * B / world,
// (rank + 1) * B / world). The blocks of all ranks are disjoint and together are the whole batch,
// in order. B must be a multiple of world. The default {0, 1} is the whole batch.
struct RowShard {
  int rank = 0;
  int world = 1;
  std::pair<int64_t, int64_t> rows(int64_t batch_size) const;  // [begin, end); throws Error
};

// Training batches: each row is a window at a uniformly random start s in [0, N - T - 1] (or,
// with a mixture, possibly a synthetic example), drawn from a counter-based Rng. The stream of
// batches is a pure function of (tokens, B, T, mixture, seed, rng().counter): save rng().seed
// and rng().counter with a checkpoint and restore them to resume the exact same stream. Each
// next() draws B numbers (one per row), so the counter advances by B.
// Row b of a batch is drawn at counter c + b (c = the counter before next()), whatever the other
// rows are. So with a RowShard the loader makes only its rows (shard.rows(B), drawn at the same
// counters as in the whole batch) and still advances the counter by B: the ranks of a
// data-parallel run read together exactly the rows one loader of the whole batch reads, and
// their counter is the one a single-process run saves, so a checkpoint resumes with any
// number of ranks that divides B.
class BatchLoader {
 public:
  // Throws swiattn::Error naming the argument when batch_size < 1, context_length < 1,
  // tokens.size() < context_length + 1, or the mixture is invalid: fraction outside [0, 1],
  // negative weights or both zero, no tokenizer, or (probed once here) T + 1 tokens too short
  // for a synthetic example; the message then names the data.* key to change.
  // batch_size is the whole batch B; the shard picks this process's rows (a bad shard throws).
  BatchLoader(std::vector<int32_t> tokens, int batch_size, int context_length, uint64_t seed,
              SyntheticMixture mixture = {}, RowShard shard = {});

  // Replaces inputs and targets with new (B_local, T) int32 tensors on the CPU: this shard's
  // rows, B_local = B / shard.world (B without a shard).
  void next(Tensor& inputs, Tensor& targets);

  // One entry per row of the last batch, this shard's rows (empty before the first next()).
  const std::vector<BatchRow>& last_rows() const { return last_rows_; }
  // One line for the training log, e.g. "text only" or "25% synthetic rows (passkey 50%, ...)".
  std::string mixture_description() const;

  Rng& rng() { return rng_; }
  const Rng& rng() const { return rng_; }
  int batch_size() const { return batch_size_; }  // B, the whole batch
  const RowShard& shard() const { return shard_; }
  int context_length() const { return context_length_; }
  size_t num_tokens() const { return tokens_.size(); }

 private:
  // Fills row `row` from the row's own generator (seeded by one draw of rng_).
  void next_mixed_row(Rng& row_rng, int row, int32_t* inputs, int32_t* targets);

  std::vector<int32_t> tokens_;  // (N)
  int batch_size_;               // B
  int context_length_;           // T
  Rng rng_;
  SyntheticMixture mixture_;
  RowShard shard_;
  double max_passkey_depth_ = 1.0;  // depths in [0, this] keep the needle >= min distance away
  int64_t depth0_distance_ = 0;     // the needle distance at depth 0 (the largest possible)
  std::vector<BatchRow> last_rows_;
};

// Validation batches, deterministic: the stream is cut into consecutive non-overlapping windows
// starting at 0, T, 2T, ... (each needs T + 1 tokens), grouped B at a time in order. Only full
// batches are returned (the leftover < B windows are dropped); at most max_batches of them when
// max_batches > 0, all when max_batches <= 0. Each pair is (inputs, targets), both (B, T) int32.
// Throws Error naming the argument when B or T < 1, or when not even one full batch fits.
std::vector<std::pair<Tensor, Tensor>> sequential_batches(const std::vector<int32_t>& tokens,
                                                          int batch_size, int context_length,
                                                          int max_batches);

}  // namespace swiattn
