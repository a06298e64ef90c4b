// tests/test_resume.cpp: the guarantees of docs/reliability.md, tested by running the real CLI in
// a child process and killing it (SIGKILL, through the SWIATTN_TEST_KILL_AT hook of
// train/train_state.h) at chosen moments:
//   - a run killed right after a checkpoint, then resumed, has the same per-step losses and the
//     same final weights as an uninterrupted run, bit for bit;
//   - a run killed in the middle of a save keeps the previous checkpoint intact, and resuming
//     from it still reproduces the uninterrupted run exactly;
//   - a NaN stops the run with a message naming the first layer where it appeared, or skips the
//     batch, as configured.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "train/checkpoint.h"
#include "model/transformer.h"
#include "tests/test_util.h"
#include "train/nonfinite.h"

namespace swiattn {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;

// A tiny run that still exercises every piece of state: switch layers (regulariser and the
// target-ratio controller), AdamW moments, the schedule, the data position.
const char* kTinyRun = R"({
  "model": {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 8, "intermediate_size": 24,
            "sliding_window": 8, "layer_types": ["switch", "full"], "max_position_embeddings": 32,
            "router_init_std": 0.5},
  "train": {"batch_size": 2, "seq_len": 24, "steps": 12, "warmup_steps": 3, "log_interval": 1,
            "eval_interval": 6, "eval_batches": 1, "sample_tokens": 0, "checkpoint_interval": 4,
            "threads": 2},
  "data": {"corpus": "moby-dick"},
  "reg": {"controller": "bias", "target_ratio": 0.3, "gamma_base": 0.01}
})";

struct Scratch {
  fs::path dir;
  Scratch() : dir(testing::fast_temp_directory() / ("swiattn_test_resume_" + std::to_string(getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "tiny.json") << kTinyRun;
  }
  ~Scratch() { fs::remove_all(dir); }
};

// Runs the CLI with `args` (and an environment prefix); returns the exit status, or 128 + the
// signal that killed it.
int run_cli(const std::string& env, const std::string& args, const fs::path& log) {
  const std::string cmd = env + " " + std::string(SWIATTN_BINARY_DIR) + "/swiattn " + args + " > " +
                          log.string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    return code;  // the shell reports a killed child as 128 + signal
  }
  return 128 + WTERMSIG(status);
}

// step -> training loss, from metrics.jsonl (the last line for a step wins).
std::map<int64_t, double> losses(const fs::path& run) {
  std::map<int64_t, double> by_step;
  std::ifstream f(run / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) by_step[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return by_step;
}

int64_t checkpoint_step(const fs::path& run) {
  return read_trainer_state((run / "checkpoint").string())["step"].get<int64_t>();
}

TEST_CASE("reliability: a killed and resumed run equals the uninterrupted run bit for bit") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string();
  REQUIRE(run_cli("", config + " --out " + (s.dir / "a").string(), s.dir / "a.log") == 0);

  // Killed right after the checkpoint of step 8, then resumed.
  CHECK(run_cli("SWIATTN_TEST_KILL_AT=after-save:8", config + " --out " + (s.dir / "b").string(), s.dir / "b.log") ==
        128 + SIGKILL);
  CHECK(checkpoint_step(s.dir / "b") == 8);
  REQUIRE(run_cli("", "train --resume " + (s.dir / "b").string(), s.dir / "b2.log") == 0);
  CHECK(read_bytes(s.dir / "b2.log").find("resumed from") != std::string::npos);

  const auto la = losses(s.dir / "a"), lb = losses(s.dir / "b");
  REQUIRE(la.size() == 12);
  REQUIRE(lb.size() == 12);
  for (const auto& [step, loss] : la) {
    INFO("step ", step);
    CHECK(lb.at(step) == loss);  // exact equality: bit for bit
  }
  CHECK(read_bytes(s.dir / "a/checkpoint/model.safetensors") == read_bytes(s.dir / "b/checkpoint/model.safetensors"));
  CHECK(read_bytes(s.dir / "a/checkpoint/optimizer.safetensors") ==
        read_bytes(s.dir / "b/checkpoint/optimizer.safetensors"));
}

