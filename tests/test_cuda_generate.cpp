// tests/test_cuda_generate.cpp: the whole model decoding on the GPU (model/decode.h with the
// cache on the device, kernels/cuda/decode_attention.h), against the full forward and against
// the CPU path. Without a device each test prints "SKIPPED (no CUDA device): ..." and returns.
//
//   - cached decoding (prefill of prompts of different lengths, then steps, sequences of one
//     batch on different branches in one step) equals the full forward, for a switch + static
//     hybrid model: float32 on the GPU within 2x the error of the CPU float32 forward + 1e-6
//     (truth: the CPU float64 forward); bfloat16 (mixed precision) within 2x the error of the
//     GPU's own bfloat16 full forward + 1e-2. The routes follow each token's parity with a wide
//     margin (make_routes_decisive), so rounding cannot flip one; the comparison would stop at a
//     row's first route that differs from the truth's (after it, the texts are different
//     computations), and the test requires that this never happens;
//   - generate_batch on the GPU, greedy, gives the CPU's tokens (float32), and so does the CLI:
//     `swiattn generate --device cuda --temperature 0` against `--device cpu` on a small
//     checkpoint written here (SWIATTN_CLI names the binary when the tests run elsewhere than
//     where they were built, as on a GPU machine the bundle was carried to).
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/checkpoint.h"
#include "model/decode.h"
#include "tensor/random.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/config.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

constexpr int64_t kWindow = 8;

ModelConfig gpu_decode_config() {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 96;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;  // GQA 2:1 (the decode kernel: D 64 or 128, groups 1, 2, 4, 8)
  c.head_dim = 64;
  c.intermediate_size = 160;
  c.sliding_window = kWindow;
  c.layer_types = {"switch", "swa", "full", "switch"};
  c.max_position_embeddings = 64;
  c.initializer_range = 0.1;
  c.router_init_std = 0.3;  // routes mixed across tokens
  return c;
}

// Norm gains and router biases off their initial values (as after training).
void move_gains_and_router_biases(Transformer& model, uint64_t seed) {
  Rng rng(seed);
  for (const Var& p : model.parameters()) {
    const bool gain = p.name().find("norm.weight") != std::string::npos;
    const bool router_bias = p.name().find("router.bias") != std::string::npos;
    if (!gain && !router_bias) continue;
    std::vector<double> x = p.value().to_vector();
    for (double& e : x) e = gain ? 1.0 + 0.3 * rng.normal() : 0.3 * rng.normal();
    Tensor value = p.value();  // a handle: writes the parameter
    value.copy_from(Tensor::from_vector(x, value.shape(), value.dtype()));
  }
}

// Every parameter of `from` into `to` (same configuration; dtypes converted).
void copy_weights(const Transformer& from, Transformer& to) {
  for (size_t i = 0; i < to.parameters().size(); ++i) {
    Tensor value = to.parameters()[i].value();
    value.copy_from(from.parameters()[i].value());
  }
}

// Routes that rounding cannot flip: every token's embedding gets +3 (even ids) or -3 (odd ids) in
// channel 0, and each switch layer's router reads that channel alone (w_r = +-1 there, 0
// elsewhere; the norm gain of channel 0 at 1). So m_t follows the parity of token t with a margin
// of several units, far beyond what bfloat16 changes, while the rest of the model stays random:
// routes are mixed in every step, and a decode that rounds differently from the forward still
// takes the same branch (without this, about one token in 250 sits within bfloat16 rounding of
// the threshold and a whole row would stop being comparable from there on).
void make_routes_decisive(Transformer& model) {
  const ModelConfig& c = model.config();
  for (const Var& p : model.parameters()) {
    Tensor value = p.value();  // a handle: writes the parameter
    std::vector<double> x = value.to_vector();
    const std::string& name = p.name();
    if (name == "embed.weight") {
      for (int64_t v = 0; v < c.vocab_size; ++v) x[v * c.hidden_size] = v % 2 == 0 ? 3.0 : -3.0;
    } else if (name.find("attn_norm.weight") != std::string::npos) {
      x[0] = 1.0;
    } else if (name.find("router.weight") != std::string::npos) {
      const int64_t layer = std::stoll(name.substr(7));  // "layers.<l>.attn.router.weight"
      std::fill(x.begin(), x.end(), 0.0);
      x[0] = layer % 2 == 0 ? 1.0 : -1.0;
    } else {
      continue;
    }
    value.copy_from(Tensor::from_vector(x, value.shape(), value.dtype()));
  }
}

