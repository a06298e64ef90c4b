// tests/thread_communicator.h: the ranks of a data-parallel run as threads of one process, with
// CPU buffers, so the trainer's data-parallel path (train/data_parallel.h) runs in CI without
// GPUs or NCCL. Sums run in rank order (in double, rounded once to the buffer's dtype), so the
// results are the same on every rank and in every run.
//
//   ThreadGroup group(3);
//   run_ranks(3, [&](int rank) { ThreadCommunicator comm(group, rank); ... });
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "train/communicator.h"

namespace swiattn::testing {

// What the threads of one group share: a barrier and one buffer slot per rank.
class ThreadGroup {
 public:
  explicit ThreadGroup(int world) : world_(world), send_(static_cast<size_t>(world)) {}
  int world() const { return world_; }

  // Every rank's `mine` in rank order, once all ranks have called this with the same count.
  std::vector<std::vector<double>> exchange(int rank, std::vector<double> mine) {
    send_[static_cast<size_t>(rank)] = std::move(mine);
    barrier();  // every rank has put its values
    std::vector<std::vector<double>> all = send_;
    barrier();  // every rank has read them: the slots may be reused
    return all;
  }

 private:
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == world_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    // A rank that failed never arrives: the others fail too instead of waiting forever.
    if (!cv_.wait_for(lock, std::chrono::seconds(120), [&] { return generation_ != generation; }))
      throw Error("ThreadGroup: a rank did not reach the collective within 120 s (did another rank fail?)");
  }

  int world_;
  std::vector<std::vector<double>> send_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_.world(); }
  Device device() const override { return Device::CPU; }
  std::string description() const override { return "threads of one process (tests)"; }
  int collectives = 0;  // how many collectives this rank took part in

  void all_reduce(const Tensor& buffer, CollectiveOp op) override {
    ++collectives;
    const auto all = group_.exchange(rank_, buffer.to_vector());
    std::vector<double> out = all[0];
    for (size_t r = 1; r < all.size(); ++r)
      for (size_t i = 0; i < out.size(); ++i) {
        const double x = all[r][i];
        if (op == CollectiveOp::sum || op == CollectiveOp::mean) out[i] += x;
        if (op == CollectiveOp::min) out[i] = std::min(out[i], x);
        if (op == CollectiveOp::max) out[i] = std::max(out[i], x);
      }
    if (op == CollectiveOp::mean)
      for (double& x : out) x /= static_cast<double>(all.size());
    write(buffer, out);
  }

  void all_gather(const Tensor& send, const Tensor& recv) override {
    ++collectives;
    const auto all = group_.exchange(rank_, send.to_vector());
    std::vector<double> out;
    for (const auto& part : all) out.insert(out.end(), part.begin(), part.end());
    write(recv, out);
  }

  void finish() override {}

 private:
  static void write(const Tensor& buffer, const std::vector<double>& values) {
    if (buffer.dtype() == DType::I32) {
      int32_t* p = buffer.data<int32_t>();
      for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<int32_t>(values[i]);
      return;
    }
    Tensor(buffer).copy_from(Tensor::from_vector(values, buffer.shape(), DType::F64));  // one rounding
  }

  ThreadGroup& group_;
  int rank_;
};

// Runs f(rank) on `world` threads and waits; rethrows the first exception a rank threw. A rank
// that throws while the others wait in a collective would hang them, so f must not throw in
// the middle of the collectives unless every rank throws there.
inline void run_ranks(int world, const std::function<void(int rank)>& f) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        f(r);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace swiattn::testing
