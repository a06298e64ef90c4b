// eval/plot.h: `swiattn plot RUN`: a training run's curves from RUN/metrics.jsonl, as one SVG.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace swiattn {

// What the figure draws, read from metrics.jsonl (docs/training.md describes the records).
struct RunCurves {
  std::map<int64_t, double> loss, lr;               // step -> value, progress records
  std::map<int64_t, double> val_loss;               // step -> value, validation records
  std::map<int64_t, std::vector<double>> layer_fa;  // step -> full-attention ratio per switch layer
  std::vector<std::string> layer_names;             // one per switch layer ("layer 3"), from RUN/config.json
};

// Reads RUN/metrics.jsonl (a resumed run may repeat a step: the last record wins). Records
// without a "kind" (runs from before it existed) are told apart by their keys. Throws Error
// naming the file and line for a line that is not a JSON object, and when there is no progress
// record at all.
RunCurves read_run_curves(const std::string& run_dir);

// The figure: three panels stacked (loss, learning rate, FA ratio per switch layer; the third
// only with switch layers), from eval/svg.h.
std::string loss_figure_svg(const RunCurves& curves, const std::string& title);

// The command line: RUN [--out FILE.svg]; writes RUN/loss.svg by default.
int run_plot_command(const std::vector<std::string>& args, std::ostream& log);

}  // namespace swiattn
