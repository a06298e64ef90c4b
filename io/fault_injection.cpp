// io/fault_injection.cpp: see io/fault_injection.h.
#include "io/fault_injection.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "tensor/tensor.h"

namespace swiattn {

namespace {

// "kill:8:3", "enospc:8:3", "count:8"; anything else is an Error (a typo must not pass silently).
FaultPlan plan_from_environment() {
  const char* spec = std::getenv("SWIATTN_TEST_FAULT_AT");
  if (!spec || !*spec) return {};
  const std::string text = spec;
  FaultPlan plan;
  long long step = -1, operation = 0;
  char kind[16] = {0};
  char tail = 0;
  const int fields = std::sscanf(text.c_str(), "%15[a-z]:%lld:%lld%c", kind, &step, &operation, &tail);
  const std::string k = kind;
  if (k == "count" && fields == 2) {
    plan.kind = FaultPlan::Kind::count;
  } else if ((k == "kill" || k == "enospc") && fields == 3 && step >= 0 && operation >= 1) {
    plan.kind = k == "kill" ? FaultPlan::Kind::kill : FaultPlan::Kind::enospc;
  } else {
    throw Error("SWIATTN_TEST_FAULT_AT=" + text + ": expected kill:<step>:<n>, enospc:<step>:<n> or count:<step>");
  }
  plan.save_step = step;
  plan.operation = operation;
  return plan;
}

struct FaultState {
  bool plan_loaded = false;
  FaultPlan plan;
  int64_t active_step = -1;  // the step of the live FaultScope, -1 when none
  int64_t counted = 0;
};

FaultState& state() {
  static FaultState s;
  return s;
}

const FaultPlan& current_plan() {
  FaultState& s = state();
  if (!s.plan_loaded) {
    s.plan = plan_from_environment();
    s.plan_loaded = true;
  }
  return s.plan;
}

}  // namespace

void set_fault_plan(const FaultPlan& plan) {
  state().plan = plan;
  state().plan_loaded = true;
}

FaultScope::FaultScope(int64_t step) {
  current_plan();  // a malformed environment variable fails here, before the save starts
  state().active_step = step;
  state().counted = 0;
}

FaultScope::~FaultScope() {
  FaultState& s = state();
  if (s.plan.kind == FaultPlan::Kind::count && s.plan.save_step == s.active_step)
    std::fprintf(stderr, "fault injection: the save of step %lld made %lld file-system operations\n",
                 static_cast<long long>(s.active_step), static_cast<long long>(s.counted));
  s.active_step = -1;
}

int64_t fault_operations_counted() { return state().counted; }

bool fault_point(const char* what, const std::string& path) {
  FaultState& s = state();
  if (s.active_step < 0) return false;
  ++s.counted;
  const FaultPlan& plan = current_plan();
  if (plan.kind == FaultPlan::Kind::count && plan.save_step == s.active_step)
    std::fprintf(stderr, "fault injection: operation %lld of the save of step %lld: %s %s\n",
                 static_cast<long long>(s.counted), static_cast<long long>(s.active_step), what, path.c_str());
  if (plan.save_step != s.active_step || plan.operation != s.counted) return false;
  if (plan.kind == FaultPlan::Kind::kill) {
    std::fprintf(stderr, "fault injection: SIGKILL before operation %lld (%s %s)\n",
                 static_cast<long long>(s.counted), what, path.c_str());
    std::fflush(nullptr);
    std::raise(SIGKILL);
  }
  return plan.kind == FaultPlan::Kind::enospc;
}

}  // namespace swiattn
