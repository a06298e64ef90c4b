// eval/svg.h: a small SVG writer for the evaluation's figures: line plot, bar chart, heatmap.
//
// Each function returns one standalone SVG document (an <svg> root with the SVG namespace, a
// white background, a title, axis lines with ticks and labels) that a browser opens directly.
// Text is XML-escaped. A NaN value is not drawn (a gap in a line, a grey "n/a" heatmap cell, an
// empty bar), so missing measurements never look like zeros.
#pragma once

#include <string>
#include <vector>

namespace swiattn {

struct PlotLabels {
  std::string title;
  std::string x_label;
  std::string y_label;
};

struct LineSeries {
  std::string name;          // legend entry
  std::vector<double> x, y;  // same length
  bool dashed = false;       // e.g. a reference line (FullAttn)
};

// A vertical line across the plot at x, labelled (e.g. the window W).
struct XMarker {
  double x = 0.0;
  std::string label;
};

// Lines with markers. log_x: the x axis is log2-scaled (all x must be > 0).
// y_min / y_max: the y range; when y_min >= y_max it is taken from the data (from 0 when all y >= 0).
// markers: dashed vertical lines, each labelled at the top (one outside the x range is not drawn).
std::string svg_line_plot(const PlotLabels& labels, const std::vector<LineSeries>& series,
                          bool log_x = false, double y_min = 0.0, double y_max = 0.0,
                          const std::vector<XMarker>& markers = {});

// One bar per label, value printed above each bar; a NaN bar is an outlined "n/a" box, never an
// empty slot that reads as 0. y range as for svg_line_plot.
std::string svg_bar_chart(const PlotLabels& labels, const std::vector<std::string>& bar_labels,
                          const std::vector<double>& values, double y_min = 0.0, double y_max = 0.0);

// Groups of bars: one group per label, one bar per series in each group (values[series][group]),
// a legend naming the series. NaN bars are drawn as an "n/a" mark, not as zero.
std::string svg_grouped_bar_chart(const PlotLabels& labels, const std::vector<std::string>& group_labels,
                                  const std::vector<std::string>& series_names,
                                  const std::vector<std::vector<double>>& values, double y_min = 0.0,
                                  double y_max = 0.0);

// values[r][c], rows drawn top to bottom; each cell coloured on a white -> blue scale over
// [v_min, v_max] and printed with two decimals; a colour bar with ticks shows the scale. A NaN
// cell is grey "n/a". row_notes (empty, or one per row): a row whose note is not empty is not
// measured: drawn as one hatched band carrying the note (e.g. "skipped: too short").
std::string svg_heatmap(const PlotLabels& labels, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels,
                        const std::vector<std::vector<double>>& values, double v_min, double v_max,
                        const std::vector<std::string>& row_notes = {});

// Standalone figures of this file stacked top to bottom into one SVG document.
std::string svg_stack(const std::vector<std::string>& figures);

// Escapes & < > " ' for XML text and attributes.
std::string xml_escape(const std::string& text);

}  // namespace swiattn