std::vector<int32_t> random_tokens(int64_t n, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& id : t) id = static_cast<int32_t>(rng.below(vocab));
  return t;
}

struct Rows {
  std::vector<std::vector<double>> logits;  // per sequence: (positions, V) flattened, positions from
                                            // the prompt's last token on
  std::vector<std::vector<std::vector<uint8_t>>> routes;  // per sequence, per position: (L) m_t
};

// Prefill prompts[s][0, prompt_len[s]), then feed the rest of prompts[s] one step at a time (all
// sequences step together, each at its own position). Logits after each token from the prompt's
// last one on; routes of every token.
Rows decode_rows(const Transformer& model, const std::vector<std::vector<int32_t>>& seqs,
                 const std::vector<int64_t>& prompt_len, int64_t steps) {
  const int64_t S = static_cast<int64_t>(seqs.size()), V = model.config().vocab_size;
  Decoder decoder(model, S, 0);
  DecodeStats stats;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t s = 0; s < S; ++s) prompts.emplace_back(seqs[s].begin(), seqs[s].begin() + prompt_len[s]);
  Rows rows;
  rows.logits.resize(S);
  rows.routes.resize(S);
  const auto keep = [&](const Tensor& logits) {
    const std::vector<double> host = logits.to(DType::F32).to_host().to_vector();  // (S, V)
    for (int64_t s = 0; s < S; ++s) rows.logits[s].insert(rows.logits[s].end(), host.begin() + s * V, host.begin() + (s + 1) * V);
  };
  keep(decoder.prefill(prompts, &stats));
  for (int64_t i = 0; i < steps; ++i) {
    std::vector<int32_t> next(static_cast<size_t>(S));
    for (int64_t s = 0; s < S; ++s) next[s] = seqs[s][prompt_len[s] + i];
    keep(decoder.step(next, &stats));
  }
  for (const DecodedToken& token : stats.tokens) rows.routes[token.sequence].push_back(token.full_attention);
  return rows;
}

// The same rows by one full forward of each whole sequence (on the model's device).
Rows forward_rows(const Transformer& model, const std::vector<std::vector<int32_t>>& seqs,
                  const std::vector<int64_t>& prompt_len, int64_t steps) {
  NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size, L = model.config().num_hidden_layers;
  Rows rows;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t T = prompt_len[s] + steps;  // tokens [0, T) are fed; logits from T - steps - 1 on
    const std::vector<int32_t> ids(seqs[s].begin(), seqs[s].begin() + T);
    const ForwardResult f = model.forward_with_routing(Tensor::from_ints(ids, {1, T}).to(model.device()), false);
    const std::vector<double> all = f.logits.value().to(DType::F32).to_host().to_vector();
    rows.logits.emplace_back(all.begin() + (prompt_len[s] - 1) * V, all.end());
    std::vector<std::vector<uint8_t>> routes(static_cast<size_t>(T), std::vector<uint8_t>(L));
    size_t next_switch = 0;
    for (int64_t l = 0; l < L; ++l) {
      const LayerType type = model.config().layer_type(l);
      const std::vector<double> m = type == LayerType::Switch ? f.routing.at(next_switch++).route.to(DType::F32).to_host().to_vector()
                                                     : std::vector<double>(T, type == LayerType::Full ? 1.0 : 0.0);
      for (int64_t t = 0; t < T; ++t) routes[t][l] = m[t] > 0.5;
    }
    rows.routes.push_back(routes);
  }
  return rows;
}

