// tests/test_cuda_nccl.cpp: the NCCL path of data-parallel training (docs/distributed.md). On one
// GPU a communicator of one rank runs the real NCCL calls, streams and events, and a 1-rank
// `swiattn launch` runs the whole data-parallel trainer through them; the last case needs 2 GPUs
// (and skips itself, saying so, on fewer).
//
// Without a CUDA device each case prints "SKIPPED (no CUDA device): ..."; without NCCL (a build
// without nccl.h, or no libnccl.so.2 to load) "SKIPPED (no NCCL): ..." with the reason. The
// CPU-side logic (rows, reducer, trainer with 2 and 3 ranks) is tested without either in
// tests/test_data_parallel.cpp. What needs two GPUs is in docs/distributed.md.
//
//   - one rank's all-reduce (sum, mean, min, max) and all-gather return the input bit for bit,
//     and run after the kernels queued before them (a large fill right before the collective);
//   - the gradient reducer on the GPU: buckets, overlap, an unreached parameter;
//   - `swiattn launch --nproc 1 train` against `swiattn train`: the same per-step losses. Bit
//     for bit where the GPU kernels are deterministic; float atomics in some backward kernels
//     make two plain runs differ already, so the launched run must be as close to a plain run as
//     a second plain run is (4x that, the control); the message says which it was;
//   - the launched run killed after a checkpoint resumes through the launcher, and its
//     checkpoint resumes in a plain run too;
//   - 2 GPUs: 2 ranks against one GPU over 50 steps, killed and resumed on 2 ranks and on one.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/nccl.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/communicator.h"
#include "train/gradient_reducer.h"

namespace swiattn {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::error_of;

// Skips (true) without a device or without NCCL, saying why in one line.
bool skip_without_nccl(const std::string& what) {
  if (testing::skip_without_device(what)) return true;
  const std::string why = cuda::nccl_compiled() ? cuda::nccl_unavailable_reason()
                                                : "this build has no NCCL (CMake found no nccl.h)";
  if (why.empty()) return false;
  const std::string line = "SKIPPED (no NCCL): " + what + " [" + why + "]";
  MESSAGE(line);
  return true;
}

TEST_CASE("cuda nccl: one rank's collectives return their input, after the kernels before them") {
  if (skip_without_nccl("NCCL collectives of one rank")) return;
  MESSAGE("using " << cuda::nccl_description());
  NcclRanks comm(0, 1, cuda::nccl_unique_id());
  CHECK(comm.world_size() == 1);
  CHECK(comm.device() == Device::CUDA);

  for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
    CAPTURE(dtype_name(dtype));
    const Tensor host = dtype == DType::I32 ? testing::random_ids({1003}, 1000, 3)
                                            : Tensor::randn({1003}, dtype, 3);
    for (CollectiveOp op : {CollectiveOp::sum, CollectiveOp::mean, CollectiveOp::min, CollectiveOp::max}) {
      if (dtype == DType::I32 && op == CollectiveOp::mean) {
        CHECK(contains(error_of([&] { comm.all_reduce(host.to_device(), op); }), "mean of int32"));
        continue;
      }
      const Tensor buffer = host.to_device();
      comm.all_reduce(buffer, op);
      comm.finish();
      CHECK(buffer.to_vector() == host.to_vector());  // one rank: the input, bit for bit
    }
  }
  // Ordering: the fill kernel right before the collective writes 64 MiB; the collective must read
  // what it wrote (the communicator's stream waits for the default stream), and a read after
  // finish() must see the collective's output.
  const int64_t n = int64_t(16) << 20;
  Tensor send = Tensor::zeros({n}, DType::F32, Device::CUDA);
  const Tensor recv = Tensor::zeros({n}, DType::F32, Device::CUDA);
  for (double value : {1.0, 2.5, -3.0}) {
    send.fill(value);
    comm.all_gather(send, recv);
    comm.finish();
    const Tensor back = recv.to_host();
    const float* p = back.data<float>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += p[i] != static_cast<float>(value);
    CHECK(wrong == 0);
  }
  CHECK(all_reduce_values(comm, {1.5, -2.0}, CollectiveOp::mean) == std::vector<double>{1.5, -2.0});
  CHECK(all_gather_values(comm, {7.0}) == std::vector<double>{7.0});
  CHECK(contains(error_of([&] { comm.all_reduce(Tensor::zeros({3}, DType::F32), CollectiveOp::sum); }), "must be a CUDA tensor"));
  CHECK(contains(error_of([&] { comm.all_gather(send, Tensor::zeros({5}, DType::F32, Device::CUDA)); }), "recv needs world"));
  CHECK(contains(error_of([&] { NcclRanks(0, 1, "short"); }), "the unique id has 5 bytes"));
}