TEST_CASE("reliability: with the synthetic training mixture on, a killed and resumed run is bit-exact") {
  Scratch s;
  // Rows of 129 tokens: room for a byte-level passkey (about 100 tokens) or a one-pair MQAR.
  const std::string config = "train --config " + (s.dir / "tiny.json").string() +
                             " --set train.seq_len=128 --set model.max_position_embeddings=128" +
                             " --set data.synthetic_fraction=0.5 --set data.mqar_pairs=1";
  REQUIRE(run_cli("", config + " --out " + (s.dir / "a").string(), s.dir / "a.log") == 0);
  CHECK(read_bytes(s.dir / "a.log").find("training rows: 50% of rows synthetic") != std::string::npos);
  CHECK(run_cli("SWIATTN_TEST_KILL_AT=after-save:8", config + " --out " + (s.dir / "b").string(), s.dir / "b.log") ==
        128 + SIGKILL);
  REQUIRE(run_cli("", "train --resume " + (s.dir / "b").string(), s.dir / "b2.log") == 0);
  const auto la = losses(s.dir / "a"), lb = losses(s.dir / "b");
  REQUIRE(la.size() == 12);
  CHECK(lb == la);  // exact equality: bit for bit
  CHECK(read_bytes(s.dir / "a/checkpoint/model.safetensors") == read_bytes(s.dir / "b/checkpoint/model.safetensors"));
  // The mixture changes the batches: the same run without it has other losses.
  REQUIRE(run_cli("", config + " --set data.synthetic_fraction=0 --out " + (s.dir / "c").string(), s.dir / "c.log") == 0);
  CHECK(losses(s.dir / "c") != la);
}

TEST_CASE("reliability: a context curriculum resumes bit-exactly inside a stage and across a stage change") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string() +
                             " --set 'train.curriculum=[{\"steps\":6,\"seq_len\":16,\"batch_size\":3},"
                             "{\"steps\":6,\"seq_len\":24}]'";
  REQUIRE(run_cli("", config + " --out " + (s.dir / "a").string(), s.dir / "a.log") == 0);
  CHECK(read_bytes(s.dir / "a.log").find("curriculum stage 2/2 from step 6: 2 x 24 tokens per step") != std::string::npos);
  const auto la = losses(s.dir / "a");
  REQUIRE(la.size() == 12);
  // Tokens trained: 6 steps of 3 x 16, then 6 of 2 x 24.
  CHECK(read_trainer_state((s.dir / "a/checkpoint").string())["tokens_trained"] == 6 * 48 + 6 * 48);
  for (const int kill_at : {4, 8}) {  // inside stage 1 (resumes across the change), inside stage 2
    CAPTURE(kill_at);
    const fs::path b = s.dir / ("b" + std::to_string(kill_at));
    CHECK(run_cli("SWIATTN_TEST_KILL_AT=after-save:" + std::to_string(kill_at), config + " --out " + b.string(),
                  s.dir / "b.log") == 128 + SIGKILL);
    REQUIRE(run_cli("", "train --resume " + b.string(), s.dir / "b2.log") == 0);
    CHECK(losses(b) == la);  // exact equality: bit for bit
    CHECK(read_bytes(s.dir / "a/checkpoint/model.safetensors") == read_bytes(b / "checkpoint/model.safetensors"));
  }
  // The curriculum changes the batches: the run without it has other losses.
  REQUIRE(run_cli("", "train --config " + (s.dir / "tiny.json").string() + " --out " + (s.dir / "c").string(),
                  s.dir / "c.log") == 0);
  CHECK(losses(s.dir / "c") != la);
}

TEST_CASE("reliability: a run killed during a save keeps the previous checkpoint, and resumes exactly") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string();
  REQUIRE(run_cli("", config + " --out " + (s.dir / "a").string(), s.dir / "a.log") == 0);
  // Killed after step 8's files are written but before the link moves to them.
  CHECK(run_cli("SWIATTN_TEST_KILL_AT=mid-save:8", config + " --out " + (s.dir / "b").string(), s.dir / "b.log") ==
        128 + SIGKILL);
  CHECK(checkpoint_step(s.dir / "b") == 4);  // the previous checkpoint, complete and loadable
  Transformer model(read_checkpoint_model_config((s.dir / "b/checkpoint").string()), DType::F32, 0);
  CHECK_NOTHROW(load_model_weights((s.dir / "b/checkpoint").string(), model, is_router_parameter));
  REQUIRE(run_cli("", "train --resume " + (s.dir / "b").string(), s.dir / "b2.log") == 0);
  CHECK(losses(s.dir / "b") == losses(s.dir / "a"));
  CHECK(read_bytes(s.dir / "a/checkpoint/model.safetensors") == read_bytes(s.dir / "b/checkpoint/model.safetensors"));
  // Only the linked checkpoint remains.
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(s.dir / "b/checkpoints")) dirs += e.is_directory();
  CHECK(dirs == 1);
}

