// train/run_checks.cpp: see train/run_checks.h.
#include "train/run_checks.h"

#include <algorithm>
#include <filesystem>
#include <ostream>

#include "model/memory_estimate.h"

namespace swiattn {

void require_training_memory(const Config& config, Device device, DType dtype) {
  const TrainConfig& t = config.train;
  int64_t batch = t.batch_size, seq_len = t.seq_len;  // the step with the most tokens
  for (const CurriculumStage& c : t.curriculum) {
    const int64_t b = c.batch_size ? c.batch_size : t.batch_size;
    if (b * c.seq_len > batch * seq_len) batch = b, seq_len = c.seq_len;  // products bounded by validate_config
  }
  const MemoryEstimate e = estimate_memory(config.model, dtype, /*training=*/true, batch, seq_len,
                                           "train.batch_size x train.seq_len", t.dtype == "bfloat16");
  require_memory_fits(e, device, "train");
}

void check_resumed_state(const TrainingState& state, const AdamW& optimizer, uint64_t loader_seed,
                         const std::string& checkpoint_dir) {
  if (state.loader_rng_seed != loader_seed)
    throw Error("resume: " + checkpoint_dir + " was written with another train.seed");
  // The optimizer takes one step per trained batch; a skipped batch takes none.
  if (optimizer.steps_taken() != state.step - state.skipped_batches)
    throw Error("resume: " + checkpoint_dir + ": optimizer.safetensors has taken " +
                std::to_string(optimizer.steps_taken()) + " steps but trainer_state.json says step " +
                std::to_string(state.step) + " with " + std::to_string(state.skipped_batches) +
                " skipped batches: the two files are not of one save");
}

Error nonfinite_weights_error(const std::string& where, int64_t step, const std::string& out_dir) {
  const std::filesystem::path link = std::filesystem::path(out_dir) / "checkpoint";
  std::error_code ec;
  return Error("train: non-finite values in " + where + " after the optimizer step of step " + std::to_string(step) +
               " (is train.learning_rate too high?); an update that is applied cannot be skipped like a batch: "
               "stopped, the last checkpoint is " +
               (std::filesystem::exists(link, ec) ? link.string() + " (saved before)" : std::string("none")));
}

TrainSummary finished_run_summary(const TrainingState& state, const std::string& out_dir, std::ostream& log) {
  log << "swiattn train: the run in " << out_dir << " already finished (step " << state.step
      << " = train.steps): nothing to do, nothing changed; to train it longer: --resume " << out_dir
      << " --set train.steps=N\n";
  TrainSummary summary;
  fill_summary_from_state(summary, state);
  return summary;
}

void fill_summary_from_state(TrainSummary& summary, const TrainingState& state) {
  summary.initial_val_loss = state.initial_val_loss;
  summary.final_val_loss = state.last_val_loss;
  summary.final_layer_ratios = state.last_val_ratios;
  summary.tokens_trained = state.tokens_trained;
  summary.skipped_batches = state.skipped_batches;
}

}  // namespace swiattn
