// train/config.cpp: reading, writing, overriding and validating the run configuration.
//
// One table, kFields, lists every key once: its section, its name and the Config member it
// reads and writes. Parsing JSON, writing JSON and `--set` overrides all walk that table, so a
// new field is one FIELD(...) line (plus its check in validate_config when it has a range).
#include "train/config.h"
#include "train/config_bounds.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "data/dataset.h"
#include "data/synthetic.h"
#include "io/json_reader.h"
#include "tensor/tensor.h"

namespace swiattn {

using nlohmann::json;

namespace {

// A pointer to one Config member; the alternative says the key's type.
using FieldRef = std::variant<int64_t*, uint64_t*, double*, bool*, std::string*,
                              std::vector<std::string>*, std::vector<CurriculumStage>*>;

struct Field {
  const char* section;          // "model" | "train" | "data" | "reg"
  const char* key;              // the member's name, also the JSON key
  FieldRef (*locate)(Config&);  // where the value lives in a Config
  const char* range;            // the values validate_config accepts, for docs/config.md: ">= 1",
                                // "[0, 1)", "\"a\" | \"b\"", or words (checked by tests/test_config_reference.cpp)
  const char* meaning;          // one or two sentences for docs/config.md
};

// FIELD(model, hidden_size, range, meaning) is the key "model.hidden_size" bound to
// config.model.hidden_size; the name and the member are spelt once, so they cannot disagree.
// This table is also the configuration reference: docs/config.md is generated from it
// (`swiattn train --config-reference`), and a test fails when the two differ.
#define FIELD(SECTION, KEY, RANGE, MEANING) \
  Field { #SECTION, #KEY, [](Config& c) -> FieldRef { return &c.SECTION.KEY; }, RANGE, MEANING }

const Field kFields[] = {
    FIELD(model, vocab_size, ">= the tokenizer's: 256 (byte), 50257 (gpt2)", "V, the number of token ids."),
    FIELD(model, hidden_size, ">= 1", "C = d_model, the width of the residual stream."),
    FIELD(model, num_hidden_layers, ">= 1", "L, the number of transformer layers."),
    FIELD(model, num_attention_heads, ">= 1", "H, query heads per layer."),
    FIELD(model, num_key_value_heads, ">= 1", "Hkv, key/value heads (grouped-query attention); must divide num_attention_heads."),
    FIELD(model, head_dim, ">= 2", "D, the width of one head; even (RoPE rotates pairs)."),
    FIELD(model, intermediate_size, ">= 1", "The hidden width of the SwiGLU MLP."),
    FIELD(model, sliding_window, ">= 1", "W, the keys a sliding-window query reads, itself included (spec §2)."),
    FIELD(model, layer_types, "\"full\" | \"swa\" | \"switch\", one per layer; or empty",
          "Each layer's attention: full causal, sliding window, or switch (a router picks per token, spec §3). Empty: every layer full."),
    FIELD(model, rope_theta, "> 0", "The RoPE base frequency."),
    FIELD(model, rms_norm_eps, "> 0", "The epsilon inside RMSNorm."),
    FIELD(model, tie_word_embeddings, "true | false", "The output head is the embedding matrix (true) or a separate lm_head (false)."),
    FIELD(model, max_position_embeddings, ">= 1", "The longest sequence the model accepts; train.seq_len must not exceed it."),
    FIELD(model, initializer_range, "> 0", "The standard deviation of the normal initialisation of the weights."),
    FIELD(model, router_input, "\"normed\" | \"residual\"",
          "What the router reads: the RMSNorm-ed state u_t that Q/K/V read, or the residual x_t (docs/swiattn.md)."),
    FIELD(model, router_init, "\"random\" | \"full\"",
          "Router initialisation: w_r ~ N(0, router_init_std^2), b_r = 0; or w_r = 0, b_r = router_full_bias (starts as full attention)."),
    FIELD(model, router_threshold, "(0, 1)", "tau: a token goes to full attention when p_t > tau (spec §3)."),
    FIELD(model, router_init_std, ">= 0", "The standard deviation of w_r with router_init \"random\"."),
    FIELD(model, router_full_bias, "any number", "b_r with router_init \"full\"."),
    FIELD(model, router_detach_input, "true | false",
          "The straight-through gradient trains the router's w_r, b_r only (true), or also flows into the hidden state it reads (false)."),

    FIELD(train, seed, "any integer >= 0", "Seeds the parameter initialisation, the batch sampling and the sample after training."),
    FIELD(train, batch_size, ">= 1", "B, sequences per optimizer step."),
    FIELD(train, seq_len, ">= 1", "T, tokens per training sequence; at most model.max_position_embeddings. Also the length eval uses."),
    FIELD(train, steps, ">= 0", "Optimizer steps; 0 evaluates the initial model only (e.g. SWA-ZS)."),
    FIELD(train, learning_rate, ">= 0", "The peak learning rate, reached after the warm-up."),
    FIELD(train, min_learning_rate, ">= 0", "The floor of the cosine decay; at most train.learning_rate."),
    FIELD(train, warmup_steps, ">= 0", "Steps of linear warm-up from 0 to train.learning_rate."),
    FIELD(train, weight_decay, ">= 0", "AdamW's decoupled weight decay; not applied to the norms' gains."),
    FIELD(train, beta1, "[0, 1)", "AdamW's first-moment decay."),
    FIELD(train, beta2, "[0, 1)", "AdamW's second-moment decay."),
    FIELD(train, adam_eps, "> 0", "AdamW's epsilon."),
    FIELD(train, grad_clip, ">= 0", "The global gradient-norm clip; 0 disables it."),
    FIELD(train, log_interval, ">= 1", "Steps between progress lines (and metrics.jsonl progress records)."),
    FIELD(train, eval_interval, ">= 1", "Steps between validation evaluations (and one at the end)."),
    FIELD(train, eval_batches, ">= 1", "Validation batches per evaluation."),
    FIELD(train, dtype, "\"float32\" | \"float64\" | \"bfloat16\"",
          "float64 on the CPU only; bfloat16 on cuda only (mixed precision: float32 master weights and moments, bfloat16 compute)."),
    FIELD(train, device, "\"cpu\" | \"cuda\"", "Where to train (docs/cuda.md); --device sets it."),
    FIELD(train, deterministic, "true | false",
          "cuda: fixed-order sums everywhere, so two runs on the same GPU write the same bits (docs/cuda.md; its cost: docs/perf.md). The CPU is deterministic always."),
    FIELD(train, float32_attention, "\"float32\" | \"bfloat16\"",
          "cuda with train.dtype float32: exact float32 attention, or the attention ops on the bf16 tensor-core kernels with float32 in and out (docs/cuda.md)."),
    FIELD(train, threads, ">= 0", "OpenMP threads; 0 uses every core."),
    FIELD(train, sample_tokens, ">= 0", "Tokens generated after training and printed; 0 for none."),
    FIELD(train, sample_prompt, "a string that encodes to >= 1 token", "The prompt of that sample."),
    FIELD(train, sample_temperature, "> 0", "The sampling temperature of that sample."),
    FIELD(train, init_from, "\"\" or a checkpoint folder",
          "Continual pretraining (spec §6): start from this checkpoint's weights; routers it lacks are initialised (--init-from sets it)."),
    FIELD(train, checkpoint_interval, ">= 0", "Steps between checkpoints in OUT/checkpoint; 0 saves only at the end."),
    FIELD(train, keep_checkpoints, ">= 1", "Checkpoints kept in OUT/checkpoints: the newest N (OUT/checkpoint links the newest; docs/reliability.md)."),
    FIELD(train, on_nonfinite, "\"stop\" | \"skip\"", "A NaN or infinity in the loss or the gradients stops the run, or skips the batch."),
    FIELD(train, max_skipped_batches, ">= 0", "With on_nonfinite \"skip\": stop once more batches than this were skipped."),
    FIELD(train, curriculum, "stages {\"steps\" >= 1, \"seq_len\" >= 1, \"batch_size\" >= 0}; or empty",
          "A context curriculum (docs/training.md): stages run in order, their steps sum to train.steps, the last one's seq_len is train.seq_len; batch_size 0 means train.batch_size. Empty: one stage."),

    FIELD(data, corpus, "\"sotu\" | \"moby-dick\" | \"sotu+moby-dick\" | a file or folder",
          "What to train on: a fetched corpus, or your own text file, folder of .txt files, token file, or swiattn prepare's folder (data/dataset.h, data/README.md)."),
    FIELD(data, tokenizer, "\"byte\" | \"gpt2\"", "Byte ids (256) or GPT-2's BPE (50257 ids: set model.vocab_size=50257)."),
    FIELD(data, cache_dir, "a folder", "Where make data put the packages; a relative path is also looked up in the source tree (data/cache_dir.h)."),
    FIELD(data, val_fraction, "(0, 1)",
          "Own text and single token files: the last val_fraction of the tokens is the validation split. The fetched corpora hold out whole documents instead."),
    FIELD(data, synthetic_fraction, "[0, 1]",
          "The share of training rows that are synthetic retrieval examples (passkey, MQAR) in training-split filler; 0 = text only."),
    FIELD(data, passkey_weight, ">= 0", "The weight of passkey among synthetic rows (against mqar_weight); not both 0."),
    FIELD(data, mqar_weight, ">= 0", "The weight of MQAR among synthetic rows (against passkey_weight)."),
    FIELD(data, mqar_pairs, "[1, 64]", "Key-value pairs per MQAR example."),
    FIELD(data, min_needle_distance, ">= -1",
          "Passkey rows: at least this many tokens from the needle to the answer; -1 = model.sliding_window, 0 = no minimum; below train.seq_len."),

    FIELD(reg, mode, "\"adaptive\" | \"fixed\" | \"off\"",
          "The efficiency regulariser of switch layers (spec §5): Eq. 8's adaptive gamma, gamma = gamma_base, or none (ratios still logged)."),
    FIELD(reg, gamma_base, ">= 0", "Eq. 8's gamma_base; the controller never changes it."),
    FIELD(reg, eps, "> 0", "Eq. 8's epsilon."),
    FIELD(reg, alpha, ">= 0", "Eq. 8's weight of ||O_FULL - O_SWA||^2."),
    FIELD(reg, controller, "\"off\" | \"bias\"",
          "The target-ratio controller (docs/training.md, docs/swiattn.md): \"bias\" shifts every switch layer's router bias after each step to hold reg.target_ratio."),
    FIELD(reg, target_ratio, "[0, 1]", "The full-attention ratio the controller holds (0 means a target of 0, not off)."),
    FIELD(reg, controller_rate, "(0, 1]", "The share of the controller's shift applied each step (bounded by 1 logit)."),
};
#undef FIELD

const char* const kSections[] = {"model", "train", "data", "reg"};

bool is_section(const std::string& name) {
  for (const char* s : kSections)
    if (name == s) return true;
  return false;
}

const Field* find_field(const std::string& section, const std::string& key) {
  for (const Field& f : kFields)
    if (section == f.section && key == f.key) return &f;
  return nullptr;
}

// s as it may appear inside a one-line message: unchanged when it is printable UTF-8, otherwise
// with control characters escaped and invalid bytes replaced (JSON string escaping).
std::string printable(const std::string& s) {
  bool plain = true;
  for (unsigned char c : s) plain = plain && c >= 0x20 && c < 0x7f;
  if (plain) return s;
  const std::string escaped = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  return escaped.substr(1, escaped.size() - 2);
}

bool is_valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();  // the strict handler throws on invalid UTF-8
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

std::string quoted(const std::string& s) { return "\"" + printable(s) + "\""; }

// Edit distance, for "did you mean" on a misspelt key.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

[[noreturn]] void unknown_key(const std::string& source, const std::string& section,
                              const std::string& key) {
  std::string message = "config " + printable(source) + ": unknown key " + printable(section + "." + key);
  for (const Field& f : kFields)
    if (section == f.section && edit_distance(key, f.key) <= 2) {
      message += " (did you mean " + section + "." + f.key + "?)";
      break;
    }
  throw Error(message);
}

// ---- reading one value: each overload checks the JSON type and throws naming the key ----
// `where` is "config SOURCE: section.key".

// A value as it may appear in a message: one line, at most about 80 characters.
std::string short_dump(const json& value) {
  const std::string d = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return d.size() <= 80 ? d : d.substr(0, 77) + "...";
}

[[noreturn]] void wrong_type(const std::string& where, const char* expected, const json& value) {
  throw Error(where + " must be " + expected + ", got " + short_dump(value) + " (" + value.type_name() +
              ")");
}

// Configuration JSON goes through the one strict parser (io/json_reader.h): at most 16 MiB and 16
// levels deep (nothing later recurses through an absurd depth), no key twice in one object.
constexpr JsonLimits kConfigJsonLimits{size_t{16} << 20, 16};
json parse_config_text(const std::string& text, const std::string& source) {
  return parse_json_strict(text, "config " + source + ": ", kConfigJsonLimits);
}

void read_value(int64_t* target, const json& value, const std::string& where) {
  // is_number_integer() holds for signed and unsigned JSON integers, never for 1.5 or 2.0.
  if (!value.is_number_integer()) wrong_type(where, "an integer", value);
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    wrong_type(where, "an integer that fits in int64", value);
  *target = value.get<int64_t>();
}

void read_value(uint64_t* target, const json& value, const std::string& where) {
  if (value.is_number_unsigned()) {
    *target = value.get<uint64_t>();
  } else if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *target = static_cast<uint64_t>(value.get<int64_t>());
  } else {
    wrong_type(where, "a non-negative integer", value);
  }
}

void read_value(double* target, const json& value, const std::string& where) {
  if (!value.is_number()) wrong_type(where, "a number", value);
  *target = value.get<double>();
}

void read_value(bool* target, const json& value, const std::string& where) {
  if (!value.is_boolean()) wrong_type(where, "true or false", value);
  *target = value.get<bool>();
}

void read_value(std::string* target, const json& value, const std::string& where) {
  if (!value.is_string()) wrong_type(where, "a string", value);
  *target = value.get<std::string>();
}

void read_value(std::vector<std::string>* target, const json& value, const std::string& where) {
  if (!value.is_array()) wrong_type(where, "an array of strings", value);
  std::vector<std::string> strings;
  for (const json& element : value) {
    if (!element.is_string()) wrong_type(where, "an array of strings", value);
    strings.push_back(element.get<std::string>());
  }
  *target = std::move(strings);
}

// train.curriculum: [{"steps": N, "seq_len": T, "batch_size": B}, ...]; batch_size may be left out.
void read_value(std::vector<CurriculumStage>* target, const json& value, const std::string& where) {
  const char* expected = "an array of {\"steps\": N, \"seq_len\": T, \"batch_size\": B} objects";
  if (!value.is_array()) wrong_type(where, expected, value);
  std::vector<CurriculumStage> stages;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& element = value[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!element.is_object()) wrong_type(at, expected, element);
    CurriculumStage stage;
    for (const auto& [key, v] : element.items()) {
      int64_t* field = key == "steps" ? &stage.steps : key == "seq_len" ? &stage.seq_len
                       : key == "batch_size" ? &stage.batch_size : nullptr;
      if (!field) throw Error(at + ": unknown key " + printable(key) + " (expected steps, seq_len, batch_size)");
      read_value(field, v, at + "." + key);
    }
    if (!element.contains("steps") || !element.contains("seq_len"))
      throw Error(at + ": needs \"steps\" and \"seq_len\" (\"batch_size\" is optional)");
    stages.push_back(stage);
  }
  *target = std::move(stages);
}

json to_json_value(const std::vector<CurriculumStage>& stages) {
  json a = json::array();
  for (const CurriculumStage& s : stages)
    a.push_back({{"steps", s.steps}, {"seq_len", s.seq_len}, {"batch_size", s.batch_size}});
  return a;
}
template <class T>
json to_json_value(const T& value) {
  return json(value);
}

void read_field(Config& config, const Field& field, const json& value, const std::string& source) {
  const std::string where = "config " + source + ": " + field.section + "." + field.key;
  std::visit([&](auto* target) { read_value(target, value, where); }, field.locate(config));
}

// Shortest text that reads back as the same double, for error messages.
std::string num(double x) { return json(x).dump(); }
std::string num(int64_t x) { return std::to_string(x); }

void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw Error(key + ": " + what);
}

