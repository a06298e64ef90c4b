// train/run_folder.cpp: see train/run_folder.h.
#include "train/run_folder.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/durable_file.h"
#include "io/json_reader.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/train_state.h"

namespace swiattn {

namespace fs = std::filesystem;

namespace {

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

}  // namespace

std::string describe_run_in(const std::string& out_dir) {
  const fs::path out(out_dir);
  std::string what;
  auto add = [&](const std::string& part) { what += (what.empty() ? "" : ", ") + part; };
  if (present(out / "checkpoint")) {
    const int64_t step = linked_checkpoint_step(out_dir);
    add(step >= 0 ? "a checkpoint at step " + std::to_string(step) : std::string("a checkpoint link"));
  } else if (present(out / "checkpoints")) {
    add("checkpoints/");
  }
  if (present(out / "metrics.jsonl")) add("metrics.jsonl");
  return what;
}

void check_run_folder(const std::string& out_dir, RunStart start) {
  std::error_code ec;
  if (present(out_dir) && !fs::is_directory(out_dir, ec))
    throw Error("train: " + out_dir + " exists and is not a directory");
  if (start == RunStart::resume) {
    if (!present(fs::path(out_dir) / "checkpoint"))
      throw Error("train --resume: " + out_dir + " holds no checkpoint (" + out_dir + "/checkpoint): nothing to resume");
    return;
  }
  const std::string run = describe_run_in(out_dir);
  if (start == RunStart::fresh && !run.empty())
    throw Error("train: " + out_dir + " already holds a run (" + run + "): continue it with --resume " + out_dir +
                ", choose another --out, or add --overwrite to replace it");
}

void clear_previous_run(const std::string& out_dir) {
  const fs::path out(out_dir);
  // The link first: from then on the folder holds no checkpoint, never a link to a half-deleted one.
  for (const char* name : {"checkpoint", "checkpoint.link.tmp", "metrics.jsonl", "config.json"})
    remove_file((out / name).string());
  remove_tree((out / "checkpoints").string());
}

void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = parse_json_strict(line, "metrics.jsonl: ");
    } catch (const Error&) {
      j = nullptr;  // not one of our records: kept as it is
    }
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step) break;
    kept += line + "\n";
  }
  write_file_atomically(path, kept);
}

Config resume_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  check_run_folder(run_dir, RunStart::resume);
  const std::string checkpoint = (fs::path(run_dir) / "checkpoint").string();
  // Both configurations, checked against each other, as generate and eval read them.
  const Config saved = read_checkpoint_configs(checkpoint).run;
  Config config = saved;
  for (const std::string& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    if (key != "train.steps" && key != "train.keep_checkpoints")
      throw UsageError("--resume continues a run with its own configuration; of --set it takes only train.steps "
                       "(to extend the run) and train.keep_checkpoints, got " + key);
    apply_override(config, o);
  }
  if (config.train.steps < saved.train.steps)
    throw Error("train --resume: train.steps " + std::to_string(config.train.steps) + " is below the run's " +
                std::to_string(saved.train.steps) + ": a resume can extend a run, not shorten it");
  if (!config.train.curriculum.empty()) config.train.curriculum.back().steps += config.train.steps - saved.train.steps;
  validate_config(config);
  return config;
}

std::string extension_note(const Config& saved, const Config& resumed, int64_t step) {
  const TrainConfig &a = saved.train, &b = resumed.train;
  if (a.steps == b.steps) return "";
  const double lr_before = step < a.steps ? learning_rate_at(step, a.learning_rate, a.min_learning_rate, a.warmup_steps, a.steps)
                                          : a.min_learning_rate;
  const double lr_now = learning_rate_at(step, b.learning_rate, b.min_learning_rate, b.warmup_steps, b.steps);
  std::ostringstream note;
  note << "  extending the run from " << a.steps << " to " << b.steps << " steps (train.steps"
       << (b.curriculum.empty() ? "" : "; the last curriculum stage grows by " + std::to_string(b.steps - a.steps) + " steps")
       << "): the learning-rate schedule is now the one of a " << b.steps << "-step run, so step " << step + 1
       << " uses lr " << lr_now << " where the " << a.steps << "-step schedule gave " << lr_before
       << " (and the steps so far are not those of a run started with " << b.steps << ")\n";
  return note.str();
}

}  // namespace swiattn
