// train/checkpoint.h: the checkpoint folder of a training run: the model, its configuration and the
// run's state (model/weights.h loads the weights alone; this file adds the rest).
//
// A checkpoint is a directory (docs/checkpoints.md describes every file and key):
//   DIR/model.safetensors      every parameter under its name ("layers.3.attn.q_proj.weight"),
//                              in the model's dtype; __metadata__ {"format": "pt", "producer": "swiattn"}
//   DIR/config.json            the ModelConfig in the Hugging Face style (model_type "swiattn")
//   DIR/run_config.json        the whole run Config (train/config.h), for resuming
//   DIR/optimizer.safetensors  optional: AdamW moments "m.<param>" and "v.<param>", step count in
//                              __metadata__["steps_taken"]
//   DIR/trainer_state.json     optional: whatever JSON object the trainer passes
// Each file is written atomically (file.tmp, then rename); the directory as a whole is not: to
// publish a complete checkpoint at once, save into a fresh directory and rename it.
//
// Every load validates the whole file against the model before changing anything, so a failed
// load throws an Error and leaves the model (or optimizer) exactly as it was.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>  // nlohmann::json; include <nlohmann/json.hpp> to use it

#include "model/config.h"
#include "model/transformer.h"
#include "model/weights.h"  // load_model_weights, is_router_parameter: the weights alone
#include "tensor/tensor.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace swiattn {

// ---- config.json ----
// Every ModelConfig field under its own name, plus model_type "swiattn", architectures
// ["SwiAttnForCausalLM"] and torch_dtype ("float32" | "float64" | "bfloat16").
nlohmann::json model_config_to_hf_json(const ModelConfig& config, DType dtype);
// The inverse. Missing fields keep ModelConfig's defaults; model_type must be "swiattn"; the
// Hugging Face bookkeeping keys (architectures, torch_dtype, dtype, transformers_version,
// _name_or_path) are checked for type and otherwise ignored; any other unknown key, or a value of
// the wrong type, is an Error naming `source` and the key. Does not call validate().
ModelConfig model_config_from_hf_json(const nlohmann::json& j, const std::string& source);

// ---- saving ----
// Creates `dir` if needed and writes the files above. run_config.model must equal model.config()
// (a resumed run rebuilds the model from it); optimizer may be null; trainer_state may be a null
// json (then no trainer_state.json) or an object. An optional file that is not written this time
// is removed, so a checkpoint saved over an older one never mixes states of two saves.
// The optimizer's parameters must be the model's parameters (the same Vars).
void save_checkpoint(const std::string& dir, const Transformer& model, const Config& run_config,
                     const AdamW* optimizer, const nlohmann::json& trainer_state);

// ---- loading ----
// DIR itself when it holds model.safetensors, else DIR/checkpoint (the folder `swiattn train
// --out DIR` writes). Throws an Error naming `what` ("generate") and both places looked at.
std::string resolve_checkpoint_dir(const std::string& dir, const std::string& what);
ModelConfig read_checkpoint_model_config(const std::string& dir);  // config.json, validated
Config read_checkpoint_run_config(const std::string& dir);         // run_config.json, not validated
nlohmann::json read_trainer_state(const std::string& dir);         // null json when absent

// Both configurations of a checkpoint, checked against each other: run_config.json validates,
// its model section equals config.json field for field, and config.json's torch_dtype is the
// dtype run_config.json's train.dtype stores. What generate and eval load a checkpoint with.
struct CheckpointConfigs {
  ModelConfig model;  // config.json
  Config run;         // run_config.json
};
CheckpointConfigs read_checkpoint_configs(const std::string& dir);

// Restores DIR/optimizer.safetensors into `optimizer`, whose parameters must be parameters of
// `model`: each needs both "m.<name>" and "v.<name>" of its shape, and the file may hold nothing
// else; every moment must be finite and every second moment >= 0. Nothing is modified unless
// every check passes.
void load_optimizer_state(const std::string& dir, AdamW& optimizer, const Transformer& model);

}  // namespace swiattn