template <class T>
std::string got(T x) {
  return ", got " + num(x);
}


}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON in and out
// ---------------------------------------------------------------------------------------------

Config config_from_json(const json& j, const std::string& source) {
  if (!j.is_object())
    throw Error("config " + source + ": expected a JSON object with sections model, train, data, reg; got " +
                std::string(j.type_name()));
  Config config;
  for (const auto& [section, keys] : j.items()) {
    if (!is_section(section))
      throw Error("config " + source + ": unknown section " + printable(section) +
                  " (expected model, train, data or reg)");
    if (!keys.is_object())
      throw Error("config " + source + ": section " + section + " must be an object, got " +
                  short_dump(keys) + " (" + keys.type_name() + ")");
    for (const auto& [key, value] : keys.items()) {
      const Field* field = find_field(section, key);
      if (!field) unknown_key(source, section, key);
      read_field(config, *field, value, source);
    }
  }
  return config;
}

Config load_config_file(const std::string& path) {
  const std::string where = "config " + path + ": ";
  return config_from_json(read_json_file_strict(path, where, kConfigJsonLimits), path);
}

json config_to_json(const Config& config) {
  Config copy = config;  // locate() hands out mutable pointers; read them from a copy
  json j = json::object();
  for (const char* section : kSections) j[section] = json::object();
  for (const Field& field : kFields)
    std::visit([&](auto* value) { j[field.section][field.key] = to_json_value(*value); }, field.locate(copy));
  return j;
}

