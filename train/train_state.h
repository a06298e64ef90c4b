// train/train_state.h: what a run needs to continue exactly where it stopped, and the atomic
// checkpoint rotation that keeps the last complete checkpoint safe.
//
// OUT/checkpoints/step-NNNNNNNN/ holds one complete checkpoint (docs/checkpoints.md), and
// OUT/checkpoint is a symbolic link to the newest complete one. A save writes a new step
// directory in full, then replaces the link with rename() (atomic), then deletes the older
// directories. A run killed at any moment therefore leaves OUT/checkpoint pointing to a
// complete checkpoint: the new one or the previous one.
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
TrainingState training_state_from_json(const nlohmann::json& j, const std::string& source);

// Writes OUT/checkpoints/step-<step>/ and points OUT/checkpoint at it; returns the link path.
std::string save_training_checkpoint(const std::string& out_dir, const Transformer& model,
                                     const Config& config, const AdamW& optimizer,
                                     const TrainingState& state);

// Test-only fault injection, read from the environment variable SWIATTN_TEST_KILL_AT:
// "after-save:K" kills the process (SIGKILL) right after the checkpoint of step K is linked;
// "mid-save:K" kills it after the step's files are written but before the link moves to them.
// Unset: does nothing.
void maybe_kill_for_test(const char* moment, int64_t step);

}  // namespace swiattn
