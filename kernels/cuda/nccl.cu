// kernels/cuda/nccl.cu: NCCL loaded at run time, and one rank's communicator (see nccl.h).
#include "kernels/cuda/nccl.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <type_traits>
#include <vector>

#include "tensor/cuda/common.cuh"

#ifdef SWIATTN_HAVE_NCCL
#include <nccl.h>
#endif

namespace swiattn::cuda {

void use_device(int index) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  if (index < 0 || index >= count)
    throw Error("cuda: device " + std::to_string(index) + " asked for (LOCAL_RANK), but this process sees " +
                std::to_string(count) + " CUDA device(s)" +
                (std::getenv("CUDA_VISIBLE_DEVICES") ? std::string(" (CUDA_VISIBLE_DEVICES=") +
                                                           std::getenv("CUDA_VISIBLE_DEVICES") + ")"
                                                     : std::string()));
  SWIATTN_CUDA_CHECK(cudaSetDevice(index));
}

int current_device() {
  int device = 0;
  SWIATTN_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

#ifdef SWIATTN_HAVE_NCCL

bool nccl_compiled() { return true; }

namespace {

// The NCCL functions this file calls, looked up in the loaded library (their types come from
// the nccl.h the build found).
struct NcclLibrary {
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommGetAsyncError) comm_get_async_error = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  std::string path;     // the file it came from
  int version = 0;      // ncclGetVersion: major * 10000 + minor * 100 + patch
  std::string failure;  // "" when loaded
};

// 2.10 is the first NCCL with ncclAvg.
constexpr int kMinimumVersion = 21000;

std::string version_string(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
}

// Resolves every symbol of `lib` from the handle; "" on success, else the first missing name.
std::string resolve(void* handle, NcclLibrary& lib) {
  auto get = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
    return fn != nullptr;
  };
  if (!get(lib.get_version, "ncclGetVersion")) return "ncclGetVersion";
  if (!get(lib.error_string, "ncclGetErrorString")) return "ncclGetErrorString";
  if (!get(lib.get_unique_id, "ncclGetUniqueId")) return "ncclGetUniqueId";
  if (!get(lib.comm_init_rank, "ncclCommInitRank")) return "ncclCommInitRank";
  if (!get(lib.comm_destroy, "ncclCommDestroy")) return "ncclCommDestroy";
  if (!get(lib.comm_abort, "ncclCommAbort")) return "ncclCommAbort";
  if (!get(lib.comm_get_async_error, "ncclCommGetAsyncError")) return "ncclCommGetAsyncError";
  if (!get(lib.all_reduce, "ncclAllReduce")) return "ncclAllReduce";
  if (!get(lib.all_gather, "ncclAllGather")) return "ncclAllGather";
  return "";
}

NcclLibrary load_library() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("SWIATTN_NCCL_LIBRARY"); env && *env) candidates.push_back(env);
  candidates.push_back("libnccl.so.2");
#ifdef SWIATTN_NCCL_BUILD_LIBRARY
  candidates.push_back(SWIATTN_NCCL_BUILD_LIBRARY);
#endif
  NcclLibrary lib;
  std::string tried;
  for (const std::string& name : candidates) {
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      tried += (tried.empty() ? "" : "; ") + name + ": " + (why ? why : "not found");
      continue;
    }
    const std::string missing = resolve(handle, lib);
    if (!missing.empty()) {
      tried += (tried.empty() ? "" : "; ") + name + ": has no " + missing;
      dlclose(handle);
      lib = NcclLibrary{};
      continue;
    }
    Dl_info info{};
    lib.path = dladdr(reinterpret_cast<void*>(lib.get_version), &info) && info.dli_fname ? info.dli_fname : name;
    if (lib.get_version(&lib.version) != ncclSuccess || lib.version < kMinimumVersion) {
      lib.failure = lib.path + " is NCCL " + version_string(lib.version) + "; NCCL 2.10 or newer is needed";
      return lib;
    }
    return lib;
  }
  lib.failure = "the NCCL library could not be loaded (tried " + tried +
                "); install NCCL (libnccl2) or point SWIATTN_NCCL_LIBRARY at libnccl.so.2";
  return lib;
}

