// tests/test_cuda_deterministic.cpp: deterministic mode on the GPU (train.deterministic;
// tensor/cuda/device.h set_deterministic). Two runs of the same configuration on the same GPU
// must write the same bytes.
//
//   - the attention backward alone: the fixed-order dq (one float32 buffer per split, summed in
//     order: kernels/cuda/flash_backward.cu) gives the same bits twice, for the switch and the
//     plain backward, D 64 and 128, T 1031 (several key tiles per split) and T 3;
//   - whole training runs (run_training: forward with routing, loss + regulariser, backward,
//     clipping, AdamW, the checkpoint): 3 steps of a small all-switch model (head_dim 64, so that
//     bfloat16 takes the tensor-core attention), twice, in bfloat16 and in float32; every file
//     of the two final checkpoints compared byte for byte; a difference is reported by file, and
//     inside model.safetensors / optimizer files by tensor and first differing element;
//   - for information (never a failure): whether two runs WITHOUT deterministic mode differ.
// The correctness of the fixed-order kernels against the CPU float64 reference is checked in
// tests/test_cuda_flash_backward.cpp ("deterministic mode") and by the op table of
// tests/test_cuda_ops.cpp (broadcasting, embedding and RMSNorm sums are in a fixed order always).
// The training runs read the corpus from SWIATTN_DATA_CACHE (the GPU scripts point it at the
// bundle's data/cache), else from the source tree's data/cache.
// Every result line starts "DETERMINISM" (scripts/gpu/training-check.sh tabulates them).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_backward.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/switch_attention.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

