// train/config.h: everything one run needs, as one struct with an embedded default.
//
// On disk (and for --config FILE.json) it is JSON with four sections:
//   {"model": {...ModelConfig...}, "train": {...TrainConfig...}, "data": {...DataConfig...},
//    "reg": {...RegularizerConfig...}}
// Any subset may be given; missing keys keep their defaults. `--set section.key=value` overrides
// one key after the file is read. Unknown keys, wrong types and impossible values are rejected
// with an Error naming the key.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>  // nlohmann::json; include <nlohmann/json.hpp> to use it

#include "model/config.h"

namespace swiattn {

// One stage of a context curriculum (train.curriculum): `steps` optimizer steps on rows of
// `seq_len` tokens, `batch_size` rows each (0: train.batch_size).
struct CurriculumStage {
  int64_t steps = 0;
  int64_t seq_len = 0;
  int64_t batch_size = 0;
  bool operator==(const CurriculumStage& o) const {
    return steps == o.steps && seq_len == o.seq_len && batch_size == o.batch_size;
  }
};

struct TrainConfig {
  uint64_t seed = 1;               // parameter init and batch sampling
  int64_t batch_size = 16;         // B
  int64_t seq_len = 128;           // T, tokens per training sequence
  int64_t steps = 400;             // optimizer steps (0: evaluate the initial model only, e.g. SWA-ZS)
  double learning_rate = 3e-3;     // peak learning rate
  double min_learning_rate = 3e-4; // floor of the cosine decay
  int64_t warmup_steps = 50;       // linear warm-up from 0 to learning_rate
  double weight_decay = 0.1;       // AdamW, decoupled; not applied to norms' gains
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;          // global-norm clipping; 0 disables
  int64_t log_interval = 20;       // steps between progress lines
  int64_t eval_interval = 100;     // steps between validation evaluations (and at the end)
  int64_t eval_batches = 8;        // validation batches per evaluation
  std::string dtype = "float32";   // "float32" | "float64" (CPU) | "bfloat16" (CUDA: mixed precision,
                                   // float32 master weights and AdamW moments, bfloat16 compute)
  std::string device = "cpu";      // "cpu" | "cuda" (docs/cuda.md, "Training on the GPU")
  bool deterministic = false;      // cuda: fixed-order sums everywhere, so two runs on the same GPU
                                   // write the same bits (docs/cuda.md "Deterministic training";
                                   // its cost: docs/perf.md). The CPU is deterministic always.
  std::string float32_attention = "float32";  // cuda, train.dtype "float32": "float32" (exact) or
                                   // "bfloat16" (the attention ops on the bf16 tensor-core kernels,
                                   // float32 in and out: docs/cuda.md "Fast float32 attention")
  int64_t threads = 0;             // OpenMP threads; 0 = all cores
  int64_t sample_tokens = 200;     // tokens generated after training (0 = none)
  std::string sample_prompt = "The ";
  double sample_temperature = 0.8;
  std::string init_from = "";      // continual pretraining (spec §6): a checkpoint dir to start from
  int64_t checkpoint_interval = 0; // steps between checkpoints in OUT/checkpoint (0: only at the end)
  int64_t keep_checkpoints = 1;    // checkpoints kept in OUT/checkpoints: the newest N (OUT/checkpoint links the newest)
  std::string on_nonfinite = "stop";  // NaN/Inf in the loss or gradients: "stop" | "skip" the batch
  int64_t max_skipped_batches = 10;   // with "skip": stop once this many batches were skipped
  // Context curriculum (docs/training.md): stages run in order, e.g. [{"steps": 3000, "seq_len": 512,
  // "batch_size": 32}, {"steps": 500, "seq_len": 2048}]. Their steps sum to train.steps and the
  // last stage's seq_len is train.seq_len (the length the checkpoint is evaluated at). One
  // learning-rate schedule spans all stages. Empty: every step uses train.seq_len and batch_size.
  std::vector<CurriculumStage> curriculum;
};

struct DataConfig {
  // "sotu" | "moby-dick" | "sotu+moby-dick", or a path: a text file, a folder of .txt files, a
  // token file, a folder from `swiattn prepare` (data/dataset.h)
  std::string corpus = "sotu+moby-dick";
  std::string tokenizer = "byte";         // "byte" | "gpt2"
  std::string cache_dir = "data/cache";   // where `make data` put the packages (data/cache_dir.h)
  double val_fraction = 0.1;              // own text / one token file: the last share is validation
  // The training mixture (data/README.md): each training row is, with this probability, a
  // synthetic retrieval example (passkey or MQAR in training-split filler) instead of a text
  // window. 0 = text only (the loader of before, batch for batch). Validation stays real text.
  double synthetic_fraction = 0.0;
  double passkey_weight = 1.0;            // share of passkey vs MQAR among synthetic rows
  double mqar_weight = 1.0;
  int64_t mqar_pairs = 2;                 // key-value pairs per MQAR example
  int64_t min_needle_distance = -1;       // passkey needle -> answer, tokens; -1 = model.sliding_window
};

// The adaptive efficiency regulariser (spec §5, Eq. 7-9) and our target-ratio controller
// (train/regularizer.h apply_ratio_controller, docs/swiattn.md).
struct RegularizerConfig {
  std::string mode = "adaptive";  // "adaptive" (Eq. 8) | "fixed" (gamma = gamma_base) | "off"
  double gamma_base = 1e-3;       // Eq. 8's gamma_base; never changed by the controller
  double eps = 0.1;               // Eq. 8's epsilon
  double alpha = 100.0;           // weight of ||O_FULL - O_SWA||^2 in Eq. 8
  // "off" (default) | "bias": after each optimizer step every switch layer's router bias moves by
  // one shift that would have routed target_ratio of the step's tokens to full attention
  // (train/regularizer.h apply_ratio_controller); controller_rate scales that shift.
  std::string controller = "off";
  double target_ratio = 0.13;     // in [0, 1]: the full-attention ratio the controller holds
  double controller_rate = 1.0;   // in (0, 1]: the share of that shift applied each step
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  RegularizerConfig reg;
};

// ---- train/config.cpp ----
// Every error below is a swiattn::Error whose message names the key, e.g.
//   "config run.json: unknown key model.hiden_size"
//   "config run.json: model.hidden_size must be an integer, got 1.5"
// Reading a config never validates values; call validate_config() after the overrides.

// Reads the sections "model", "train", "data", "reg" of j (any subset; missing keys keep defaults).
// `source` names where j came from (a path, "--set") and starts every error message.
// Types: integers must be JSON integers (1.5 and 2.0 are rejected), train.seed a non-negative
// integer, floats any JSON number, booleans true/false, model.layer_types an array of strings.
Config config_from_json(const nlohmann::json& j, const std::string& source);

// config_from_json of the file's contents; an Error names the path when the file is missing,
// unreadable or not JSON (with the parser's message).
Config load_config_file(const std::string& path);

// Every field of every section; config_from_json(config_to_json(c), ...) gives back c exactly.
nlohmann::json config_to_json(const Config& config);

// Applies one `--set section.key=value`. The value is parsed as JSON when it parses (numbers,
// true/false, arrays like ["full","swa"]); otherwise it is taken as a string. String-typed keys
// take the text verbatim unless it is a JSON string literal ("\"The \""), so
// train.sample_prompt=42 sets the prompt "42". Same key and type checks as config_from_json.
void apply_override(Config& config, const std::string& assignment);

// Checks every value: model.validate() and then the train, data and reg keys (ranges, the
// sequence length against the model's context, names of dtype / corpus / tokenizer, and a
// vocabulary large enough for the tokenizer). Throws an Error naming the first offending key.
// corpus_must_exist = false skips only the check that a data.corpus path exists (a checkpoint's
// run configuration stays valid when its text has moved: eval reads it from eval.corpus).
void validate_config(const Config& config, bool corpus_must_exist = true);

// docs/config.md: every key of every section with its type, default, range and meaning, from the
// one field table of train/config.cpp (`swiattn train --config-reference` prints it).
std::string config_reference_markdown();

// Every key as "section.key" with its documented range text (for the test that probes them).
std::vector<std::pair<std::string, std::string>> config_key_ranges();

}  // namespace swiattn
