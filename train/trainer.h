// train/trainer.h: the training loop behind `swiattn train`.
//
// One step: sample a batch (B, T) of token windows, forward, mean next-token cross-entropy plus
// the efficiency regulariser of the switch layers (Eq. 9), backward, clip the global gradient
// norm, one AdamW step at the scheduled learning rate, then the optional target-ratio controller.
// Progress lines go to `log`; each progress line, validation, skipped batch and the final summary
// is also a record of OUT/metrics.jsonl, with its kind and wall-clock time (docs/training.md).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "model/transformer.h"
#include "train/config.h"
#include "train/held_out.h"  // evaluate_loss: the validation loss

namespace swiattn {

struct TrainSummary {
  double unigram_entropy = 0.0;   // nats per token of the training split (the no-context baseline)
  double initial_val_loss = 0.0;  // before the first step
  double final_val_loss = 0.0;    // after the last step
  int64_t tokens_trained = 0;
  double seconds = 0.0;
  std::string sample;             // text generated after training ("" if sample_tokens = 0)
  std::vector<double> final_layer_ratios;  // validation full-attention ratio per switch layer
  int64_t skipped_batches = 0;             // batches skipped for non-finite values
  int64_t peak_device_bytes = 0;  // the most bytes held by tensors at once on train.device while training
};

// The stages of train.curriculum with their batch sizes filled in (0 -> train.batch_size); one
// stage of (train.steps, train.seq_len, train.batch_size) without a curriculum.
std::vector<CurriculumStage> curriculum_stages(const TrainConfig& train);
// The index of the stage that 0-based step `step` runs in (the last stage for step >= train.steps).
size_t curriculum_stage_at(const std::vector<CurriculumStage>& stages, int64_t step);

// Runs the whole job described by `config`, writing into out_dir (created if needed):
// config.json (the resolved configuration), metrics.jsonl, and checkpoints: out_dir/checkpoint
// links to the newest complete one (every train.checkpoint_interval steps and at the end;
// train/train_state.h). A NaN or infinity in a step stops the run, naming the first layer where
// it appeared, or skips the batch (train.on_nonfinite). With train.init_from, the model starts from that
// checkpoint's weights (continual pretraining, spec §6); the loss adds the efficiency
// regulariser (train/regularizer.h) whenever the model has switch layers.
// resume = true continues the run in out_dir from out_dir/checkpoint: weights, optimizer moments,
// step (and so the schedule), data position, regulariser controller state; on the CPU the losses
// then equal those of an uninterrupted run bit for bit (same thread count). On CUDA they agree to
// rounding, not bit for bit (float atomics in the attention backward sum in varying order),
// unless train.deterministic is set: then every sum runs in a fixed order, and two runs on the
// same GPU write the same checkpoint bytes (tests/test_cuda_deterministic.cpp).
// train.device "cuda" trains on the GPU (train.dtype "bfloat16": mixed precision).
// overwrite = true lets a fresh run replace a run already in out_dir (train/run_folder.h; without
// it such a folder is refused); the old run is removed only once the new one starts. A resumed
// run that has already reached train.steps does nothing and writes nothing.
// data_parallel: this process's rank of a data-parallel run (train/data_parallel.h); nullptr is the
// plain single-process run. [data-parallel]
class DataParallel;
TrainSummary run_training(const Config& config, const std::string& out_dir, std::ostream& log,
                          bool resume = false, bool overwrite = false, DataParallel* data_parallel = nullptr);

}  // namespace swiattn