// The operations of the save of step 8, from the hook's count mode (io/fault_injection.h):
// "fault injection: operation 12 of the save of step 8: write DIR/.../model.safetensors.tmp".
std::vector<std::string> save_operations(const fs::path& log) {
  std::vector<std::string> ops;
  std::istringstream lines(read_bytes(log));
  const std::string prefix = "fault injection: operation ";
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(prefix, 0) == 0) ops.push_back(line.substr(line.find(": ", prefix.size()) + 2));
  return ops;
}

// The 1-based index of the first operation that starts with `what` and ends with `path_end`.
int64_t operation_index(const std::vector<std::string>& ops, const std::string& what, const std::string& path_end) {
  for (size_t i = 0; i < ops.size(); ++i)
    if (ops[i].rfind(what + " ", 0) == 0 && ops[i].size() >= path_end.size() &&
        ops[i].compare(ops[i].size() - path_end.size(), path_end.size(), path_end) == 0)
      return static_cast<int64_t>(i) + 1;
  FAIL("no operation " << what << " ..." << path_end);
  return -1;
}

TEST_CASE("reliability: a save killed, or failed with ENOSPC, at any of its phases resumes bit for bit") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string();
  // The uninterrupted run, in count mode (which fails nothing): the list of the save's operations.
  REQUIRE(run_cli("SWIATTN_TEST_FAULT_AT=count:8", config + " --out " + (s.dir / "a").string(), s.dir / "a.log") == 0);
  const std::vector<std::string> ops = save_operations(s.dir / "a.log");
  INFO(read_bytes(s.dir / "a.log").substr(0, 4000));
  REQUIRE(ops.size() >= 30);
  CHECK(read_bytes(s.dir / "a.log").find("the save of step 8 made " + std::to_string(ops.size()) +
                                         " file-system operations") != std::string::npos);
  // An operation of each phase: writing the staging directory, naming it, after the link moved
  // (the link's own rename and every other operation: tests/test_checkpoint_faults.cpp).
  const int64_t write_model = operation_index(ops, "write", "model.safetensors.tmp");
  const int64_t name_it = operation_index(ops, "rename", "checkpoints/step-00000008");
  const int64_t sync_out = operation_index(ops, "rename", "/checkpoint") + 1;  // right after the link moved
  struct Fault {
    std::string kind;
    int64_t op;
    int64_t linked_after;  // the step OUT/checkpoint links after the fault
  };
  // (tests/test_checkpoint_faults.cpp goes through every operation in-process; here the CLI.)
  for (const Fault& f : {Fault{"kill", write_model, 4}, Fault{"enospc", name_it, 4}, Fault{"enospc", sync_out, 8}}) {
    const std::string plan = f.kind + ":8:" + std::to_string(f.op);
    CAPTURE(plan);
    CAPTURE(ops[static_cast<size_t>(f.op - 1)]);
    const fs::path b = s.dir / ("b-" + f.kind + "-" + std::to_string(f.op));
    const int status = run_cli("SWIATTN_TEST_FAULT_AT=" + plan, config + " --out " + b.string(), s.dir / "b.log");
    const std::string log = read_bytes(s.dir / "b.log");
    INFO(log.substr(log.size() > 2000 ? log.size() - 2000 : 0));
    if (f.kind == "kill") {
      CHECK(status == 128 + SIGKILL);
    } else {
      CHECK(status == 1);
      CHECK(log.find("No space left on device") != std::string::npos);
      CHECK(log.find(f.linked_after == 4 ? "still links the previous one, checkpoints/step-00000004"
                                         : "already links the new checkpoint") != std::string::npos);
    }
    CHECK(checkpoint_step(b) == f.linked_after);
    REQUIRE(run_cli("", "train --resume " + b.string(), s.dir / "b2.log") == 0);
    CHECK(losses(b) == losses(s.dir / "a"));  // exact equality: bit for bit
    CHECK(read_bytes(s.dir / "a/checkpoint/model.safetensors") == read_bytes(b / "checkpoint/model.safetensors"));
    CHECK(read_bytes(s.dir / "a/checkpoint/optimizer.safetensors") == read_bytes(b / "checkpoint/optimizer.safetensors"));
  }
}

