// train/held_out.h: the held-out loss, defined once: training's validation loss and the
// evaluation's held-out perplexity (eval/evaluate.h) are the same pass over the same batches.
//
// Each (inputs, targets) batch, inputs and targets (B, T) int32, goes through the model's forward
// with routing, without gradients; its loss is the mean next-token cross-entropy of its B * T
// tokens (next_token_loss). The held-out loss is the mean of the batch losses (batches of one
// size weigh every token alike).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "model/transformer.h"

namespace swiattn {

// What the pass saw of one batch, for a caller that needs more than the mean.
struct HeldOutBatch {
  const ForwardResult& forward;  // the forward of the batch (logits (B, T, V), routing per switch layer)
  const Tensor& per_token;       // (B * T) next-token NLL of each token, in the logits' dtype
  double loss;                   // their mean
};
using HeldOutVisitor = std::function<void(const HeldOutBatch&)>;

// The held-out loss of `model` over `batches` (at least one; on any device: moved to the
// model's). layer_ratios, if given, receives the full-attention ratio of each switch layer over
// all batches; each_batch, if given, is called once per batch in order (per_token is only
// computed then).
double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches,
                     std::vector<double>* layer_ratios = nullptr, const HeldOutVisitor& each_batch = {});

}  // namespace swiattn
