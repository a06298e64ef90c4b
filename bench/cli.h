// bench/cli.h: `swiattn bench`, the GPU benchmarks' command line (main.cpp dispatches here).
#pragma once

#include <string>
#include <vector>

namespace swiattn {

// Runs `swiattn bench` with the arguments after the command name; returns the exit status.
int run_bench_command(const std::vector<std::string>& args);

}  // namespace swiattn