const NcclLibrary& library() {
  static const NcclLibrary lib = load_library();  // thread-safe, once
  return lib;
}

const NcclLibrary& loaded_library() {
  const NcclLibrary& lib = library();
  if (!lib.failure.empty()) throw Error("nccl: " + lib.failure);
  return lib;
}

void check_nccl(ncclResult_t result, const char* call, const char* file, int line) {
  if (result == ncclSuccess) return;
  throw Error(std::string("nccl error at ") + file + ":" + std::to_string(line) + ": " + call + ": " +
              library().error_string(result) + " (NCCL_DEBUG=WARN or INFO prints NCCL's own account)");
}
#define SWIATTN_NCCL_CHECK(call) check_nccl((call), #call, __FILE__, __LINE__)

ncclDataType_t nccl_dtype(DType dtype, const char* what) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I32: return ncclInt32;
    case DType::BF16: break;
  }
  throw Error(std::string("nccl ") + what + ": dtype " + dtype_name(dtype) + " (float32, float64 or int32 expected)");
}

ncclRedOp_t nccl_op(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::sum: return ncclSum;
    case CollectiveOp::mean: return ncclAvg;
    case CollectiveOp::min: return ncclMin;
    case CollectiveOp::max: return ncclMax;
  }
  return ncclSum;
}

void check_buffer(const Tensor& t, const char* what) {
  if (!t.defined() || t.device() != Device::CUDA)
    throw Error(std::string("nccl ") + what + ": the buffer must be a CUDA tensor");
}

}  // namespace

std::string nccl_unavailable_reason() { return library().failure; }

std::string nccl_description() {
  const NcclLibrary& lib = loaded_library();
  return "NCCL " + version_string(lib.version) + " (" + lib.path + ")";
}

std::string nccl_unique_id() {
  ncclUniqueId id;
  SWIATTN_NCCL_CHECK(loaded_library().get_unique_id(&id));
  return std::string(id.internal, sizeof(id.internal));
}

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // every collective of this communicator, in order
  cudaEvent_t queued = nullptr;   // recorded on the default stream before each collective
  cudaEvent_t done = nullptr;     // recorded on `stream` by finish()
  int rank = 0, world = 1;

  ~State() {
    if (stream) cudaStreamSynchronize(stream);  // errors ignored here: the communicator goes anyway
    if (comm) {
      // While an exception unwinds (this rank failed), a peer may be gone: abort, never wait.
      if (std::uncaught_exceptions() > 0) library().comm_abort(comm);
      else library().comm_destroy(comm);
    }
    if (queued) cudaEventDestroy(queued);
    if (done) cudaEventDestroy(done);
    if (stream) cudaStreamDestroy(stream);
  }
};

NcclCommunicator::NcclCommunicator(int rank, int world, const std::string& unique_id) : state_(new State) {
  const NcclLibrary& lib = loaded_library();
  if (world < 1 || rank < 0 || rank >= world)
    throw Error("nccl: rank " + std::to_string(rank) + " of a world of " + std::to_string(world) + " ranks");
  ncclUniqueId id;
  if (unique_id.size() != sizeof(id.internal))
    throw Error("nccl: the unique id has " + std::to_string(unique_id.size()) + " bytes, NCCL needs " +
                std::to_string(sizeof(id.internal)));
  std::memcpy(id.internal, unique_id.data(), sizeof(id.internal));
  state_->rank = rank;
  state_->world = world;
  SWIATTN_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
  SWIATTN_CUDA_CHECK(cudaEventCreateWithFlags(&state_->queued, cudaEventDisableTiming));
  SWIATTN_CUDA_CHECK(cudaEventCreateWithFlags(&state_->done, cudaEventDisableTiming));
  SWIATTN_NCCL_CHECK(lib.comm_init_rank(&state_->comm, world, id, rank));
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return state_->rank; }
int NcclCommunicator::world_size() const { return state_->world; }

