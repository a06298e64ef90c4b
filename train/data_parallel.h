// train/data_parallel.h: what the training loop does differently when W ranks (one process per
// GPU) train one model together, each on its share of every batch (docs/distributed.md).
//
// The split: train.batch_size B (and every curriculum stage's) is the GLOBAL batch; rank r
// computes rows [r B / W, (r + 1) B / W) of it (data/loader.h RowShard) and of every validation
// batch. Every rank holds the whole model, the same weights and the same AdamW moments:
//   - every rank starts from the same weights (same seed, or the same checkpoint): checked;
//   - each step the gradients are averaged over the ranks (train/gradient_reducer.h), so every
//     rank clips the same gradient and takes the same AdamW step;
//   - what decides a step is agreed on: a non-finite value on any rank skips (or stops) the step
//     everywhere; the target-ratio controller takes its quantile over every rank's tokens;
//   - logged values (loss, routing statistics, answer NLL, validation loss) are the means over
//     the ranks: the values of the whole batch;
//   - rank 0 alone writes config.json, metrics.jsonl and the checkpoints; every rank resumes
//     from them. Before every checkpoint the replicas are compared (a hash of every weight and
//     moment): a difference stops the run rather than save one rank's state as everybody's.
// Up to the order of the sums, W ranks therefore compute what one process computes with the
// same global batch.
//
// A DataParallel made without a communicator is the plain single-process run: every function
// below then is what the trainer did before (the loader unsharded, the backward plain, values
// as they are). With a communicator of one rank (a 1-rank launch), everything goes through the
// communicator, which returns each value as it was: the same numbers through the same code.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "data/loader.h"
#include "model/transformer.h"
#include "train/answer_nll.h"
#include "train/communicator.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/regularizer.h"
#include "train/trainer.h"

namespace swiattn {

class GradientReducer;

struct DataParallelOptions {
  size_t bucket_bytes = size_t(25) << 20;  // gradient bucket size (SWIATTN_BUCKET_MB)
  bool overlap = true;                     // all-reduce buckets during the backward (SWIATTN_OVERLAP)
};

class DataParallel {
 public:
  DataParallel();  // the plain single-process run
  explicit DataParallel(std::unique_ptr<Communicator> comm, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  bool active() const { return comm_ != nullptr; }  // a communicator (of 1 or more ranks)
  int rank() const;
  int world_size() const;
  bool is_rank0() const { return rank() == 0; }  // writes the run's files (true in a plain run)
  RowShard row_shard() const { return {rank(), world_size()}; }

  // Errors naming the key when the run cannot be split: the device must be the communicator's,
  // train.batch_size and every curriculum stage's batch_size a multiple of the ranks.
  void check_config(const Config& config) const;
  // One line for the training log ("" in a plain run).
  std::string description() const;
  // Every rank runs the same configuration from the same weights: throws (on every rank) naming
  // the ranks that differ from rank 0.
  void check_same_start(const Config& config, const std::vector<Var>& params) const;
  // Every rank holds the same weights and AdamW moments after `step`: throws naming the ranks.
  void check_replicas(const std::vector<Var>& params, const AdamW& optimizer, int64_t step) const;

  // This rank's rows of each validation batch (views: no copy).
  std::vector<std::pair<Tensor, Tensor>> local_rows(const std::vector<std::pair<Tensor, Tensor>>& batches) const;
  // evaluate_loss (train/held_out.h) over this rank's rows, averaged over the ranks (the ratios too).
  double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches,
                       std::vector<double>* layer_ratios) const;

  // loss.backward() (releasing the graph as it goes: GraphAfterBackward::Release); then every
  // parameter's grad is the mean over the ranks.
  void backward(const Var& loss, const std::vector<Var>& params);
  // `local`: "" or where this rank found a non-finite value. Returns "" when no rank found one,
  // else the place (this rank's, or "rank k: ..." when another rank found it).
  std::string nonfinite_on_any_rank(const std::string& local) const;
  // The target-ratio controller (train/regularizer.h) with the quantile over every rank's tokens.
  double apply_ratio_controller(const Transformer& model, const std::vector<LayerRouting>& routing,
                                const RegularizerConfig& config) const;

  // For the log: the mean over the ranks of a value, of the routing statistics (reg.loss, which
  // after the backward is only read for the log, becomes a constant holding the mean), and the
  // answer NLL of all ranks' rows.
  double mean_over_ranks(double value) const;
  void mean_over_ranks(RegularizerResult& reg) const;
  std::map<std::string, double> answer_nll(AnswerNllMeter& meter) const;

 private:
  std::unique_ptr<Communicator> comm_;
  DataParallelOptions options_;
  std::unique_ptr<GradientReducer> reducer_;  // made at the first backward
};

// The options of a data-parallel rank from the environment: SWIATTN_BUCKET_MB (default 25, > 0)
// and SWIATTN_OVERLAP (1 default, 0 off). Throws Error naming the variable when malformed.
DataParallelOptions data_parallel_options_from_environment();

// `swiattn train`: a plain run_training, or, when the environment names a rank
// (train/communicator.h: RANK, WORLD_SIZE, LOCAL_RANK, SWIATTN_LAUNCH_ID), this rank of a
// data-parallel run. Errors of a rank say which rank they come from.
TrainSummary run_training_from_environment(const Config& config, const std::string& out_dir, std::ostream& log,
                                           bool resume = false, bool overwrite = false);

}  // namespace swiattn