namespace swiattn {
namespace {

using testing::skip_without_device;

struct DeterministicMode {  // for the life of the object
  bool before;
  explicit DeterministicMode(bool on) : before(cuda::deterministic()) { cuda::set_deterministic(on); }
  ~DeterministicMode() { cuda::set_deterministic(before); }
};

void report(const std::string& line) {
  std::printf("DETERMINISM %s\n", line.c_str());
  std::fflush(stdout);
  MESSAGE(line);
}

// The raw bytes of a device tensor (bit-exact comparison, whatever the dtype).
std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor h = t.to_host();
  const unsigned char* p = static_cast<const unsigned char*>(h.raw());
  return std::vector<unsigned char>(p, p + h.numel() * dtype_size(h.dtype()));
}

// "" when equal, else where the first difference is (element index) and how many elements differ.
std::string tensor_difference(const Tensor& a, const Tensor& b) {
  const std::vector<unsigned char> x = bytes_of(a), y = bytes_of(b);
  if (x.size() != y.size()) return "sizes differ";
  const size_t elem = dtype_size(a.dtype());
  size_t first = x.size(), count = 0;
  for (size_t i = 0; i < x.size(); i += elem)
    if (std::memcmp(&x[i], &y[i], elem) != 0) {
      if (first == x.size()) first = i / elem;
      ++count;
    }
  if (count == 0) return "";
  const std::vector<double> u = a.to_vector(), v = b.to_vector();
  char line[160];
  std::snprintf(line, sizeof line, "%zu of %zu elements differ, first at %zu (%.9g vs %.9g)", count, x.size() / elem,
                first, u[first], v[first]);
  return line;
}

// ---------------------------------------------------------------------------------------------
// The attention backward alone

struct Grads {
  Tensor dq, dk, dv, dgate;
};

Grads backward_once(const cpu::AttentionShape& s, int64_t window, bool switch_op, uint64_t seed) {
  auto dev = [](const Tensor& t) { return t.to(DType::BF16).to(Device::CUDA); };
  const Tensor q = dev(Tensor::randn({s.B, s.T, s.Hq, s.D}, DType::F32, seed));
  const Tensor k = dev(Tensor::randn({s.B, s.T, s.Hkv, s.D}, DType::F32, seed + 1));
  const Tensor v = dev(Tensor::randn({s.B, s.T, s.Hkv, s.D}, DType::F32, seed + 2));
  const Tensor dout = dev(Tensor::randn({s.B, s.T, s.Hq, s.D}, DType::F32, seed + 3));
  const Tensor gate = dev(Tensor::rand_uniform({s.B, s.T}, DType::F32, seed + 4));
  REQUIRE(cuda::flash_backward_supported(s, q, k, v, dout));
  Grads g{Tensor::zeros(q.shape(), DType::BF16, Device::CUDA), Tensor::zeros(k.shape(), DType::BF16, Device::CUDA),
          Tensor::zeros(v.shape(), DType::BF16, Device::CUDA), Tensor::zeros(gate.shape(), DType::BF16, Device::CUDA)};
  const Shape rows{s.B, s.T, s.Hq};
  if (switch_op) {
    const Tensor out = Tensor::empty(q.shape(), DType::BF16, Device::CUDA);
    const Tensor of = Tensor::empty(q.shape(), DType::F32, Device::CUDA), os = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
    const Tensor lf = Tensor::empty(rows, DType::F32, Device::CUDA), ls = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::switch_attention_forward(s, window, q, k, v, gate, true, out, of, os, lf, ls);
    cuda::switch_attention_backward(s, window, q, k, v, gate, of, os, lf, ls, dout, g.dq, g.dk, g.dv, g.dgate);
  } else {
    const Tensor out = Tensor::empty(q.shape(), DType::BF16, Device::CUDA);
    const Tensor lse = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::attention_forward(s, window, q, k, v, out, lse);
    cuda::attention_backward(s, window, q, k, v, out, lse, dout, Tensor(), false, g.dq, g.dk, g.dv);
  }
  cuda::synchronize();
  return g;
}

TEST_CASE("cuda deterministic: the attention backward's fixed-order dq gives the same bits twice") {
  if (skip_without_device("deterministic attention backward")) return;
  testing::StrictDevice strict;
  struct Problem {
    cpu::AttentionShape s;
    int64_t window;
    bool switch_op;
  };
  const std::vector<Problem> problems = {
      {{2, 1031, 4, 2, 64}, 100, true},  {{2, 1031, 4, 2, 128}, 64, true}, {{1, 1031, 4, 2, 64}, 0, false},
      {{2, 1031, 4, 4, 128}, 300, false}, {{2, 3, 4, 2, 64}, 1, true},
  };
  uint64_t seed = 40;
  for (const Problem& p : problems) {
    const std::string name = std::string(p.switch_op ? "switch" : "attention") + " B" + std::to_string(p.s.B) + " T" +
                             std::to_string(p.s.T) + " H" + std::to_string(p.s.Hq) + "/" + std::to_string(p.s.Hkv) +
                             " D" + std::to_string(p.s.D) + " w" + std::to_string(p.window);
    Grads first, second, atomic;
    {
      DeterministicMode on(true);
      first = backward_once(p.s, p.window, p.switch_op, seed);
      second = backward_once(p.s, p.window, p.switch_op, seed);
    }
    {
      DeterministicMode off(false);
      atomic = backward_once(p.s, p.window, p.switch_op, seed);
    }
    seed += 10;
    const char* names[] = {"dq", "dk", "dv", "dgate"};
    const Tensor* a[] = {&first.dq, &first.dk, &first.dv, &first.dgate};
    const Tensor* b[] = {&second.dq, &second.dk, &second.dv, &second.dgate};
    const Tensor* c[] = {&atomic.dq, &atomic.dk, &atomic.dv, &atomic.dgate};
    for (int i = 0; i < (p.switch_op ? 4 : 3); ++i) {
      const std::string diff = tensor_difference(*a[i], *b[i]);
      // against the atomic path: only dq's float32 summation order differs (one bf16 rounding)
      const std::vector<double> x = a[i]->to_vector(), y = c[i]->to_vector();
      double err = 0.0, norm = 0.0;
      for (size_t e = 0; e < x.size(); ++e) err += (x[e] - y[e]) * (x[e] - y[e]), norm += y[e] * y[e];
      const double rel = norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
      report("kernel " + name + " " + names[i] + ": twice " + (diff.empty() ? "identical" : "DIFFER: " + diff) +
             "; vs atomic path rel " + std::to_string(rel) + " | " + (diff.empty() && rel <= 1e-2 ? "ok" : "FAIL"));
      INFO(name, " ", names[i], ": ", diff);
      CHECK(diff.empty());
      CHECK(rel <= 1e-2);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Whole training runs

std::string data_cache() {
  const char* env = std::getenv("SWIATTN_DATA_CACHE");
  const std::string dir = env && *env ? env : std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
  const std::string hint = dir + " is missing: run `make data`, or set SWIATTN_DATA_CACHE to the corpora folder";
  REQUIRE_MESSAGE(std::filesystem::is_directory(dir), hint);
  return dir;
}

// A small all-switch model whose attention takes the tensor-core path in bfloat16 (head_dim 64);
// T 300: three key tiles of 128, five query tiles of 64, an odd length.
Config tiny_run(const std::string& dtype, bool deterministic, int64_t steps) {
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
  c.model.router_init_std = 0.3;
  c.train.device = "cuda";
  c.train.dtype = dtype;
  c.train.deterministic = deterministic;
  c.train.seed = 7;
  c.train.batch_size = 4;
  c.train.seq_len = 300;
  c.train.steps = steps;
  c.train.learning_rate = 1e-3;
  c.train.min_learning_rate = 1e-4;
  c.train.warmup_steps = 1;
  c.train.log_interval = 1;
  c.train.eval_interval = 1000;
  c.train.eval_batches = 1;
  c.train.sample_tokens = 0;
  c.train.threads = 2;
  c.data.corpus = "moby-dick";
  c.data.cache_dir = data_cache();
  return c;
}

// Every regular file under dir, by relative path.
std::map<std::string, std::string> files_of(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(std::filesystem::canonical(dir))) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    files[std::filesystem::relative(e.path(), std::filesystem::canonical(dir)).string()] = bytes.str();
  }
  return files;
}

// Inside a safetensors file (8-byte header length, JSON header, data): which tensors differ and
// where the first differing byte of the first one is. Empty when the file does not parse.
std::string safetensors_difference(const std::string& a, const std::string& b) {
  if (a.size() < 8 || a.size() != b.size()) return "";
  uint64_t n = 0;
  std::memcpy(&n, a.data(), 8);
  if (n > a.size() - 8) return "";
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(a.substr(8, n));
  } catch (const std::exception&) {
    return "";
  }
  std::string first;
  int differ = 0, total = 0;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__" || !info.contains("data_offsets")) continue;
    ++total;
    const size_t begin = 8 + n + info["data_offsets"][0].get<size_t>(), end = 8 + n + info["data_offsets"][1].get<size_t>();
    if (end > a.size()) return "";
    size_t at = begin;
    while (at < end && a[at] == b[at]) ++at;
    if (at == end) continue;
    ++differ;
    if (first.empty()) {
      size_t bytes = 0;
      for (size_t i = begin; i < end; ++i) bytes += a[i] != b[i];
      first = name + " (first differing byte " + std::to_string(at - begin) + " of " + std::to_string(end - begin) +
              ", " + std::to_string(bytes) + " bytes differ)";
    }
  }
  return std::to_string(differ) + " of " + std::to_string(total) + " tensors differ; first: " + first;
}

