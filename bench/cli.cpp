// bench/cli.cpp: `swiattn bench <prefill | train-attention | decode> [options]` (bench/bench.h
// lists what each prints; bench/README.md how run.py uses it).
#include "bench/cli.h"

#include <cstdio>
#include <sstream>

#include "bench/bench.h"
#include "tensor/cuda/device.h"
#include "tensor/tensor.h"

namespace swiattn {
namespace {

const char* kUsage =
    "usage: swiattn bench <prefill | train-attention | decode | generate> [options]\n"
    "  prefill          routed attention forward (hard routes), B x T, full-attention ratio r\n"
    "  train-attention  forward + backward of one switch attention layer, both branches\n"
    "  decode           one decode step for S sequences over a cache of `cache` keys each\n"
    "  generate         end-to-end batched generation (prefill + greedy decode) with the KV cache\n"
    "options (lists are comma-separated):\n"
    "  --T 4096,8192,16384,32768   --r 0,0.13,0.5,1   --cache 8192,32768   --S 16\n"
    "  --B 1 --Hq 16 --Hkv 8 --D 128 --w 1024   --ctas 0 (decode: the kernel's grid; 0 = default)\n"
    "  --warmup 2 --reps 10 --seed 1 --no-flush (keep L2 between reps)\n"
    "  --deterministic (train-attention: the fixed-order backward of train.deterministic)\n"
    "  the backward's main kernel: SWIATTN_ATTENTION_BACKWARD=auto|sm80|hopper (kernels/cuda/flash_backward.h)\n"
    "options of generate: --models swiattn,full --context 8192 --S 16 --new-tokens 256 --r 0.13\n"
    "  --layers 8 --hidden 2048 --Hq 16 --Hkv 8 --D 128 --ffn 5632 --vocab 32000 --w 1024 --seed 1\n"
    "  --device cuda|cpu (cpu: float32, to check the harness)\n"
    "prints one JSON line per case (bench/bench.h).\n";

template <class T>
std::vector<T> parse_list(const std::string& flag, const std::string& text) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::stringstream is(item);
    T value{};
    if (!(is >> value) || !is.eof()) throw Error("bench: " + flag + ": cannot read '" + item + "' as a number");
    out.push_back(value);
  }
  if (out.empty()) throw Error("bench: " + flag + ": empty list");
  return out;
}

int64_t parse_positive(const std::string& flag, const std::string& text) {
  const int64_t v = parse_list<int64_t>(flag, text).at(0);
  if (v <= 0) throw Error("bench: " + flag + " must be > 0, got " + text);
  return v;
}

// `swiattn bench generate [options]` (bench/generate.cpp).
int run_bench_generate(const std::vector<std::string>& args) {
  bench::GenerateOptions o;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (i + 1 >= args.size()) throw UsageError("bench: " + flag + " needs a value");
    const std::string& value = args[++i];
    if (flag == "--models") {
      o.models.clear();
      std::stringstream ss(value);
      std::string m;
      while (std::getline(ss, m, ',')) {
        if (m != "swiattn" && m != "full") throw Error("bench: --models: swiattn or full, got '" + m + "'");
        o.models.push_back(m);
      }
      if (o.models.empty()) throw Error("bench: --models: empty list");
    } else if (flag == "--context") o.context = parse_list<int64_t>(flag, value);
    else if (flag == "--S") o.S = parse_positive(flag, value);
    else if (flag == "--new-tokens") o.new_tokens = parse_positive(flag, value);
    else if (flag == "--r") o.r = parse_list<double>(flag, value).at(0);
    else if (flag == "--layers") o.layers = parse_positive(flag, value);
    else if (flag == "--hidden") o.hidden = parse_positive(flag, value);
    else if (flag == "--Hq") o.Hq = parse_positive(flag, value);
    else if (flag == "--Hkv") o.Hkv = parse_positive(flag, value);
    else if (flag == "--D") o.D = parse_positive(flag, value);
    else if (flag == "--ffn") o.ffn = parse_positive(flag, value);
    else if (flag == "--vocab") o.vocab = parse_positive(flag, value);
    else if (flag == "--w") o.window = parse_positive(flag, value);
    else if (flag == "--seed") o.seed = static_cast<uint64_t>(parse_list<int64_t>(flag, value).at(0));
    else if (flag == "--device") o.device = value;
    else throw UsageError("bench: unknown option " + flag + " for generate");
  }
  for (int64_t c : o.context)
    if (c <= 0) throw Error("bench: --context values must be > 0");
  if (o.r < 0.0 || o.r > 1.0) throw Error("bench: --r must lie in [0, 1], got " + std::to_string(o.r));
  if (o.new_tokens < 2) throw Error("bench: --new-tokens must be >= 2 (the first token comes from the prefill)");
  if (o.device != "cuda" && o.device != "cpu") throw Error("bench: --device: cuda or cpu, got '" + o.device + "'");
  if (o.device == "cuda" && cuda::device_count() == 0)
    throw Error("bench: needs a CUDA device (" + cuda::device_description() + "); --device cpu checks the harness");
  std::fprintf(stderr, "bench generate on %s\n", o.device == "cuda" ? cuda::device_description().c_str() : "the cpu");
  bench::bench_generate(o);
  return 0;
}

}  // namespace

