// tests/cli_test_util.h: running the real CLI (build/swiattn) in a child process, for the tests of
// what a user sees: exit status and output. SWIATTN_CLI names another binary (e.g. to show that a
// regression test fails on an older build: SWIATTN_CLI=old/swiattn ./build/swiattn_tests -tc=...).
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace swiattn::testing {

inline std::string cli_path() {
  if (const char* env = std::getenv("SWIATTN_CLI"); env && *env) return env;
  return std::string(SWIATTN_BINARY_DIR) + "/swiattn";
}

struct CliResult {
  int status = -1;     // exit status; 128 + N when killed by signal N
  std::string output;  // stdout and stderr together
};

inline std::string shell_quote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// "a b" long messages cut short for a failing check's log.
inline std::string shown(const std::string& message) {
  return message.size() > 300 ? message.substr(0, 300) + "... (" + std::to_string(message.size()) + " bytes)" : message;
}

// Runs the CLI with `args` from the directory `cwd` (environment assignments in `env`, e.g.
// "SWIATTN_TEST_FAULT_AT=count:8"), output to a file; a run past `timeout_s` is killed (status 124).
inline CliResult run_cli(const std::vector<std::string>& args, const TempDir& cwd, const std::string& env = "",
                         int timeout_s = 120) {
  const std::string output_path = cwd.file("cli_output.txt");
  std::string command = "cd " + shell_quote(cwd.path.string()) + " && " + env + " timeout -s KILL " +
                        std::to_string(timeout_s) + " " + shell_quote(cli_path());
  for (const std::string& a : args) command += " " + shell_quote(a);
  command += " >" + shell_quote(output_path) + " 2>&1";
  const int raw = std::system(command.c_str());
  CliResult result;
  if (raw != -1 && WIFEXITED(raw)) result.status = WEXITSTATUS(raw);
  if (raw != -1 && WIFSIGNALED(raw)) result.status = 128 + WTERMSIG(raw);
  result.output = read_bytes(output_path);
  return result;
}

// Exit status 1 and exactly one line of output that starts with `prefix` and contains `part`.
inline void check_one_error_line(const CliResult& r, const std::string& prefix, const std::string& part) {
  INFO("status " << r.status << ", output: " << shown(r.output));
  CHECK(r.status == 1);
  CHECK(r.output.rfind(prefix, 0) == 0);
  REQUIRE_FALSE(r.output.empty());
  CHECK(r.output.back() == '\n');
  CHECK(r.output.find('\n') == r.output.size() - 1);  // one line
  CHECK(contains(r.output, part));
}

}  // namespace swiattn::testing
