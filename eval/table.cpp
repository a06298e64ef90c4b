// eval/table.cpp: `swiattn eval table`: one row per method, the columns of the paper's table at
// our scale (issue 6; docs/eval.md). Prefill FLOPs and decode KV tokens are divided by the
// FullAttn row's own measurements, so every run must have been evaluated on the same tokens
// (same seq_len, window and eval settings): the table refuses runs whose seq_len differ.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/read_file.h"
#include "eval/evaluate.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// results[path...] as a number; null (JSON's NaN) -> NaN; missing -> Error naming the file.
double number_at(const json& results, const std::vector<std::string>& path, const std::string& file) {
  const json* v = &results;
  std::string where;
  for (const std::string& k : path) {
    where += (where.empty() ? "" : ".") + k;
    if (!v->is_object() || !v->contains(k)) throw Error("eval table: " + file + " has no " + where);
    v = &(*v)[k];
  }
  if (v->is_null()) return kNaN;
  if (!v->is_number()) throw Error("eval table: " + file + ": " + where + " is not a number");
  return v->get<double>();
}

std::string cell(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

std::string reproduction_table(const std::vector<std::pair<std::string, std::string>>& runs) {
  if (runs.empty()) throw Error("eval table: give at least one NAME=EVAL_DIR");
  std::vector<json> results;
  std::vector<std::string> files;
  int full_row = -1;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string file = (std::filesystem::path(runs[i].second) / "results.json").string();
    if (!file_exists(file)) throw Error("eval table: " + file + " does not exist (run swiattn eval --out " + runs[i].second + " first)");
    const json j = json::parse(read_whole_file(file, "eval table"), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error("eval table: " + file + " is not a JSON object");
    if (runs[i].first == "FullAttn") full_row = static_cast<int>(i);
    results.push_back(j);
    files.push_back(file);
  }
  if (full_row < 0)
    throw Error("eval table: no row named FullAttn: the efficiency columns are relative to it (give FullAttn=EVAL_DIR)");
  const double T0 = number_at(results[static_cast<size_t>(full_row)], {"seq_len"}, files[static_cast<size_t>(full_row)]);
  const double prefill0 = number_at(results[static_cast<size_t>(full_row)], {"efficiency", "prefill", "attention_flops_total"}, files[static_cast<size_t>(full_row)]);
  const double decode0 = number_at(results[static_cast<size_t>(full_row)], {"efficiency", "decode", "mean_keys_read_measured"}, files[static_cast<size_t>(full_row)]);

  std::ostringstream md;
  md << "| method | held-out loss | loss at t >= W | passkey acc. beyond W | MQAR acc. | FA ratio | "
        "prefill attn FLOPs vs FullAttn | decode KV tokens read vs FullAttn |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& r = results[i];
    const std::string& f = files[i];
    if (number_at(r, {"seq_len"}, f) != T0)
      throw Error("eval table: " + f + " was evaluated at seq_len " + cell(number_at(r, {"seq_len"}, f), 0) +
                  ", FullAttn at " + cell(T0, 0) + ": the rows are not comparable");
    md << "| " << runs[i].first << " | " << cell(number_at(r, {"held_out", "loss"}, f), 4) << " | "
       << cell(number_at(r, {"held_out", "loss_beyond_window"}, f), 4) << " | "
       << cell(number_at(r, {"passkey", "beyond_window_accuracy"}, f), 3) << " | "
       << cell(number_at(r, {"mqar", "accuracy"}, f), 3) << " | "
       << cell(number_at(r, {"routing", "fa_ratio"}, f), 3) << " | "
       << cell(number_at(r, {"efficiency", "prefill", "attention_flops_total"}, f) / prefill0, 3) << " | "
       << cell(number_at(r, {"efficiency", "decode", "mean_keys_read_measured"}, f) / decode0, 3) << " |\n";
  }
  md << "\nPer row (seed of the evaluation, device, held-out tokens, passkey trials beyond W, MQAR answers, wall time):\n\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& r = results[i];
    md << "- " << runs[i].first << ": `" << runs[i].second << "`, checkpoint `" << r.value("checkpoint", "?")
       << "`, seed " << cell(number_at(r, {"seed"}, files[i]), 0) << ", " << r.value("device", "?") << ", "
       << cell(number_at(r, {"held_out", "tokens"}, files[i]), 0) << " held-out tokens, "
       << cell(number_at(r, {"passkey", "beyond_window_trials"}, files[i]), 0) << " passkey trials beyond W, "
       << cell(number_at(r, {"mqar", "answers"}, files[i]), 0) << " MQAR answers, eval wall time "
       << cell(number_at(r, {"wall_seconds"}, files[i]), 1) << " s\n";
  }
  return md.str();
}

}  // namespace swiattn
