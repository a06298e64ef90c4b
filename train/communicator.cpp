// train/communicator.cpp: host values through a communicator, NCCL ranks, and the start of a
// data-parallel run from the environment (see communicator.h).
#include "train/communicator.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "tensor/cuda/device.h"

namespace swiattn {

namespace fs = std::filesystem;

std::vector<double> all_reduce_values(Communicator& comm, const std::vector<double>& values, CollectiveOp op) {
  if (values.empty()) return {};
  Tensor buffer = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::F64);
  if (comm.device() != Device::CPU) buffer = buffer.to(comm.device());
  comm.all_reduce(buffer, op);
  comm.finish();
  return buffer.to_vector();  // the copy back waits for the collective
}

std::vector<double> all_gather_values(Communicator& comm, const std::vector<double>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n == 0) return {};
  Tensor send = Tensor::from_vector(values, {n}, DType::F64);
  if (comm.device() != Device::CPU) send = send.to(comm.device());
  const Tensor recv = Tensor::empty({comm.world_size() * n}, DType::F64, comm.device());
  comm.all_gather(send, recv);
  comm.finish();
  return recv.to_vector();
}

NcclRanks::NcclRanks(int rank, int world, const std::string& unique_id) : comm_(rank, world, unique_id) {}

std::string NcclRanks::description() const { return cuda::nccl_description(); }

// ---------------------------------------------------------------------------------------------
// The start from the environment

namespace {

// The integer value of environment variable `name`, or nullopt when unset.
std::optional<int> env_int(const char* name) {
  const char* text = std::getenv(name);
  if (!text) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0 || value < 0 || value > 1 << 20)
    throw Error(std::string("data parallel: ") + name + "=\"" + text + "\" is not a non-negative integer");
  return static_cast<int>(value);
}

bool valid_launch_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

void publish_rendezvous_id(const std::string& path_text, const std::string& id) {
  const fs::path path(path_text);
  fs::create_directories(path.parent_path());
  const fs::path staging = path.string() + ".staging." + std::to_string(getpid());
  {
    std::ofstream out(staging, std::ios::binary | std::ios::trunc);
    out.write(id.data(), static_cast<std::streamsize>(id.size()));
    out.flush();
    if (!out) throw Error("data parallel: cannot write " + staging.string());
  }
  const int linked = link(staging.c_str(), path.c_str());
  const int link_errno = errno;
  std::error_code ignored;
  fs::remove(staging, ignored);
  if (linked != 0) {
    if (link_errno == EEXIST)
      throw Error("data parallel: " + path.string() + " exists: SWIATTN_LAUNCH_ID must be fresh for every start " +
                  "(remove the file if no run is starting with this id)");
    throw Error("data parallel: cannot create " + path.string() + ": " + std::strerror(link_errno));
  }
}

std::string wait_for_rendezvous_id(const std::string& path_text, size_t bytes, int rank) {
  const fs::path path(path_text);
  const int timeout = env_int("SWIATTN_RENDEZVOUS_TIMEOUT").value_or(600);
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    std::error_code ec;
    if (fs::exists(path, ec) && fs::file_size(path, ec) == bytes) {
      const std::string id = read_all(path);
      if (id.size() == bytes) return id;
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout)
      throw Error("data parallel: rank " + std::to_string(rank) + " waited " + std::to_string(timeout) + " s for " +
                  path.string() + " from rank 0 (is rank 0 running, with the same --out and SWIATTN_LAUNCH_ID, "
                  "on a file system this rank sees? SWIATTN_RENDEZVOUS_TIMEOUT sets the wait)");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<LaunchEnvironment> launch_environment() {
  const std::optional<int> world = env_int("WORLD_SIZE");
  const std::optional<int> rank = env_int("RANK");
  if (!world) {
    if (rank) throw Error("data parallel: RANK is set but WORLD_SIZE is not (set both, and LOCAL_RANK)");
    return std::nullopt;
  }
  LaunchEnvironment env;
  env.world = *world;
  if (env.world < 1) throw Error("data parallel: WORLD_SIZE must be >= 1, got 0");
  if (!rank) throw Error("data parallel: WORLD_SIZE is set but RANK is not (set both, and LOCAL_RANK)");
  env.rank = *rank;
  if (env.rank >= env.world)
    throw Error("data parallel: RANK=" + std::to_string(env.rank) + " but WORLD_SIZE=" + std::to_string(env.world) +
                " (ranks are 0 .. WORLD_SIZE - 1)");
  env.local_rank = env_int("LOCAL_RANK").value_or(env.world == 1 ? 0 : -1);
  if (env.local_rank < 0)
    throw Error("data parallel: LOCAL_RANK is not set (the GPU of this rank on its machine, 0 .. GPUs - 1)");
  const char* id = std::getenv("SWIATTN_LAUNCH_ID");
  if (id) env.launch_id = id;
  else if (env.world == 1) env.launch_id = "single-" + std::to_string(getpid());
  else
    throw Error("data parallel: SWIATTN_LAUNCH_ID is not set: give every rank of this start the same fresh "
                "value (e.g. the job id; swiattn launch sets it)");
  if (!valid_launch_id(env.launch_id))
    throw Error("data parallel: SWIATTN_LAUNCH_ID=\"" + env.launch_id +
                "\": use 1 to 64 letters, digits, '.', '_' or '-'");
  return env;
}

std::string rendezvous_path(const std::string& out_dir, const std::string& launch_id) {
  return (fs::path(out_dir) / "distributed" / ("nccl-id." + launch_id)).string();
}

std::unique_ptr<Communicator> connect_ranks(const LaunchEnvironment& env, const std::string& out_dir,
                                            std::ostream& log) {
  if (!cuda::nccl_compiled() || !cuda::nccl_unavailable_reason().empty())
    throw Error("data parallel: NCCL is not available: " + cuda::nccl_unavailable_reason());
  // The GPU before any other CUDA work of this process. A process that sees one GPU only (each
  // rank given its own CUDA_VISIBLE_DEVICES) uses it whatever LOCAL_RANK says.
  const int devices = cuda::device_count();
  cuda::use_device(devices == 1 ? 0 : env.local_rank);
  const fs::path path = rendezvous_path(out_dir, env.launch_id);
  const size_t id_bytes = 128;  // NCCL_UNIQUE_ID_BYTES
  std::string id;
  if (env.rank == 0) {
    id = cuda::nccl_unique_id();
    publish_rendezvous_id(path.string(), id);
  } else {
    id = wait_for_rendezvous_id(path.string(), id_bytes, env.rank);
  }
  log << "  rank " << env.rank << " of " << env.world << ": CUDA device " << cuda::current_device()
      << ", joining the NCCL communicator (" << path.string() << ")\n" << std::flush;
  auto comm = std::make_unique<NcclRanks>(env.rank, env.world, id);
  if (env.rank == 0) {  // every rank has joined, so every rank has read the file
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  return comm;
}

}  // namespace swiattn
