// main.cpp: the one command-line binary, build/swiattn.
//
//   swiattn demo [--out DIR]
//   swiattn generate --checkpoint DIR [--prompt TEXT | --prompts-file FILE] [--tokens N]
//                    [--temperature X] [--top-k K] [--top-p P] [--seed N] [--device cpu|cuda]
//   swiattn train [--config FILE.json] [--set section.key=value]... [--out DIR] [--init-from CKPT]
//                 [--device cpu|cuda] [--print-config] | swiattn train --resume DIR
//   swiattn eval --checkpoint DIR --out DIR [--set eval.key=value]... [--device cpu|cuda]
//   swiattn eval table --out FILE.md NAME=EVAL_DIR [NAME=EVAL_DIR ...]
//   swiattn launch --nproc N [--bucket-mb MB] [--no-overlap] train [train options]
//
// With no --config the embedded default (train/config.h) is used: a tiny byte-level model on
// real English text that trains on 2 CPU cores in a few minutes.
#include <algorithm>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "bench/cli.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "eval/cli.h"
#include "model/checkpoint.h"
#include "model/decode.h"
#include "tensor/random.h"
#include "train/config.h"
#include "train/data_parallel.h"  // [data-parallel]
#include "train/launch.h"         // [data-parallel]
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
    "  launch     train on several GPUs of this machine, one process each (docs/distributed.md)\n"
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
    "options for launch (docs/distributed.md):\n"
    "  swiattn launch --nproc N [--bucket-mb MB] [--no-overlap] train [train options]\n"
    "                          N ranks of `swiattn train`, rank r on GPU r; train.batch_size is the\n"
    "                          global batch (a multiple of N); rank 0 writes the run's files,\n"
    "                          ranks 1.. log to OUT/distributed/rank-R.log\n"
    "\n"
    "options for generate (docs/decoding.md):\n"
    "  --checkpoint DIR        a checkpoint, or the folder train wrote (DIR/checkpoint) (required)\n"
    "  --prompt TEXT           (default \"The \")\n"
    "  --prompts-file FILE     one prompt per line, all decoded as one batch; results in the\n"
    "                          file's order\n"
    "  --tokens N              new tokens per prompt (default 200)\n"
    "  --temperature X         0 = greedy (argmax); default 0.8\n"
    "  --top-k K               sample among the K most likely tokens (default 0 = off)\n"
    "  --top-p P               nucleus sampling, P in (0, 1] (default 1 = off)\n"
    "  --seed N                (default 0)\n"
    "  --device cpu|cuda       where the model and its KV cache live (default cpu)\n"
    "  --dtype float32|float64|bfloat16  compute dtype (default: the checkpoint's train.dtype;\n"
    "                          float64 on the cpu only, bfloat16 on cuda only)\n";

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
    swiattn::run_training_from_environment(config, resume_dir, std::cout, true);  // [data-parallel]
    return 0;
  }
  swiattn::Config config = config_path.empty() ? swiattn::Config{} : swiattn::load_config_file(config_path);
  for (const std::string& o : overrides) swiattn::apply_override(config, o);
  swiattn::validate_config(config);
  if (print_config) {
    std::cout << swiattn::config_to_json(config).dump(2) << "\n";
    return 0;
  }
  swiattn::run_training_from_environment(config, out_dir, std::cout);  // [data-parallel]
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

// The prompts of a --prompts-file: one per line ("\r\n" endings too); an empty line is an error.
std::vector<std::string> read_prompts_file(const std::string& path) {
  const std::string text = swiattn::read_whole_file(path, "--prompts-file");
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty())
      throw UsageError("--prompts-file " + path + ": line " + std::to_string(lines.size() + 1) + " is empty");
    lines.push_back(line);
    at = end + 1;
  }
  if (lines.empty()) throw UsageError("--prompts-file " + path + " holds no prompt");
  return lines;
}

