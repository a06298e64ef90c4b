// io/fault_injection.h: test-only failures at the file-system operations of a checkpoint save.
//
// Every operation of io/durable_file.h that changes the disk (create a file, write, fsync, close,
// rename, mkdir, symlink, remove, fsync a directory) first calls fault_point(). Outside a
// FaultScope, or with no plan, that does nothing. A plan names one save (by its training step) and
// one operation of it, counted from 1 in the order they happen:
//   kill    the process raises SIGKILL just before that operation (a kill -9 at that moment);
//   enospc  that operation fails with ENOSPC ("No space left on device"), as on a full disk, and
//           the code under test handles the failure as it would a real one;
//   count   nothing fails; each operation is listed on stderr ("fault injection: operation 3 of the
//           save of step 8: write DIR/model.safetensors.tmp") and, when the save ends, the total:
//           "fault injection: the save of step 8 made 31 file-system operations".
// The plan comes from set_fault_plan (tests in the same process) or from the environment variable
//   SWIATTN_TEST_FAULT_AT = "kill:<step>:<n>" | "enospc:<step>:<n>" | "count:<step>"
// (tests that run the CLI in a child process). tests/test_checkpoint_faults.cpp drives both.
#pragma once

#include <cstdint>
#include <string>

namespace swiattn {

struct FaultPlan {
  enum class Kind { none, kill, enospc, count };
  Kind kind = Kind::none;
  int64_t save_step = -1;  // the FaultScope whose step this is
  int64_t operation = 0;   // 1-based index of the operation to fail (kill, enospc)
};

// Replaces the plan read from SWIATTN_TEST_FAULT_AT (an empty FaultPlan turns injection off).
void set_fault_plan(const FaultPlan& plan);

// While one lives, fault_point() counts operations for the save of `step`.
class FaultScope {
 public:
  explicit FaultScope(int64_t step);
  ~FaultScope();
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;
};

// Operations counted in the most recent FaultScope (whether or not a plan matched it).
int64_t fault_operations_counted();

// Called before each disk-changing operation; `what` and `path` describe it. Returns true when
// the operation must fail with ENOSPC (the caller sets errno and takes its error path); raises
// SIGKILL for a kill plan; otherwise returns false.
bool fault_point(const char* what, const std::string& path);

}  // namespace swiattn