void apply_override(Config& config, const std::string& assignment) {
  const std::string source = "--set " + printable(assignment);
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos)
    throw Error("config " + source + ": expected section.key=value (no '=')");
  const std::string name = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  const size_t dot = name.find('.');
  if (dot == std::string::npos)
    throw Error("config " + source + ": expected section.key=value, got key " + quoted(name));
  const std::string section = name.substr(0, dot), key = name.substr(dot + 1);
  if (!is_section(section))
    throw Error("config " + source + ": unknown section " + printable(section) + " in key " + printable(name) +
                " (expected model, train, data or reg)");
  const Field* field = find_field(section, key);
  if (!field) unknown_key(source, section, key);

  if (!is_valid_utf8(text))
    throw Error("config " + source + ": " + section + "." + key + ": the value is not valid UTF-8");
  // Text that is not JSON is taken as a string below; JSON goes through the strict parser, whose
  // limits (depth, duplicate keys) are errors. accept() builds no tree.
  json value = json::accept(text) ? parse_config_text(text, source) : json(json::value_t::discarded);
  const bool string_field = std::holds_alternative<std::string*>(field->locate(config));
  if (value.is_discarded() || (string_field && !value.is_string())) value = text;
  read_field(config, *field, value, source);
}

// ---------------------------------------------------------------------------------------------
// Validation. Every condition is written as what must hold, so a NaN fails it too.
// ---------------------------------------------------------------------------------------------

