// main.cpp: the one command-line binary, build/swiattn.
//
//   swiattn demo [--out DIR]
//   swiattn generate --checkpoint DIR [--prompt TEXT] [--tokens N] [--temperature X] [--seed N]
//   swiattn train [--config FILE.json] [--set section.key=value]... [--out DIR] [--init-from CKPT]
//                 [--device cpu|cuda] [--print-config] | swiattn train --resume DIR
//   swiattn eval --checkpoint DIR --out DIR [--set eval.key=value]... [--device cpu|cuda]
//   swiattn eval table --out FILE.md NAME=EVAL_DIR [NAME=EVAL_DIR ...]
//
// With no --config the embedded default (train/config.h) is used: a tiny byte-level model on
// real English text that trains on 2 CPU cores in a few minutes.
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "bench/cli.h"
#include "data/tokenizer.h"
#include "eval/cli.h"
#include "model/checkpoint.h"
#include "model/decode.h"
#include "tensor/random.h"
#include "train/config.h"
#include "train/trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: swiattn <command> [options]\n"
    "\n"
    "commands:\n"
    "  demo       the paper's pipeline on the CPU (spec §6): pretrain a tiny full-attention\n"
    "             model, convert it to SwiAttn, continue training, compare [--out DIR]\n"
    "  train      train a model (the embedded default needs no options)\n"
    "  eval       evaluate a checkpoint: perplexity, retrieval, routing, efficiency\n"
    "  generate   sample text from a checkpoint with the KV cache (spec §7)\n"
    "  bench      time the CUDA kernels (GPU; bench/README.md)\n"
    "\n"
    "options for train:\n"
    "  --config FILE.json      read the configuration (sections model, train, data)\n"
    "  --set SECTION.KEY=VAL   override one key, e.g. --set train.steps=100 (repeatable)\n"
    "  --out DIR               output folder (default runs/train); the final checkpoint goes to\n"
    "                          DIR/checkpoint\n"
    "  --init-from CKPT        start from a checkpoint's weights (continual pretraining: e.g. a\n"
    "                          full-attention checkpoint into layer_types [\"switch\", ...])\n"
    "  --device cpu|cuda       where to train (= --set train.device=...); on cuda, --set\n"
    "                          train.dtype=bfloat16 is mixed precision (float32 master weights)\n"
    "  --print-config          print the resolved configuration as JSON and exit\n"
    "  --resume DIR            continue the run in DIR from DIR/checkpoint (bit-exact on the CPU)\n"
    "\n"
    "options for eval (docs/eval.md):\n"
    "  swiattn eval --checkpoint DIR --out DIR [--set eval.KEY=VAL]... [--device cpu|cuda]\n"
    "                          perplexity by position, passkey grid, MQAR, routing and\n"
    "                          efficiency of one checkpoint: OUT/results.json, SVG figures,\n"
    "                          OUT/report.md; e.g. --set eval.passkey_trials=8\n"
    "  swiattn eval table --out FILE.md NAME=EVAL_DIR [NAME=EVAL_DIR ...]\n"
    "                          the reproduction table; one NAME must be FullAttn\n"
    "\n"
    "options for generate:\n"
    "  --checkpoint DIR        a directory written by train (required)\n"
    "  --prompt TEXT           (default \"The \")\n"
    "  --tokens N              new tokens to sample (default 200)\n"
    "  --temperature X         (default 0.8)\n"
    "  --seed N                (default 0)\n";

using swiattn::UsageError;

int run_train(const std::vector<std::string>& args) {
  std::string config_path, out_dir = "runs/train", resume_dir;
  std::vector<std::string> overrides;
  bool print_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "--config") config_path = value();
    else if (a == "--set") overrides.push_back(value());
    else if (a == "--out") out_dir = value();
    else if (a == "--init-from") overrides.push_back("train.init_from=" + value());
    else if (a == "--print-config") print_config = true;
    else if (a == "--device") overrides.push_back("train.device=" + value());
    else if (a == "--resume") resume_dir = value();
    else throw UsageError("unknown option for train: " + a);
  }
  if (!resume_dir.empty()) {
    // The run continues with the configuration it was started with, in its own folder.
    if (!config_path.empty() || !overrides.empty())
      throw UsageError("--resume continues a run with its own configuration: drop --config, --set, --init-from, --device");
    const swiattn::Config config = swiattn::read_checkpoint_run_config(resume_dir + "/checkpoint");
    swiattn::run_training(config, resume_dir, std::cout, true);
    return 0;
  }
  swiattn::Config config = config_path.empty() ? swiattn::Config{} : swiattn::load_config_file(config_path);
  for (const std::string& o : overrides) swiattn::apply_override(config, o);
  swiattn::validate_config(config);
  if (print_config) {
    std::cout << swiattn::config_to_json(config).dump(2) << "\n";
    return 0;
  }
  swiattn::run_training(config, out_dir, std::cout);
  return 0;
}

