// train/nonfinite.h: finding where a NaN or an infinity first appeared in a training step, and
// checking that the state a checkpoint would save is finite.
#pragma once

#include <string>
#include <vector>

#include "model/transformer.h"
#include "train/optimizer.h"

namespace swiattn {

// True when every element is finite (float tensors, on either device).
bool all_finite(const Tensor& t);

// "" when the loss, every layer output and every parameter gradient are finite. Otherwise one
// line naming the first place, in forward order, where a non-finite value appeared:
// "the output of layer 2 (of 4)", or "the gradient of layers.1.attn.q_proj.weight", or "the loss".
// On CUDA every tensor is counted on the device and one small copy brings all counts back.
std::string first_nonfinite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params);

// The trainer's check of one step, in the same single pass (one copy on CUDA): first the
// parameters' values, which the previous optimizer step (and the target-ratio controller) left,
// then what first_nonfinite checks. A bad weight cannot be skipped like a bad batch: the update
// that made it is already applied.
struct StepCheck {
  std::string bad_weight;  // "" or "the weights of layers.0.attn.q_proj.weight"
  std::string bad_step;    // "" or first_nonfinite's answer
};
StepCheck check_step_finite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params);

// "" when every parameter value and, with an optimizer, every AdamW moment is finite; otherwise
// the first bad one: "the weights of NAME", "the first moment (AdamW m) of NAME", "the second
// moment (AdamW v) of NAME". Checked before every save, so a broken state is never saved.
std::string first_nonfinite_state(const std::vector<Var>& params, const AdamW* optimizer);

}  // namespace swiattn
