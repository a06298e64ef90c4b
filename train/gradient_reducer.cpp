// train/gradient_reducer.cpp: see gradient_reducer.h.
#include "train/gradient_reducer.h"

#include <algorithm>

namespace swiattn {

GradientReducer::GradientReducer(Communicator& comm, std::vector<Var> params, size_t bucket_bytes, bool overlap)
    : comm_(comm), params_(std::move(params)), overlap_(overlap) {
  if (params_.empty()) throw Error("GradientReducer: no parameters");
  const Tensor& first = params_.front().value();
  for (const Var& p : params_) {
    if (p.value().device() != first.device() || p.value().dtype() != first.dtype())
      throw Error("GradientReducer: parameter " + p.name() + " is " + dtype_name(p.value().dtype()) + " on " +
                  device_name(p.value().device()) + ", the first is " + dtype_name(first.dtype()) + " on " +
                  device_name(first.device()) + " (one dtype and device expected)");
    if (!index_of_.emplace(p.node(), index_of_.size()).second)
      throw Error("GradientReducer: parameter " + p.name() + " is listed twice");
  }
  if (first.device() != comm.device())
    throw Error(std::string("data parallel: the parameters are on ") + device_name(first.device()) +
                " but the communicator's buffers live on " + device_name(comm.device()) +
                (comm.device() == Device::CUDA ? " (NCCL: train.device must be \"cuda\")" : ""));
  if (first.dtype() != DType::F32 && first.dtype() != DType::F64)
    throw Error(std::string("GradientReducer: ") + dtype_name(first.dtype()) + " parameters (float32 or float64 expected)");

  // Buckets in the reverse of the parameters' order, each at most bucket_bytes (or one parameter).
  const size_t element = dtype_size(first.dtype());
  bucket_of_.resize(params_.size());
  std::vector<std::vector<size_t>> groups;
  size_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const size_t b = static_cast<size_t>(params_[k].value().numel()) * element;
    if (groups.empty() || (bytes + b > bucket_bytes && !groups.back().empty())) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += b;
  }
  slot_.resize(params_.size());
  for (const std::vector<size_t>& group : groups) {
    Bucket bucket;
    int64_t numel = 0;
    for (size_t k : group) numel += params_[k].value().numel();
    bucket.flat = Tensor::zeros({numel}, first.dtype(), first.device());  // (numel) flat
    int64_t offset = 0;
    for (size_t k : group) {
      const Tensor& v = params_[k].value();
      slot_[k] = bucket.flat.slice(offset, offset + v.numel()).reshape(v.shape());
      bucket_of_[k] = buckets_.size();
      offset += v.numel();
    }
    bucket.params = group;
    buckets_.push_back(std::move(bucket));
  }
  filled_.assign(params_.size(), 0);
}

bool GradientReducer::same_params(const std::vector<Var>& params) const {
  if (params.size() != params_.size()) return false;
  for (size_t k = 0; k < params.size(); ++k)
    if (params[k].node() != params_[k].node()) return false;
  return true;
}

int64_t GradientReducer::largest_bucket_bytes() const {
  int64_t most = 0;
  for (const Bucket& b : buckets_) most = std::max<int64_t>(most, static_cast<int64_t>(b.flat.nbytes()));
  return most;
}

void GradientReducer::fill_slot(size_t k) {
  slot_[k].copy_from(params_[k].grad());  // on CUDA: a device copy on the default stream
  filled_[k] = 1;
  ++buckets_[bucket_of_[k]].filled;
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].filled == buckets_[next_bucket_].params.size()) {
    comm_.all_reduce(buckets_[next_bucket_].flat, CollectiveOp::mean);  // after the copies queued before it
    ++next_bucket_;
  }
}

void GradientReducer::on_leaf_ready(const Node& leaf) {
  const auto it = index_of_.find(&leaf);
  if (it == index_of_.end() || filled_[it->second] || !leaf.grad.defined()) return;
  fill_slot(it->second);
  start_ready_buckets();
}

void GradientReducer::backward(const Var& loss) {
  std::fill(filled_.begin(), filled_.end(), uint8_t{0});
  for (Bucket& b : buckets_) b.filled = 0;
  next_bucket_ = 0;

  // 1. The backward; with overlap, finished buckets are all-reduced as it goes.
  // (The step's graph is not used again: its memory is released as the backward goes.)
  if (overlap_) loss.backward([this](const Node& leaf) { on_leaf_ready(leaf); }, GraphAfterBackward::Release);
  else loss.backward(nullptr, GraphAfterBackward::Release);

  // 2. What the backward left: zeros for parameters without a gradient, the remaining buckets,
  //    and which parameters had a gradient on any rank.
  std::vector<int32_t> had_grad(params_.size(), 0);
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!filled_[k]) {
      if (params_[k].grad().defined()) {
        fill_slot(k);
      } else {
        slot_[k].fill(0.0);
        filled_[k] = 1;
        ++buckets_[bucket_of_[k]].filled;
      }
    }
    had_grad[k] = params_[k].grad().defined() ? 1 : 0;
  }
  start_ready_buckets();
  Tensor any_grad = Tensor::from_ints(had_grad, {static_cast<int64_t>(had_grad.size())});
  if (comm_.device() != Device::CPU) any_grad = any_grad.to(comm_.device());
  comm_.all_reduce(any_grad, CollectiveOp::max);

  // 3. The device waits for the collectives; the means go back into the gradients.
  comm_.finish();
  const std::vector<int32_t> anywhere = any_grad.to_ints();  // waits for the collectives
  for (size_t k = 0; k < params_.size(); ++k)
    if (anywhere[k]) params_[k].grad_buffer().copy_from(slot_[k]);
}

}  // namespace swiattn
