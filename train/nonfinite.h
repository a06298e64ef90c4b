// train/nonfinite.h: finding where a NaN or an infinity first appeared in a training step.
#pragma once

#include <string>
#include <vector>

#include "model/transformer.h"

namespace swiattn {

// True when every element is finite (float tensors, on either device).
bool all_finite(const Tensor& t);

// "" when the loss, every layer output and every parameter gradient are finite. Otherwise one
// line naming the first place, in forward order, where a non-finite value appeared:
// "the output of layer 2 (of 4)", or "the gradient of layers.1.attn.q_proj.weight", or "the loss".
// On CUDA every tensor is counted on the device and one small copy brings all counts back.
std::string first_nonfinite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params);

}  // namespace swiattn
