// train/run_checks.h: the checks run_training (train/trainer.cpp) makes before and while it
// trains, kept here so the training loop reads as the algorithm: the memory estimate, the resumed
// state against the optimizer and the data stream, a weight that became non-finite, and what a
// resume of a finished run reports.
#pragma once

#include <iosfwd>
#include <string>

#include "tensor/tensor.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace swiattn {

// Refuses (an Error naming the key and the estimate, model/memory_estimate.h) a run whose
// weights, gradients, AdamW moments and activations of the largest step cannot fit the device.
void require_training_memory(const Config& config, Device device, DType dtype);

// A resumed state must belong to the run: its data stream (the loader's seed derives from
// train.seed) and its optimizer (steps_taken = step - skipped_batches).
void check_resumed_state(const TrainingState& state, const AdamW& optimizer, uint64_t loader_seed,
                         const std::string& checkpoint_dir);

// The Error of a weight that the optimizer step left non-finite: the run stops (an applied update
// cannot be skipped like a batch), naming the weight and the checkpoint that is left.
Error nonfinite_weights_error(const std::string& where, int64_t step, const std::string& out_dir);

// The summary fields a TrainingState holds: the losses, the ratios, the tokens, the skipped batches.
void fill_summary_from_state(TrainSummary& summary, const TrainingState& state);

// `train --resume` of a run that already reached train.steps: says so and returns its summary from
// the trainer state; writes nothing.
TrainSummary finished_run_summary(const TrainingState& state, const std::string& out_dir, std::ostream& log);

}  // namespace swiattn
