// train/answer_nll.h: the mean next-token loss over the answer tokens of the synthetic rows of
// the training batches, per task ("passkey", "mqar"): `answer_nll` on every progress line and in
// metrics.jsonl (docs/training.md).
//
// Exact-match retrieval appears abruptly (the copy circuit forms within a few hundred steps);
// the loss on the answers falls well before, so it shows whether a run is learning to retrieve.
// Scored tokens: the answer's tokens except whitespace-only ones (scored_answer_token in
// data/synthetic.h): the 5 digits of a passkey, the 4 of an MQAR value, with the byte tokenizer.
// A chance-level model scores about ln(10) = 2.30 nats per digit.
//
// The sums stay on the model's device until read (one masked sum per task per step, no copy
// to the host), so a CUDA step is not made to wait.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/loader.h"
#include "data/tokenizer.h"
#include "tensor/tensor.h"

namespace swiattn {

class AnswerNllMeter {
 public:
  explicit AnswerNllMeter(const Tokenizer& tokenizer);

  // One training step: rows = the loader's last_rows(), targets (B, T) int32 on the CPU,
  // per_token_nll (B * T) on the model's device (next_token_loss's per-token losses).
  void add(const std::vector<BatchRow>& rows, const Tensor& targets, const Tensor& per_token_nll);

  // Mean NLL per scored answer token since the last read, per task that had answers; then resets.
  std::map<std::string, double> read_and_reset();
  // The same as sums: per task that had answers, (sum of the NLL, scored tokens); then resets.
  // Data-parallel training adds them over the ranks before dividing (train/data_parallel.h).
  std::map<std::string, std::pair<double, int64_t>> read_totals_and_reset();

 private:
  bool scored(int32_t id);

  const Tokenizer& tokenizer_;
  std::vector<int8_t> scored_cache_;  // per token id: -1 unknown, 0 no, 1 yes
  struct Task {
    std::vector<Tensor> sums;  // () per step, on the device
    int64_t tokens = 0;
  };
  std::map<std::string, Task> tasks_;
};

}  // namespace swiattn