// "" when the two checkpoint directories hold the same files with the same bytes.
std::string checkpoint_difference(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto fa = files_of(a), fb = files_of(b);
  std::string out;
  for (const auto& [name, bytes] : fa) {
    const auto it = fb.find(name);
    if (it == fb.end()) {
      out += name + " only in the first; ";
      continue;
    }
    if (it->second == bytes) continue;
    size_t at = 0;
    while (at < bytes.size() && at < it->second.size() && bytes[at] == it->second[at]) ++at;
    out += name + " differs (" + std::to_string(bytes.size()) + " vs " + std::to_string(it->second.size()) +
           " bytes, first difference at byte " + std::to_string(at);
    const std::string inside = safetensors_difference(bytes, it->second);
    if (!inside.empty()) out += ": " + inside;
    out += "); ";
  }
  for (const auto& [name, bytes] : fb)
    if (!fa.count(name)) out += name + " only in the second; ";
  if (fa.empty()) out += "no files in " + a.string();
  return out;
}

// Trains `config` into dir; returns the checkpoint folder (dir/checkpoint).
std::filesystem::path train_into(const Config& config, const std::filesystem::path& dir) {
  std::ostringstream log;
  run_training(config, dir.string(), log);
  return dir / "checkpoint";
}

TEST_CASE("cuda deterministic: 3 training steps twice write the same checkpoint bytes (bfloat16 and float32)") {
  if (skip_without_device("deterministic training runs")) return;
  for (const std::string dtype : {"bfloat16", "float32"}) {
    testing::TempDir a("swiattn_det_a"), b("swiattn_det_b");
    const Config c = tiny_run(dtype, true, 3);
    const std::string diff = checkpoint_difference(train_into(c, a.path), train_into(c, b.path));
    report("training " + dtype + " deterministic, 3 steps twice: " +
           (diff.empty() ? std::to_string(files_of(a.path / "checkpoint").size()) + " checkpoint files identical | ok"
                         : "DIFFER: " + diff + " | FAIL"));
    INFO(dtype, ": ", diff);
    CHECK(diff.empty());
    CHECK(!cuda::deterministic());  // run_training restores the mode it found
  }
}

TEST_CASE("cuda deterministic: without it, two runs may differ (reported, not checked)") {
  if (skip_without_device("non-deterministic training runs")) return;
  testing::TempDir a("swiattn_nondet_a"), b("swiattn_nondet_b");
  const Config c = tiny_run("bfloat16", false, 3);
  const std::string diff = checkpoint_difference(train_into(c, a.path), train_into(c, b.path));
  report("training bfloat16 NOT deterministic, 3 steps twice: " +
         (diff.empty() ? std::string("identical this time") : "differ: " + diff.substr(0, 200)) + " | info");
}

}  // namespace
}  // namespace swiattn
