// tests/test_checkpoint_faults.cpp: a checkpoint save can neither lose nor poison the last good
// checkpoint (train/train_state.h, docs/reliability.md). The fault hook of io/fault_injection.h
// kills the process (SIGKILL) or fails one file-system operation with ENOSPC, at each operation of
// a save in turn:
//   - in this process, for EVERY operation of a save (kill in a forked child): OUT/checkpoint must
//     then link a complete checkpoint, byte for byte the previous save or the new one, that loads
//     (configs, weights, moments, trainer state), and the next save must succeed and clean up;
//   - the same while re-saving the step the link already points to (which once deleted the linked
//     directory before rewriting it);
//   - through the CLI at chosen operations: the run stopped there resumes and ends bit for bit
//     where an uninterrupted run ends;
//   - non-finite weights or moments are never saved; a checkpoint holding them is refused.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/fault_injection.h"
#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "tests/test_util.h"
#include "train/nonfinite.h"
#include "train/train_state.h"

namespace swiattn {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::contains;
using testing::error_of;
using testing::read_bytes;

// A run small enough to save in a few milliseconds, with few tensors (each is one write: the
// sweeps below fork once per operation): one full-attention layer, byte vocabulary.
Config fault_run_config() {
  Config c;
  c.model = testing::tiny_model_config();
  c.model.vocab_size = 256;
  c.model.num_hidden_layers = 1;
  c.model.layer_types = {"full"};
  c.train.batch_size = 1;
  c.train.seq_len = 16;
  c.train.steps = 8;
  c.train.sample_tokens = 0;
  return c;
}

// A model with its optimizer after one real step (so the moments are not zero), and the trainer
// state of `step`.
struct Run {
  Config config = fault_run_config();
  Transformer model{config.model, DType::F32, 5};
  AdamW optimizer{model.parameters()};
  TrainingState state;

  void train_step(uint64_t seed) {
    optimizer.zero_grad();
    next_token_loss(model.forward(testing::random_ids({1, 9}, 256, seed)), testing::random_ids({1, 9}, 256, seed + 1))
        .backward();
    optimizer.step(1e-2);
  }
  void at_step(int64_t step) {
    state.step = step;
    state.tokens_trained = step * 16;
    state.initial_val_loss = state.last_val_loss = 5.5;
    state.last_val_ratios = {};  // no switch layer
  }
};

const char* const kFiles[] = {"model.safetensors", "config.json", "run_config.json", "optimizer.safetensors",
                              "trainer_state.json"};

std::map<std::string, std::string> checkpoint_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const char* f : kFiles) files[f] = read_bytes((dir / f).string());
  return files;
}

// The link of `out` names a checkpoint that loads completely; returns its files.
std::map<std::string, std::string> linked_checkpoint_loads(const fs::path& out) {
  const fs::path link = out / "checkpoint";
  REQUIRE(fs::is_symlink(fs::symlink_status(link)));
  REQUIRE(fs::is_directory(link));
  const CheckpointConfigs configs = read_checkpoint_configs(link.string());
  Transformer model(configs.model, DType::F32, 0);
  load_model_weights(link.string(), model);
  AdamW optimizer(model.parameters());
  load_optimizer_state(link.string(), optimizer, model);
  const TrainingState state =
      training_state_from_json(read_trainer_state(link.string()), link.string() + "/trainer_state.json");
  validate_training_state(state, configs.run, "trainer_state.json");
  return checkpoint_files(link);
}

// Folder names in out/checkpoints.
std::vector<std::string> checkpoint_dirs(const fs::path& out) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out / "checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A scratch folder in memory when possible (testing::fast_temp_directory): the sweeps below fsync
// thousands of times.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static int counter = 0;
    path = testing::fast_temp_directory() /
           ("swiattn_test_faults_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
}

// The number of file-system operations of saving `run` into a copy of `before`.
int64_t count_operations(const fs::path& before, const fs::path& scratch, Run& run) {
  copy_folder(before, scratch);
  set_fault_plan({FaultPlan::Kind::count, run.state.step, 0});
  save_training_checkpoint(scratch.string(), run.model, run.config, run.optimizer, run.state);
  set_fault_plan({});
  return fault_operations_counted();
}

