// train/launch.cpp: see launch.h.
#include "train/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "io/args.h"
#include "tensor/cuda/device.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

extern char** environ;

namespace swiattn {

namespace fs = std::filesystem;

namespace {

int parse_count(const std::string& option, const std::string& text) {
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 1 || value > 1024)
    throw UsageError(option + ": expected a number of processes in [1, 1024], got \"" + text + "\"");
  return value;
}

// The environment of one rank: this process's, with the rank's variables set (replacing any).
std::vector<std::string> rank_environment(const LaunchPlan& plan, int rank, const std::string& launch_id) {
  std::map<std::string, std::string> set{{"RANK", std::to_string(rank)},
                                         {"WORLD_SIZE", std::to_string(plan.nproc)},
                                         {"LOCAL_RANK", std::to_string(rank)},
                                         {"LOCAL_WORLD_SIZE", std::to_string(plan.nproc)},
                                         {"SWIATTN_LAUNCH_ID", launch_id},
                                         {"SWIATTN_OVERLAP", plan.overlap ? "1" : "0"}};
  if (plan.bucket_mb > 0) {
    std::ostringstream mb;
    mb << plan.bucket_mb;
    set["SWIATTN_BUCKET_MB"] = mb.str();
  }
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    if (!set.count(entry.substr(0, entry.find('=')))) env.push_back(entry);
  }
  for (const auto& [key, value] : set) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The last `lines` lines of a file.
std::string tail_of(const fs::path& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& l : last) out += "    " + l + "\n";
  return out;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

}  // namespace

LaunchPlan parse_launch_args(const std::vector<std::string>& args) {
  LaunchPlan plan;
  ArgCursor a(args);
  bool found_train = false;
  while (a.next() && !(found_train = a.is("train"))) {
    if (a.is("--nproc")) {
      const std::string& option = a.option();  // before value() moves past it
      plan.nproc = parse_count(option, a.value());
    } else if (a.is("--bucket-mb")) {
      const std::string& text = a.value();
      char* end = nullptr;
      plan.bucket_mb = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(plan.bucket_mb > 0.0) || plan.bucket_mb > 4096.0)
        throw UsageError("--bucket-mb: a size in MiB in (0, 4096], got \"" + text + "\"");
    } else if (a.is("--no-overlap")) {
      plan.overlap = false;
    } else {
      throw UsageError(std::string(a.unknown("launch").what()) + " (launch options come before \"train\")");
    }
  }
  if (plan.nproc == 0) throw UsageError("launch needs --nproc N (one process per GPU)");
  if (!found_train) throw UsageError("launch needs the command to start: swiattn launch --nproc N train [options]");
  plan.train_args = a.rest();
  plan.out_dir = "runs/train";
  for (size_t k = 0; k < plan.train_args.size(); ++k) {
    const std::string& a = plan.train_args[k];
    if (a == "--print-config") throw UsageError("launch starts training; print the configuration with swiattn train --print-config");
    if ((a == "--out" || a == "--resume") && k + 1 < plan.train_args.size()) plan.out_dir = plan.train_args[k + 1];
  }
  return plan;
}

int run_launch(const LaunchPlan& plan, const std::string& binary) {
  const uint64_t now = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::ostringstream id;
  id << std::hex << mix64(now ^ (static_cast<uint64_t>(getpid()) << 40));
  const std::string launch_id = id.str();
  const fs::path logs = fs::path(plan.out_dir) / "distributed";
  fs::create_directories(logs);

  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);  // Ctrl-C reaches the ranks too (one process group)
  std::map<pid_t, int> rank_of;
  std::vector<pid_t> pids;
  auto stop_all = [&](int signal) {
    for (const auto& [pid, rank] : rank_of) kill(pid, signal);
  };
  for (int rank = 0; rank < plan.nproc; ++rank) {
    std::vector<std::string> argv_strings{binary, "train"};
    argv_strings.insert(argv_strings.end(), plan.train_args.begin(), plan.train_args.end());
    std::vector<std::string> env_strings = rank_environment(plan, rank, launch_id);
    std::vector<char*> argv = c_strings(argv_strings), envp = c_strings(env_strings);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (logs / ("rank-" + std::to_string(rank) + ".log")).string();
    if (rank > 0) {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid = 0;
    const int err = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) {
      stop_all(SIGKILL);
      for (const auto& [p, r] : rank_of) waitpid(p, nullptr, 0);
      throw Error("launch: cannot start rank " + std::to_string(rank) + " (" + binary + "): " + std::strerror(err));
    }
    rank_of[pid] = rank;
  }
  std::cerr << "swiattn launch: " << plan.nproc << " rank(s) started (launch id " << launch_id << "); rank 0 prints "
            << "here, ranks 1.. write " << (logs / "rank-<r>.log").string() << "\n";

  // Wait for every rank; the first failure stops the others.
  int failed_rank = -1, failed_status = 0;
  std::chrono::steady_clock::time_point kill_at{};
  bool stopping = false;
  while (!rank_of.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && rank_of.count(pid)) {
      const int rank = rank_of[pid];
      rank_of.erase(pid);
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && failed_rank < 0 && !stopping) {
        failed_rank = rank;
        failed_status = status;
        std::cerr << "swiattn launch: rank " << rank << " failed (" << exit_text(status) << "); stopping the other ranks\n";
        if (rank > 0)
          std::cerr << "  the end of " << (logs / ("rank-" + std::to_string(rank) + ".log")).string() << ":\n"
                    << tail_of(logs / ("rank-" + std::to_string(rank) + ".log"), 15);
      }
      if (!ok && !stopping) {
        stopping = true;
        stop_all(SIGTERM);
        kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
      continue;
    }
    if (g_stop_signal && !stopping) {
      stopping = true;
      std::cerr << "swiattn launch: " << strsignal(g_stop_signal) << ": stopping the ranks\n";
      stop_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    if (stopping && std::chrono::steady_clock::now() > kill_at) {
      stop_all(SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  if (failed_rank >= 0) return WIFEXITED(failed_status) && WEXITSTATUS(failed_status) != 0 ? WEXITSTATUS(failed_status) : 1;
  if (g_stop_signal) return 128 + g_stop_signal;
  std::cerr << "swiattn launch: all " << plan.nproc << " rank(s) finished\n";
  return 0;
}

int run_launch_command(const std::vector<std::string>& args) {
  const LaunchPlan plan = parse_launch_args(args);
  const int devices = cuda::device_count();
  if (devices < plan.nproc)
    throw Error("launch: --nproc " + std::to_string(plan.nproc) + " needs one GPU per process, but this machine shows " +
                std::to_string(devices) + " CUDA device(s) [" + cuda::device_description() + "]");
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("launch: cannot find this program's path (/proc/self/exe): " + ec.message());
  return run_launch(plan, self.string());
}

}  // namespace swiattn
