// train/train_state.cpp: the trainer state's JSON and its checks, and the checkpoint rotation
// (the algorithm is in train/train_state.h).
#include "train/train_state.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <tuple>
#include <type_traits>

#include "io/durable_file.h"
#include "io/fault_injection.h"
#include "train/checkpoint.h"
#include "tensor/checked_math.h"
#include "train/nonfinite.h"

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
    const nlohmann::json& value = j.at(key);
    // Integer fields take JSON integers only (nlohmann would truncate 8.7 to 8 or wrap -1 to 2^64 - 1).
    using Field = std::decay_t<decltype(field)>;
    bool ok = true;
    if constexpr (std::is_same_v<Field, int64_t>)
      ok = value.is_number_integer() && !(value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX);
    else if constexpr (std::is_same_v<Field, uint64_t>)
      ok = value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
    else if constexpr (std::is_same_v<Field, double>)
      ok = value.is_number();
    else
      ok = value.is_array() && std::all_of(value.begin(), value.end(), [](const nlohmann::json& x) { return x.is_number(); });
    if (!ok)
      throw Error(source + ": trainer state field \"" + key + "\" has the wrong type: " +
                  value.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace).substr(0, 80));
    value.get_to(field);
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

void validate_training_state(const TrainingState& s, const Config& config, const std::string& source) {
  const std::string at = source + ": trainer state ";
  const TrainConfig& t = config.train;
  if (s.step < 0 || s.step > t.steps)
    throw Error(at + "step " + std::to_string(s.step) + " is outside [0, " + std::to_string(t.steps) +
                "] (train.steps of its run)");
  if (s.skipped_batches < 0 || s.skipped_batches > s.step)
    throw Error(at + "skipped_batches " + std::to_string(s.skipped_batches) + " is outside [0, step " +
                std::to_string(s.step) + "]");
  int64_t most_tokens_per_step = t.batch_size * t.seq_len;  // validate_config bounds both products
  for (const CurriculumStage& c : t.curriculum)
    most_tokens_per_step = std::max(most_tokens_per_step, (c.batch_size ? c.batch_size : t.batch_size) * c.seq_len);
  const int64_t most_tokens = checked_mul(s.step, most_tokens_per_step, at + "tokens_trained bound");
  if (s.tokens_trained < 0 || s.tokens_trained > most_tokens)
    throw Error(at + "tokens_trained " + std::to_string(s.tokens_trained) + " is outside [0, " +
                std::to_string(most_tokens) + "] (" + std::to_string(s.step) + " steps of at most " +
                std::to_string(most_tokens_per_step) + " tokens)");
  const std::pair<const char*, double> losses[] = {{"initial_val_loss", s.initial_val_loss},
                                                   {"final_val_loss", s.last_val_loss}};
  for (const auto& [key, value] : losses)
    if (!(std::isfinite(value) && value >= 0))
      throw Error(at + key + " must be a finite number >= 0, got " + nlohmann::json(value).dump());
  if (!(std::isfinite(s.gamma_base) && s.gamma_base >= 0))
    throw Error(at + "gamma_base must be a finite number >= 0, got " + nlohmann::json(s.gamma_base).dump());
  if (!std::isfinite(s.router_bias_shift))
    throw Error(at + "router_bias_shift must be finite, got " + nlohmann::json(s.router_bias_shift).dump());
  int64_t switch_layers = 0;
  for (int64_t l = 0; l < config.model.num_hidden_layers; ++l) switch_layers += config.model.layer_type(l) == LayerType::Switch;
  if (static_cast<int64_t>(s.last_val_ratios.size()) != switch_layers)
    throw Error(at + "val_layer_fa_ratio has " + std::to_string(s.last_val_ratios.size()) + " entries; the model has " +
                std::to_string(switch_layers) + " switch layers");
  for (double r : s.last_val_ratios)
    if (!(r >= 0 && r <= 1))
      throw Error(at + "val_layer_fa_ratio holds " + nlohmann::json(r).dump() + ", outside [0, 1]");
}

void maybe_kill_for_test(const char* moment, int64_t step) {
  const char* spec = std::getenv("SWIATTN_TEST_KILL_AT");
  if (!spec) return;
  if (std::string(spec) == std::string(moment) + ":" + std::to_string(step)) {
    std::fflush(nullptr);
    std::raise(SIGKILL);
  }
}

// ---------------------------------------------------------------------------------------------
// The rotation
// ---------------------------------------------------------------------------------------------

namespace {

const char* const kStagingPrefix = ".partial-";

// A final checkpoint directory's name: "step-00000008" is (8, 1), "step-00000008.2" is (8, 2).
struct CheckpointName {
  int64_t step = -1;
  int64_t copy = 0;
  bool operator<(const CheckpointName& o) const { return std::tie(step, copy) < std::tie(o.step, o.copy); }
  bool operator==(const CheckpointName& o) const { return step == o.step && copy == o.copy; }
};

bool parse_checkpoint_name(const std::string& name, CheckpointName* out) {
  const auto digits = [&](size_t from, size_t to) {  // [from, to) is 1 to 18 decimal digits
    return to > from && to - from <= 18 &&
           std::all_of(name.begin() + static_cast<long>(from), name.begin() + static_cast<long>(to),
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  if (name.rfind("step-", 0) != 0) return false;
  const size_t dot = std::min(name.find('.'), name.size());
  if (!digits(5, dot)) return false;
  CheckpointName parsed{std::stoll(name.substr(5, dot - 5)), 1};
  if (dot < name.size()) {
    if (!digits(dot + 1, name.size())) return false;
    parsed.copy = std::stoll(name.substr(dot + 1));
    if (parsed.copy < 2) return false;
  }
  *out = parsed;
  return true;
}

std::string checkpoint_name(int64_t step, int64_t copy) {
  char name[48];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return copy == 1 ? std::string(name) : std::string(name) + "." + std::to_string(copy);
}

// The directory name OUT/checkpoint links ("step-00000008"), or "" without a link.
std::string linked_name(const fs::path& link) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(link, ec))) return "";
  const fs::path target = fs::read_symlink(link, ec);
  return ec ? "" : target.filename().string();
}

