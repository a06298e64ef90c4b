// main.cpp: the one command-line binary, build/swiattn. Each command has its own help
// (`swiattn <command> --help`, the texts below); `swiattn --version` says what was built.
//
//   swiattn demo | train | eval | generate | prepare | plot | routes | launch | bench
//
// With no --config, train uses the embedded default (train/config.h): a tiny byte-level model on
// real English text that trains on 2 CPU cores in a few minutes.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "bench/cli.h"
#include "data/dataset.h"
#include "data/prepare.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "eval/cli.h"
#include "io/args.h"
#include "eval/plot.h"
#include "eval/route_map.h"
#include "tensor/cuda/device.h"
#include "train/checkpoint.h"
#include "model/decode.h"
#include "model/memory_estimate.h"
#include "swiattn_version.h"  // generated at build time by cmake/version.cmake
#include "tensor/random.h"
#include "train/config.h"
#include "train/demo.h"
#include "train/nonfinite.h"
#include "train/run_folder.h"
#include "train/data_parallel.h"  // [data-parallel]
#include "train/launch.h"         // [data-parallel]
#include "train/trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: swiattn <command> [options]     (swiattn <command> --help: that command's options)\n"
    "\n"
    "commands:\n"
    "  demo       the paper's pipeline on the CPU (spec §6): pretrain a tiny full-attention model,\n"
    "             convert it to SwiAttn, continue training, compare\n"
    "  train      train a model (the embedded default needs no options; docs/config.md lists every key)\n"
    "  eval       evaluate a checkpoint: perplexity, retrieval, routing, efficiency (docs/eval.md)\n"
    "  generate   sample text from a checkpoint with the KV cache (spec §7; docs/decoding.md)\n"
    "  prepare    tokenize your own text into train.bin / val.bin for data.corpus\n"
    "  plot       draw a run's loss curve, learning rate and routing: RUN/loss.svg\n"
    "  routes     colour a text by each token's route in each layer: an HTML page\n"
    "  launch     train on several GPUs of this machine, one process each (docs/distributed.md)\n"
    "  bench      time the CUDA kernels (GPU; bench/README.md)\n"
    "\n"
    "  swiattn --version       the commit, build type and CUDA setting of this binary\n";

