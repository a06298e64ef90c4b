// tests/test_figures.cpp: what the SVG figures of eval/svg.h must show (issue: a new reader must
// not misread them): the heatmap's colour scale and rows that did not run, "n/a" for a bar with
// no measurement (never an empty slot that reads as 0), the window marked on line plots, and
// figures stacked into one document (swiattn plot).
#include <doctest/doctest.h>

#include <cmath>

#include "eval/plot.h"
#include "eval/svg.h"
#include "test_util.h"

using namespace swiattn;
using testing::contains;
using testing::error_of;

namespace {

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("figures: the heatmap has a colour scale with ticks and marks rows that did not run") {
  const std::string heat = svg_heatmap({"Passkey", "depth", "length"}, {"32", "64", "128"}, {"0.00", "0.50", "1.00"},
                                       {{std::nan(""), std::nan(""), std::nan("")}, {1.0, 0.5, 0.0}, {0.25, std::nan(""), 1.0}},
                                       0.0, 1.0, {"skipped: too short", "", ""});
  CHECK(contains(heat, "<linearGradient id=\"scale\""));
  CHECK(count(heat, "<stop ") == 5);
  CHECK(contains(heat, "class=\"colour-scale\""));
  for (const char* tick : {">0<", ">0.25<", ">0.5<", ">0.75<", ">1<"}) CHECK_MESSAGE(contains(heat, tick), tick);
  CHECK(count(heat, "class=\"skipped-row\"") == 1);
  CHECK(contains(heat, ">skipped: too short<"));
  CHECK(count(heat, "class=\"cell\"") == 6);  // the skipped row draws no cells
  CHECK(count(heat, ">n/a<") == 2);           // the measured row's NaN cell, and the legend swatch
  CHECK(contains(heat, ">not run<"));
  // Without notes: no "not run" swatch; notes of the wrong length are refused.
  CHECK(!contains(svg_heatmap({}, {"1"}, {"a"}, {{0.5}}, 0.0, 1.0), "not run"));
  CHECK(contains(error_of([] { svg_heatmap({}, {"1"}, {"a"}, {{0.5}}, 0.0, 1.0, {"x", "y"}); }), "row notes"));
}

TEST_CASE("figures: a bar with no measurement says n/a instead of looking like 0") {
  const std::string bars = svg_bar_chart({"FA ratio", "layer", "ratio"}, {"0", "1", "2"}, {0.0, std::nan(""), 0.5});
  CHECK(count(bars, "class=\"bar\"") == 2);
  CHECK(count(bars, "class=\"na\"") == 1);
  CHECK(contains(bars, "1: n/a (no measurement)"));
  const std::string grouped = svg_grouped_bar_chart({"FA at the answer", "layer", "ratio"}, {"0", "1"},
                                                    {"inside", "beyond"}, {{std::nan(""), std::nan("")}, {0.0, 1.0}});
  CHECK(count(grouped, "class=\"bar\"") == 2);
  CHECK(count(grouped, "class=\"na\"") == 2);
  CHECK(contains(grouped, "inside, 0: n/a"));
}

TEST_CASE("figures: line plots mark the window, and figures stack into one document") {
  const LineSeries s{"keys", {0, 32, 64, 128}, {1, 32, 40, 50}};
  const std::string plot = svg_line_plot({"Decode", "t", "keys"}, {s}, false, 0, 0, {{32, "window W = 32"}, {999, "far"}});
  CHECK(count(plot, "class=\"marker\"") == 1);  // the one outside the x range is not drawn
  CHECK(contains(plot, ">window W = 32<"));
  const std::string log_plot = svg_line_plot({"Loss", "t", "loss"}, {{"b", {1, 2, 64}, {1, 1, 1}}}, true, 0, 0, {{32, "W"}});
  CHECK(count(log_plot, "class=\"marker\"") == 1);
  const std::string stacked = svg_stack({plot, log_plot});
  CHECK(count(stacked, "<?xml") == 1);
  CHECK(count(stacked, "<svg ") == 3);
  CHECK(contains(stacked, "height=\"880\""));
  CHECK(contains(stacked, "<svg y=\"440\" "));
  CHECK(contains(error_of([] { svg_stack({"not svg"}); }), "not an SVG document"));
}

TEST_CASE("figures: swiattn plot reads metrics.jsonl, old records without a kind too") {
  testing::TempDir dir("swiattn_plot");
  testing::write_bytes(dir.file("metrics.jsonl"),
                       "{\"step\":0,\"val_loss\":5.5,\"kind\":\"validation\",\"time\":\"2026-12-01T00:00:00.000Z\"}\n"
                       "{\"step\":10,\"loss\":4.0,\"lr\":0.001,\"layer_fa_ratio\":[0.5,0.25]}\n"  // before "kind" existed
                       "{\"step\":20,\"loss\":3.0,\"lr\":0.002,\"layer_fa_ratio\":[0.4,0.2],\"kind\":\"progress\"}\n"
                       "{\"step\":20,\"loss\":2.9,\"lr\":0.002,\"layer_fa_ratio\":[0.4,0.2],\"kind\":\"progress\"}\n"  // resumed
                       "{\"step\":21,\"skipped\":\"nan\",\"kind\":\"skipped\"}\n"
                       "{\"final_val_loss\":3.1,\"kind\":\"final\"}\n");
  testing::write_bytes(dir.file("config.json"), R"({"model": {"layer_types": ["full", "switch", "swa", "switch"]}})");
  const RunCurves c = read_run_curves(dir.path.string());
  CHECK(c.loss.size() == 2);
  CHECK(c.loss.at(20) == 2.9);  // the last record of a step wins
  CHECK(c.val_loss.size() == 1);
  CHECK(c.layer_names == std::vector<std::string>{"layer 1", "layer 3"});
  const std::string svg = loss_figure_svg(c, "run");
  CHECK(contains(svg, "data-name=\"layer 3\""));
  testing::write_bytes(dir.file("metrics.jsonl"), "{\"step\":1,\"val_loss\":2}\nnot json\n");
  CHECK(contains(error_of([&] { read_run_curves(dir.path.string()); }), "line 2 is not a JSON object"));
  testing::write_bytes(dir.file("metrics.jsonl"), "{\"step\":1,\"val_loss\":2}\n");
  CHECK(contains(error_of([&] { read_run_curves(dir.path.string()); }), "holds no progress record"));
}
