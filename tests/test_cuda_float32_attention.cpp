// tests/test_cuda_float32_attention.cpp: float32 attention on the bfloat16 tensor-core kernels
// (train.float32_attention "bfloat16"; cuda::set_float32_attention_in_bf16; autograd/ops_attention.cpp).
//
//   - the attention and switch-attention ops of float32 CUDA tensors, forward and backward
//     through autograd, against the CPU float64 ops: with the mode on, the bfloat16 rule
//     (err <= 2 err_ctrl + 1e-3 for outputs, + 1e-2 for gradients; err_ctrl the CPU float32
//     result rounded to bfloat16); with it off, the exact float32 kernels (err <= 1e-5), and the
//     mode's error must exceed that (so the bf16 path did run);
//   - 3 training steps of a small all-switch model in float32 with the mode: the losses match
//     the exact float32 run's to bfloat16 accuracy (relative 2e-2).
// Without a device every case prints a SKIPPED line.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tensor/cuda/device.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

namespace swiattn {
namespace {

using testing::skip_without_device;

struct Float32InBf16 {  // the mode for the life of the object
  bool before;
  explicit Float32InBf16(bool on) : before(cuda::float32_attention_in_bf16()) { cuda::set_float32_attention_in_bf16(on); }
  ~Float32InBf16() { cuda::set_float32_attention_in_bf16(before); }
};

double rel_error(const std::vector<double>& x, const std::vector<double>& ref) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < x.size(); ++i) err += (x[i] - ref[i]) * (x[i] - ref[i]), norm += ref[i] * ref[i];
  if (!std::isfinite(err)) return INFINITY;
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}
std::vector<double> bf16_round(std::vector<double> x) {
  for (double& e : x) e = bf16_to_float(bf16_from_double(e));
  return x;
}

struct Case {
  int64_t B, T, Hq, Hkv, D, window;
  bool switch_op;
};

// out and the gradients of q, k, v (and the gate) of L = sum(out * W), in `dtype` on `device`.
std::vector<std::vector<double>> run(const Case& c, DType dtype, Device device, uint64_t seed) {
  auto input = [&](const Shape& shape, uint64_t s, bool grad) {
    return Var(Tensor::randn(shape, DType::F64, s).to(DType::BF16).to(DType::F64).to(dtype).to(device), grad);
  };
  const Var q = input({c.B, c.T, c.Hq, c.D}, seed, true), k = input({c.B, c.T, c.Hkv, c.D}, seed + 1, true);
  const Var v = input({c.B, c.T, c.Hkv, c.D}, seed + 2, true), w = input({c.B, c.T, c.Hq, c.D}, seed + 3, false);
  std::vector<double> g(size_t(c.B * c.T));
  for (size_t i = 0; i < g.size(); ++i) g[i] = (i * 7919) % 3 == 0 ? 1.0 : 0.0;  // hard routes, about 1 in 3 full
  const Var gate(Tensor::from_vector(g, {c.B, c.T}, DType::F64).to(dtype).to(device), true);
  const Var out = c.switch_op ? switch_attention(q, k, v, c.window, gate) : attention(q, k, v, c.window);
  sum(mul(out, w)).backward();
  std::vector<std::vector<double>> r = {out.value().to_vector(), q.grad().to_vector(), k.grad().to_vector(),
                                        v.grad().to_vector()};
  if (c.switch_op) r.push_back(gate.grad().to_vector());
  return r;
}

}  // namespace