// One help text per command, printed by `swiattn <command> --help`.
const std::map<std::string, const char*> kCommandUsage = {
    {"demo",
     "usage: swiattn demo [--out DIR]\n"
     "\n"
     "The paper's pipeline on the CPU with the embedded default (spec §6): stage 1 pretrains a tiny\n"
     "full-attention model (300 steps), stage 2 converts it to SwiAttn (every layer \"switch\") and\n"
     "continues training with the efficiency regulariser (100 steps), then prints a summary.\n"
     "  --out DIR   output folder (default runs/demo): DIR/full and DIR/swiattn hold the two runs\n"},
    {"train",
     "usage: swiattn train [--config FILE.json] [--set SECTION.KEY=VALUE]... [--out DIR]\n"
     "                     [--init-from CKPT] [--device cpu|cuda] [--print-config]\n"
     "                     [--overwrite]\n"
     "       swiattn train --resume DIR [--set train.steps=N]\n"
     "       swiattn train --config-reference\n"
     "\n"
     "  --config FILE.json      the configuration: sections model, train, data, reg (docs/config.md)\n"
     "  --set SECTION.KEY=VAL   override one key, e.g. --set train.steps=100 (repeatable)\n"
     "  --out DIR               output folder (default runs/train): DIR/config.json, DIR/metrics.jsonl,\n"
     "                          the checkpoint in DIR/checkpoint\n"
     "  --init-from CKPT        start from a checkpoint's weights (continual pretraining: e.g. a\n"
     "                          full-attention checkpoint into layer_types [\"switch\", ...])\n"
     "  --device cpu|cuda       where to train (= --set train.device=...); on cuda, --set\n"
     "                          train.dtype=bfloat16 is mixed precision (float32 master weights)\n"
     "  --print-config          print the resolved configuration as JSON and exit\n"
     "  --resume DIR            continue the run in DIR from DIR/checkpoint (bit-exact on the CPU);\n"
     "                          --set train.steps=N extends it (no --out: the run stays in DIR)\n"
     "  --overwrite             let --out replace a run already in that folder (refused without it)\n"
     "  --config-reference      print docs/config.md (every key: type, default, range, meaning)\n"
     "\n"
     "Your own data: --set data.corpus=PATH, a text file, a folder of .txt files, a token file or the\n"
     "folder `swiattn prepare` wrote (data/README.md); e.g.\n"
     "  swiattn train --set data.corpus=my.txt --out runs/mine && swiattn eval --checkpoint runs/mine --out runs/mine/eval\n"},
    {"eval",
     "usage: swiattn eval --checkpoint DIR --out DIR [--set eval.KEY=VALUE]... [--device cpu|cuda]\n"
     "                    [--allow-nonfinite]\n"
     "       swiattn eval table --out FILE.md NAME=EVAL_DIR[,EVAL_DIR...] [NAME=... ...]\n"
     "\n"
     "One checkpoint: held-out perplexity by position, the passkey grid and distances, MQAR, routing\n"
     "and efficiency on the validation split of the checkpoint's own data.corpus; writes\n"
     "OUT/results.json, SVG figures and OUT/report.md. Keys (docs/eval.md): eval.seed, batches,\n"
     "batch_size, passkey_lengths, passkey_depths, passkey_distances, passkey_trials, mqar_length,\n"
     "mqar_pairs, mqar_trials, decode_tokens, threads, cache_dir, corpus (read the data from\n"
     "another path), device; e.g. --set eval.passkey_trials=8.\n"
     "`eval table`: the reproduction table of several evaluations (several folders in one row: one\n"
     "per training seed, shown as mean +- std); one NAME must be FullAttn.\n"},
    {"generate",
     "usage: swiattn generate --checkpoint DIR [--prompt TEXT | --prompts-file FILE] [--tokens N]\n"
     "                        [--temperature X] [--top-k K] [--top-p P] [--seed N]\n"
     "                        [--device cpu|cuda] [--dtype float32|float64|bfloat16]\n"
     "                        [--allow-nonfinite]\n"
     "\n"
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
     "  --dtype ...             compute dtype (default: the checkpoint's train.dtype; float64 on the\n"
     "                          cpu only, bfloat16 on cuda only)\n"
     "  --allow-nonfinite       load weights holding NaN or infinity (refused by default; also eval)\n"},
    {"launch",
     "usage: swiattn launch --nproc N [--bucket-mb MB] [--no-overlap] train [train options]\n"
     "\n"
     "N ranks of `swiattn train`, rank r on GPU r, joined by NCCL (docs/distributed.md):\n"
     "train.batch_size is the global batch (a multiple of N); rank 0 writes the run's files, ranks\n"
     "1.. log to OUT/distributed/rank-R.log; one failing rank stops them all.\n"
     "  --nproc N               ranks (processes), one per GPU\n"
     "  --bucket-mb MB          gradient bucket size for the all-reduce (default 25)\n"
     "  --no-overlap            all-reduce after the backward instead of during it\n"},
    {"prepare",
     "usage: swiattn prepare --text PATH --out DIR [--tokenizer byte|gpt2] [--val-fraction F]\n"
     "                       [--cache-dir DIR] [--overwrite]\n"
     "\n"
     "Tokenizes your own text (a file, or a folder whose *.txt files are read in name order) into\n"
     "DIR/train.bin and DIR/val.bin (data/token_file.h: a header with magic, version, id width,\n"
     "count, tokenizer and sha256, then uint16/uint32 ids) and DIR/prepare.json. The last F of the\n"
     "tokens (default 0.1) is the validation split, the rule data.corpus=PATH applies to text, so\n"
     "  swiattn train --set data.corpus=DIR  trains on the same tokens as  --set data.corpus=PATH.\n"
     "  --tokenizer byte|gpt2   (default byte; gpt2 needs model.vocab_size=50257 to train)\n"
     "  --cache-dir DIR         where make data put the GPT-2 files (default data/cache)\n"
     "  --overwrite             replace DIR/train.bin and DIR/val.bin if they exist\n"},
    {"plot",
     "usage: swiattn plot RUN [--out FILE.svg]\n"
     "\n"
     "Reads RUN/metrics.jsonl (a folder swiattn train wrote) and draws RUN/loss.svg: training and\n"
     "validation loss, the learning rate, and the full-attention ratio of each switch layer against\n"
     "the step.\n"
     "  --out FILE.svg          write the figure there instead\n"},
    {"routes",
     "usage: swiattn routes --checkpoint DIR --text FILE --out DIR [--token N] [--max-tokens N]\n"
     "                      [--device cpu|cuda]\n"
     "\n"
     "Runs the checkpoint on the text and writes OUT/routes.html (and OUT/routes.json): the text once\n"
     "per layer, each token coloured by its route (full attention or the window) and shaded by the\n"
     "router probability p_t (hover a token for its value), with the window of one token drawn.\n"
     "  --token N               the token whose window is drawn (default: the last)\n"
     "  --max-tokens N          read at most N tokens of the text (default: train.seq_len)\n"},
};