// Deletes what the linked checkpoint no longer needs (the header's step 4). Best effort: a
// directory that cannot be removed now is retried by the next save.
void rotate(const fs::path& root, const std::string& linked, int64_t keep) {
  CheckpointName current;
  const bool have_current = parse_checkpoint_name(linked, &current);
  std::vector<std::pair<CheckpointName, fs::path>> older;  // complete checkpoints before the linked one
  std::vector<fs::path> remove;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    CheckpointName parsed;
    if (name == linked) continue;
    if (name.rfind(kStagingPrefix, 0) == 0) remove.push_back(entry.path());   // an interrupted save
    else if (!parse_checkpoint_name(name, &parsed)) continue;                  // not ours: left alone
    else if (!have_current || current < parsed) remove.push_back(entry.path());  // ahead of the link: a killed run's
    else older.emplace_back(parsed, entry.path());
  }
  std::sort(older.begin(), older.end(), [](const auto& a, const auto& b) { return b.first < a.first; });  // newest first
  for (size_t i = 0; i < older.size(); ++i)
    if (static_cast<int64_t>(i) + 1 >= keep) remove.push_back(older[i].second);  // the linked one counts as one
  for (const fs::path& p : remove) {
    try {
      remove_tree(p.string());
    } catch (const Error&) {
      // left for the next save
    }
  }
}

}  // namespace

int64_t linked_checkpoint_step(const std::string& out_dir) {
  const fs::path link = fs::path(out_dir) / "checkpoint";
  CheckpointName name;
  std::error_code ec;
  if (!parse_checkpoint_name(linked_name(link), &name) || !fs::is_directory(link, ec)) return -1;
  return name.step;
}

std::string save_training_checkpoint(const std::string& out_dir, const Transformer& model,
                                     const Config& config, const AdamW& optimizer,
                                     const TrainingState& state) {
  const fs::path out(out_dir), root = out / "checkpoints", link = out / "checkpoint";
  const std::string step_name = checkpoint_name(state.step, 1);
  const fs::path staging = root / (kStagingPrefix + step_name);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(link, ec)) && !fs::is_symlink(fs::symlink_status(link, ec)))
    throw Error("checkpoint: " + link.string() + " exists and is not a link (written by an older version?)");
  const std::string previous = linked_name(link);
  // Never save a broken state as the newest checkpoint: every weight and moment must be finite.
  const std::string bad = first_nonfinite_state(model.parameters(), &optimizer);
  if (!bad.empty())
    throw Error("checkpoint: not saving step " + std::to_string(state.step) + ": non-finite values (NaN or infinity) in " +
                bad + "; " +
                (previous.empty() ? std::string("there is no earlier checkpoint")
                                  : link.string() + " still links the previous one, checkpoints/" + previous));
  FaultScope faults(state.step);  // test-only: io/fault_injection.h
  bool linked_new = false;
  try {
    // 1. The new checkpoint, complete, in a staging directory nobody reads.
    make_directories(root.string());
    remove_tree(staging.string());  // an interrupted save of this step
    save_checkpoint(staging.string(), model, config, &optimizer, training_state_to_json(state));
    sync_directory(staging.string());
    maybe_kill_for_test("mid-save", state.step);  // complete, but not yet the linked checkpoint

    // 2. Its final name: never the linked directory, which must stay intact until the link moves.
    int64_t copy = 1;
    std::string name = step_name;
    while (fs::exists(root / name)) {
      if (name != previous) {
        remove_tree((root / name).string());  // not linked: a killed run's, or an older save of this step
        break;
      }
      name = checkpoint_name(state.step, ++copy);
    }
    rename_path(staging.string(), (root / name).string());
    sync_directory(root.string());

    // 3. Swap the link in one rename(): OUT/checkpoint -> checkpoints/<name>.
    const fs::path tmp_link = out / "checkpoint.link.tmp";
    remove_file(tmp_link.string());
    make_symlink((fs::path("checkpoints") / name).string(), tmp_link.string());
    rename_path(tmp_link.string(), link.string());
    linked_new = true;
    sync_directory(out.string());

    // 4. Older and stale directories.
    rotate(root, name, config.train.keep_checkpoints);
  } catch (const Error& e) {
    if (!linked_new) {
      try {
        remove_tree(staging.string());
      } catch (const Error&) {
        // a stale staging directory is removed by the next save
      }
    }
    throw Error("checkpoint: saving step " + std::to_string(state.step) + " failed: " + e.what() + "; " +
                (linked_new ? link.string() + " already links the new checkpoint"
                            : previous.empty() ? std::string("there is no earlier checkpoint")
                                               : link.string() + " still links the previous one, checkpoints/" + previous));
  }
  maybe_kill_for_test("after-save", state.step);
  return link.string();
}

}  // namespace swiattn