void validate_config(const Config& config, bool corpus_must_exist) {
  config.model.validate();
  const ModelConfig& m = config.model;
  const TrainConfig& t = config.train;
  const DataConfig& d = config.data;

  require(t.batch_size >= 1, "train.batch_size", "must be >= 1" + got(t.batch_size));
  require(t.seq_len >= 1, "train.seq_len", "must be >= 1" + got(t.seq_len));
  require(t.seq_len <= m.max_position_embeddings, "train.seq_len",
          num(t.seq_len) + " exceeds model.max_position_embeddings " +
              num(m.max_position_embeddings));
  require(t.steps >= 0, "train.steps", "must be >= 0 (0 = evaluate only)" + got(t.steps));
  require(t.learning_rate >= 0, "train.learning_rate", "must be >= 0" + got(t.learning_rate));
  require(t.min_learning_rate >= 0, "train.min_learning_rate",
          "must be >= 0" + got(t.min_learning_rate));
  require(t.min_learning_rate <= t.learning_rate, "train.min_learning_rate",
          num(t.min_learning_rate) + " exceeds train.learning_rate " + num(t.learning_rate));
  require(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0" + got(t.warmup_steps));
  require(t.weight_decay >= 0, "train.weight_decay", "must be >= 0" + got(t.weight_decay));
  require(t.beta1 >= 0 && t.beta1 < 1, "train.beta1", "must be in [0, 1)" + got(t.beta1));
  require(t.beta2 >= 0 && t.beta2 < 1, "train.beta2", "must be in [0, 1)" + got(t.beta2));
  require(t.adam_eps > 0, "train.adam_eps", "must be > 0" + got(t.adam_eps));
  require(t.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 disables)" + got(t.grad_clip));
  require(t.log_interval >= 1, "train.log_interval", "must be >= 1" + got(t.log_interval));
  require(t.eval_interval >= 1, "train.eval_interval", "must be >= 1" + got(t.eval_interval));
  require(t.eval_batches >= 1, "train.eval_batches", "must be >= 1" + got(t.eval_batches));
  require(t.dtype == "float32" || t.dtype == "float64" || t.dtype == "bfloat16", "train.dtype",
          "must be \"float32\", \"float64\" or \"bfloat16\", got " + quoted(t.dtype));
  require(t.device == "cpu" || t.device == "cuda", "train.device",
          "must be \"cpu\" or \"cuda\", got " + quoted(t.device));
  require(!(t.device == "cuda" && t.dtype == "float64"), "train.dtype",
          "float64 is not supported with train.device \"cuda\": set train.dtype to \"float32\" or \"bfloat16\" "
          "(mixed precision), or train.device to \"cpu\"");
  require(!(t.device == "cpu" && t.dtype == "bfloat16"), "train.dtype",
          "bfloat16 (mixed precision) needs train.device \"cuda\" (--device cuda); the CPU trains in "
          "\"float32\" or \"float64\"");
  require(t.float32_attention == "float32" || t.float32_attention == "bfloat16", "train.float32_attention",
          "must be \"float32\" or \"bfloat16\", got " + quoted(t.float32_attention));
  require(t.float32_attention == "float32" || t.device == "cuda", "train.float32_attention",
          "\"bfloat16\" runs float32 attention on the GPU's bfloat16 tensor-core kernels: it needs train.device "
          "\"cuda\" (the CPU computes attention in train.dtype)");
  require(t.threads >= 0, "train.threads", "must be >= 0 (0 = all cores)" + got(t.threads));
  require(t.checkpoint_interval >= 0, "train.checkpoint_interval",
          "must be >= 0 (0 = only at the end)" + got(t.checkpoint_interval));
  require(t.on_nonfinite == "stop" || t.on_nonfinite == "skip", "train.on_nonfinite",
          "must be \"stop\" or \"skip\", got " + quoted(t.on_nonfinite));
  require(t.max_skipped_batches >= 0, "train.max_skipped_batches", "must be >= 0" + got(t.max_skipped_batches));
  require(t.sample_tokens >= 0, "train.sample_tokens", "must be >= 0" + got(t.sample_tokens));
  require(t.sample_temperature > 0, "train.sample_temperature",
          "must be > 0" + got(t.sample_temperature));

  std::error_code no_throw;  // a path too long or unreadable is "not there", not an exception
  require(is_builtin_corpus(d.corpus) ||
              (!d.corpus.empty() && (!corpus_must_exist || std::filesystem::exists(d.corpus, no_throw))),
          "data.corpus",
          "must be \"sotu\", \"moby-dick\", \"sotu+moby-dick\" or an existing text file, folder or token file "
          "(data/dataset.h), got " + quoted(d.corpus));
  require(d.val_fraction > 0 && d.val_fraction < 1, "data.val_fraction", "must be in (0, 1)" + got(d.val_fraction));
  require(d.tokenizer == "byte" || d.tokenizer == "gpt2", "data.tokenizer",
          "must be \"byte\" or \"gpt2\", got " + quoted(d.tokenizer));
  require(!d.cache_dir.empty(), "data.cache_dir", "must not be empty");
  require(d.synthetic_fraction >= 0 && d.synthetic_fraction <= 1, "data.synthetic_fraction",
          "must be in [0, 1] (0 = text only)" + got(d.synthetic_fraction));
  require(d.passkey_weight >= 0, "data.passkey_weight", "must be >= 0" + got(d.passkey_weight));
  require(d.mqar_weight >= 0, "data.mqar_weight", "must be >= 0" + got(d.mqar_weight));
  require(d.synthetic_fraction == 0 || d.passkey_weight + d.mqar_weight > 0, "data.passkey_weight",
          "and data.mqar_weight are both 0: a synthetic mixture needs at least one task");
  require(d.mqar_pairs >= 1 && d.mqar_pairs <= mqar_max_pairs(), "data.mqar_pairs",
          "must be in [1, " + num(mqar_max_pairs()) + "]" + got(d.mqar_pairs));
  require(d.min_needle_distance >= -1, "data.min_needle_distance",
          "must be >= 0, or -1 for model.sliding_window" + got(d.min_needle_distance));
  require(d.min_needle_distance < t.seq_len, "data.min_needle_distance",
          num(d.min_needle_distance) + " is not below train.seq_len " + num(t.seq_len));

  const RegularizerConfig& r = config.reg;
  require(r.mode == "adaptive" || r.mode == "fixed" || r.mode == "off", "reg.mode",
          "must be \"adaptive\", \"fixed\" or \"off\", got " + quoted(r.mode));
  require(r.gamma_base >= 0, "reg.gamma_base", "must be >= 0" + got(r.gamma_base));
  require(r.eps > 0, "reg.eps", "must be > 0" + got(r.eps));
  require(r.alpha >= 0, "reg.alpha", "must be >= 0" + got(r.alpha));
  require(r.controller == "off" || r.controller == "bias", "reg.controller",
          "must be \"off\" or \"bias\" (the target-ratio controller, docs/swiattn.md), got " + quoted(r.controller));
  require(r.target_ratio >= 0 && r.target_ratio <= 1, "reg.target_ratio",
          "must be in [0, 1]" + got(r.target_ratio) +
              (r.target_ratio < 0 ? " (a negative value no longer turns the controller off: set reg.controller=\"off\")"
                                  : ""));
  require(r.controller_rate > 0 && r.controller_rate <= 1, "reg.controller_rate",
          "must be in (0, 1] (the share of the controller's shift applied per step)" + got(r.controller_rate));

  if (!t.curriculum.empty()) {
    int64_t total = 0;
    for (size_t i = 0; i < t.curriculum.size(); ++i) {
      const CurriculumStage& s = t.curriculum[i];
      const std::string key = "train.curriculum[" + std::to_string(i) + "]";
      require(s.steps >= 1, key + ".steps", "must be >= 1" + got(s.steps));
      require(s.seq_len >= 1, key + ".seq_len", "must be >= 1" + got(s.seq_len));
      require(s.seq_len <= m.max_position_embeddings, key + ".seq_len",
              num(s.seq_len) + " exceeds model.max_position_embeddings " + num(m.max_position_embeddings));
      require(s.batch_size >= 0, key + ".batch_size", "must be >= 1, or 0 for train.batch_size" + got(s.batch_size));
      require(d.min_needle_distance < s.seq_len, key + ".seq_len",
              num(s.seq_len) + " is not above data.min_needle_distance " + num(d.min_needle_distance));
      require(s.steps <= std::numeric_limits<int64_t>::max() - total, key + ".steps", "the stages' steps overflow");
      total += s.steps;
    }
    require(total == t.steps, "train.curriculum",
            "its stages' steps sum to " + num(total) + " but train.steps is " + num(t.steps) +
                " (one learning-rate schedule spans the stages: make them agree)");
    require(t.curriculum.back().seq_len == t.seq_len, "train.curriculum",
            "the last stage's seq_len " + num(t.curriculum.back().seq_len) + " differs from train.seq_len " +
                num(t.seq_len) + " (the length the final checkpoint is trained and evaluated at)");
  }

  const int64_t tokenizer_vocab = d.tokenizer == "byte" ? 256 : 50257;
  require(m.vocab_size >= tokenizer_vocab, "model.vocab_size",
          num(m.vocab_size) + " is too small for the " + d.tokenizer + " tokenizer (needs >= " +
              num(tokenizer_vocab) + ")");
  validate_config_bounds(config);  // train/config_bounds.cpp: upper bounds, products, a vocabulary the tokenizer decodes
}

// ---------------------------------------------------------------------------------------------
// The configuration reference (docs/config.md), generated from kFields
// ---------------------------------------------------------------------------------------------

namespace {

const char* type_name(const FieldRef& ref) {
  struct Namer {
    const char* operator()(int64_t*) const { return "integer"; }
    const char* operator()(uint64_t*) const { return "integer"; }
    const char* operator()(double*) const { return "number"; }
    const char* operator()(bool*) const { return "boolean"; }
    const char* operator()(std::string*) const { return "string"; }
    const char* operator()(std::vector<std::string>*) const { return "array of strings"; }
    const char* operator()(std::vector<CurriculumStage>*) const { return "array of objects"; }
  };
  return std::visit(Namer{}, ref);
}

// Markdown table cells: a | would end the cell.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

const char* section_intro(const std::string& section) {
  if (section == "model")
    return "The architecture (model/config.h). A checkpoint's config.json holds these keys under the same names "
           "(Hugging Face style); spec §1-4.";
  if (section == "train") return "The training run (train/trainer.h, docs/training.md).";
  if (section == "data")
    return "What the model reads: the corpus, the tokenizer and the synthetic retrieval rows of the training mixture "
           "(data/README.md).";
  return "The efficiency regulariser (spec §5, train/regularizer.h) and the target-ratio controller (docs/swiattn.md).";
}

}  // namespace

std::string config_reference_markdown() {
  const json defaults = config_to_json(Config{});
  std::ostringstream md;
  md << "# Configuration reference\n\n"
     << "<!-- GENERATED by `swiattn train --config-reference` from the field table of train/config.cpp (kFields);\n"
     << "     do not edit: change the table and regenerate. tests/test_config_reference.cpp fails when they differ. -->\n\n"
     << "A run's configuration has four sections, `model`, `train`, `data` and `reg`. Give any subset as JSON\n"
     << "(`swiattn train --config FILE.json`, e.g. `{\"train\": {\"steps\": 100}, \"data\": {\"corpus\": \"my.txt\"}}`)\n"
     << "and override single keys with `--set section.key=value` (the value is read as JSON when it parses, else\n"
     << "as a string: `--set model.layer_types='[\"full\",\"swa\"]'`, `--set data.corpus=my.txt`). Missing keys keep\n"
     << "the defaults below; `swiattn train --print-config` prints the resolved configuration. Unknown keys, wrong\n"
     << "types and values outside the range are refused with a message naming the key. `swiattn eval` has its own\n"
     << "`eval.*` keys (docs/eval.md).\n\n"
     << "Integers are JSON integers (`2.0` is refused); a range like `[0, 1)` includes 0 and excludes 1.\n";
  Config scratch;
  for (const char* section : kSections) {
    md << "\n## " << section << "\n\n" << section_intro(section) << "\n\n"
       << "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
    for (const Field& f : kFields) {
      if (std::string(f.section) != section) continue;
      md << "| `" << f.section << "." << f.key << "` | " << type_name(f.locate(scratch)) << " | `"
         << cell(defaults[f.section][f.key].dump()) << "` | " << cell(f.range) << " | " << cell(f.meaning) << " |\n";
    }
  }
  return md.str();
}

std::vector<std::pair<std::string, std::string>> config_key_ranges() {
  std::vector<std::pair<std::string, std::string>> keys;
  for (const Field& f : kFields) keys.emplace_back(std::string(f.section) + "." + f.key, f.range);
  return keys;
}

}  // namespace swiattn
