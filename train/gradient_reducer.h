// train/gradient_reducer.h: every parameter's gradient replaced by its mean over the ranks of a
// data-parallel run, in buckets, started while the backward still runs.
//
// Each rank's loss is the mean over its B / W rows of the batch, so the mean of the W ranks'
// gradients is the gradient of the whole batch's mean loss: what one process computing all B
// rows gets, up to the order of the sums.
//
// Buckets: the parameters, in the reverse of the model's order (the order in which the backward
// finishes them: the last layer first), are grouped into buckets of at most bucket_bytes (a
// parameter larger than that is a bucket alone); each bucket is one flat buffer, every parameter
// a slot in it. One step, in Var::backward's leaf_ready hook and after it:
//   1. as a parameter's gradient is complete, it is copied into its slot; when every slot of the
//      next bucket is filled, that bucket is all-reduced (mean) on the communicator's stream while
//      the backward goes on (overlap). Buckets go strictly in order, so every rank issues the same
//      collectives in the same order whatever order its gradients finish in;
//   2. after the backward: slots of parameters no backward reached are zeroed, the remaining
//      buckets all-reduced, and one small all-reduce (max) of a flag per parameter tells which
//      parameters got a gradient on some rank;
//   3. the device waits for the collectives; each gradient is copied back from its slot. A
//      parameter with a gradient on no rank keeps an undefined grad (AdamW skips it, as it would
//      in one process).
// With overlap off, steps 1-3 all run after the backward (the simple version).
// Why overlap: the all-reduce moves 2 (W - 1) / W of the gradient bytes in and out of each GPU;
// started early it hides behind the backward's kernels instead of adding to the step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "autograd/autograd.h"
#include "train/communicator.h"

namespace swiattn {

class GradientReducer {
 public:
  // params: one device and one dtype (float32 / float64), the communicator's device.
  GradientReducer(Communicator& comm, std::vector<Var> params, size_t bucket_bytes, bool overlap);

  // loss.backward(), with every parameter's grad then the mean over the ranks (see above).
  void backward(const Var& loss);

  // The same parameters (the same graph nodes) in the same order as at construction?
  bool same_params(const std::vector<Var>& params) const;
  size_t num_buckets() const { return buckets_.size(); }
  int64_t largest_bucket_bytes() const;
  bool overlap() const { return overlap_; }

 private:
  struct Bucket {
    Tensor flat;                 // (sum of its parameters' numel), the parameters' dtype
    std::vector<size_t> params;  // indices into params_
    size_t filled = 0;           // slots filled this step
  };
  void on_leaf_ready(const Node& leaf);
  void fill_slot(size_t param);           // copies params_[param]'s grad into its slot
  void start_ready_buckets();             // all-reduces the next buckets whose slots are all filled

  Communicator& comm_;
  std::vector<Var> params_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;         // per parameter
  std::vector<Tensor> slot_;              // per parameter: a view of its bucket, the parameter's shape
  std::vector<uint8_t> filled_;           // per parameter, this step
  std::unordered_map<const Node*, size_t> index_of_;
  size_t next_bucket_ = 0;                // the first bucket not yet all-reduced this step
};

}  // namespace swiattn
