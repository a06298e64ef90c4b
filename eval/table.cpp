// eval/table.cpp: `swiattn eval table`: one row per method, the columns of the paper's table at
// our scale (docs/eval.md). A row may hold several evaluations (one per training seed): each
// cell is then their mean +- sample standard deviation. Prefill FLOPs and decode KV tokens are
// divided by the FullAttn row's mean, so every evaluation must have measured the same thing:
// the table refuses runs whose seq_len, window or any evaluation knob that changes a number
// (eval.seed, batches, batch sizes, passkey / MQAR settings, decode_tokens) differ from the
// FullAttn row's, naming the knob. Knobs that change only where or how fast it ran (threads,
// device, cache_dir) may differ.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/read_file.h"
#include "io/json_reader.h"
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

// Mean and sample standard deviation of the finite values (NaN values are left out; all NaN -> NaN).
struct Stat {
  double mean = kNaN, std = kNaN;
  int n = 0;
};
Stat stat_of(const std::vector<double>& xs) {
  Stat s;
  double sum = 0.0;
  for (double x : xs)
    if (!std::isnan(x)) sum += x, ++s.n;
  if (s.n == 0) return s;
  s.mean = sum / s.n;
  if (s.n > 1) {
    double sq = 0.0;
    for (double x : xs)
      if (!std::isnan(x)) sq += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(sq / (s.n - 1));
  }
  return s;
}

std::string cell(const Stat& s, int digits, size_t runs) {
  if (runs <= 1) return cell(s.mean, digits);
  if (std::isnan(s.mean)) return "n/a";
  return cell(s.mean, digits) + " ± " + (std::isnan(s.std) ? std::string("n/a") : cell(s.std, digits));
}

// The evaluation settings that change what is measured: equal across every row.
const char* const kComparedKnobs[] = {"seed",           "batches",        "batch_size",  "passkey_lengths",
                                      "passkey_depths", "passkey_trials", "passkey_distances", "mqar_length",
                                      "mqar_pairs",     "mqar_trials",    "decode_tokens"};

void check_comparable(const json& ref, const std::string& ref_file, const json& r, const std::string& file) {
  for (const char* key : {"seq_len", "window"}) {
    if (number_at(r, {key}, file) != number_at(ref, {key}, ref_file))
      throw Error("eval table: " + file + " was evaluated at " + key + " " + cell(number_at(r, {key}, file), 0) +
                  ", " + ref_file + " at " + cell(number_at(ref, {key}, ref_file), 0) + ": the rows are not comparable");
  }
  const json a = ref.value("eval_config", json::object()), b = r.value("eval_config", json::object());
  for (const char* knob : kComparedKnobs) {
    const json va = a.value(knob, json()), vb = b.value(knob, json());
    if (va != vb)
      throw Error("eval table: eval." + std::string(knob) + " is " + vb.dump() + " in " + file + " but " + va.dump() +
                  " in " + ref_file + ": it changes the numbers compared (re-run swiattn eval with the same --set eval." +
                  knob + ")");
  }
}

struct Column {
  const char* header;
  std::vector<std::string> path;
  int digits;
  bool relative;  // divided by the FullAttn row's mean
};

const Column kColumns[] = {
    {"held-out loss", {"held_out", "loss"}, 4, false},
    {"loss at t >= W", {"held_out", "loss_beyond_window"}, 4, false},
    {"passkey beyond W: exact", {"passkey_by_distance", "beyond_window", "exact_accuracy"}, 3, false},
    {"passkey beyond W: per digit", {"passkey_by_distance", "beyond_window", "per_digit_accuracy"}, 3, false},
    {"passkey inside W: exact", {"passkey_by_distance", "inside_window", "exact_accuracy"}, 3, false},
    {"MQAR: exact", {"mqar", "all", "exact_accuracy"}, 3, false},
    {"MQAR: per digit", {"mqar", "all", "per_digit_accuracy"}, 3, false},
    {"MQAR beyond W: exact", {"mqar", "beyond_window", "exact_accuracy"}, 3, false},
    {"FA ratio", {"routing", "fa_ratio"}, 3, false},
    {"prefill attn FLOPs vs FullAttn", {"efficiency", "prefill", "attention_flops_total"}, 3, true},
    {"decode KV tokens read vs FullAttn", {"efficiency", "decode", "mean_keys_read_measured"}, 3, true},
};

}  // namespace