TEST_CASE("reliability: a non-finite step stops the run naming where it began, or skips the batch") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string() +
                             " --set train.learning_rate=1e30 --set train.min_learning_rate=1e30";
  // A learning rate of 1e30 makes the weights overflow within a few steps.
  CHECK(run_cli("", config + " --out " + (s.dir / "stop").string(), s.dir / "stop.log") == 1);
  const std::string stop_log = read_bytes(s.dir / "stop.log");
  INFO(stop_log);
  CHECK(stop_log.find("swiattn train: error: train: non-finite value at step") != std::string::npos);
  CHECK(stop_log.find("first in the output of layer") != std::string::npos);
  CHECK(stop_log.find("the last checkpoint is") != std::string::npos);

  CHECK(run_cli("", config + " --set train.on_nonfinite=skip --set train.max_skipped_batches=2 --out " +
                        (s.dir / "skip").string(), s.dir / "skip.log") == 1);
  const std::string skip_log = read_bytes(s.dir / "skip.log");
  INFO(skip_log);
  CHECK(skip_log.find("skipped batch: non-finite value") != std::string::npos);
  CHECK(skip_log.find("(2 skipped so far)") != std::string::npos);
  CHECK(skip_log.find("3 batches skipped for non-finite values") != std::string::npos);
}

// REGRESSION (issue 17): the guard checked gradients, not the weights the optimizer step leaves:
// with a learning rate of 1e39 every float32 weight became infinite in the last step and that
// checkpoint was saved as the last good one (exit 0). Now the save refuses it, and a later step
// stops at the weights, naming them.
TEST_CASE("reliability: weights made infinite by the optimizer step are never saved") {
  Scratch s;
  const std::string config = "train --config " + (s.dir / "tiny.json").string() +
                             " --set train.learning_rate=1e39 --set train.min_learning_rate=1e39";
  // One step, then the save (the controller off: with it on, the check before the controller,
  // which scores tokens with the updated routers, stops the run first, as in the second run).
  CHECK(run_cli("", config + " --set train.steps=1 --set reg.controller=off --out " + (s.dir / "one").string(),
                s.dir / "one.log") == 1);
  std::string log = read_bytes(s.dir / "one.log");
  INFO(log);
  CHECK(log.find("checkpoint: not saving step 1: non-finite values (NaN or infinity) in the weights of ") != std::string::npos);
  CHECK(log.find("there is no earlier checkpoint") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir / "one/checkpoint"));
  CHECK(run_cli("", config + " --set train.on_nonfinite=skip --out " + (s.dir / "more").string(), s.dir / "more.log") == 1);
  log = read_bytes(s.dir / "more.log");
  CHECK(log.find("non-finite values in the weights of layers.0.attn.router.weight after the optimizer step of step 1") !=
        std::string::npos);
  CHECK(log.find("cannot be skipped like a batch") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir / "more/checkpoint"));
  // Without the controller the weights are checked at the next step, in the gradient guard's pass.
  CHECK(run_cli("", config + " --set reg.controller=off --set train.warmup_steps=0 --out " + (s.dir / "guard").string(),
                s.dir / "guard.log") == 1);
  log = read_bytes(s.dir / "guard.log");
  CHECK(log.find("non-finite values in the weights of embed.weight after the optimizer step of step 1") != std::string::npos);
}

TEST_CASE("reliability: first_nonfinite names the first layer whose output is not finite") {
  ModelConfig c = testing::tiny_model_config();
  c.num_hidden_layers = 3;
  c.layer_types = {};  // all full
  Transformer model(c, DType::F32, 1);
  const Tensor ids = Tensor::from_ints({1, 2, 3, 4}, {1, 4});
  const Tensor targets = Tensor::from_ints({2, 3, 4, 5}, {1, 4});
  {
    const ForwardResult f = model.forward_with_routing(ids, false);
    CHECK(first_nonfinite(f, next_token_loss(f.logits, targets), model.parameters()) == "");
  }
  for (const Var& p : model.parameters())
    if (p.name() == "layers.1.mlp.up_proj.weight") Tensor(p.value()).fill(std::nan(""));
  const ForwardResult f = model.forward_with_routing(ids, false);
  CHECK(first_nonfinite(f, next_token_loss(f.logits, targets), model.parameters()) == "the output of layer 1 (of 3)");
}

}  // namespace
}  // namespace swiattn
