// eval/cli.cpp: the command line of `swiattn eval` (main.cpp dispatches here):
//   swiattn eval --checkpoint DIR --out DIR [--set eval.key=value]... [--device cpu|cuda] [--allow-nonfinite]
//   swiattn eval table --out FILE.md NAME=EVAL_DIR[,EVAL_DIR...] [NAME=... ...]
//     (several folders in one row: one per training seed, shown as mean +- std)
#include "eval/cli.h"

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "io/args.h"
#include "eval/evaluate.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

int run_table_command(const std::vector<std::string>& args) {
  std::string out;
  std::vector<std::pair<std::string, std::vector<std::string>>> runs;
  for (ArgCursor arg(args); arg.next();) {
    const std::string& a = arg.option();
    if (arg.is("--out")) {
      out = arg.value();
    } else if (arg.is_option()) {
      throw arg.unknown("eval table");
    } else {
      const size_t eq = a.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
        throw UsageError("eval table: expected NAME=EVAL_DIR[,EVAL_DIR...], got \"" + a + "\"");
      std::vector<std::string> dirs;
      std::string rest = a.substr(eq + 1);
      for (size_t comma; (comma = rest.find(',')) != std::string::npos; rest = rest.substr(comma + 1))
        dirs.push_back(rest.substr(0, comma));
      dirs.push_back(rest);
      for (const std::string& d : dirs)
        if (d.empty()) throw UsageError("eval table: an empty folder name in \"" + a + "\"");
      runs.emplace_back(a.substr(0, eq), dirs);
    }
  }
  if (out.empty()) throw UsageError("eval table needs --out FILE.md");
  if (runs.empty()) throw UsageError("eval table needs at least one NAME=EVAL_DIR");
  const std::string table = reproduction_table(runs);
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  write_file_atomically(out, table);
  std::cout << table;
  return 0;
}

}  // namespace

int run_eval_command(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "table") return run_table_command({args.begin() + 1, args.end()});
  std::string checkpoint, out;
  EvalConfig config;
  std::vector<std::string> overrides;
  for (ArgCursor a(args); a.next();) {
    if (a.is("--checkpoint")) checkpoint = a.value();
    else if (a.is("--out")) out = a.value();
    else if (a.is("--set")) overrides.push_back(a.value());
    else if (a.is("--device")) overrides.push_back("eval.device=" + a.value());
    else if (a.is("--allow-nonfinite")) config.allow_nonfinite = true;
    else throw a.unknown("eval");
  }
  if (checkpoint.empty()) throw UsageError("eval needs --checkpoint DIR");
  if (out.empty()) throw UsageError("eval needs --out DIR");
  for (const std::string& o : overrides) {
    try {
      apply_eval_override(config, o);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  run_evaluation(checkpoint, out, config, std::cerr);
  return 0;
}

}  // namespace swiattn
