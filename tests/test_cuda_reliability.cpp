// tests/test_cuda_reliability.cpp: the reliability checks of docs/reliability.md where they run
// on the GPU: the weight and moment checks count non-finite values on the device, the memory
// estimate is compared with the GPU's memory, and through the CLI a CUDA run whose weights become
// infinite stops without saving them, and a CUDA run failed with ENOSPC mid-save resumes.
// Each case skips itself without a device (tests/cuda_test_util.h). For the CLI cases,
// SWIATTN_CLI names the binary and SWIATTN_DATA_CACHE the corpora when the tests run elsewhere
// than where they were built (scripts/gpu/reliability-check.sh sets both).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "model/memory_estimate.h"
#include "model/transformer.h"
#include "tests/cli_test_util.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#include "train/nonfinite.h"
#include "train/optimizer.h"
#include "train/train_state.h"

namespace swiattn {
namespace {

using testing::contains;
using testing::skip_without_device;

TEST_CASE("cuda reliability: the weight and moment checks find a NaN on the device") {
  if (skip_without_device("non-finite weights and moments counted on CUDA")) return;
  testing::StrictDevice strict;
  ModelConfig c = testing::tiny_model_config();
  c.layer_types = {"full", "switch"};
  Transformer model(c, DType::F32, 4);
  model.to(Device::CUDA);
  AdamW optimizer(model.parameters());
  ForwardResult f = model.forward_with_routing(testing::random_ids({2, 9}, 11, 3).to_device(), false);
  const Var loss = next_token_loss(f.logits, testing::random_ids({2, 9}, 11, 4).to_device());
  loss.backward();
  StepCheck check = check_step_finite(f, loss, model.parameters());
  CHECK(check.bad_weight.empty());
  CHECK(check.bad_step.empty());
  CHECK(first_nonfinite_state(model.parameters(), &optimizer).empty());

  // A NaN in one weight on the device: named by both checks.
  const Var& p = model.parameters()[5];
  Tensor host = p.value().to_host();
  host.data<float>()[host.numel() - 1] = NAN;
  Tensor(p.value()).copy_from(host.to_device());
  check = check_step_finite(f, loss, model.parameters());
  CHECK(check.bad_weight == "the weights of " + p.name());
  CHECK(first_nonfinite_state(model.parameters(), nullptr) == "the weights of " + p.name());
  host.data<float>()[host.numel() - 1] = 0.5f;
  Tensor(p.value()).copy_from(host.to_device());

  // An infinite second moment, after a real step put the moments on the device.
  optimizer.step(1e-3);
  Tensor v = optimizer.second_moments()[2];
  REQUIRE(v.device() == Device::CUDA);
  Tensor v_host = v.to_host();
  v_host.data<float>()[0] = INFINITY;
  v.copy_from(v_host.to_device());
  CHECK(first_nonfinite_state(model.parameters(), &optimizer) ==
        "the second moment (AdamW v) of " + optimizer.params()[2].name());
}

TEST_CASE("cuda reliability: the memory estimate is checked against the GPU's memory") {
  if (skip_without_device("the memory estimate against the GPU")) return;
  const int64_t gpu = device_memory_bytes(Device::CUDA);
  MESSAGE("GPU memory: " << format_bytes(gpu));
  REQUIRE(gpu > (int64_t{1} << 30));
  ModelConfig c;  // defaults: about 0.8M parameters
  CHECK_NOTHROW(require_memory_fits(estimate_memory(c, DType::F32, true, 16, 128, "batch x seq"), Device::CUDA, "train"));
  c.num_hidden_layers = 1000000;  // about 200G parameters
  const std::string error = testing::error_of(
      [&] { require_memory_fits(estimate_memory(c, DType::F32, true, 16, 128, "batch x seq"), Device::CUDA, "train"); });
  CHECK(contains(error, "of the GPU"));
  CHECK(contains(error, "model.num_hidden_layers = 1000000"));
}

std::string data_cache() {
  if (const char* env = std::getenv("SWIATTN_DATA_CACHE"); env && *env) return env;
  return std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
}

std::vector<std::string> cuda_tiny_run(const std::string& out) {
  return {"train", "--device", "cuda", "--out", out, "--set", "model.hidden_size=32", "--set", "model.num_hidden_layers=2",
          "--set", "model.num_attention_heads=2", "--set", "model.num_key_value_heads=1", "--set", "model.head_dim=16",
          "--set", "model.intermediate_size=48", "--set", "model.sliding_window=8",
          "--set", "model.layer_types=[\"switch\",\"full\"]", "--set", "model.max_position_embeddings=64",
          "--set", "train.seq_len=64", "--set", "train.batch_size=4", "--set", "train.steps=12",
          "--set", "train.warmup_steps=2", "--set", "train.checkpoint_interval=4", "--set", "train.eval_batches=1",
          "--set", "train.log_interval=1", "--set", "train.sample_tokens=0", "--set", "data.corpus=moby-dick",
          "--set", "data.cache_dir=" + data_cache()};
}

TEST_CASE("cuda reliability: a CUDA run never saves infinite weights, and resumes after ENOSPC mid-save") {
  if (skip_without_device("swiattn train --device cuda: the weight guard and a failed save")) return;
  REQUIRE_MESSAGE(std::filesystem::exists(testing::cli_path()), "the CLI is not at " << testing::cli_path() << " (set SWIATTN_CLI)");
  testing::TempDir dir("swiattn_test_cuda_reliability");
  std::vector<std::string> args = cuda_tiny_run(dir.file("lr"));
  for (const char* s : {"train.learning_rate=1e39", "train.min_learning_rate=1e39", "train.warmup_steps=0"})
    args.insert(args.end(), {"--set", s});
  testing::CliResult r = testing::run_cli(args, dir);
  INFO(testing::shown(r.output));
  CHECK(r.status == 1);
  CHECK(contains(r.output, "non-finite values in the weights of"));
  CHECK_FALSE(std::filesystem::exists(dir.file("lr/checkpoint")));

  // ENOSPC at the link's rename in the save of step 8: step 4 stays linked; the resumed run ends
  // at step 12 (on CUDA a resume agrees with an uninterrupted run to rounding, not bit for bit).
  r = testing::run_cli(cuda_tiny_run(dir.file("count")), dir, "SWIATTN_TEST_FAULT_AT=count:8");
  REQUIRE(r.status == 0);
  int64_t link_rename = 0, n = 0;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("fault injection: operation ", 0) == 0) {
      ++n;
      if (line.find(": rename ") != std::string::npos && line.size() > 11 && line.substr(line.size() - 11) == "/checkpoint")
        link_rename = n;
    }
  REQUIRE(link_rename > 0);
  r = testing::run_cli(cuda_tiny_run(dir.file("b")), dir, "SWIATTN_TEST_FAULT_AT=enospc:8:" + std::to_string(link_rename));
  CHECK(r.status == 1);
  CHECK(contains(r.output, "No space left on device"));
  CHECK(linked_checkpoint_step(dir.file("b")) == 4);
  r = testing::run_cli({"train", "--resume", dir.file("b")}, dir);
  INFO(testing::shown(r.output));
  CHECK(r.status == 0);
  CHECK(linked_checkpoint_step(dir.file("b")) == 12);
}

}  // namespace
}  // namespace swiattn