int run_bench_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string sub = args[0];
  if (sub == "generate") return run_bench_generate(args);
  bench::Options o;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--no-flush") {
      o.flush_l2 = false;
      continue;
    }
    if (flag == "--deterministic") {
      o.deterministic = true;
      continue;
    }
    if (i + 1 >= args.size()) throw UsageError("bench: " + flag + " needs a value");
    const std::string& value = args[++i];
    if (flag == "--T") o.T = parse_list<int64_t>(flag, value);
    else if (flag == "--r") o.r = parse_list<double>(flag, value);
    else if (flag == "--cache") o.cache = parse_list<int64_t>(flag, value);
    else if (flag == "--S") o.S = parse_positive(flag, value);
    else if (flag == "--B") o.B = parse_positive(flag, value);
    else if (flag == "--Hq") o.Hq = parse_positive(flag, value);
    else if (flag == "--Hkv") o.Hkv = parse_positive(flag, value);
    else if (flag == "--D") o.D = parse_positive(flag, value);
    else if (flag == "--w") o.window = parse_positive(flag, value);
    else if (flag == "--ctas") o.ctas = parse_list<int64_t>(flag, value).at(0);
    else if (flag == "--warmup") o.warmup = static_cast<int>(parse_list<int64_t>(flag, value).at(0));
    else if (flag == "--reps") o.reps = static_cast<int>(parse_positive(flag, value));
    else if (flag == "--seed") o.seed = static_cast<uint64_t>(parse_list<int64_t>(flag, value).at(0));
    else throw UsageError("bench: unknown option " + flag);
  }
  for (double r : o.r)
    if (r < 0.0 || r > 1.0) throw Error("bench: --r values must lie in [0, 1], got " + std::to_string(r));
  for (int64_t t : o.T)
    if (t <= 0) throw Error("bench: --T values must be > 0");
  for (int64_t c : o.cache)
    if (c <= 0) throw Error("bench: --cache values must be > 0");
  if (o.Hq % o.Hkv != 0) throw Error("bench: --Hq must be a multiple of --Hkv");
  if (o.warmup < 0 || o.ctas < 0) throw Error("bench: --warmup and --ctas must be >= 0");
  if (sub != "prefill" && sub != "train-attention" && sub != "decode")
    throw UsageError("bench: unknown subcommand '" + sub + "'");
  if (cuda::device_count() == 0)
    throw Error("bench: needs a CUDA device (" + cuda::device_description() + ")");
  std::fprintf(stderr, "bench %s on %s\n", sub.c_str(), cuda::device_description().c_str());
  if (sub == "prefill") bench::bench_prefill(o);
  else if (sub == "train-attention") bench::bench_train_attention(o);
  else bench::bench_decode(o);
  return 0;
}

}  // namespace swiattn
