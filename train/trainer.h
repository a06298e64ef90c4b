// train/trainer.h: the training loop behind `swiattn train`.
//
// One step: sample a batch (B, T) of token windows, forward, mean next-token cross-entropy,
// backward, clip the global gradient norm, one AdamW step at the scheduled learning rate.
// Progress lines go to `log`; every line is also appended to OUT/metrics.jsonl as JSON.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "model/transformer.h"
#include "train/config.h"

namespace swiattn {

struct TrainSummary {
  double unigram_entropy = 0.0;   // nats per token of the training split (the no-context baseline)
  double initial_val_loss = 0.0;  // before the first step
  double final_val_loss = 0.0;    // after the last step
  int64_t tokens_trained = 0;
  double seconds = 0.0;
  std::string sample;             // text generated after training ("" if sample_tokens = 0)
};

// Mean cross-entropy of `model` over the given (inputs, targets) batches, without gradients.
double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches);

// Runs the whole job described by `config`, writing into out_dir (created if needed):
// config.json (the resolved configuration) and metrics.jsonl.
TrainSummary run_training(const Config& config, const std::string& out_dir, std::ostream& log);

}  // namespace swiattn