TEST_CASE("cuda float32 attention on bf16 tensor cores: the ops against the CPU float64 reference") {
  if (skip_without_device("float32 attention on the bf16 kernels")) return;
  testing::StrictDevice strict;
  const std::vector<Case> cases = {{2, 300, 4, 2, 64, 0, false}, {2, 300, 4, 2, 128, 100, false},
                                   {2, 1031, 4, 2, 64, 128, true}, {1, 200, 8, 8, 128, 64, true}};
  const char* names[] = {"out", "dq", "dk", "dv", "dgate"};
  uint64_t seed = 50;
  for (const Case& c : cases) {
    const auto truth = run(c, DType::F64, Device::CPU, seed), ctrl = run(c, DType::F32, Device::CPU, seed);
    std::vector<std::vector<double>> fast, exact;
    {
      Float32InBf16 on(true);
      fast = run(c, DType::F32, Device::CUDA, seed);
    }
    {
      Float32InBf16 off(false);
      exact = run(c, DType::F32, Device::CUDA, seed);
    }
    seed += 10;
    for (size_t i = 0; i < truth.size(); ++i) {
      const double err = rel_error(fast[i], truth[i]), err32 = rel_error(exact[i], truth[i]);
      const double c16 = rel_error(bf16_round(ctrl[i]), truth[i]), bound = 2 * c16 + (i == 0 ? 1e-3 : 1e-2);
      char line[300];
      std::snprintf(line, sizeof line,
                    "FLOAT32-BF16 %s B%lld T%lld H%lld/%lld D%lld w%lld %s: err %.2e (bound %.2e, bf16 ctrl %.2e); "
                    "exact float32 path %.2e | %s",
                    c.switch_op ? "switch" : "attention", (long long)c.B, (long long)c.T, (long long)c.Hq,
                    (long long)c.Hkv, (long long)c.D, (long long)c.window, names[i], err, bound, c16, err32,
                    err <= bound && err32 <= 1e-5 && err > err32 ? "ok" : "FAIL");
      std::printf("%s\n", line);
      INFO(line);
      CHECK(err <= bound);
      CHECK(err32 <= 1e-5);
      CHECK(err > err32);  // the bf16 path ran (its rounding shows)
    }
  }
}

TEST_CASE("cuda float32 attention on bf16 tensor cores: 3 training steps match the exact float32 run") {
  if (skip_without_device("float32 training with attention on the bf16 kernels")) return;
  const char* env = std::getenv("SWIATTN_DATA_CACHE");
  const std::string cache = env && *env ? env : std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
  const std::string hint = cache + " is missing: run `make data` or set SWIATTN_DATA_CACHE";
  REQUIRE_MESSAGE(std::filesystem::is_directory(cache), hint);
  std::vector<std::vector<double>> losses;
  for (const std::string mode : {"float32", "bfloat16"}) {
    Config c;
    c.model.hidden_size = 128;
    c.model.num_hidden_layers = 2;
    c.model.num_attention_heads = 2;
    c.model.num_key_value_heads = 1;
    c.model.head_dim = 64;
    c.model.intermediate_size = 256;
    c.model.sliding_window = 64;
    c.model.max_position_embeddings = 512;
    c.model.layer_types = {"switch", "switch"};
    c.train.device = "cuda";
    c.train.dtype = "float32";
    c.train.float32_attention = mode;
    c.train.batch_size = 4;
    c.train.seq_len = 300;
    c.train.steps = 3;
    c.train.warmup_steps = 1;
    c.train.log_interval = 1;
    c.train.eval_interval = 1000;
    c.train.eval_batches = 1;
    c.train.sample_tokens = 0;
    c.data.corpus = "moby-dick";
    c.data.cache_dir = cache;
    testing::TempDir dir("swiattn_f32_bf16_" + mode);
    std::ostringstream log;
    run_training(c, dir.path.string(), log);
    CHECK(!cuda::float32_attention_in_bf16());  // run_training restores the mode it found
    std::vector<double> l;
    std::ifstream metrics(dir.path / "metrics.jsonl");
    for (std::string line; std::getline(metrics, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("loss") && j.contains("tokens_per_second")) l.push_back(j["loss"].get<double>());  // step lines
    }
    REQUIRE(l.size() == 3);
    losses.push_back(l);
  }
  for (size_t s = 0; s < 3; ++s) {
    const double rel = std::fabs(losses[1][s] - losses[0][s]) / losses[0][s];
    std::printf("FLOAT32-BF16 training step %zu: loss exact %.6f, bf16 attention %.6f, relative %.2e | %s\n", s + 1,
                losses[0][s], losses[1][s], rel, rel < 2e-2 ? "ok" : "FAIL");
    CHECK(rel < 2e-2);
  }
}

}  // namespace swiattn
