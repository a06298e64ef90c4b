// kernels/cuda/nccl.h: NCCL collectives on CUDA tensors, for data-parallel training
// (train/data_parallel.h, docs/distributed.md). Plain C++: no CUDA or NCCL types.
//
// The NCCL library is loaded when the first communicator is made (dlopen), not linked: the
// binaries run on machines without NCCL, and only a data-parallel run needs it. The header is
// needed at build time: CMake defines SWIATTN_HAVE_NCCL when it finds nccl.h (the CUDA toolkit
// ships it, or Debian's libnccl-dev). Which library is loaded, first found wins:
//   1. the file named by the environment variable SWIATTN_NCCL_LIBRARY;
//   2. "libnccl.so.2" through the dynamic loader (LD_LIBRARY_PATH, ldconfig);
//   3. the library CMake found at build time.
//
// Streams: every collective runs on the communicator's own stream (created non-blocking, so the
// legacy default stream, where every kernel of this project runs, does not wait for it). A
// collective first waits for all work queued on the default stream so far (an event), so its
// buffer holds what the kernels before it wrote; finish() makes the default stream wait for every
// collective queued so far, so the kernels after it see the results. Buffers handed to a
// collective must stay alive until finish() (or synchronize()) has been called.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

enum class CollectiveOp { sum, mean, min, max };

#ifdef SWIATTN_HAVE_CUDA

// True when this build has the NCCL code path (SWIATTN_HAVE_NCCL).
bool nccl_compiled();
// Loads the library if needed: "" when it loads, else why not (one line naming what was tried).
std::string nccl_unavailable_reason();
// "NCCL 2.28.9 (/usr/local/cuda/lib64/libnccl.so.2)"; throws Error when unavailable.
std::string nccl_description();

// The bytes of a fresh ncclUniqueId (NCCL_UNIQUE_ID_BYTES = 128). Rank 0 makes it and every rank
// passes the same bytes to NcclCommunicator; the process that made it must live until every rank
// has joined (it holds NCCL's bootstrap listener).
std::string nccl_unique_id();

// Makes `index` the current CUDA device of this process (cudaSetDevice); call it before any other
// CUDA work. Throws Error naming the index and the number of devices when there is no such device.
void use_device(int index);
int current_device();

// One rank's handle on a communicator of `world` ranks (ncclCommInitRank on the current device).
// Blocks until every rank has joined. Throws Error with NCCL's message on failure.
class NcclCommunicator {
 public:
  NcclCommunicator(int rank, int world, const std::string& unique_id);
  ~NcclCommunicator();  // waits for the queued collectives, then destroys the communicator
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const;
  int world_size() const;

  // buffer <- op over every rank's buffer, in place. A CUDA tensor of float32, float64 or int32.
  // Queued on the communicator's stream (see the header comment); returns at once.
  void all_reduce(const Tensor& buffer, CollectiveOp op);
  // recv (world * n elements) <- every rank's send (n elements), in rank order. Same dtypes.
  void all_gather(const Tensor& send, const Tensor& recv);
  // The default stream waits for every collective queued so far (returns at once).
  void finish();
  // The host waits for every collective queued so far; throws Error on an NCCL failure.
  void synchronize();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

#else  // no CUDA backend: no devices, so no communicator

inline bool nccl_compiled() { return false; }
inline std::string nccl_unavailable_reason() { return "the CUDA backend is not compiled in (SWIATTN_CUDA=OFF)"; }
[[noreturn]] inline void no_nccl() {
  throw ::swiattn::Error("nccl: the CUDA backend is not compiled in (SWIATTN_CUDA=OFF)");
}
inline std::string nccl_description() { no_nccl(); }
inline std::string nccl_unique_id() { no_nccl(); }
inline void use_device(int) { no_nccl(); }
inline int current_device() { return 0; }
class NcclCommunicator {
 public:
  NcclCommunicator(int, int, const std::string&) { no_nccl(); }
  int rank() const { return 0; }
  int world_size() const { return 1; }
  void all_reduce(const Tensor&, CollectiveOp) { no_nccl(); }
  void all_gather(const Tensor&, const Tensor&) { no_nccl(); }
  void finish() {}
  void synchronize() {}
};

#endif

}  // namespace swiattn::cuda
