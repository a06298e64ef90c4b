// data/loader.cpp: random-window training batches and sequential validation batches.
#include "data/loader.h"

#include <algorithm>
#include <string>

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

}  // namespace

BatchLoader::BatchLoader(std::vector<int32_t> tokens, int batch_size, int context_length,
                         uint64_t seed)
    : tokens_(std::move(tokens)),
      batch_size_(batch_size),
      context_length_(context_length),
      rng_(seed) {
  check_sizes("BatchLoader", tokens_.size(), batch_size, context_length);
}

void BatchLoader::next(Tensor& inputs, Tensor& targets) {
  inputs = Tensor::empty({batch_size_, context_length_}, DType::I32);   // (B, T)
  targets = Tensor::empty({batch_size_, context_length_}, DType::I32);  // (B, T)
  const uint64_t num_starts = tokens_.size() - context_length_;  // starts 0 .. N - T - 1
  for (int row = 0; row < batch_size_; ++row) {
    const size_t start = static_cast<size_t>(rng_.below(num_starts));
    copy_window(tokens_, start, context_length_, row, inputs.data<int32_t>(),
                targets.data<int32_t>());
  }
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
