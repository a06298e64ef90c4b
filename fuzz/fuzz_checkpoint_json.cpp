// fuzz/fuzz_checkpoint_json.cpp: libFuzzer target for the JSON files of a checkpoint (issue 17):
// config.json, run_config.json and trainer_state.json, read through the one strict parser
// (io/json_reader.h) and each reader's range checks.
//
// A scratch checkpoint directory holds valid files; each input replaces one of them in turn and
// the reader of a whole checkpoint runs:
//   1. as config.json:        read_checkpoint_model_config, then read_checkpoint_configs (the
//                             cross-check against the valid run_config.json);
//   2. as trainer_state.json: read_trainer_state, training_state_from_json, validate_training_state
//                             (against the valid run configuration);
//   3. as run_config.json:    read_checkpoint_configs (against the valid config.json);
//   4. as text:               parse_json_strict with small limits.
// The only acceptable exception is swiattn::Error. Promises checked on what is accepted: an
// accepted model configuration builds its config.json back unchanged (model_config_to_hf_json ->
// model_config_from_hf_json), and a parsed document dumps and parses back to itself (no key twice).
#include <sys/stat.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/fuzz_common.h"
#include "io/json_reader.h"
#include "train/checkpoint.h"
#include "tensor/tensor.h"
#include "train/config.h"
#include "train/train_state.h"

using nlohmann::json;
using swiattn_fuzz::accepts;
using swiattn_fuzz::finding;

namespace {


// The valid files of a small checkpoint (a switch layer, so trainer states carry a ratio).
swiattn::Config valid_run() {
  swiattn::Config c;
  c.model.num_hidden_layers = 2;
  c.model.layer_types = {"full", "switch"};
  return c;
}

std::string make_valid_file(const char* name) {
  const swiattn::Config run = valid_run();
  if (std::string(name) == "config.json") return swiattn::model_config_to_hf_json(run.model, swiattn::DType::F32).dump(2);
  if (std::string(name) == "run_config.json") return swiattn::config_to_json(run).dump(2);
  swiattn::TrainingState state;
  state.step = 100;
  state.tokens_trained = 100 * 16 * 128;
  state.initial_val_loss = 5.5;
  state.last_val_loss = 2.5;
  state.last_val_ratios = {0.3};
  return swiattn::training_state_to_json(state).dump(2);
}

// Made once: the valid files are the same for every input.
const std::string& valid_file(const char* name) {
  static const std::string config = make_valid_file("config.json"), run_config = make_valid_file("run_config.json"),
                           trainer_state = make_valid_file("trainer_state.json");
  const std::string n = name;
  return n == "config.json" ? config : n == "run_config.json" ? run_config : trainer_state;
}

const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const std::string d = swiattn_fuzz::scratch_path("-checkpoint");
    ::mkdir(d.c_str(), 0755);
    for (const char* name : {"config.json", "run_config.json", "trainer_state.json"})
      swiattn_fuzz::scratch_files().insert(swiattn_fuzz::scratch_files().begin(), d + "/" + name);  // removed before the dir
    return d;
  }();
  return dir;
}

void write_file(const char* name, const std::string& bytes) {
  const std::string path = checkpoint_dir() + "/" + name;
  swiattn_fuzz::write_bytes(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string& dir = checkpoint_dir();
  static const swiattn::Config run = valid_run();

  // 1. As config.json.
  write_file("config.json", text);
  write_file("run_config.json", valid_file("run_config.json"));
  write_file("trainer_state.json", valid_file("trainer_state.json"));
  swiattn::ModelConfig model;
  if (accepts("read_checkpoint_model_config", [&] { model = swiattn::read_checkpoint_model_config(dir); })) {
    accepts("model config round trip", [&] {
      const json written = swiattn::model_config_to_hf_json(model, swiattn::DType::F32);
      const swiattn::ModelConfig back = swiattn::model_config_from_hf_json(json::parse(written.dump()), "round trip");
      if (swiattn::model_config_to_hf_json(back, swiattn::DType::F32) != written)
        finding("config.json -> ModelConfig -> config.json changed the configuration");
    });
    accepts("read_checkpoint_configs (config.json)", [&] { swiattn::read_checkpoint_configs(dir); });
  }

  // 2. As trainer_state.json.
  write_file("config.json", valid_file("config.json"));
  write_file("trainer_state.json", text);
  accepts("trainer state", [&] {
    const json j = swiattn::read_trainer_state(dir);
    const swiattn::TrainingState state = swiattn::training_state_from_json(j, "fuzz");
    swiattn::validate_training_state(state, run, "fuzz");
    if (state.step < 0 || state.step > run.train.steps) finding("validate_training_state accepted an out-of-range step");
  });

  // 3. As run_config.json.
  write_file("trainer_state.json", valid_file("trainer_state.json"));
  write_file("run_config.json", text);
  accepts("read_checkpoint_configs (run_config.json)", [&] { swiattn::read_checkpoint_configs(dir); });

  // 4. As text, with small limits.
  json parsed;
  if (accepts("parse_json_strict", [&] { parsed = swiattn::parse_json_strict(text, "fuzz: ", {2048, 6}); })) {
    std::string dumped;
    try {
      dumped = parsed.dump();
    } catch (const std::exception& e) {
      finding(std::string("an accepted document cannot be dumped: ") + e.what());
    }
    if (!accepts("re-parse of the dump", [&] {
          if (swiattn::parse_json_strict(dumped, "fuzz: ", {size_t{1} << 20, 6}) != parsed)
            finding("dump -> parse changed an accepted document");
        }))
      finding("the dump of an accepted document is refused");
  }
  return 0;
}