std::string reproduction_table(const std::vector<std::pair<std::string, std::vector<std::string>>>& rows) {
  if (rows.empty()) throw Error("eval table: give at least one NAME=EVAL_DIR");
  std::vector<std::vector<json>> results(rows.size());
  std::vector<std::vector<std::string>> files(rows.size());
  int full_row = -1;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].second.empty()) throw Error("eval table: row " + rows[i].first + " has no evaluation folder");
    for (const std::string& dir : rows[i].second) {
      const std::string file = (std::filesystem::path(dir) / "results.json").string();
      if (!file_exists(file)) throw Error("eval table: " + file + " does not exist (run swiattn eval --out " + dir + " first)");
      // The one strict parser (io/json_reader.h): a results.json is a few hundred KB.
      const json j = read_json_file_strict(file, "eval table: " + file + ": ", {size_t{256} << 20, 32});
      if (!j.is_object()) throw Error("eval table: " + file + " is not a JSON object");
      results[i].push_back(j);
      files[i].push_back(file);
    }
    if (rows[i].first == "FullAttn") full_row = static_cast<int>(i);
  }
  if (full_row < 0)
    throw Error("eval table: no row named FullAttn: the efficiency columns are relative to it (give FullAttn=EVAL_DIR)");
  const json& ref = results[static_cast<size_t>(full_row)].front();
  const std::string& ref_file = files[static_cast<size_t>(full_row)].front();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < results[i].size(); ++k) check_comparable(ref, ref_file, results[i][k], files[i][k]);

  auto values = [&](size_t row, const Column& c) {
    std::vector<double> v;
    for (size_t k = 0; k < results[row].size(); ++k) v.push_back(number_at(results[row][k], c.path, files[row][k]));
    return v;
  };
  std::ostringstream md;
  md << "| method | runs |";
  for (const Column& c : kColumns) md << " " << c.header << " |";
  md << "\n|---|---|";
  for (size_t c = 0; c < std::size(kColumns); ++c) md << "---|";
  md << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    md << "| " << rows[i].first << " | " << results[i].size() << " |";
    for (const Column& c : kColumns) {
      std::vector<double> v = values(i, c);
      if (c.relative) {
        const double base = stat_of(values(static_cast<size_t>(full_row), c)).mean;
        for (double& x : v) x /= base;
      }
      md << " " << cell(stat_of(v), c.digits, v.size()) << " |";
    }
    md << "\n";
  }
  md << "\nCells with several runs: mean ± sample standard deviation over the runs (training seeds). "
        "Passkey columns: the needle-distance sweep at T (docs/eval.md); MQAR: all answers.\n\n"
        "Per run (evaluation seed, device, held-out tokens, passkey trials beyond W, MQAR answers, wall time):\n\n";
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < results[i].size(); ++k) {
      const json& r = results[i][k];
      const std::string& f = files[i][k];
      md << "- " << rows[i].first << ": `" << rows[i].second[k] << "`, checkpoint `" << r.value("checkpoint", "?")
         << "`, seed " << cell(number_at(r, {"seed"}, f), 0) << ", " << r.value("device", "?") << ", "
         << cell(number_at(r, {"held_out", "tokens"}, f), 0) << " held-out tokens, "
         << cell(number_at(r, {"passkey_by_distance", "beyond_window", "answers"}, f), 0) << " passkey trials beyond W, "
         << cell(number_at(r, {"mqar", "answers"}, f), 0) << " MQAR answers, eval wall time "
         << cell(number_at(r, {"wall_seconds"}, f), 1) << " s\n";
    }
  return md.str();
}

}  // namespace swiattn
