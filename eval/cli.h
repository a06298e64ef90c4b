// eval/cli.h: `swiattn eval`, the evaluation harness's command line (main.cpp dispatches here).
#pragma once

#include <string>
#include <vector>

namespace swiattn {

// Runs `swiattn eval` with the arguments after the command name; returns the exit status.
// Bad options throw swiattn::UsageError (main.cpp prints it with the usage text).
int run_eval_command(const std::vector<std::string>& args);

}  // namespace swiattn
