// model/weights.h: a model's weights in DIR/model.safetensors, loaded by name and checked.
//
// The weights alone: what a model needs to run. The rest of a checkpoint folder (config.json,
// the run's configuration, optimizer and trainer state) belongs to the training run:
// train/checkpoint.h.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "tensor/tensor.h"

namespace swiattn {

struct LoadReport {
  std::vector<std::string> loaded;       // parameters copied from the file, in model order
  std::vector<std::string> initialised;  // parameters the file lacks, allowed by may_be_missing:
                                         // they keep the values they had (their initialisation)
  std::vector<std::string> ignored;      // tensors of the file the model lacks, allowed by
                                         // may_be_ignored, in file order
};

// Copies each tensor of DIR/model.safetensors into the model parameter of the same name.
// Shapes must match exactly; float32 <-> float64 is converted, other dtypes are an Error.
// A parameter missing from the file is an Error unless may_be_missing(name) (e.g. the routers
// when a full-attention checkpoint starts a switch model). A tensor the model lacks is an Error
// unless may_be_ignored(name): by default a checkpoint with routers does not load into a model
// without them. A tensor holding a NaN or an infinity is an Error too (a diverged run's weights
// must not pass for a model) unless allow_nonfinite. Nothing is modified unless every check passes.
LoadReport load_model_weights(const std::string& dir, Transformer& model,
                              const std::function<bool(const std::string&)>& may_be_missing = nullptr,
                              const std::function<bool(const std::string&)>& may_be_ignored = nullptr,
                              bool allow_nonfinite = false);

// The usual may_be_missing when a full-attention checkpoint starts a switch model (spec §6): true
// for the router parameters "layers.{l}.attn.router.weight" (1, C) and ".bias" (1), the names
// model/transformer.cpp gives them.
bool is_router_parameter(const std::string& name);

// An Error when a tensor read from a file holds a NaN or an infinity (a diverged run's state):
// "<where>tensor "<name>" holds N non-finite values (...): the checkpoint is broken, nothing was
// loaded<hint>". Float tensors on the CPU.
void refuse_nonfinite(const Tensor& t, const std::string& where, const std::string& name, const std::string& hint);

}  // namespace swiattn
