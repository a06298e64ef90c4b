// train/checkpoint.cpp: the checkpoint directory (layout in train/checkpoint.h).
//
// config.json is derived from train/config.cpp's one table of fields (config_to_json), so a new
// ModelConfig field reaches config.json, and is accepted back, with no change here.
#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/json_reader.h"
#include "model/safetensors.h"

namespace swiattn {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* const kModelFile = "model.safetensors";
const char* const kConfigFile = "config.json";
const char* const kRunConfigFile = "run_config.json";
const char* const kOptimizerFile = "optimizer.safetensors";
const char* const kTrainerStateFile = "trainer_state.json";

std::string path_in(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The "model" section of config_to_json: every ModelConfig field under its own name.
json model_fields_to_json(const ModelConfig& model) {
  Config wrapper;
  wrapper.model = model;
  return config_to_json(wrapper)["model"];
}

const char* torch_dtype_name(DType dtype) {
  if (dtype == DType::I32) throw Error("checkpoint: a model cannot have dtype int32");
  return dtype_name(dtype);  // "float32", "float64", "bfloat16": the names torch uses
}

// Keys that Hugging Face tools write into config.json, which describe the file, not the model.
void check_bookkeeping_key(const std::string& key, const json& value, const std::string& where) {
  const auto expect = [&](bool ok, const char* what) {
    if (!ok) throw Error(where + key + " must be " + what + ", got " + value.dump());
  };
  if (key == "architectures") {
    expect(value.is_array(), "an array of strings");
    for (const json& name : value) expect(name.is_string(), "an array of strings");
  } else if (key == "torch_dtype" || key == "dtype") {
    expect(value.is_string() && (value == "float32" || value == "float64" || value == "bfloat16"),
           "\"float32\", \"float64\" or \"bfloat16\"");
  } else {
    expect(value.is_string(), "a string");
  }
}

bool is_bookkeeping_key(const std::string& key) {
  return key == "architectures" || key == "torch_dtype" || key == "dtype" ||
         key == "transformers_version" || key == "_name_or_path";
}

// Every JSON file of a checkpoint goes through the one strict parser (io/json_reader.h): bounded
// size and depth, duplicate keys refused. A checkpoint's files are small (config.json about 1 KB).
json read_json_file(const std::string& path) {
  return read_json_file_strict(path, "checkpoint " + path + ": ", {size_t{16} << 20, 16});
}

void write_json_file(const std::string& path, const json& j) {
  write_file_atomically(path, j.dump(2) + "\n");
}

void remove_if_present(const std::string& path) {
  try {
    remove_file(path);
  } catch (const Error& e) {
    throw Error("checkpoint " + path + ": cannot remove the previous save's file (" + e.what() + ")");
  }
}

int64_t first_negative_element(const Tensor& t) {
  return dispatch_float(t.dtype(), "checkpoint", [&](auto zero) -> int64_t {
    using T = decltype(zero);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (p[i] < 0) return i;
    return -1;
  });
}

// The model's name of each optimizer parameter; Error if one is not a model parameter.
std::vector<std::string> optimizer_parameter_names(const AdamW& optimizer, const Transformer& model,
                                                   const std::string& where) {
  std::map<const Node*, std::string> name_of;
  for (const Var& p : model.parameters()) name_of[p.node()] = p.name();
  std::vector<std::string> names;
  for (size_t i = 0; i < optimizer.params().size(); ++i) {
    const auto it = name_of.find(optimizer.params()[i].node());
    if (it == name_of.end())
      throw Error(where + "optimizer parameter " + std::to_string(i) + " (" +
                  quoted(optimizer.params()[i].name()) + ") is not a parameter of the model");
    names.push_back(it->second);
  }
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------------------------

json model_config_to_hf_json(const ModelConfig& config, DType dtype) {
  json j = model_fields_to_json(config);
  j["model_type"] = "swiattn";
  j["architectures"] = json::array({"SwiAttnForCausalLM"});
  j["torch_dtype"] = torch_dtype_name(dtype);
  return j;
}

ModelConfig model_config_from_hf_json(const json& j, const std::string& source) {
  const std::string where = "config " + source + ": ";
  if (!j.is_object()) throw Error(where + "expected a JSON object, got " + j.type_name());
  if (!j.contains("model_type") || j["model_type"] != "swiattn")
    throw Error(where + "model_type must be \"swiattn\", got " +
                (j.contains("model_type") ? j["model_type"].dump() : "nothing"));
  const json known_fields = model_fields_to_json(ModelConfig{});
  json model_section = json::object();
  for (const auto& [key, value] : j.items()) {
    if (key == "model_type") continue;
    if (is_bookkeeping_key(key)) {
      check_bookkeeping_key(key, value, where);
      continue;
    }
    if (!known_fields.contains(key)) throw Error(where + "unknown key " + quoted(key));
    model_section[key] = value;
  }
  // Type checks (and their messages) are the run configuration's: "model.hidden_size must be...".
  return config_from_json(json{{"model", model_section}}, source).model;
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

void save_checkpoint(const std::string& dir, const Transformer& model, const Config& run_config,
                     const AdamW* optimizer, const json& trainer_state) {
  const std::string where = "checkpoint " + dir + ": ";
  // Check every argument before writing anything.
  const json model_fields = model_fields_to_json(model.config());
  const json run_fields = model_fields_to_json(run_config.model);
  for (const auto& [key, value] : model_fields.items())
    if (run_fields.at(key) != value)
      throw Error(where + "run_config.model." + key + " is " + run_fields.at(key).dump() +
                  " but the model's is " + value.dump() + " (a resumed run would build another model)");
  // train.dtype "bfloat16" is mixed precision: float32 parameters (what the checkpoint holds).
  const std::string master_dtype = run_config.train.dtype == "bfloat16" ? "float32" : run_config.train.dtype;
  if (master_dtype != dtype_name(model.dtype()))
    throw Error(where + "run_config.train.dtype is " + quoted(run_config.train.dtype) +
                " but the model is " + dtype_name(model.dtype()));
  if (!trainer_state.is_null() && !trainer_state.is_object())
    throw Error(where + "trainer_state must be a JSON object or null, got " + trainer_state.type_name());
  std::vector<std::string> optimizer_names;
  if (optimizer) optimizer_names = optimizer_parameter_names(*optimizer, model, where);

  try {
    make_directories(dir);
  } catch (const Error& e) {
    throw Error(where + e.what());
  }

  std::vector<std::pair<std::string, Tensor>> weights;
  // Device tensors are copied to the host first (the writer reads host memory).
  for (const Var& p : model.parameters()) weights.emplace_back(p.name(), p.value().to(Device::CPU));
  write_safetensors(path_in(dir, kModelFile), weights, {{"format", "pt"}, {"producer", "swiattn"}});
  write_json_file(path_in(dir, kConfigFile), model_config_to_hf_json(model.config(), model.dtype()));
  write_json_file(path_in(dir, kRunConfigFile), config_to_json(run_config));

  if (optimizer) {
    std::vector<std::pair<std::string, Tensor>> moments;
    for (size_t i = 0; i < optimizer_names.size(); ++i) {
      moments.emplace_back("m." + optimizer_names[i], optimizer->first_moments()[i].to(Device::CPU));
      moments.emplace_back("v." + optimizer_names[i], optimizer->second_moments()[i].to(Device::CPU));
    }
    write_safetensors(path_in(dir, kOptimizerFile), moments,
                      {{"format", "pt"}, {"producer", "swiattn"},
                       {"steps_taken", std::to_string(optimizer->steps_taken())}});
  } else {
    remove_if_present(path_in(dir, kOptimizerFile));
  }
  if (!trainer_state.is_null()) write_json_file(path_in(dir, kTrainerStateFile), trainer_state);
  else remove_if_present(path_in(dir, kTrainerStateFile));
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

std::string resolve_checkpoint_dir(const std::string& dir, const std::string& what) {
  if (dir.empty()) throw Error(what + ": --checkpoint DIR is required");
  if (!fs::exists(dir)) throw Error(what + ": checkpoint " + dir + " does not exist");
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;
  if (fs::exists(fs::path(dir) / "checkpoint" / "model.safetensors")) return (fs::path(dir) / "checkpoint").string();
  throw Error(what + ": no checkpoint in " + dir + " (expected " + dir + "/model.safetensors or " + dir +
              "/checkpoint/model.safetensors, as swiattn train writes)");
}

ModelConfig read_checkpoint_model_config(const std::string& dir) {
  const std::string path = path_in(dir, kConfigFile);
  ModelConfig config = model_config_from_hf_json(read_json_file(path), path);
  try {
    config.validate();
  } catch (const Error& e) {
    throw Error("config " + path + ": " + e.what());
  }
  return config;
}

Config read_checkpoint_run_config(const std::string& dir) {
  return load_config_file(path_in(dir, kRunConfigFile));
}

CheckpointConfigs read_checkpoint_configs(const std::string& dir) {
  CheckpointConfigs c;
  c.model = read_checkpoint_model_config(dir);
  c.run = read_checkpoint_run_config(dir);
  const std::string where = "checkpoint " + dir + ": ";
  try {
    validate_config(c.run, /*corpus_must_exist=*/false);  // the text may have moved (eval.corpus)
  } catch (const Error& e) {
    throw Error(where + kRunConfigFile + ": " + e.what());
  }
  // The two files describe one model: the weights are built from config.json, the tokenizer and
  // the sequence length come from run_config.json. Any difference means one was edited or copied.
  const json model_fields = model_fields_to_json(c.model), run_fields = model_fields_to_json(c.run.model);
  for (const auto& [key, value] : model_fields.items())
    if (run_fields.at(key) != value)
      throw Error(where + "config.json and run_config.json disagree on " + key + " (" + value.dump() + " vs " +
                  run_fields.at(key).dump() + "): was one of them edited, or copied from another checkpoint?");
  const json hf = read_json_file(path_in(dir, kConfigFile));
  const std::string master = c.run.train.dtype == "bfloat16" ? "float32" : c.run.train.dtype;
  if (hf.contains("torch_dtype") && hf["torch_dtype"] != master)
    throw Error(where + "config.json's torch_dtype " + hf["torch_dtype"].dump() + " disagrees with run_config.json's " +
                "train.dtype " + ("\"" + c.run.train.dtype + "\"") + " (whose weights are " + master + ")");
  return c;
}

json read_trainer_state(const std::string& dir) {
  const std::string path = path_in(dir, kTrainerStateFile);
  if (!fs::exists(path)) return json();
  json state = read_json_file(path);
  if (!state.is_object())
    throw Error("checkpoint " + path + ": expected a JSON object, got " + state.type_name());
  return state;
}

void load_optimizer_state(const std::string& dir, AdamW& optimizer, const Transformer& model) {
  const std::string path = path_in(dir, kOptimizerFile);
  const std::string where = "checkpoint " + path + ": ";
  if (!fs::exists(path)) throw Error(where + "missing: this checkpoint was saved without optimizer state");
  const std::vector<std::string> names = optimizer_parameter_names(optimizer, model, where);
  const SafetensorsFile file = read_safetensors(path);

  const auto steps = file.metadata.find("steps_taken");
  if (steps == file.metadata.end()) throw Error(where + "__metadata__ has no steps_taken");
  const std::string& digits = steps->second;
  const bool all_digits = !digits.empty() && digits.size() <= 18 &&  // 18 digits fit in int64
                          std::all_of(digits.begin(), digits.end(),
                                      [](char c) { return c >= '0' && c <= '9'; });
  if (!all_digits)
    throw Error(where + "__metadata__.steps_taken must be a non-negative integer, got " + quoted(digits));
  const int64_t steps_taken = std::stoll(digits);

  std::vector<Tensor> first_moments, second_moments;
  std::set<std::string> used;
  for (size_t i = 0; i < names.size(); ++i) {
    const Var& p = optimizer.params()[i];
    for (const char* prefix : {"m.", "v."}) {
      const std::string key = prefix + names[i];
      const auto it = file.tensors.find(key);
      if (it == file.tensors.end())
        throw Error(where + "tensor " + quoted(key) + " " + shape_str(p.shape()) + " is not in the file");
      if (it->second.shape() != p.shape())
        throw Error(where + "tensor " + quoted(key) + " has shape " + shape_str(it->second.shape()) +
                    " in the file but the parameter is " + shape_str(p.shape()));
      if (it->second.dtype() != DType::F32 && it->second.dtype() != DType::F64)
        throw Error(where + "tensor " + quoted(key) + " is " + dtype_name(it->second.dtype()) +
                    "; expected float32 or float64");
      // A NaN or infinity here would reach the weights at the first step (and be saved as the
      // next "good" checkpoint); a negative second moment makes sqrt(v) a NaN.
      refuse_nonfinite(it->second, where, key, "");
      if (prefix[0] == 'v') {
        const int64_t negative = first_negative_element(it->second);
        if (negative >= 0)
          throw Error(where + "tensor " + quoted(key) + " holds a negative second moment (" +
                      json(it->second.at(negative)).dump() + " at element " + std::to_string(negative) +
                      "): the checkpoint is broken");
      }
      (prefix[0] == 'm' ? first_moments : second_moments).push_back(it->second);
      used.insert(key);
    }
  }
  for (const std::string& name : file.names)
    if (!used.count(name))
      throw Error(where + "tensor " + quoted(name) + " belongs to no parameter of the optimizer");
  optimizer.load_state(steps_taken, first_moments, second_moments);  // checks again, then copies
}

}  // namespace swiattn
