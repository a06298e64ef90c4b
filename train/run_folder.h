// train/run_folder.h: the output folder of `swiattn train` and the rules that keep a run in it
// from being lost (docs/reliability.md):
//   fresh run    a folder that holds a run (OUT/checkpoint, OUT/checkpoints/ or OUT/metrics.jsonl)
//                is refused before anything is loaded, unless overwrite;
//   overwrite    the old run is deleted, but only once the new run is known to start (its data,
//                model and initial weights are ready): a run that fails to start leaves the
//                folder as it was;
//   resume       continues the run in the folder; only train.steps (longer: the run is extended)
//                and train.keep_checkpoints may change. A finished run resumed without a longer
//                train.steps has nothing to do and changes nothing on disk.
// A fresh run writes nothing into OUT until it starts either (train/trainer.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/config.h"

namespace swiattn {

enum class RunStart { fresh, overwrite, resume };

// "" when out_dir holds no run, else what it holds: "a checkpoint at step 400, metrics.jsonl".
std::string describe_run_in(const std::string& out_dir);

// Called first: a fresh run refuses a folder holding a run (naming --resume, --out, --overwrite);
// a resume needs OUT/checkpoint.
void check_run_folder(const std::string& out_dir, RunStart start);

// overwrite, once the new run starts: removes the old run's link (first, in one step), its
// checkpoints, metrics.jsonl and config.json. Other files in the folder are left alone.
void clear_previous_run(const std::string& out_dir);

// Keeps only the lines of OUT/metrics.jsonl up to `step` (a resumed run rewrites what follows).
void truncate_metrics(const std::string& path, int64_t step);

// What `swiattn train --resume DIR [--set ...]` continues with: DIR/checkpoint/run_config.json,
// validated, with the overrides a resume allows (train.steps, at least the run's own: the last
// curriculum stage grows by the difference; train.keep_checkpoints) applied; any other key is a
// UsageError.
Config resume_config(const std::string& run_dir, const std::vector<std::string>& overrides);

// "" when `resumed` trains as many steps as `saved` (the checkpoint's run config); otherwise the
// line the trainer prints: the run is extended, and how its learning-rate schedule changes.
std::string extension_note(const Config& saved, const Config& resumed, int64_t step);

}  // namespace swiattn
