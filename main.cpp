// main.cpp: the one command-line binary, build/swiattn.
//
//   swiattn train [--config FILE.json] [--set section.key=value]... [--out DIR] [--init-from CKPT]
//                 [--print-config]
//
// With no --config the embedded default (train/config.h) is used: a tiny byte-level model on
// real English text that trains on 2 CPU cores in a few minutes.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
    "  eval       (not implemented yet: arrives with the evaluation harness)\n"
    "  generate   (not implemented yet: arrives with KV-cache decoding)\n"
    "  bench      (not implemented yet: arrives with the CUDA backend)\n"
    "\n"
    "options for train:\n"
    "  --config FILE.json      read the configuration (sections model, train, data)\n"
    "  --set SECTION.KEY=VAL   override one key, e.g. --set train.steps=100 (repeatable)\n"
    "  --out DIR               output folder (default runs/train); the final checkpoint goes to\n"
    "                          DIR/checkpoint\n"
    "  --init-from CKPT        start from a checkpoint's weights (continual pretraining: e.g. a\n"
    "                          full-attention checkpoint into layer_types [\"switch\", ...])\n"
    "  --print-config          print the resolved configuration as JSON and exit\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run_train(const std::vector<std::string>& args) {
  std::string config_path, out_dir = "runs/train";
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
    else throw UsageError("unknown option for train: " + a);
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

  std::cout << "\n== summary (validation loss, nats/token; unigram entropy "
            << pretrain.unigram_entropy << ") ==\n"
            << "  FullAttn after pretraining:        " << pretrain.final_val_loss << "\n"
            << "  SwiAttn right after conversion:    " << cpt.initial_val_loss << "\n"
            << "  SwiAttn after continual training:  " << cpt.final_val_loss << "\n"
            << "  full-attention ratio per layer:    ";
  double mean_ratio = 0.0;
  for (double r : cpt.final_layer_ratios) {
    std::cout << r << " ";
    mean_ratio += r / static_cast<double>(cpt.final_layer_ratios.size());
  }
  std::cout << "(mean " << mean_ratio << ")\n";
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
    if (command == "eval" || command == "generate" || command == "bench") {
      std::cerr << "swiattn " << command << ": not implemented yet\n";
      return 2;
    }
    throw UsageError("unknown command: " + command);
  } catch (const UsageError& e) {
    std::cerr << "swiattn: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "swiattn " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
