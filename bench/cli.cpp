// bench/cli.cpp: `swiattn bench <prefill | train-attention | decode> [options]` (bench/bench.h
// lists what each prints; bench/README.md how run.py uses it).
#include "bench/cli.h"

#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "io/args.h"
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

// The current option's value as an integer > 0.
int64_t positive(ArgCursor& a) {
  const std::string name = a.option();
  const int64_t v = a.number<int64_t>();
  if (v <= 0) throw Error("bench: " + name + " must be > 0, got " + std::to_string(v));
  return v;
}

// The options both kinds of bench read alike (the attention's sizes and the seed) into o, a
// bench::Options or a bench::GenerateOptions; false when the current option is none of them.
template <class Opts>
bool shared_option(ArgCursor& a, Opts& o) {
  if (a.is("--S")) o.S = positive(a);
  else if (a.is("--Hq")) o.Hq = positive(a);
  else if (a.is("--Hkv")) o.Hkv = positive(a);
  else if (a.is("--D")) o.D = positive(a);
  else if (a.is("--w")) o.window = positive(a);
  else if (a.is("--seed")) o.seed = a.number<uint64_t>();
  else return false;
  return true;
}

// `swiattn bench generate [options]` (bench/generate.cpp); args are the options after "generate".
int run_bench_generate(const std::vector<std::string>& args) {
  bench::GenerateOptions o;
  for (ArgCursor a(args); a.next();) {
    if (shared_option(a, o)) continue;
    if (a.is("--models")) {
      o.models = a.list();
      for (const std::string& m : o.models)
        if (m != "swiattn" && m != "full") throw Error("bench: --models: swiattn or full, got '" + m + "'");
    } else if (a.is("--context")) o.context = a.number_list<int64_t>();
    else if (a.is("--new-tokens")) o.new_tokens = positive(a);
    else if (a.is("--r")) o.r = a.number<double>();
    else if (a.is("--layers")) o.layers = positive(a);
    else if (a.is("--hidden")) o.hidden = positive(a);
    else if (a.is("--ffn")) o.ffn = positive(a);
    else if (a.is("--vocab")) o.vocab = positive(a);
    else if (a.is("--device")) o.device = a.value();
    else throw a.unknown("generate");
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
  const std::vector<std::string> options(args.begin() + 1, args.end());
  if (sub == "generate") return run_bench_generate(options);
  bench::Options o;
  for (ArgCursor a(options); a.next();) {
    if (shared_option(a, o)) continue;
    if (a.is("--no-flush")) o.flush_l2 = false;
    else if (a.is("--deterministic")) o.deterministic = true;
    else if (a.is("--T")) o.T = a.number_list<int64_t>();
    else if (a.is("--r")) o.r = a.number_list<double>();
    else if (a.is("--cache")) o.cache = a.number_list<int64_t>();
    else if (a.is("--B")) o.B = positive(a);
    else if (a.is("--ctas")) o.ctas = a.number<int64_t>();
    else if (a.is("--warmup")) o.warmup = a.number<int>();
    else if (a.is("--reps")) o.reps = static_cast<int>(positive(a));
    else throw a.unknown(sub);
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