// Relative L2 error of `x` against `truth` over the rows compared (each sequence up to its first
// route difference against `truth`'s routes), and how many logits rows that was.
struct Compared {
  double err = 0.0;
  int64_t rows = 0, total = 0;
};
Compared compare(const Rows& x, const Rows& truth, const std::vector<int64_t>& prompt_len, int64_t V) {
  double e = 0.0, n = 0.0;
  Compared c;
  for (size_t s = 0; s < truth.logits.size(); ++s) {
    const int64_t positions = static_cast<int64_t>(truth.logits[s].size()) / V;  // rows from prompt_len - 1 on
    c.total += positions;
    int64_t first_flip = static_cast<int64_t>(truth.routes[s].size());
    for (int64_t t = 0; t < static_cast<int64_t>(std::min(x.routes[s].size(), truth.routes[s].size())); ++t)
      if (x.routes[s][t] != truth.routes[s][t]) {
        first_flip = t;
        break;
      }
    for (int64_t r = 0; r < positions; ++r) {
      if (prompt_len[s] - 1 + r >= first_flip) break;  // the logits row after token prompt_len - 1 + r
      for (int64_t v = 0; v < V; ++v) {
        const double a = x.logits[s][r * V + v], b = truth.logits[s][r * V + v];
        e += (a - b) * (a - b), n += b * b;
      }
      ++c.rows;
    }
  }
  c.err = n > 0.0 ? std::sqrt(e / n) : 0.0;
  return c;
}

TEST_CASE("cuda generate: cached decoding on the GPU equals the full forward (float32 tight, bfloat16 2x control)") {
  if (skip_without_device("GPU decode vs the full forward")) return;
  StrictDevice strict;
  const ModelConfig config = gpu_decode_config();
  Transformer truth_model(config, DType::F64, 3);
  move_gains_and_router_biases(truth_model, 4);
  make_routes_decisive(truth_model);
  Transformer cpu32(config, DType::F32, 3), gpu32(config, DType::F32, 3), gpu16(config, DType::F32, 3);
  for (Transformer* m : {&cpu32, &gpu32, &gpu16})
    copy_weights(truth_model, *m);
  gpu32.to(Device::CUDA);
  gpu16.to(Device::CUDA);
  gpu16.set_compute_dtype(DType::BF16);

  // 4 sequences: prompts of 3, 20, 9 and 1 tokens (inside and beyond the window), then 24 steps.
  const std::vector<int64_t> prompt_len = {3, 20, 9, 1};
  const int64_t steps = 24, V = config.vocab_size;
  std::vector<std::vector<int32_t>> seqs;
  for (size_t s = 0; s < prompt_len.size(); ++s) seqs.push_back(random_tokens(prompt_len[s] + steps, 50, 70 + s));

  const Rows truth = forward_rows(truth_model, seqs, prompt_len, steps);
  const Rows control32 = forward_rows(cpu32, seqs, prompt_len, steps);
  const Rows control16 = forward_rows(gpu16, seqs, prompt_len, steps);  // the GPU's own bf16 forward
  const Rows dec32 = decode_rows(gpu32, seqs, prompt_len, steps), dec16 = decode_rows(gpu16, seqs, prompt_len, steps);

  // The premise: routes are mixed in the truth, and sequences of one step take different branches.
  int64_t fa = 0, swa = 0, split_steps = 0;
  for (int64_t i = 0; i < steps; ++i) {
    int64_t full_here = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const auto& m = truth.routes[s][prompt_len[s] + i];
      (m[0] ? fa : swa) += 1;
      full_here += m[0];
    }
    split_steps += full_here != 0 && full_here != static_cast<int64_t>(seqs.size());
  }
  INFO("switch layer 0 during the steps: FA ", fa, ", SWA ", swa, "; steps with split branches ", split_steps);
  CHECK(fa > 0);
  CHECK(swa > 0);
  CHECK(split_steps > 0);

  const Compared c32 = compare(control32, truth, prompt_len, V), d32 = compare(dec32, truth, prompt_len, V);
  const Compared c16 = compare(control16, truth, prompt_len, V), d16 = compare(dec16, truth, prompt_len, V);
  std::printf("cuda generate: float32 decode err %.3e over %lld/%lld rows (cpu float32 forward %.3e); "
              "bfloat16 decode err %.3e over %lld/%lld rows (gpu bfloat16 forward %.3e over %lld rows)\n",
              d32.err, (long long)d32.rows, (long long)d32.total, c32.err, d16.err, (long long)d16.rows,
              (long long)d16.total, c16.err, (long long)c16.rows);
  CHECK(d32.rows == d32.total);  // float32: no route differs from the float64 truth
  CHECK(d32.err <= 2 * c32.err + 1e-6);
  CHECK(d16.rows == d16.total);  // bfloat16 too: the routes are decisive (make_routes_decisive)
  CHECK(d16.err <= 2 * c16.err + 1e-2);
  CHECK(d16.err > 0.0);  // bfloat16 really ran in bfloat16
}

