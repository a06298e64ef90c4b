// eval/report.cpp: the figures (eval/svg.h) and report.md of one evaluation, from results.json
// alone (so a report can be regenerated from the numbers).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eval/evaluate.h"
#include "eval/svg.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A number of results.json (null = NaN, JSON has no NaN).
double num(const json& v) { return v.is_number() ? v.get<double>() : kNaN; }

std::string fmt(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string sci(double v) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream s;
  s << std::scientific << std::setprecision(3) << v;
  return s.str();
}

// Every `stride`-th point of a per-position series (and the last), x = position.
LineSeries per_position(const std::string& name, const json& values, bool dashed = false) {
  LineSeries s;
  s.name = name;
  s.dashed = dashed;
  const size_t n = values.size();
  const size_t stride = std::max<size_t>(1, n / 400);
  for (size_t t = 0; t < n; t += stride) {
    s.x.push_back(static_cast<double>(t));
    s.y.push_back(num(values[t]));
  }
  if (n > 0 && (n - 1) % stride != 0) {
    s.x.push_back(static_cast<double>(n - 1));
    s.y.push_back(num(values[n - 1]));
  }
  return s;
}

// One point per bucket at x = the bucket's last position + 1 (log2 axis).
LineSeries per_bucket(const std::string& name, const json& buckets, const char* field) {
  LineSeries s;
  s.name = name;
  for (const json& b : buckets) {
    s.x.push_back(static_cast<double>(b["end"].get<int64_t>()));
    s.y.push_back(num(b[field]));
  }
  return s;
}

std::string bucket_label(const json& b) {
  return "[" + std::to_string(b["begin"].get<int64_t>()) + "," + std::to_string(b["end"].get<int64_t>()) + ")";
}

}  // namespace

