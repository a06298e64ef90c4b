// data/loader.h: (inputs, targets) batches of token windows for next-token prediction.
//
// Shapes: B = batch_size, T = context_length, N = number of tokens in the stream.
// A window starting at s gives one row:
//   inputs[b, t]  = tokens[s + t]        (B, T) int32
//   targets[b, t] = tokens[s + t + 1]    (B, T) int32, the inputs shifted left by one
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn {

// Training batches: each row is a window at a uniformly random start s in [0, N - T - 1], drawn
// from a counter-based Rng. The stream of batches is a pure function of (tokens, B, T, seed,
// rng().counter): save rng().seed and rng().counter with a checkpoint and restore them to resume
// the exact same stream. Each next() draws B numbers, so the counter advances by B.
class BatchLoader {
 public:
  // Throws swiattn::Error naming the argument when batch_size < 1, context_length < 1, or
  // tokens.size() < context_length + 1.
  BatchLoader(std::vector<int32_t> tokens, int batch_size, int context_length, uint64_t seed);

  // Replaces inputs and targets with new (B, T) int32 tensors on the CPU.
  void next(Tensor& inputs, Tensor& targets);

  Rng& rng() { return rng_; }
  const Rng& rng() const { return rng_; }
  int batch_size() const { return batch_size_; }
  int context_length() const { return context_length_; }
  size_t num_tokens() const { return tokens_.size(); }

 private:
  std::vector<int32_t> tokens_;  // (N)
  int batch_size_;               // B
  int context_length_;           // T
  Rng rng_;
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