// The embedded demo: two runs of the default configuration. Stage 1 pretrains every layer as
// full attention; stage 2 loads that checkpoint into a model whose layers are all "switch"
// (routers initialised randomly, spec §3) and continues with the regulariser (spec §5-6), at a
// lower learning rate and a quarter of the steps (the paper: about 1/12 of the pretraining).
int run_demo(const std::vector<std::string>& args) {
  std::string out_dir = "runs/demo";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) out_dir = args[++i];
    else throw UsageError("unknown option for demo: " + args[i]);
  }
  swiattn::Config full;
  full.train.steps = 300;
  full.train.sample_tokens = 0;
  std::cout << "== stage 1/2: pretrain FullAttn ==\n";
  const auto pretrain = swiattn::run_training(full, out_dir + "/full", std::cout);

  swiattn::Config swi = full;
  swi.model.layer_types.assign(static_cast<size_t>(swi.model.num_hidden_layers), "switch");
  swi.train.init_from = out_dir + "/full/checkpoint";
  swi.train.steps = 100;
  swi.train.warmup_steps = 10;
  swi.train.learning_rate = 1e-3;
  swi.train.min_learning_rate = 1e-4;
  swi.train.sample_tokens = 200;
  std::cout << "\n== stage 2/2: convert to SwiAttn and continue training ==\n";
  const auto cpt = swiattn::run_training(swi, out_dir + "/swiattn", std::cout);

  std::cout << std::fixed << std::setprecision(4) << "\n== summary (validation loss, nats/token; unigram entropy "
            << pretrain.unigram_entropy << ") ==\n"
            << "  FullAttn after pretraining:        " << pretrain.final_val_loss << "\n"
            << "  SwiAttn right after conversion:    " << cpt.initial_val_loss << "\n"
            << "  SwiAttn after continual training:  " << cpt.final_val_loss << "\n"
            << "  full-attention ratio per layer:    ";
  double mean_ratio = 0.0;
  for (double r : cpt.final_layer_ratios) {
    std::cout << std::setprecision(3) << r << " ";
    mean_ratio += r / static_cast<double>(cpt.final_layer_ratios.size());
  }
  std::cout << "(mean " << mean_ratio << ")\n";
  return 0;
}

// The whole of `text` as a number of type N, or a UsageError naming the option.
template <class N>
N parse_number(const std::string& option, const std::string& text) {
  std::istringstream in(text);
  N value{};
  if (!(in >> value) || !in.eof() || (std::is_unsigned_v<N> && text.find('-') != std::string::npos))
    throw UsageError(option + ": expected a number, got \"" + text + "\"");
  return value;
}

// Loads a checkpoint, samples with the KV cache and prints the text, then the spec §8 count of
// keys read per decoded token (averaged over layers) and the full-attention ratio per layer.
int run_generate(const std::vector<std::string>& args) {
  std::string dir, prompt_text = "The ";
  int64_t new_tokens = 200;
  double temperature = 0.8;
  uint64_t seed = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "--checkpoint") dir = value();
    else if (a == "--prompt") prompt_text = value();
    else if (a == "--tokens") new_tokens = parse_number<int64_t>(a, value());
    else if (a == "--temperature") temperature = parse_number<double>(a, value());
    else if (a == "--seed") seed = parse_number<uint64_t>(a, value());
    else throw UsageError("unknown option for generate: " + a);
  }
  if (dir.empty()) throw UsageError("generate needs --checkpoint DIR");
  const swiattn::Config run = swiattn::read_checkpoint_run_config(dir);
  const swiattn::DType dtype = run.train.dtype == "float64" ? swiattn::DType::F64 : swiattn::DType::F32;
  swiattn::Transformer model(swiattn::read_checkpoint_model_config(dir), dtype, 0);
  swiattn::load_model_weights(dir, model);
  const auto tokenizer = swiattn::make_tokenizer(run.data.tokenizer, run.data.cache_dir);
  const std::vector<int32_t> prompt = tokenizer->encode(prompt_text);
  if (prompt.empty()) throw UsageError("--prompt encodes to no tokens");
  swiattn::Rng rng(seed);
  swiattn::DecodeStats stats;
  const auto ids = swiattn::generate_with_cache(model, prompt, new_tokens, temperature, rng, &stats);
  std::cout << tokenizer->decode(ids) << "\n";
  double decoded = 0, keys = 0, bytes = 0;  // generated tokens only (prefill excluded)
  for (size_t i = 0; i < stats.tokens.size(); ++i)
    if (stats.tokens[i].position >= static_cast<int64_t>(prompt.size())) {
      decoded += 1;
      keys += stats.keys_read_tokens(i);
      bytes += stats.keys_read_bytes(i);
    }
  if (decoded > 0)
    std::cerr << "keys read per decoded token and layer (spec §8): " << keys / decoded << " tokens, "
              << bytes / decoded << " bytes\n";
  std::cerr << "full-attention ratio per layer:";
  for (int64_t l = 0; l < stats.num_layers; ++l) std::cerr << " " << stats.full_attention_ratio(l);
  std::cerr << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "train") return run_train(args);
    if (command == "demo") return run_demo(args);
    if (command == "generate") return run_generate(args);
    if (command == "eval") return swiattn::run_eval_command(args);
    if (command == "bench") return swiattn::run_bench_command(args);
    throw UsageError("unknown command: " + command);
  } catch (const UsageError& e) {
    std::cerr << "swiattn: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "swiattn " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
