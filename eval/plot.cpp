// eval/plot.cpp: `swiattn plot` (eval/plot.h).
#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>

#include <nlohmann/json.hpp>

#include "io/args.h"
#include "eval/svg.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

LineSeries series_of(const std::string& name, const std::map<int64_t, double>& points) {
  LineSeries s;
  s.name = name;
  for (const auto& [step, value] : points) {
    s.x.push_back(static_cast<double>(step));
    s.y.push_back(value);
  }
  return s;
}

// "layer 3" for each switch layer of RUN/config.json; "switch layer k" when it cannot be read.
std::vector<std::string> switch_layer_names(const std::string& run_dir, size_t count) {
  std::vector<std::string> names;
  std::ifstream in(fs::path(run_dir) / "config.json");
  const json config = json::parse(in, nullptr, false);
  if (config.is_object() && config.contains("model") && config["model"].value("layer_types", json()).is_array()) {
    const json& types = config["model"]["layer_types"];
    for (size_t l = 0; l < types.size(); ++l)
      if (types[l].is_string() && layer_type_from_name(types[l].get<std::string>()) == LayerType::Switch) names.push_back("layer " + std::to_string(l));
  }
  if (names.size() != count) {
    names.clear();
    for (size_t k = 0; k < count; ++k) names.push_back("switch layer " + std::to_string(k));
  }
  return names;
}

}  // namespace

RunCurves read_run_curves(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  std::ifstream in(path);
  if (!in) throw Error("plot: cannot read " + path + " (give the folder swiattn train wrote)");
  RunCurves c;
  std::string line;
  size_t number = 0, layers = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const json r = json::parse(line, nullptr, false);
    if (!r.is_object()) throw Error("plot: " + path + " line " + std::to_string(number) + " is not a JSON object");
    const std::string kind = r.value("kind", std::string());
    const bool has_step = r.contains("step") && r["step"].is_number_integer();
    if ((kind == "progress" || (kind.empty() && r.contains("loss"))) && has_step) {
      const int64_t step = r["step"].get<int64_t>();
      if (r.value("loss", json()).is_number()) c.loss[step] = r["loss"].get<double>();
      if (r.value("lr", json()).is_number()) c.lr[step] = r["lr"].get<double>();
      if (r.value("layer_fa_ratio", json()).is_array()) {
        std::vector<double> fa;
        for (const json& x : r["layer_fa_ratio"]) fa.push_back(x.is_number() ? x.get<double>() : std::nan(""));
        layers = std::max(layers, fa.size());
        c.layer_fa[step] = fa;
      }
    } else if ((kind == "validation" || (kind.empty() && r.contains("val_loss"))) && has_step) {
      if (r.value("val_loss", json()).is_number()) c.val_loss[r["step"].get<int64_t>()] = r["val_loss"].get<double>();
    }
  }
  if (c.loss.empty())
    throw Error("plot: " + path + " holds no progress record (a run logs one every train.log_interval steps)");
  c.layer_names = switch_layer_names(run_dir, layers);
  return c;
}

std::string loss_figure_svg(const RunCurves& c, const std::string& title) {
  std::vector<std::string> panels;
  panels.push_back(svg_line_plot({title + ": loss", "step", "loss (nats/token)"},
                                 {series_of("training", c.loss), series_of("validation", c.val_loss)}));
  panels.push_back(svg_line_plot({"learning rate", "step", "learning rate"}, {series_of("learning rate", c.lr)}));
  if (!c.layer_names.empty()) {
    std::vector<LineSeries> layers;
    for (size_t k = 0; k < c.layer_names.size(); ++k) {
      std::map<int64_t, double> points;
      for (const auto& [step, fa] : c.layer_fa)
        if (k < fa.size()) points[step] = fa[k];
      layers.push_back(series_of(c.layer_names[k], points));
    }
    panels.push_back(svg_line_plot({"full-attention ratio per switch layer (training batches)", "step", "full-attention ratio"},
                                   layers, false, 0.0, 1.0));
  }
  return svg_stack(panels);
}

int run_plot_command(const std::vector<std::string>& args, std::ostream& log) {
  std::string run, out;
  for (ArgCursor a(args); a.next();) {
    if (a.is("--out")) out = a.value();
    else if (a.is_option()) throw a.unknown();
    else if (run.empty()) run = a.option();
    else throw UsageError("one RUN folder, got a second: " + a.option());
  }
  if (run.empty()) throw UsageError("needs RUN, the folder swiattn train wrote");
  if (out.empty()) out = (fs::path(run) / "loss.svg").string();
  const RunCurves curves = read_run_curves(run);
  std::string name = fs::path(run).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = fs::absolute(run).lexically_normal().filename().string();
  write_file_atomically(out, loss_figure_svg(curves, name));
  log << "plot: " << out << " (" << curves.loss.size() << " progress and " << curves.val_loss.size()
      << " validation records" << (curves.layer_names.empty() ? "" : ", " + std::to_string(curves.layer_names.size()) + " switch layers")
      << ")\n";
  return 0;
}

}  // namespace swiattn