// Every operation of the save of `next` into a copy of `before` (whose link names a checkpoint
// with the files `old_files`), killed (forked child) or failed with ENOSPC. After each fault:
// the link names a complete checkpoint, the old or the new one; the next save succeeds and leaves
// only the new checkpoint. Returns how many faults left the new checkpoint linked.
int sweep_save_faults(const fs::path& before, const fs::path& scratch, Run& next,
                      const std::map<std::string, std::string>& old_files,
                      const std::map<std::string, std::string>& new_files, FaultPlan::Kind kind) {
  const int64_t operations = count_operations(before, scratch, next);
  MESSAGE("the save of step " << next.state.step << " makes " << operations << " file-system operations");
  CHECK(operations >= 20);
  int new_linked = 0;
  for (int64_t op = 1; op <= operations; ++op) {
    CAPTURE(op);
    copy_folder(before, scratch);
    const FaultPlan plan{kind, next.state.step, op};
    if (kind == FaultPlan::Kind::kill) {
      std::fflush(nullptr);
      const pid_t child = fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        std::freopen("/dev/null", "w", stderr);  // the hook's line about the kill
        set_fault_plan(plan);
        try {
          save_training_checkpoint(scratch.string(), next.model, next.config, next.optimizer, next.state);
        } catch (...) {
          _exit(3);
        }
        _exit(0);  // the operation was never reached
      }
      int status = 0;
      REQUIRE(waitpid(child, &status, 0) == child);
      CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    } else {
      set_fault_plan(plan);
      const std::string error = error_of([&] {
        save_training_checkpoint(scratch.string(), next.model, next.config, next.optimizer, next.state);
      });
      set_fault_plan({});
      // A failed removal of what the new checkpoint replaced is left for the next save; every
      // other failure is reported, saying which checkpoint is linked.
      if (!error.empty()) {
        CHECK(contains(error, "No space left on device"));
        CHECK(contains(error, "links"));
      }
    }
    const auto linked = linked_checkpoint_loads(scratch);
    CHECK((linked == old_files || linked == new_files));
    new_linked += linked == new_files;
    // What a resumed run does next: save again, with nothing failing.
    save_training_checkpoint(scratch.string(), next.model, next.config, next.optimizer, next.state);
    CHECK(linked_checkpoint_loads(scratch) == new_files);
    CHECK(checkpoint_dirs(scratch).size() == 1);  // keep_checkpoints 1: staging and old ones are gone
    CHECK_FALSE(fs::exists(scratch / "checkpoint.link.tmp"));
  }
  return new_linked;
}

TEST_CASE("checkpoint faults: a kill or ENOSPC at any operation of a save leaves a complete checkpoint") {
  ScratchDir dir;
  Run run;
  run.train_step(1);
  run.at_step(4);
  const fs::path before = dir.path / "before";  // a run folder linking step 4
  save_training_checkpoint(before.string(), run.model, run.config, run.optimizer, run.state);
  const auto old_files = checkpoint_files(before / "checkpoint");
  run.train_step(2);
  run.at_step(8);
  const fs::path reference = dir.path / "reference";  // what step 8's save writes, undisturbed
  copy_folder(before, reference);
  save_training_checkpoint(reference.string(), run.model, run.config, run.optimizer, run.state);
  const auto new_files = checkpoint_files(reference / "checkpoint");
  REQUIRE(old_files != new_files);
  CHECK(checkpoint_dirs(reference) == std::vector<std::string>{"step-00000008"});

  for (const FaultPlan::Kind kind : {FaultPlan::Kind::enospc, FaultPlan::Kind::kill}) {
    CAPTURE((kind == FaultPlan::Kind::kill ? "kill" : "enospc"));
    const int new_linked = sweep_save_faults(before, dir.path / "scratch", run, old_files, new_files, kind);
    // Only the two faults after the link moved (the fsync of OUT, the removal of step 4) leave the
    // new checkpoint linked; every earlier one leaves step 4.
    CHECK(new_linked == 2);
  }
}

// REGRESSION (issue 17): re-saving the step OUT/checkpoint already links (a resumed finished run,
// or a new run over an old one that ended at that step) deleted the linked directory first and
// rewrote it: a kill or a full disk in between left no checkpoint at all. The new save goes
// beside it (step-N.2) and the old one is removed only after the link moved.
TEST_CASE("checkpoint faults: re-saving the linked step never removes the linked checkpoint first") {
  ScratchDir dir;
  Run run;
  run.train_step(1);
  run.at_step(4);
  const fs::path before = dir.path / "before";
  save_training_checkpoint(before.string(), run.model, run.config, run.optimizer, run.state);
  const auto old_files = checkpoint_files(before / "checkpoint");
  run.train_step(3);  // other weights, same step
  const fs::path reference = dir.path / "reference";
  copy_folder(before, reference);
  save_training_checkpoint(reference.string(), run.model, run.config, run.optimizer, run.state);
  const auto new_files = checkpoint_files(reference / "checkpoint");
  REQUIRE(old_files != new_files);
  CHECK(fs::read_symlink(reference / "checkpoint") == fs::path("checkpoints/step-00000004.2"));
  CHECK(checkpoint_dirs(reference) == std::vector<std::string>{"step-00000004.2"});
  for (const FaultPlan::Kind kind : {FaultPlan::Kind::enospc, FaultPlan::Kind::kill}) {
    CAPTURE((kind == FaultPlan::Kind::kill ? "kill" : "enospc"));
    sweep_save_faults(before, dir.path / "scratch", run, old_files, new_files, kind);
  }
}