std::vector<std::string> write_report(const json& r, const std::string& out_dir) {
  namespace fs = std::filesystem;
  fs::create_directories(out_dir);
  std::vector<std::string> written;
  auto save = [&](const std::string& name, const std::string& text) {
    write_file_atomically((fs::path(out_dir) / name).string(), text);
    written.push_back(name);
  };
  const int64_t W = r["window"].get<int64_t>(), T = r["seq_len"].get<int64_t>();
  const std::string wtag = " (W = " + std::to_string(W) + ", T = " + std::to_string(T) + ")";
  const std::vector<XMarker> window_marker = {{static_cast<double>(W), "window W = " + std::to_string(W)}};

  // Passkey heatmap (Fig. 3): rows = context lengths (those skipped as too short for the needle
  // shown as rows that did not run), columns = depths.
  const json& pk = r["passkey"];
  std::vector<int64_t> lengths;
  for (const json& l : pk["lengths"]) lengths.push_back(l.get<int64_t>());
  std::vector<int64_t> skipped;
  for (const json& l : pk.value("lengths_skipped", json::array())) skipped.push_back(l.get<int64_t>());
  std::vector<std::string> cols;
  for (const json& d : pk["depths"]) cols.push_back(fmt(d.get<double>(), 2));
  struct HeatRow {
    int64_t length;
    int64_t measured;  // index into lengths, -1 = skipped
  };
  std::vector<HeatRow> heat_rows;
  for (size_t i = 0; i < lengths.size(); ++i) heat_rows.push_back({lengths[i], static_cast<int64_t>(i)});
  for (int64_t l : skipped) heat_rows.push_back({l, -1});
  std::stable_sort(heat_rows.begin(), heat_rows.end(), [](const HeatRow& a, const HeatRow& b) { return a.length < b.length; });
  std::vector<std::string> rows, notes;
  for (const HeatRow& h : heat_rows) {
    rows.push_back(std::to_string(h.length));
    notes.push_back(h.measured < 0 ? "skipped: shorter than a passkey example needs" : "");
  }
  auto cell_grid = [&](const char* field) {
    std::vector<std::vector<double>> grid(heat_rows.size(), std::vector<double>(cols.size(), kNaN));
    for (size_t row = 0; row < heat_rows.size(); ++row) {
      if (heat_rows[row].measured < 0) continue;
      for (size_t c = 0; c < cols.size(); ++c) {
        const size_t i = static_cast<size_t>(heat_rows[row].measured) * cols.size() + c;
        if (i < pk["cells"].size()) grid[row][c] = num(pk["cells"][i].value(field, json()));
      }
    }
    return grid;
  };
  if (skipped.empty()) notes.clear();
  save("passkey.svg", svg_heatmap({"Passkey accuracy" + wtag, "needle depth", "context length (tokens)"}, rows, cols,
                                  cell_grid("accuracy"), 0.0, 1.0, notes));

  // Passkey FA ratio at the answer per cell (Fig. 6 as a grid).
  save("passkey_answer_fa_ratio.svg",
       svg_heatmap({"Full-attention ratio at the passkey answer" + wtag, "needle depth", "context length (tokens)"},
                   rows, cols, cell_grid("answer_fa_ratio"), 0.0, 1.0, notes));

  // Passkey at controlled distances (at T): accuracy against distance, and the FA ratio at the
  // answer per layer, needle inside / beyond the window (the paper's Fig. 6).
  const json& pd = r.contains("passkey_by_distance") ? r["passkey_by_distance"] : json::object();
  if (pd.contains("rows")) {
    LineSeries exact{"exact match", {}, {}}, digit{"per digit", {}, {}};
    for (const json& row : pd["rows"]) {
      exact.x.push_back(num(row["distance"]));
      exact.y.push_back(num(row["exact_accuracy"]));
      digit.x.push_back(num(row["distance"]));
      digit.y.push_back(num(row["per_digit_accuracy"]));
    }
    save("passkey_by_distance.svg",
         svg_line_plot({"Passkey accuracy by needle distance (length " + std::to_string(T) + ", W = " +
                            std::to_string(W) + ")", "needle distance (tokens)", "accuracy"},
                       {exact, digit}, false, 0.0, 1.0, window_marker));
    std::vector<std::string> layers;
    std::vector<std::vector<double>> fa(2);
    const json& inside = pd["answer_fa_ratio_inside_per_layer"];
    const json& beyond = pd["answer_fa_ratio_beyond_per_layer"];
    for (size_t l = 0; l < r["layer_types"].size(); ++l) {
      layers.push_back(std::to_string(l));
      fa[0].push_back(l < inside.size() ? num(inside[l]) : kNaN);
      fa[1].push_back(l < beyond.size() ? num(beyond[l]) : kNaN);
    }
    save("passkey_fa_ratio.svg",
         svg_grouped_bar_chart({"Full-attention ratio at the passkey answer, per layer", "layer", "full-attention ratio"},
                               layers, {"needle inside the window", "needle beyond the window"}, fa, 0.0, 1.0));
  }

  // Routing: FA ratio per layer (Fig. 5) and by position.
  const json& routing = r["routing"];
  std::vector<std::string> layer_names;
  std::vector<double> layer_ratio;
  for (size_t l = 0; l < routing["per_layer"].size(); ++l) {
    layer_names.push_back(std::to_string(l) + " " + r["layer_types"][l].get<std::string>());
    layer_ratio.push_back(num(routing["per_layer"][l]));
  }
  save("fa_ratio_per_layer.svg",
       svg_bar_chart({"Full-attention ratio per layer (held-out text)", "layer", "full-attention ratio"}, layer_names,
                     layer_ratio, 0.0, 1.0));
  save("fa_ratio_by_position.svg",
       svg_line_plot({"Full-attention ratio by position" + wtag, "position t (bucket end, log2)", "full-attention ratio"},
                     {per_bucket("all layers", routing["by_position"], "fa_ratio")}, true, 0.0, 1.0, window_marker));

  // Loss by position bucket.
  const json& held = r["held_out"];
  save("loss_by_position.svg",
       svg_line_plot({"Held-out loss by position" + wtag, "position t (bucket end, log2)", "loss (nats/token)"},
                     {per_bucket("loss", held["buckets"], "loss")}, true, 0.0, 0.0, window_marker));

  // Efficiency: decode keys read per step and prefill FLOPs per position, with FullAttn.
  const json& dec = r["efficiency"]["decode"];
  save("decode_keys_read.svg",
       svg_line_plot({"Decode: KV tokens read per step (mean over layers)" + wtag, "position t", "keys read"},
                     {per_position("measured", dec["keys_read_measured"]),
                      per_position("formula (spec §8)", dec["keys_read_formula"], true),
                      per_position("FullAttn", dec["keys_read_full_attention"], true)},
                     false, 0.0, 0.0, window_marker));
  const json& pre = r["efficiency"]["prefill"];
  save("prefill_flops.svg",
       svg_line_plot({"Prefill attention FLOPs per position (all layers)" + wtag, "position t", "FLOPs"},
                     {per_position("this model", pre["per_position"]),
                      per_position("FullAttn", pre["full_attention_per_position"], true)},
                     false, 0.0, 0.0, window_marker));

  // MQAR accuracy vs evidence distance.
  const json& mq = r["mqar"];
  std::vector<std::string> dist_labels;
  std::vector<double> dist_acc;
  for (const json& b : mq["by_distance"]) {
    if (num(b["answers"]) <= 0) continue;
    dist_labels.push_back(bucket_label(b));
    dist_acc.push_back(num(b["accuracy"]));
  }
  save("mqar_by_distance.svg",
       svg_bar_chart({"MQAR accuracy by distance" + wtag, "evidence distance (tokens)", "accuracy"}, dist_labels,
                     dist_acc, 0.0, 1.0));

  // report.md
  std::ostringstream md;
  md << "# Evaluation of `" << r["checkpoint"].get<std::string>() << "`\n\n"
     << "Layer types: ";
  for (size_t l = 0; l < r["layer_types"].size(); ++l) md << (l ? " " : "") << r["layer_types"][l].get<std::string>();
  md << "; T = " << T << ", window W = " << W << ", " << r["parameters"].get<int64_t>() << " parameters. Device "
     << r["device"].get<std::string>() << " (" << r["dtype"].get<std::string>() << "), eval seed "
     << r["seed"].get<uint64_t>() << ", commit `" << r["commit"].get<std::string>() << "`, wall time "
     << fmt(num(r["wall_seconds"]), 1) << " s. Metrics are defined in docs/eval.md.\n\n"
     << "## Summary\n\n| metric | value |\n|---|---|\n"
     << "| held-out loss (nats/token) | " << fmt(num(held["loss"])) << " |\n"
     << "| held-out perplexity | " << fmt(num(held["perplexity"]), 2) << " |\n"
     << "| loss at t < W | " << fmt(num(held["loss_inside_window"])) << " |\n"
     << "| loss at t >= W | " << fmt(num(held["loss_beyond_window"])) << " |\n"
     << "| passkey accuracy (all cells) | " << fmt(num(pk["accuracy"]), 3) << " (" << pk["correct"].get<int64_t>()
     << "/" << pk["trials"].get<int64_t>() << ") |\n"
     << "| passkey accuracy, needle beyond the window | " << fmt(num(pk["beyond_window_accuracy"]), 3) << " ("
     << pk["beyond_window_trials"].get<int64_t>() << " trials) |\n"
     << "| passkey accuracy, needle inside the window | " << fmt(num(pk["inside_window_accuracy"]), 3) << " |\n"
     << "| passkey at length " << T << ", needle beyond the window: exact / per digit / answer NLL | "
     << fmt(num(pd.value("beyond_window", json::object()).value("exact_accuracy", json())), 3) << " / "
     << fmt(num(pd.value("beyond_window", json::object()).value("per_digit_accuracy", json())), 3) << " / "
     << fmt(num(pd.value("beyond_window", json::object()).value("answer_nll", json())), 3) << " |\n"
     << "| passkey at length " << T << ", needle inside the window: exact / per digit / answer NLL | "
     << fmt(num(pd.value("inside_window", json::object()).value("exact_accuracy", json())), 3) << " / "
     << fmt(num(pd.value("inside_window", json::object()).value("per_digit_accuracy", json())), 3) << " / "
     << fmt(num(pd.value("inside_window", json::object()).value("answer_nll", json())), 3) << " |\n"
     << "| MQAR accuracy (" << mq["pairs"].get<int64_t>() << " pairs, " << mq["answers"].get<int64_t>()
     << " answers) | " << fmt(num(mq["accuracy"]), 3) << " |\n"
     << "| MQAR per digit / answer NLL | " << fmt(num(mq.value("all", json::object()).value("per_digit_accuracy", json())), 3)
     << " / " << fmt(num(mq.value("all", json::object()).value("answer_nll", json())), 3) << " |\n"
     << "| MQAR accuracy beyond the window | " << fmt(num(mq["beyond_window_accuracy"]), 3) << " |\n"
     << "| full-attention ratio (all positions) | " << fmt(num(routing["fa_ratio"]), 3) << " |\n"
     << "| full-attention ratio (t >= W) | " << fmt(num(routing["fa_ratio_beyond_window"]), 3) << " |\n"
     << "| prefill attention FLOPs per sequence | " << sci(num(pre["attention_flops_total"])) << " ("
     << fmt(num(pre["relative_to_full_attention"]), 3) << " x FullAttn) |\n"
     << "| decode KV tokens read per step (mean over " << dec["tokens"].get<int64_t>() << " steps) | "
     << fmt(num(dec["mean_keys_read_measured"]), 1) << " measured, " << fmt(num(dec["mean_keys_read_formula"]), 1)
     << " formula, " << fmt(num(dec["mean_keys_read_full_attention"]), 1) << " FullAttn ("
     << fmt(num(dec["relative_to_full_attention"]), 3) << " x) |\n\n";
  md << "## Held-out loss by position\n\n![loss by position](loss_by_position.svg)\n\n| positions | tokens | loss |\n|---|---|---|\n";
  for (const json& b : held["buckets"]) md << "| " << bucket_label(b) << " | " << fmt(num(b["tokens"]), 0) << " | " << fmt(num(b["loss"])) << " |\n";
  if (pd.contains("rows")) {
    md << "\n## Passkey by needle distance (length " << T << ")\n\n![passkey by distance](passkey_by_distance.svg)\n\n"
       << "![fa ratio at the answer per layer](passkey_fa_ratio.svg)\n\n"
       << "| distance | beyond W | trials | exact | per digit | answer NLL | FA ratio at answer |\n|---|---|---|---|---|---|---|\n";
    for (const json& row : pd["rows"])
      md << "| " << row["distance"].get<int64_t>() << " | " << (row["beyond_window"].get<bool>() ? "yes" : "no") << " | "
         << row["trials"].get<int64_t>() << " | " << fmt(num(row["exact_accuracy"]), 3) << " | "
         << fmt(num(row["per_digit_accuracy"]), 3) << " | " << fmt(num(row["answer_nll"]), 3) << " | "
         << fmt(num(row["answer_fa_ratio"]), 3) << " |\n";
  }
  md << "\n## Passkey retrieval (length x depth)\n\n![passkey](passkey.svg)\n\n"
     << "![fa ratio at the answer per cell](passkey_answer_fa_ratio.svg)\n\n"
     << "| length | depth | accuracy | mean distance | beyond W | FA ratio at answer (inside / beyond) |\n|---|---|---|---|---|---|\n";
  for (const json& c : pk["cells"])
    md << "| " << c["length"].get<int64_t>() << " | " << fmt(num(c["depth"]), 2) << " | " << fmt(num(c["accuracy"]), 2)
       << " | " << fmt(num(c["mean_distance"]), 0) << " | " << c["beyond_trials"].get<int64_t>() << "/"
       << c["trials"].get<int64_t>() << " | " << fmt(num(c["answer_fa_ratio_inside"]), 3) << " / "
       << fmt(num(c["answer_fa_ratio_beyond"]), 3) << " |\n";
  if (!skipped.empty()) {
    md << "\nNot run (shorter than a passkey example needs with this tokenizer): length";
    for (size_t i = 0; i < skipped.size(); ++i) md << (i ? ", " : " ") << skipped[i];
    md << ".\n";
  }
  md << "\n## MQAR\n\n![mqar](mqar_by_distance.svg)\n\n| distance | answers | accuracy |\n|---|---|---|\n";
  for (const json& b : mq["by_distance"])
    md << "| " << bucket_label(b) << " | " << fmt(num(b["answers"]), 0) << " | " << fmt(num(b["accuracy"]), 3) << " |\n";
  md << "\n## Routing\n\n![fa ratio per layer](fa_ratio_per_layer.svg)\n\n![fa ratio by position](fa_ratio_by_position.svg)\n\n"
     << "| layer | type | FA ratio | FA ratio (t >= W) |\n|---|---|---|---|\n";
  for (size_t l = 0; l < routing["per_layer"].size(); ++l)
    md << "| " << l << " | " << r["layer_types"][l].get<std::string>() << " | " << fmt(num(routing["per_layer"][l]), 3)
       << " | " << fmt(num(routing["per_layer_beyond_window"][l]), 3) << " |\n";
  md << "\n## Efficiency (spec §8)\n\n![decode keys read](decode_keys_read.svg)\n\n![prefill flops](prefill_flops.svg)\n\n"
     << "Decode was measured by feeding " << dec["tokens"].get<int64_t>() << " held-out tokens one per step through "
     << "the unified KV cache (model/decode.h, on the CPU) and counting the keys each layer read; the largest "
     << "per-step difference from the spec §8 formula applied to the full forward's routes is "
     << fmt(num(dec["max_abs_measured_minus_formula"]), 4) << " keys (" << dec["route_mismatches"].get<int64_t>()
     << " (layer, position) routes differ between the two paths).\n";
  save("report.md", md.str());
  return written;
}

}  // namespace swiattn
