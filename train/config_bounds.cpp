// train/config_bounds.cpp: see train/config_bounds.h. Each bound is checked as a 64-bit value
// before anything narrows it (tensor/checked_math.h).
#include "train/config_bounds.h"

#include <algorithm>
#include <string>

#include "tensor/checked_math.h"

namespace swiattn {

void validate_config_bounds(const Config& config) {
  const TrainConfig& t = config.train;
  const ModelConfig& m = config.model;
  const std::string int32 = " (the kernels and loaders take it as a 32-bit int)";
  require_size("train.batch_size", t.batch_size, 1, kMaxSize, int32);
  require_size("train.seq_len", t.seq_len, 1, kMaxSize, int32);
  require_size("train.eval_batches", t.eval_batches, 1, kMaxSize, int32);
  require_size("train.sample_tokens", t.sample_tokens, 0, kMaxSize, int32);
  require_size("train.threads", t.threads, 0, kMaxThreads, " (0 = all cores)");
  require_size("train.keep_checkpoints", t.keep_checkpoints, 1, kMaxSize, " (the newest checkpoints kept in OUT/checkpoints)");

  // Tokens per step (one batch of B rows of T tokens) and per run must fit their counters.
  int64_t most_tokens_per_step = 0;
  auto check_step = [&](const std::string& where, int64_t batch, int64_t seq_len) {
    require_size(where + ".batch_size", batch, 0, kMaxSize, int32);
    require_size(where + ".seq_len", seq_len, 1, kMaxSize, int32);
    const int64_t tokens = checked_mul(std::max<int64_t>(batch, 1), seq_len, where + ": tokens per step");
    if (tokens > kMaxSize)
      throw Error(where + ": batch_size x seq_len = " + std::to_string(tokens) + " tokens per step, more than " +
                  std::to_string(kMaxSize) + " (the kernels index the rows of a step with 32-bit ints)");
    most_tokens_per_step = std::max(most_tokens_per_step, tokens);
  };
  check_step("train", t.batch_size, t.seq_len);
  for (size_t i = 0; i < t.curriculum.size(); ++i)
    check_step("train.curriculum[" + std::to_string(i) + "]",
               t.curriculum[i].batch_size == 0 ? t.batch_size : t.curriculum[i].batch_size, t.curriculum[i].seq_len);
  checked_mul(std::max<int64_t>(t.steps, 0), most_tokens_per_step, "train.steps: tokens of the run (steps x tokens per step)");

  // The vocabulary must be the tokenizer's: a larger one has ids that training never sees and that
  // generation could sample but the tokenizer cannot decode (validate_config refuses a smaller one).
  const int64_t tokenizer_vocab = config.data.tokenizer == "gpt2" ? 50257 : 256;
  if (m.vocab_size > tokenizer_vocab)
    throw Error("model.vocab_size: " + std::to_string(m.vocab_size) + " is larger than the " + config.data.tokenizer +
                " tokenizer's " + std::to_string(tokenizer_vocab) + " ids: the ids from " + std::to_string(tokenizer_vocab) +
                " up would never be trained, and generation could sample ids the tokenizer cannot decode (set "
                "model.vocab_size = " + std::to_string(tokenizer_vocab) + ")");
}

}  // namespace swiattn