using swiattn::UsageError;

int run_train(const std::vector<std::string>& args) {
  std::string config_path, out_dir = "runs/train", resume_dir;
  std::vector<std::string> overrides;
  bool print_config = false, out_given = false, overwrite = false;
  for (swiattn::ArgCursor a(args); a.next();) {
    if (a.is("--config")) config_path = a.value();
    else if (a.is("--set")) overrides.push_back(a.value());
    else if (a.is("--out")) out_dir = a.value(), out_given = true;
    else if (a.is("--overwrite")) overwrite = true;
    else if (a.is("--init-from")) overrides.push_back("train.init_from=" + a.value());
    else if (a.is("--print-config")) print_config = true;
    else if (a.is("--device")) overrides.push_back("train.device=" + a.value());
    else if (a.is("--resume")) resume_dir = a.value();
    else if (a.is("--config-reference")) {
      std::cout << swiattn::config_reference_markdown();
      return 0;
    } else throw a.unknown();
  }
  if (!resume_dir.empty()) {
    // The run continues with the configuration it was started with, in its own folder
    // (train/run_folder.h: of --set only train.steps and train.keep_checkpoints).
    if (out_given) throw UsageError("--resume DIR continues the run in its own folder DIR: drop --out");
    if (!config_path.empty() || overwrite)
      throw UsageError("--resume continues a run with its own configuration: drop --config and --overwrite");
    const swiattn::Config config = swiattn::resume_config(resume_dir, overrides);
    swiattn::run_training_from_environment(config, resume_dir, std::cout, /*resume=*/true);  // [data-parallel]
    return 0;
  }
  swiattn::Config config = config_path.empty() ? swiattn::Config{} : swiattn::load_config_file(config_path);
  for (const std::string& o : overrides) swiattn::apply_override(config, o);
  // Own data is recorded by its absolute path, so `swiattn eval` finds it from any folder.
  std::error_code no_throw;  // a path too long or unreadable: validate_config below names it
  if (!swiattn::is_builtin_corpus(config.data.corpus) && std::filesystem::exists(config.data.corpus, no_throw))
    config.data.corpus = std::filesystem::absolute(config.data.corpus).lexically_normal().string();
  swiattn::validate_config(config);
  if (print_config) {
    std::cout << swiattn::config_to_json(config).dump(2) << "\n";
    return 0;
  }
swiattn::run_training_from_environment(config, out_dir, std::cout, /*resume=*/false, overwrite);  // [data-parallel]
  return 0;
}