TEST_CASE("checkpoint faults: train.keep_checkpoints keeps the newest N; stale directories are removed") {
  ScratchDir dir;
  Run run;
  run.config.train.keep_checkpoints = 2;
  const fs::path out = dir.path / "run";
  for (int64_t step : {2, 4, 6}) {
    run.at_step(step);
    save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state);
  }
  CHECK(checkpoint_dirs(out) == std::vector<std::string>{"step-00000004", "step-00000006"});
  CHECK(linked_checkpoint_step(out.string()) == 6);
  // Left by a killed run: a staging directory and a complete checkpoint ahead of the link; and a
  // folder that is not ours, which is left alone.
  fs::create_directories(out / "checkpoints/.partial-step-00000008");
  fs::create_directories(out / "checkpoints/step-00000010");
  fs::create_directories(out / "checkpoints/notes");
  run.at_step(8);
  save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state);
  CHECK(checkpoint_dirs(out) == std::vector<std::string>{"notes", "step-00000006", "step-00000008"});
  run.config.train.keep_checkpoints = 1;
  save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state);  // step 8 again
  CHECK(checkpoint_dirs(out) == std::vector<std::string>{"notes", "step-00000008.2"});
  CHECK(linked_checkpoint_step(out.string()) == 8);
}

// REGRESSION (issue 17): the guard checked gradients, not the weights after the optimizer step,
// so a state with infinite weights was saved as the newest "good" checkpoint (and rotation then
// deleted the real one). A save now refuses a non-finite weight or moment, writing nothing.
TEST_CASE("checkpoint faults: a state with non-finite weights or moments is never saved") {
  ScratchDir dir;
  Run run;
  run.train_step(1);
  run.at_step(4);
  const fs::path out = dir.path / "run";
  save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state);
  const auto good = checkpoint_files(out / "checkpoint");
  CHECK(first_nonfinite_state(run.model.parameters(), &run.optimizer) == "");

  run.at_step(8);
  Tensor weight = run.model.parameters()[3].value();
  const double kept = weight.at(0);
  weight.data<float>()[0] = std::numeric_limits<float>::infinity();
  std::string error = error_of([&] { save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state); });
  CHECK(contains(error, "not saving step 8: non-finite values (NaN or infinity) in the weights of " +
                            run.model.parameters()[3].name()));
  CHECK(contains(error, "still links the previous one, checkpoints/step-00000004"));
  weight.data<float>()[0] = static_cast<float>(kept);

  Tensor v = run.optimizer.second_moments()[1];
  v.data<float>()[2] = std::nanf("");
  error = error_of([&] { save_training_checkpoint(out.string(), run.model, run.config, run.optimizer, run.state); });
  CHECK(contains(error, "the second moment (AdamW v) of " + run.optimizer.params()[1].name()));
  CHECK(linked_checkpoint_loads(out) == good);
  CHECK(checkpoint_dirs(out) == std::vector<std::string>{"step-00000004"});
}

// REGRESSION (issue 17): NaN moments in optimizer.safetensors loaded silently; the first step
// turned the weights into NaN and the next save kept them, deleting the good checkpoint. Loading
// now refuses non-finite weights (unless asked) and non-finite or negative moments.
TEST_CASE("checkpoint faults: loading refuses non-finite weights and moments, negative second moments") {
  ScratchDir dir;
  Run run;
  run.train_step(1);
  run.at_step(4);
  const fs::path ckpt = dir.path / "ckpt";
  save_checkpoint(ckpt.string(), run.model, run.config, &run.optimizer, training_state_to_json(run.state));
  auto rewrite = [&](const char* file, const std::string& name, double value) {
    SafetensorsFile f = read_safetensors((ckpt / file).string());
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& n : f.names) {
      Tensor t = f.tensors.at(n).clone();
      if (n == name) t.data<float>()[1] = static_cast<float>(value);
      tensors.emplace_back(n, t);
    }
    write_safetensors((ckpt / file).string(), tensors, f.metadata);
  };
  const std::string p = run.model.parameters()[2].name();
  Transformer model(run.config.model, DType::F32, 9);
  AdamW optimizer(model.parameters());

  rewrite("model.safetensors", p, std::nan(""));
  const std::vector<double> before = model.parameters()[2].value().to_vector();
  CHECK(contains(error_of([&] { load_model_weights(ckpt.string(), model); }),
                 "tensor \"" + p + "\" holds 1 non-finite value (NaN or infinity; the first at element 1)"));
  CHECK(model.parameters()[2].value().to_vector() == before);  // nothing loaded
  CHECK_NOTHROW(load_model_weights(ckpt.string(), model, nullptr, nullptr, /*allow_nonfinite=*/true));
  CHECK(std::isnan(model.parameters()[2].value().at(1)));

  rewrite("optimizer.safetensors", "m." + p, std::numeric_limits<double>::infinity());
  CHECK(contains(error_of([&] { load_optimizer_state(ckpt.string(), optimizer, model); }),
                 "tensor \"m." + p + "\" holds 1 non-finite value"));
  rewrite("optimizer.safetensors", "m." + p, 0.5);
  rewrite("optimizer.safetensors", "v." + p, -1.0);
  CHECK(contains(error_of([&] { load_optimizer_state(ckpt.string(), optimizer, model); }),
                 "tensor \"v." + p + "\" holds a negative second moment (-1.0 at element 1)"));
  rewrite("optimizer.safetensors", "v." + p, 0.25);
  CHECK_NOTHROW(load_optimizer_state(ckpt.string(), optimizer, model));
}

}  // namespace
}  // namespace swiattn