TEST_CASE("cuda nccl: the gradient reducer of one rank on the GPU gives every gradient back") {
  if (skip_without_nccl("the gradient reducer through NCCL")) return;
  testing::StrictDevice strict;
  NcclRanks comm(0, 1, cuda::nccl_unique_id());
  const std::vector<Shape> shapes{{300, 17}, {113}, {3, 1000}, {5}};
  for (bool overlap : {false, true}) {
    CAPTURE(overlap);
    std::vector<Var> params;
    for (size_t k = 0; k < shapes.size(); ++k)
      params.emplace_back(Tensor::randn(shapes[k], DType::F32, 20 + k).to_device(), true, "p" + std::to_string(k));
    GradientReducer reducer(comm, params, 8192, overlap);  // small buckets: several
    CHECK(reducer.num_buckets() == 4);
    for (int step = 0; step < 2; ++step) {
      for (const Var& p : params) p.zero_grad();
      Var loss;
      for (size_t k = 0; k < 3; ++k) {  // parameter 3 is never reached
        const Var term = sum(mul(params[k], Var(Tensor::randn(shapes[k], DType::F32, 40 + 10 * step + k).to_device())));
        loss = loss.defined() ? add(loss, term) : term;
      }
      reducer.backward(loss);
      for (size_t k = 0; k < 3; ++k)  // d loss / d p_k = x_k, and the mean of one rank is x_k
        CHECK(params[k].grad().to_vector() == Tensor::randn(shapes[k], DType::F32, 40 + 10 * step + k).to_vector());
      CHECK_FALSE(params[3].grad().defined());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The CLI: `swiattn launch --nproc 1 train` against `swiattn train`

std::string cli_binary() {
  if (const char* env = std::getenv("SWIATTN_CLI"); env && *env) return env;
  return std::string(SWIATTN_BINARY_DIR) + "/swiattn";
}

std::string data_cache() {
  if (const char* env = std::getenv("SWIATTN_DATA_CACHE"); env && *env) return env;
  return std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
}

// Runs the CLI; all output into `log`. Returns the exit status (128 + signal when killed).
int run_cli(const std::string& env, const std::string& args, const std::string& log) {
  const std::string command = env + " '" + cli_binary() + "' " + args + " >'" + log + "' 2>&1";
  const int raw = std::system(command.c_str());
  if (raw == -1) return -1;
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

std::map<int64_t, double> losses(const fs::path& run) {
  std::map<int64_t, double> out;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

double worst_relative(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (const auto& [step, x] : a) {
    REQUIRE(b.count(step));
    worst = std::max(worst, std::abs(x - b.at(step)) / std::abs(x));
  }
  return worst;
}

// A small float32 run on the GPU with switch layers, the controller, synthetic rows, a checkpoint
// at half time.
std::string write_run_config(const testing::TempDir& dir, int steps = 12) {
  nlohmann::json c = {
      {"model", {{"hidden_size", 128}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                 {"num_key_value_heads", 1}, {"head_dim", 64}, {"intermediate_size", 256},
                 {"sliding_window", 32}, {"layer_types", {"switch", "full"}}, {"max_position_embeddings", 256},
                 {"router_init_std", 0.5}}},
      {"train", {{"batch_size", 8}, {"seq_len", 256}, {"steps", steps}, {"warmup_steps", 2}, {"log_interval", 1},
                 {"eval_interval", steps / 2}, {"eval_batches", 2}, {"sample_tokens", 0}, {"checkpoint_interval", steps / 2},
                 {"device", "cuda"}, {"dtype", "float32"}}},
      {"data", {{"corpus", "moby-dick"}, {"cache_dir", data_cache()}, {"synthetic_fraction", 0.5}, {"mqar_pairs", 2}}},
      {"reg", {{"controller", "bias"}, {"target_ratio", 0.3}, {"gamma_base", 0.01}}}};
  std::ofstream(dir.file("run.json")) << c.dump(2);
  return dir.file("run.json");
}

TEST_CASE("cuda nccl: `swiattn launch --nproc 1 train` gives the plain run's losses, and resumes") {
  if (skip_without_nccl("a 1-rank launched training run")) return;
  REQUIRE_MESSAGE(fs::exists(cli_binary()), "the CLI is not at " << cli_binary() << " (set SWIATTN_CLI)");
  testing::TempDir dir("swiattn_test_cuda_nccl");
  const std::string config = write_run_config(dir);
  auto train = [&](const std::string& env, const std::string& how, const std::string& name, const std::string& extra = "") {
    const int status = run_cli(env, how + " train --config '" + config + "' --out '" + dir.file(name) + "'" + extra,
                               dir.file(name + ".log"));
    if (status != 0) MESSAGE(name << " exited with " << status << "; its log:\n" << testing::read_bytes(dir.file(name + ".log")));
    return status;
  };
  REQUIRE(train("", "", "plain") == 0);
  REQUIRE(train("", "", "plain-again") == 0);
  REQUIRE(train("", "launch --nproc 1", "launched") == 0);
  const auto plain = losses(dir.path / "plain"), launched = losses(dir.path / "launched");
  REQUIRE(plain.size() == 12);
  const double control = worst_relative(plain, losses(dir.path / "plain-again"));
  const double difference = worst_relative(plain, launched);
  MESSAGE("1-rank launch vs plain run: worst relative loss difference " << difference << " over 12 steps; plain vs plain "
          "(control) " << control << std::string(difference == 0.0 ? " (bit-identical)" : " (to rounding)"));
  // Deterministic kernels (control 0): bit for bit. Otherwise as close as a second plain run.
  const double allowed = control == 0.0 ? 0.0 : std::max(4.0 * control, 1e-5);
  CHECK(difference <= allowed);
  const std::string log = testing::read_bytes(dir.file("launched.log"));
  CHECK(contains(log, "data parallel: 1 rank through NCCL"));
  CHECK(contains(log, "all 1 rank(s) finished"));
  CHECK(fs::exists(dir.path / "launched" / "checkpoint" / "model.safetensors"));
  for (const auto& entry : fs::directory_iterator(dir.path / "launched" / "distributed"))
    CHECK_MESSAGE(entry.path().filename().string().rfind("nccl-id", 0) != 0, "left behind: " << entry.path());

  // Killed right after the step-6 checkpoint, resumed through the launcher: the losses of the
  // uninterrupted launched run (to the same rounding); the checkpoint also resumes in a plain run.
  CHECK(train("SWIATTN_TEST_KILL_AT=after-save:6", "launch --nproc 1", "killed") == 1);
  CHECK(contains(testing::read_bytes(dir.file("killed.log")), "rank 0 failed (signal"));
  fs::copy(dir.path / "killed", dir.path / "killed-plain", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const int resumed = run_cli("", "launch --nproc 1 train --resume '" + dir.file("killed") + "'", dir.file("resumed.log"));
  REQUIRE_MESSAGE(resumed == 0, "resumed log:\n" << testing::read_bytes(dir.file("resumed.log")));
  CHECK(contains(testing::read_bytes(dir.file("resumed.log")), "resumed from"));
  CHECK(worst_relative(launched, losses(dir.path / "killed")) <= allowed);
  const int resumed_plain = run_cli("", "train --resume '" + dir.file("killed-plain") + "'", dir.file("resumed-plain.log"));
  REQUIRE_MESSAGE(resumed_plain == 0, "resumed-plain log:\n" << testing::read_bytes(dir.file("resumed-plain.log")));
  CHECK(worst_relative(launched, losses(dir.path / "killed-plain")) <= allowed);
}

// The multi-GPU case: skipped on a machine with fewer than 2 GPUs (docs/distributed.md says how
// a machine with several runs it). Tolerance [stated, not measured yet]: float32 losses within
// 1e-3 relative of the 1-GPU run at every one of 50 steps (the same arithmetic in another
// order; a wrong split of the rows or a sum instead of a mean moves them by far more).
TEST_CASE("cuda nccl: 2 ranks on 2 GPUs give the 1-GPU run's losses over 50 steps, and resume") {
  if (skip_without_nccl("2 ranks on 2 GPUs")) return;
  if (cuda::device_count() < 2) {
    MESSAGE("SKIPPED (fewer than 2 CUDA devices): 2 ranks on 2 GPUs [" << cuda::device_count() << " device(s)]");
    return;
  }
  REQUIRE_MESSAGE(fs::exists(cli_binary()), "the CLI is not at " << cli_binary() << " (set SWIATTN_CLI)");
  testing::TempDir dir("swiattn_test_cuda_nccl2");
  const std::string config = write_run_config(dir, 50);
  auto train = [&](const std::string& env, const std::string& how, const std::string& name) {
    const int status = run_cli(env, how + " train --config '" + config + "' --out '" + dir.file(name) + "'", dir.file(name + ".log"));
    if (status != 0) MESSAGE(name << " exited with " << status << "; its log:\n" << testing::read_bytes(dir.file(name + ".log")));
    return status;
  };
  REQUIRE(train("", "", "one-gpu") == 0);
  REQUIRE(train("", "launch --nproc 2", "two") == 0);
  REQUIRE(train("", "launch --nproc 2", "two-again") == 0);
  const auto one = losses(dir.path / "one-gpu"), two = losses(dir.path / "two");
  REQUIRE(one.size() == 50);
  const double difference = worst_relative(one, two);
  const double repeat = worst_relative(two, losses(dir.path / "two-again"));
  MESSAGE("2 ranks vs 1 GPU: worst relative loss difference " << difference << " over 50 steps; 2 ranks repeated: "
          << repeat << (repeat == 0.0 ? " (bit-identical)" : ""));
  CHECK(difference < 1e-3);
  CHECK(contains(testing::read_bytes(dir.file("two.log")), "data parallel: 2 ranks through NCCL"));
  CHECK(contains(testing::read_bytes(dir.file("two/distributed/rank-1.log")), "step    50/50"));

  CHECK(train("SWIATTN_TEST_KILL_AT=after-save:25", "launch --nproc 2", "killed") == 1);
  fs::copy(dir.path / "killed", dir.path / "killed-one", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const int resumed = run_cli("", "launch --nproc 2 train --resume '" + dir.file("killed") + "'", dir.file("resumed.log"));
  REQUIRE_MESSAGE(resumed == 0, "resumed log:\n" << testing::read_bytes(dir.file("resumed.log")));
  CHECK(worst_relative(two, losses(dir.path / "killed")) < 1e-3);
  const int resumed_one = run_cli("", "train --resume '" + dir.file("killed-one") + "'", dir.file("resumed-one.log"));
  REQUIRE_MESSAGE(resumed_one == 0, "resumed-one log:\n" << testing::read_bytes(dir.file("resumed-one.log")));
  CHECK(worst_relative(two, losses(dir.path / "killed-one")) < 1e-3);
}

}  // namespace
}  // namespace swiattn