// The embedded demo (train/demo.h).
int run_demo(const std::vector<std::string>& args) {
  std::string out_dir = "runs/demo";
  for (swiattn::ArgCursor a(args); a.next();) {
    if (a.is("--out")) out_dir = a.value();
    else throw a.unknown();
  }
  swiattn::run_demo(out_dir, std::cout);
  return 0;
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
  bool have_prompt = false, allow_nonfinite = false;
  for (swiattn::ArgCursor a(args); a.next();) {
    if (a.is("--checkpoint")) dir = a.value();
    else if (a.is("--prompt")) prompt_text = a.value(), have_prompt = true;
    else if (a.is("--prompts-file")) prompts_file = a.value();
    else if (a.is("--tokens")) new_tokens = a.number<int64_t>();
    else if (a.is("--temperature")) sampling.temperature = a.number<double>();
    else if (a.is("--top-k")) sampling.top_k = a.number<int64_t>();
    else if (a.is("--top-p")) sampling.top_p = a.number<double>();
    else if (a.is("--seed")) seed = a.number<uint64_t>();
    else if (a.is("--device")) device_arg = a.value();
    else if (a.is("--dtype")) dtype_arg = a.value();
    else if (a.is("--allow-nonfinite")) allow_nonfinite = true;
    else throw a.unknown();
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
  if (device_arg == "cuda") swiattn::cuda::require_cuda_device("--device cuda");  // before loading anything
  const std::vector<std::string> texts = prompts_file.empty() ? std::vector<std::string>{prompt_text}
                                                              : read_prompts_file(prompts_file);
  const std::string ckpt = swiattn::resolve_checkpoint_dir(dir, "generate");
  const swiattn::CheckpointConfigs configs = swiattn::read_checkpoint_configs(ckpt);  // checked against each other
  const swiattn::Config& run = configs.run;
  const swiattn::ModelConfig& config = configs.model;
  if (new_tokens > config.max_position_embeddings)  // also keeps prompt length + new_tokens far from overflow
    throw swiattn::Error("--tokens " + std::to_string(new_tokens) + " exceeds the model's max_position_embeddings " +
                         std::to_string(config.max_position_embeddings));
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
  swiattn::load_model_weights(ckpt, model, nullptr, nullptr, allow_nonfinite);
  // --allow-nonfinite shows what a broken model does; the exit status still says it is broken.
  const std::string broken = allow_nonfinite ? swiattn::first_nonfinite_state(model.parameters(), nullptr) : "";
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
  swiattn::require_memory_fits(swiattn::estimate_memory(config, model.dtype(), false, static_cast<int64_t>(prompts.size()),
                                                        reach, "prompts x (prompt + --tokens)"), device, "generate");
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
  if (!broken.empty())
    throw swiattn::Error("non-finite values in " + broken + " (loaded with --allow-nonfinite): the text above comes from a broken model");
  return 0;
}

// "swiattn <commit>", the build type and the CUDA setting.
void print_version() {
  std::cout << "swiattn " << SWIATTN_COMMIT << "\n"
            << "build type: " << SWIATTN_BUILD_TYPE << "\n"
#ifdef SWIATTN_HAVE_CUDA
            << "CUDA: on (architectures " << SWIATTN_CUDA_ARCHITECTURES << "; " << swiattn::cuda::device_description() << ")\n";
#else
            << "CUDA: off (built without nvcc; --device cuda is refused)\n";
#endif
}

bool asks_for_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    const auto topic = args.size() > 1 ? kCommandUsage.find(args[1]) : kCommandUsage.end();
    std::cout << (topic != kCommandUsage.end() ? topic->second : kUsage);
    return 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    print_version();
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  const auto usage = kCommandUsage.find(command);
  // `swiattn <command> --help` (bench prints its own, with its sub-commands).
  if (usage != kCommandUsage.end() && asks_for_help(args)) {
    std::cout << usage->second;
    return 0;
  }
  try {
    if (command == "train") return run_train(args);
    if (command == "demo") return run_demo(args);
    if (command == "generate") return run_generate(args);
    if (command == "eval") return swiattn::run_eval_command(args);
    if (command == "prepare") return swiattn::run_prepare_command(args, std::cout);
    if (command == "plot") return swiattn::run_plot_command(args, std::cout);
    if (command == "routes") return swiattn::run_routes_command(args, std::cerr);
    if (command == "bench") return swiattn::run_bench_command(args);
    if (command == "launch") return swiattn::run_launch_command(args);  // [data-parallel]
    std::cerr << "swiattn: unknown command \"" << command << "\"; `swiattn --help` lists the commands\n";
    return 2;
  } catch (const UsageError& e) {
    // One line and a pointer to the command's help, not the whole help text.
    std::string message = e.what();
    if (message.rfind(command + ": ", 0) == 0) message = message.substr(command.size() + 2);
    std::cerr << "swiattn " << command << ": " << message << "\n"
              << "(`swiattn " << command << " --help` lists the options)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "swiattn " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
