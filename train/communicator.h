// train/communicator.h: the collective operations a data-parallel run needs, and how the ranks of
// a run find each other (docs/distributed.md).
//
// A Communicator joins the `world_size()` ranks of one run; every rank calls the same
// collectives in the same order with buffers of the same shapes. Implementations:
//   - NcclRanks: one process per GPU, CUDA buffers, NCCL (kernels/cuda/nccl.h);
//   - in the tests, a group of threads in one process with CPU buffers
//     (tests/thread_communicator.h), so the trainer's data-parallel path runs in CI.
//
// Starting the ranks: each rank is a `swiattn train` process whose environment says who it is
//   RANK               0 .. WORLD_SIZE - 1 (rank 0 writes the files of the run)
//   WORLD_SIZE         the number of ranks
//   LOCAL_RANK         the GPU of this rank on its machine (cudaSetDevice(LOCAL_RANK); when the
//                      process sees one GPU only, that one)
//   SWIATTN_LAUNCH_ID  one fresh value shared by the ranks of this start (e.g. a job id)
// `swiattn launch` (train/launch.h) sets them; mpirun / srun / a shell loop can too. Rank 0 makes
// NCCL's unique id and writes it to OUT/distributed/nccl-id.<SWIATTN_LAUNCH_ID> (atomically,
// refusing a file that exists); the other ranks wait for that file, so OUT must be one folder
// all ranks see (a shared file system across machines). Rank 0 removes it once all have joined.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/cuda/nccl.h"
#include "tensor/tensor.h"

namespace swiattn {

using cuda::CollectiveOp;  // sum, mean, min, max

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual Device device() const = 0;            // where the buffers of the collectives live
  virtual std::string description() const = 0;  // for the log: "NCCL 2.28.9 (/usr/lib/...)"

  // buffer <- op over every rank's buffer, in place (float32, float64 or int32).
  virtual void all_reduce(const Tensor& buffer, CollectiveOp op) = 0;
  // recv (world * n elements) <- the n elements of every rank's send, rank after rank.
  virtual void all_gather(const Tensor& send, const Tensor& recv) = 0;
  // What runs after this on the device sees every result queued so far. On CUDA the collectives
  // run on a stream of their own; this makes the default stream wait (the host does not).
  virtual void finish() = 0;
};

// Small host values through a communicator (one copy to its device and back, then the host
// waits): a loss to log, a flag per rank, a hash.
std::vector<double> all_reduce_values(Communicator& comm, const std::vector<double>& values, CollectiveOp op);
// Every rank's values (each rank gives as many), rank after rank.
std::vector<double> all_gather_values(Communicator& comm, const std::vector<double>& values);

// One process per GPU through NCCL: the CUDA device must be chosen before (cuda::use_device).
class NcclRanks : public Communicator {
 public:
  NcclRanks(int rank, int world, const std::string& unique_id);
  int rank() const override { return comm_.rank(); }
  int world_size() const override { return comm_.world_size(); }
  Device device() const override { return Device::CUDA; }
  std::string description() const override;
  void all_reduce(const Tensor& buffer, CollectiveOp op) override { comm_.all_reduce(buffer, op); }
  void all_gather(const Tensor& send, const Tensor& recv) override { comm_.all_gather(send, recv); }
  void finish() override { comm_.finish(); }

 private:
  cuda::NcclCommunicator comm_;
};

// Who this process is in a data-parallel start, from the environment variables above.
struct LaunchEnvironment {
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  std::string launch_id;
};
// nullopt when WORLD_SIZE is not set (a plain run). Throws Error naming the variable when one is
// malformed or missing (RANK without WORLD_SIZE, RANK >= WORLD_SIZE, a launch id with characters
// other than letters, digits, '.', '_', '-', no SWIATTN_LAUNCH_ID with WORLD_SIZE > 1).
std::optional<LaunchEnvironment> launch_environment();

// The rendezvous file of a start: OUT/distributed/nccl-id.<launch id>.
std::string rendezvous_path(const std::string& out_dir, const std::string& launch_id);

// Rank 0: writes `id` to a file of its own, then links it to `path` in one step, which fails
// (Error) when `path` exists, i.e. a reused launch id: the other ranks never read half an id.
void publish_rendezvous_id(const std::string& path, const std::string& id);
// Ranks > 0: waits until `path` holds `bytes` bytes and returns them; after
// SWIATTN_RENDEZVOUS_TIMEOUT seconds (default 600) throws Error naming the file.
std::string wait_for_rendezvous_id(const std::string& path, size_t bytes, int rank);

// Chooses this rank's GPU, exchanges NCCL's unique id through the rendezvous file and joins the
// communicator (blocks until every rank has). Ranks > 0 wait for the file at most
// SWIATTN_RENDEZVOUS_TIMEOUT seconds (default 600), then throw naming the file.
std::unique_ptr<Communicator> connect_ranks(const LaunchEnvironment& env, const std::string& out_dir,
                                            std::ostream& log);

}  // namespace swiattn