void NcclCommunicator::all_reduce(const Tensor& buffer, CollectiveOp op) {
  check_buffer(buffer, "all_reduce");
  if (op == CollectiveOp::mean && buffer.dtype() == DType::I32)
    throw Error("nccl all_reduce: the mean of int32 values is not defined here (use sum)");
  const ncclDataType_t dtype = nccl_dtype(buffer.dtype(), "all_reduce");
  if (buffer.numel() == 0) return;
  SWIATTN_CUDA_CHECK(cudaEventRecord(state_->queued, 0));  // after the kernels queued so far
  SWIATTN_CUDA_CHECK(cudaStreamWaitEvent(state_->stream, state_->queued, 0));
  SWIATTN_NCCL_CHECK(library().all_reduce(buffer.raw(), buffer.raw(), static_cast<size_t>(buffer.numel()), dtype,
                                          nccl_op(op), state_->comm, state_->stream));
}

void NcclCommunicator::all_gather(const Tensor& send, const Tensor& recv) {
  check_buffer(send, "all_gather");
  check_buffer(recv, "all_gather");
  if (send.dtype() != recv.dtype() || recv.numel() != send.numel() * state_->world)
    throw Error("nccl all_gather: send " + shape_str(send.shape()) + " " + dtype_name(send.dtype()) + ", recv " +
                shape_str(recv.shape()) + " " + dtype_name(recv.dtype()) + ": recv needs world (" +
                std::to_string(state_->world) + ") times send's elements, same dtype");
  const ncclDataType_t dtype = nccl_dtype(send.dtype(), "all_gather");
  if (send.numel() == 0) return;
  SWIATTN_CUDA_CHECK(cudaEventRecord(state_->queued, 0));
  SWIATTN_CUDA_CHECK(cudaStreamWaitEvent(state_->stream, state_->queued, 0));
  SWIATTN_NCCL_CHECK(library().all_gather(send.raw(), recv.raw(), static_cast<size_t>(send.numel()), dtype,
                                          state_->comm, state_->stream));
}

void NcclCommunicator::finish() {
  SWIATTN_CUDA_CHECK(cudaEventRecord(state_->done, state_->stream));
  SWIATTN_CUDA_CHECK(cudaStreamWaitEvent(0, state_->done, 0));
}

void NcclCommunicator::synchronize() {
  SWIATTN_CUDA_CHECK(cudaStreamSynchronize(state_->stream));
  ncclResult_t async = ncclSuccess;
  SWIATTN_NCCL_CHECK(library().comm_get_async_error(state_->comm, &async));
  SWIATTN_NCCL_CHECK(async);
}

#else  // CUDA without nccl.h: the data-parallel path says what is missing

namespace {
[[noreturn]] void not_built() {
  throw Error("nccl: this build has no NCCL support (CMake found no nccl.h: install libnccl-dev or the CUDA "
              "toolkit's NCCL, then re-run cmake)");
}
}  // namespace

bool nccl_compiled() { return false; }
std::string nccl_unavailable_reason() {
  return "this build has no NCCL support (CMake found no nccl.h)";
}
std::string nccl_description() { not_built(); }
std::string nccl_unique_id() { not_built(); }
struct NcclCommunicator::State {};
NcclCommunicator::NcclCommunicator(int, int, const std::string&) { not_built(); }
NcclCommunicator::~NcclCommunicator() = default;
int NcclCommunicator::rank() const { return 0; }
int NcclCommunicator::world_size() const { return 1; }
void NcclCommunicator::all_reduce(const Tensor&, CollectiveOp) { not_built(); }
void NcclCommunicator::all_gather(const Tensor&, const Tensor&) { not_built(); }
void NcclCommunicator::finish() {}
void NcclCommunicator::synchronize() {}

#endif

}  // namespace swiattn::cuda
