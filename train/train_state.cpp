#include "train/train_state.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "model/checkpoint.h"

namespace swiattn {

namespace fs = std::filesystem;

nlohmann::json training_state_to_json(const TrainingState& s) {
  return {{"step", s.step},
          {"loader_rng_seed", s.loader_rng_seed},
          {"loader_rng_counter", s.loader_rng_counter},
          {"gamma_base", s.gamma_base},
          {"router_bias_shift", s.router_bias_shift},
          {"skipped_batches", s.skipped_batches},
          {"tokens_trained", s.tokens_trained},
          {"initial_val_loss", s.initial_val_loss},
          {"final_val_loss", s.last_val_loss},
          {"val_layer_fa_ratio", s.last_val_ratios}};
}

TrainingState training_state_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": trainer state must be a JSON object");
  TrainingState s;
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) throw Error(source + ": trainer state lacks \"" + key + "\"");
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw Error(source + ": trainer state field \"" + key + "\" has the wrong type: " + j.at(key).dump());
    }
  };
  get("step", s.step);
  get("loader_rng_seed", s.loader_rng_seed);
  get("loader_rng_counter", s.loader_rng_counter);
  get("gamma_base", s.gamma_base);
  get("skipped_batches", s.skipped_batches);
  get("tokens_trained", s.tokens_trained);
  get("initial_val_loss", s.initial_val_loss);
  get("final_val_loss", s.last_val_loss);
  get("val_layer_fa_ratio", s.last_val_ratios);
  // Absent in checkpoints written before the controller moved router biases: 0.
  if (j.contains("router_bias_shift")) get("router_bias_shift", s.router_bias_shift);
  if (s.step < 0) throw Error(source + ": trainer state step must be >= 0, got " + std::to_string(s.step));
  return s;
}

void maybe_kill_for_test(const char* moment, int64_t step) {
  const char* spec = std::getenv("SWIATTN_TEST_KILL_AT");
  if (!spec) return;
  if (std::string(spec) == std::string(moment) + ":" + std::to_string(step)) {
    std::fflush(nullptr);
    std::raise(SIGKILL);
  }
}

std::string save_training_checkpoint(const std::string& out_dir, const Transformer& model,
                                     const Config& config, const AdamW& optimizer,
                                     const TrainingState& state) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(state.step));
  const fs::path root = fs::path(out_dir) / "checkpoints";
  const fs::path target = root / name;
  if (fs::exists(target)) fs::remove_all(target);  // an interrupted earlier save of this step
  fs::create_directories(target);
  save_checkpoint(target.string(), model, config, &optimizer, training_state_to_json(state));
  maybe_kill_for_test("mid-save", state.step);  // complete, but not yet the linked checkpoint

  // Swap the link in one rename(): OUT/checkpoint -> checkpoints/step-N.
  const fs::path link = fs::path(out_dir) / "checkpoint";
  const fs::path tmp_link = fs::path(out_dir) / "checkpoint.link.tmp";
  fs::remove(tmp_link);
  fs::create_directory_symlink(fs::path("checkpoints") / name, tmp_link);
  if (fs::exists(link) && !fs::is_symlink(link))
    throw Error("checkpoint: " + link.string() + " exists and is not a link (written by an older version?)");
  fs::rename(tmp_link, link);
  // Older step directories are no longer referenced.
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.path().filename() != name) fs::remove_all(entry.path());
  maybe_kill_for_test("after-save", state.step);
  return link.string();
}

}  // namespace swiattn
