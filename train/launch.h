// train/launch.h: `swiattn launch`, which starts the ranks of a data-parallel run on this machine.
//
//   swiattn launch --nproc N [--bucket-mb MB] [--no-overlap] train [train options...]
//
// Starts N copies of `swiattn train [train options...]` (this same binary), rank r on GPU r, with
// the environment train/communicator.h describes (RANK, WORLD_SIZE, LOCAL_RANK,
// SWIATTN_LAUNCH_ID fresh for this start; SWIATTN_BUCKET_MB, SWIATTN_OVERLAP from the options).
// Rank 0 prints to this terminal; rank r > 0 to OUT/distributed/rank-<r>.log (OUT: the train
// options' --out, or --resume, default runs/train). When a rank fails, the launcher stops the
// others (SIGTERM, then SIGKILL after 10 s: a rank blocked in a collective waits for its dead
// peer forever), prints the end of the failed rank's log and exits with its status.
#pragma once

#include <string>
#include <vector>

namespace swiattn {

struct LaunchPlan {
  int nproc = 0;
  double bucket_mb = 0.0;      // 0: the default of train/data_parallel.h
  bool overlap = true;
  std::vector<std::string> train_args;  // after "train"
  std::string out_dir;         // where the run writes (--out / --resume of train_args)
};

// Parses the arguments after "launch"; throws UsageError naming the problem.
LaunchPlan parse_launch_args(const std::vector<std::string>& args);

// Starts `binary train <plan.train_args>` plan.nproc times with the ranks' environment, waits for
// them and returns the exit status (0: every rank finished; else the first failed rank's status,
// or 1 when it died of a signal). Checks no GPUs (tests start a stand-in program this way).
int run_launch(const LaunchPlan& plan, const std::string& binary);

// `swiattn launch ...` from main.cpp: parses, checks that there are nproc GPUs, runs this binary.
int run_launch_command(const std::vector<std::string>& args);

}  // namespace swiattn