// Loads a checkpoint, decodes every prompt with the KV cache as one batch (model/decode.h) and
// prints the texts in input order; then, per sequence, the spec §8 keys read per decoded token
// (averaged over layers) and the full-attention ratio per layer of its decoded tokens.
int run_generate(const std::vector<std::string>& args) {
  std::string dir, prompt_text = "The ", prompts_file, device_arg = "cpu", dtype_arg;
  int64_t new_tokens = 200;
  swiattn::SamplingOptions sampling;
  uint64_t seed = 0;
  bool have_prompt = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "--checkpoint") dir = value();
    else if (a == "--prompt") prompt_text = value(), have_prompt = true;
    else if (a == "--prompts-file") prompts_file = value();
    else if (a == "--tokens") new_tokens = parse_number<int64_t>(a, value());
    else if (a == "--temperature") sampling.temperature = parse_number<double>(a, value());
    else if (a == "--top-k") sampling.top_k = parse_number<int64_t>(a, value());
    else if (a == "--top-p") sampling.top_p = parse_number<double>(a, value());
    else if (a == "--seed") seed = parse_number<uint64_t>(a, value());
    else if (a == "--device") device_arg = value();
    else if (a == "--dtype") dtype_arg = value();
    else throw UsageError("unknown option for generate: " + a);
  }
  if (dir.empty()) throw UsageError("generate needs --checkpoint DIR");
  if (have_prompt && !prompts_file.empty()) throw UsageError("give --prompt or --prompts-file, not both");
  if (new_tokens < 1) throw UsageError("--tokens must be >= 1, got " + std::to_string(new_tokens));
  if (device_arg != "cpu" && device_arg != "cuda") throw UsageError("--device: cpu or cuda, got \"" + device_arg + "\"");
  try {
    swiattn::check_sampling(sampling);
  } catch (const swiattn::Error& e) {
    throw UsageError(e.what());
  }
  const std::vector<std::string> texts = prompts_file.empty() ? std::vector<std::string>{prompt_text}
                                                              : read_prompts_file(prompts_file);
  const std::string ckpt = swiattn::resolve_checkpoint_dir(dir, "generate");
  const swiattn::Config run = swiattn::read_checkpoint_run_config(ckpt);
  const swiattn::ModelConfig config = swiattn::read_checkpoint_model_config(ckpt);
  const swiattn::Device device = device_arg == "cuda" ? swiattn::Device::CUDA : swiattn::Device::CPU;
  // The compute dtype: --dtype, else the checkpoint's train.dtype as far as the device has it.
  std::string dtype_name = dtype_arg.empty() ? run.train.dtype : dtype_arg;
  if (dtype_arg.empty() && device == swiattn::Device::CUDA && dtype_name == "float64") dtype_name = "float32";
  if (dtype_arg.empty() && device == swiattn::Device::CPU && dtype_name == "bfloat16") dtype_name = "float32";
  if (dtype_name != "float32" && dtype_name != "float64" && dtype_name != "bfloat16")
    throw UsageError("--dtype: float32, float64 or bfloat16, got \"" + dtype_name + "\"");
  if (dtype_name == "float64" && device == swiattn::Device::CUDA) throw UsageError("--dtype float64 runs on the cpu only");
  if (dtype_name == "bfloat16" && device == swiattn::Device::CPU) throw UsageError("--dtype bfloat16 runs on cuda only");
  swiattn::Transformer model(config, dtype_name == "float64" ? swiattn::DType::F64 : swiattn::DType::F32, 0);
  swiattn::load_model_weights(ckpt, model);
  if (device == swiattn::Device::CUDA) model.to(device);
  if (dtype_name == "bfloat16") model.set_compute_dtype(swiattn::DType::BF16);

  const auto tokenizer = swiattn::make_tokenizer(run.data.tokenizer, run.data.cache_dir);
  std::vector<std::vector<int32_t>> prompts;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    prompts.push_back(tokenizer->encode(texts[i]));
    if (prompts.back().empty()) throw UsageError("prompt " + std::to_string(i + 1) + " encodes to no tokens");
    longest = std::max(longest, prompts.back().size());
  }
  const int64_t reach = static_cast<int64_t>(longest) + new_tokens;  // the last position generated, + 1
  if (reach > run.train.seq_len)
    std::cerr << "warning: generation reaches " << reach << " tokens, past the trained context (train.seq_len = "
              << run.train.seq_len << "); positions beyond it were never trained and the text may degrade\n";
  swiattn::Rng rng(seed);
  swiattn::DecodeStats stats;
  const auto outputs = swiattn::generate_batch(model, prompts, new_tokens, sampling, rng, &stats);
  for (size_t s = 0; s < outputs.size(); ++s) {
    if (outputs.size() > 1) std::cout << "### sequence " << s + 1 << " (prompt line " << s + 1 << ")\n";
    std::cout << tokenizer->decode(outputs[s]) << "\n";
  }
  std::cout << std::flush;
  // Per sequence: generated tokens only (the prompt's tokens are recorded by the prefill).
  for (size_t s = 0; s < outputs.size(); ++s) {
    double decoded = 0, keys = 0, bytes = 0;
    for (size_t i = 0; i < stats.tokens.size(); ++i)
      if (!stats.tokens[i].prefill && stats.tokens[i].sequence == static_cast<int64_t>(s)) {
        decoded += 1;
        keys += stats.keys_read_tokens(i);
        bytes += stats.keys_read_bytes(i);
      }
    std::cerr << (outputs.size() > 1 ? "sequence " + std::to_string(s + 1) + ": " : std::string());
    if (decoded == 0) {  // --tokens 1: the one new token came from the prefill's logits
      std::cerr << "no decode step (one new token)\n";
      continue;
    }
    std::cerr << "keys read per decoded token and layer (spec §8): " << keys / decoded << " tokens, "
              << bytes / decoded << " bytes; full-attention ratio per layer:";
    for (int64_t l = 0; l < stats.num_layers; ++l)
      std::cerr << " " << stats.decoded_full_attention_ratio(l, static_cast<int64_t>(s));
    std::cerr << "\n";
  }
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
    if (command == "launch") return swiattn::run_launch_command(args);  // [data-parallel]
    throw UsageError("unknown command: " + command);
  } catch (const UsageError& e) {
    std::cerr << "swiattn: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "swiattn " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
