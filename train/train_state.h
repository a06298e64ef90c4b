// train/train_state.h: what a run needs to continue exactly where it stopped, and the checkpoint
// rotation that can neither lose nor overwrite the last complete checkpoint.
//
// OUT/checkpoints/step-NNNNNNNN/ holds one complete checkpoint (docs/checkpoints.md), and
// OUT/checkpoint is a symbolic link to the newest one. A save never touches the directory the
// link points to:
//   1. it writes the new checkpoint into a fresh staging directory, checkpoints/.partial-step-N/
//      (every file written atomically and fsynced, then the directory fsynced);
//   2. renames it to its final name, step-N (or step-N.2, .3, ... when a directory of that name
//      exists and is the linked one), and fsyncs checkpoints/;
//   3. points the link at it with one rename() of a new link over the old one, and fsyncs OUT/;
//   4. only then deletes what is no longer wanted: staging directories of interrupted saves,
//      directories newer than the linked one (left by a run that was killed), and all but the
//      newest train.keep_checkpoints. A failure there is left for the next save to retry.
// A run killed, or failing (a full disk), at any moment therefore leaves OUT/checkpoint linking a
// complete checkpoint: the new one or the previous one (tests/test_checkpoint_faults.cpp kills it
// and fails it at every operation of a save).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace swiattn {

// Everything beyond weights and optimizer moments that the next step depends on.
struct TrainingState {
  int64_t step = 0;                // optimizer steps done
  uint64_t loader_rng_seed = 0;    // BatchLoader's Rng: the data position
  uint64_t loader_rng_counter = 0;
  double gamma_base = 0.0;         // Eq. 8's gamma_base (constant: the controller moves router biases)
  double router_bias_shift = 0.0;  // the target-ratio controller's total shift of the router biases so far
  int64_t skipped_batches = 0;     // non-finite batches skipped so far
  int64_t tokens_trained = 0;
  double initial_val_loss = 0.0;
  double last_val_loss = 0.0;      // the latest evaluation ("final_val_loss" on disk)
  std::vector<double> last_val_ratios;
};

nlohmann::json training_state_to_json(const TrainingState& state);
// The fields and their JSON types; `source` starts every Error.
TrainingState training_state_from_json(const nlohmann::json& j, const std::string& source);
// The values against the run they belong to: step in [0, train.steps], skipped batches and tokens
// trained no more than those steps allow, losses finite and >= 0, one full-attention ratio in
// [0, 1] per switch layer, the regulariser's values finite. An Error naming `source` and the
// field otherwise (a step of 10^18 would make the next save outrank every real checkpoint).
void validate_training_state(const TrainingState& state, const Config& config, const std::string& source);

// Writes OUT/checkpoints/step-<step>/ and points OUT/checkpoint at it (the header's steps 1-4),
// keeping config.train.keep_checkpoints checkpoints; returns the link path. On failure an Error
// says which checkpoint OUT/checkpoint still links.
std::string save_training_checkpoint(const std::string& out_dir, const Transformer& model,
                                     const Config& config, const AdamW& optimizer,
                                     const TrainingState& state);

// The step of the checkpoint OUT/checkpoint links, or -1 when there is none (no link, or a link
// whose target is gone).
int64_t linked_checkpoint_step(const std::string& out_dir);

// Test-only fault injection, read from the environment variable SWIATTN_TEST_KILL_AT:
// "after-save:K" kills the process (SIGKILL) right after the checkpoint of step K is linked;
// "mid-save:K" kills it after the step's files are written but before the link moves to them.
// Unset: does nothing.
void maybe_kill_for_test(const char* moment, int64_t step);

}  // namespace swiattn