TEST_CASE("cuda generate: greedy generation on the GPU gives the CPU's tokens (float32)") {
  if (skip_without_device("generate_batch cuda vs cpu")) return;
  const ModelConfig config = gpu_decode_config();
  Transformer cpu(config, DType::F32, 9);
  move_gains_and_router_biases(cpu, 10);
  make_routes_decisive(cpu);
  Transformer gpu(config, DType::F32, 9);
  copy_weights(cpu, gpu);
  gpu.to(Device::CUDA);
  const std::vector<std::vector<int32_t>> prompts = {random_tokens(5, 50, 1), random_tokens(17, 50, 2), random_tokens(1, 50, 3)};
  SamplingOptions greedy;
  greedy.temperature = 0;
  Rng a(0), b(0);
  DecodeStats cpu_stats, gpu_stats;
  const auto on_cpu = generate_batch(cpu, prompts, 30, greedy, a, &cpu_stats);
  const auto on_gpu = generate_batch(gpu, prompts, 30, greedy, b, &gpu_stats);
  CHECK(on_gpu == on_cpu);
  REQUIRE(gpu_stats.tokens.size() == cpu_stats.tokens.size());
  int64_t route_diffs = 0;
  for (size_t i = 0; i < cpu_stats.tokens.size(); ++i) route_diffs += gpu_stats.tokens[i].full_attention != cpu_stats.tokens[i].full_attention;
  CHECK(route_diffs == 0);
}

std::string cli_binary() {
  if (const char* env = std::getenv("SWIATTN_CLI"); env && *env) return env;
  return std::string(SWIATTN_BINARY_DIR) + "/swiattn";
}

// Runs the CLI with `args`; stdout into `out`, stderr into `err`. Returns the exit status.
int run_cli(const std::string& args, const std::string& out, const std::string& err) {
  const std::string command = "'" + cli_binary() + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int raw = std::system(command.c_str());
  return raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

TEST_CASE("cuda generate: `swiattn generate --device cuda --temperature 0` prints the CPU's text") {
  if (skip_without_device("swiattn generate --device cuda")) return;
  REQUIRE_MESSAGE(std::filesystem::exists(cli_binary()), "the CLI is not at " << cli_binary() << " (set SWIATTN_CLI)");
  testing::TempDir dir("swiattn_test_cuda_generate");
  Config run;
  run.model = gpu_decode_config();
  run.model.vocab_size = 256;  // the byte tokenizer
  run.model.max_position_embeddings = 128;
  run.train.seq_len = 64;
  run.data.tokenizer = "byte";
  Transformer model(run.model, DType::F32, 5);
  move_gains_and_router_biases(model, 6);
  make_routes_decisive(model);
  save_checkpoint(dir.file("run/checkpoint"), model, run, nullptr, nlohmann::json());
  {
    std::FILE* f = std::fopen(dir.file("prompts.txt").c_str(), "w");
    REQUIRE(f);
    std::fputs("The quick brown fox\nA\nsome longer prompt than the others, past the window\n", f);
    std::fclose(f);
  }
  const std::string common = "generate --checkpoint '" + dir.file("run") + "' --prompts-file '" + dir.file("prompts.txt") +
                             "' --tokens 40 --temperature 0";
  const int cpu_status = run_cli(common + " --device cpu", dir.file("cpu.out"), dir.file("cpu.err"));
  const int gpu_status = run_cli(common + " --device cuda", dir.file("gpu.out"), dir.file("gpu.err"));
  INFO("cpu stderr: " << testing::read_bytes(dir.file("cpu.err")) << "\ngpu stderr: " << testing::read_bytes(dir.file("gpu.err")));
  REQUIRE(cpu_status == 0);
  REQUIRE(gpu_status == 0);
  const std::string cpu_text = testing::read_bytes(dir.file("cpu.out")), gpu_text = testing::read_bytes(dir.file("gpu.out"));
  CHECK(gpu_text == cpu_text);
  CHECK(cpu_text.find("### sequence 3") != std::string::npos);  // three outputs, in order
  // The prompt plus 40 tokens passes train.seq_len = 64 for the third prompt: a warning says so.
  CHECK(testing::read_bytes(dir.file("gpu.err")).find("past the trained context") != std::string::npos);
}

}  // namespace
}  // namespace swiattn
