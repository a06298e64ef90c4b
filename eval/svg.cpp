// eval/svg.cpp: see eval/svg.h. Coordinates: a 760 x 440 canvas, the plot area inside margins
// (left 80, right 190 for the legend, top 50, bottom 60); data -> pixels by a linear map.
#include "eval/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tensor/tensor.h"

namespace swiattn {

namespace {

constexpr double kWidth = 760, kHeight = 440;
constexpr double kLeft = 80, kRight = 190, kTop = 50, kBottom = 60;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

std::string num(double v) {  // compact, locale-independent
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v == 0.0 ? 0.0 : v);  // never "-0"
  return buf;
}
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string header(const PlotLabels& labels) {
  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << kWidth << "\" height=\"" << kHeight << "\" fill=\"white\"/>\n"
    << "<text x=\"" << kWidth / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">"
    << xml_escape(labels.title) << "</text>\n"
    << "<text x=\"" << kLeft + kPlotW / 2 << "\" y=\"" << kHeight - 14 << "\" text-anchor=\"middle\">"
    << xml_escape(labels.x_label) << "</text>\n"
    << "<text x=\"18\" y=\"" << kTop + kPlotH / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
    << kTop + kPlotH / 2 << ")\">" << xml_escape(labels.y_label) << "</text>\n";
  return s.str();
}

// A "nice" tick step (1, 2 or 5 times a power of ten) of about range / 4.
double nice_step(double range) {
  const double raw = range / 4.0;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

// Y range from the data when not given (from 0 when all y >= 0), widened to whole tick steps.
void y_range(const std::vector<double>& ys, double& lo, double& hi) {
  if (lo < hi) return;
  lo = 0.0;
  hi = 1.0;
  bool any = false;
  double mn = 0, mx = 0;
  for (double y : ys) {
    if (std::isnan(y) || std::isinf(y)) continue;
    mn = any ? std::min(mn, y) : y;
    mx = any ? std::max(mx, y) : y;
    any = true;
  }
  if (!any) return;
  lo = mn >= 0 ? 0.0 : mn;
  hi = mx;
  if (hi <= lo) hi = lo + 1.0;
  const double step = nice_step(hi - lo);
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
}

// Ticks at multiples of a nice step inside [lo, hi], with grid lines.
std::string y_axis(double lo, double hi) {
  std::ostringstream s;
  s << "<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\"" << kTop + kPlotH
    << "\" stroke=\"black\"/>\n";
  const double step = nice_step(hi - lo);
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
    const double y = kTop + kPlotH - kPlotH * (v - lo) / (hi - lo);
    s << "<line x1=\"" << kLeft - 4 << "\" y1=\"" << px(y) << "\" x2=\"" << kLeft << "\" y2=\"" << px(y)
      << "\" stroke=\"black\"/>\n"
      << "<line x1=\"" << kLeft << "\" y1=\"" << px(y) << "\" x2=\"" << kLeft + kPlotW << "\" y2=\"" << px(y)
      << "\" stroke=\"#e0e0e0\"/>\n"
      << "<text x=\"" << kLeft - 7 << "\" y=\"" << px(y + 4) << "\" text-anchor=\"end\">"
      << num(std::abs(v) < 1e-12 * step ? 0.0 : v) << "</text>\n";
  }
  return s.str();
}

std::string x_axis_line() {
  std::ostringstream s;
  s << "<line x1=\"" << kLeft << "\" y1=\"" << kTop + kPlotH << "\" x2=\"" << kLeft + kPlotW << "\" y2=\""
    << kTop + kPlotH << "\" stroke=\"black\"/>\n";
  return s.str();
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_plot(const PlotLabels& labels, const std::vector<LineSeries>& series, bool log_x,
                          double y_min, double y_max, const std::vector<XMarker>& markers) {
  std::vector<double> all_y;
  double x_lo = 0, x_hi = 0;
  bool any_x = false;
  for (const LineSeries& s : series) {
    if (s.x.size() != s.y.size()) throw Error("svg_line_plot: series " + s.name + " has x and y of different lengths");
    all_y.insert(all_y.end(), s.y.begin(), s.y.end());
    for (double x : s.x) {
      if (log_x && !(x > 0)) throw Error("svg_line_plot: log x axis needs x > 0 (series " + s.name + ")");
      const double v = log_x ? std::log2(x) : x;
      x_lo = any_x ? std::min(x_lo, v) : v;
      x_hi = any_x ? std::max(x_hi, v) : v;
      any_x = true;
    }
  }
  if (!any_x || x_hi <= x_lo) x_hi = x_lo + 1.0;
  y_range(all_y, y_min, y_max);
  auto X = [&](double x) { return kLeft + kPlotW * ((log_x ? std::log2(x) : x) - x_lo) / (x_hi - x_lo); };
  auto Y = [&](double y) { return kTop + kPlotH - kPlotH * (std::clamp(y, y_min, y_max) - y_min) / (y_max - y_min); };

  std::ostringstream s;
  s << header(labels) << y_axis(y_min, y_max) << x_axis_line();
  // x ticks: powers of two on a log axis, else multiples of a nice step.
  const double x_step = log_x ? std::max(1.0, std::ceil((x_hi - x_lo) / 8.0)) : nice_step(x_hi - x_lo);
  for (double v = std::ceil(x_lo / x_step - 1e-9) * x_step; v <= x_hi + 1e-9 * x_step; v += x_step) {
    const double x = kLeft + kPlotW * (v - x_lo) / (x_hi - x_lo);
    s << "<line x1=\"" << px(x) << "\" y1=\"" << kTop + kPlotH << "\" x2=\"" << px(x) << "\" y2=\""
      << kTop + kPlotH + 4 << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << px(x) << "\" y=\"" << kTop + kPlotH + 18 << "\" text-anchor=\"middle\">"
      << num(log_x ? std::exp2(v) : v) << "</text>\n";
  }
  for (const XMarker& m : markers) {  // dashed vertical lines, labelled at the top
    if (log_x && !(m.x > 0)) continue;
    const double v = log_x ? std::log2(m.x) : m.x;
    if (!(v >= x_lo && v <= x_hi)) continue;
    const double x = X(m.x);
    s << "<g class=\"marker\"><line x1=\"" << px(x) << "\" y1=\"" << kTop << "\" x2=\"" << px(x) << "\" y2=\""
      << kTop + kPlotH << "\" stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n"
      << "<text x=\"" << px(x + 4) << "\" y=\"" << kTop + 12 << "\" font-size=\"11\" fill=\"#333333\">"
      << xml_escape(m.label) << "</text></g>\n";
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const LineSeries& ls = series[k];
    const char* color = kColors[k % 10];
    s << "<g class=\"series\" data-name=\"" << xml_escape(ls.name) << "\">\n";
    std::string points;  // one polyline per run of finite points
    auto flush = [&] {
      if (!points.empty())
        s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\""
          << (ls.dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"" << points << "\"/>\n";
      points.clear();
    };
    for (size_t i = 0; i < ls.x.size(); ++i) {
      if (std::isnan(ls.y[i])) {
        flush();
        continue;
      }
      points += (points.empty() ? "" : " ") + px(X(ls.x[i])) + "," + px(Y(ls.y[i]));
    }
    flush();
    if (ls.x.size() <= 64)
      for (size_t i = 0; i < ls.x.size(); ++i)
        if (!std::isnan(ls.y[i]))
          s << "<circle cx=\"" << px(X(ls.x[i])) << "\" cy=\"" << px(Y(ls.y[i])) << "\" r=\"3\" fill=\"" << color
            << "\"><title>" << xml_escape(ls.name) << ": (" << num(ls.x[i]) << ", " << num(ls.y[i])
            << ")</title></circle>\n";
    s << "</g>\n";
    const double ly = kTop + 10 + 18 * static_cast<double>(k);  // legend
    s << "<line x1=\"" << kWidth - kRight + 12 << "\" y1=\"" << px(ly) << "\" x2=\"" << kWidth - kRight + 36
      << "\" y2=\"" << px(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2\""
      << (ls.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n"
      << "<text x=\"" << kWidth - kRight + 42 << "\" y=\"" << px(ly + 4) << "\">" << xml_escape(ls.name) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_bar_chart(const PlotLabels& labels, const std::vector<std::string>& bar_labels,
                          const std::vector<double>& values, double y_min, double y_max) {
  if (bar_labels.size() != values.size()) throw Error("svg_bar_chart: labels and values differ in length");
  y_range(values, y_min, y_max);
  auto Y = [&](double y) { return kTop + kPlotH - kPlotH * (std::clamp(y, y_min, y_max) - y_min) / (y_max - y_min); };
  std::ostringstream s;
  s << header(labels) << y_axis(y_min, y_max) << x_axis_line();
  const double slot = kPlotW / static_cast<double>(std::max<size_t>(values.size(), 1));
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = kLeft + slot * static_cast<double>(i);
    s << "<text x=\"" << px(x + slot / 2) << "\" y=\"" << kTop + kPlotH + 18 << "\" text-anchor=\"middle\">"
      << xml_escape(bar_labels[i]) << "</text>\n";
    if (std::isnan(values[i])) {  // not measured: an outlined box saying so, never an empty slot
      s << "<g class=\"na\"><rect x=\"" << px(x + slot * 0.15) << "\" y=\"" << px(kTop + kPlotH - 24) << "\" width=\""
        << px(slot * 0.7) << "\" height=\"24\" fill=\"none\" stroke=\"#999999\" stroke-dasharray=\"3 2\"/>"
        << "<text x=\"" << px(x + slot / 2) << "\" y=\"" << px(kTop + kPlotH - 8) << "\" text-anchor=\"middle\" "
        << "font-size=\"10\" fill=\"#666666\">n/a</text><title>" << xml_escape(bar_labels[i])
        << ": n/a (no measurement)</title></g>\n";
      continue;
    }
    const double top = Y(values[i]), base = Y(std::max(y_min, 0.0));
    s << "<rect class=\"bar\" x=\"" << px(x + slot * 0.15) << "\" y=\"" << px(std::min(top, base)) << "\" width=\""
      << px(slot * 0.7) << "\" height=\"" << px(std::abs(base - top)) << "\" fill=\"" << kColors[0] << "\"><title>"
      << xml_escape(bar_labels[i]) << ": " << num(values[i]) << "</title></rect>\n"
      << "<text x=\"" << px(x + slot / 2) << "\" y=\"" << px(std::min(top, base) - 4)
      << "\" text-anchor=\"middle\" font-size=\"10\">" << num(std::round(values[i] * 1000) / 1000) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_grouped_bar_chart(const PlotLabels& labels, const std::vector<std::string>& group_labels,
                                  const std::vector<std::string>& series_names,
                                  const std::vector<std::vector<double>>& values, double y_min, double y_max) {
  if (values.size() != series_names.size()) throw Error("svg_grouped_bar_chart: series names and values differ in count");
  std::vector<double> all;
  for (const auto& v : values) {
    if (v.size() != group_labels.size()) throw Error("svg_grouped_bar_chart: a series' length differs from the groups");
    all.insert(all.end(), v.begin(), v.end());
  }
  y_range(all, y_min, y_max);
  auto Y = [&](double y) { return kTop + kPlotH - kPlotH * (std::clamp(y, y_min, y_max) - y_min) / (y_max - y_min); };
  std::ostringstream s;
  s << header(labels) << y_axis(y_min, y_max) << x_axis_line();
  const double slot = kPlotW / static_cast<double>(std::max<size_t>(group_labels.size(), 1));
  const double bar = slot * 0.8 / static_cast<double>(std::max<size_t>(values.size(), 1));
  for (size_t g = 0; g < group_labels.size(); ++g) {
    const double x0 = kLeft + slot * static_cast<double>(g);
    s << "<text x=\"" << px(x0 + slot / 2) << "\" y=\"" << kTop + kPlotH + 18 << "\" text-anchor=\"middle\">"
      << xml_escape(group_labels[g]) << "</text>\n";
    for (size_t k = 0; k < values.size(); ++k) {
      const double x = x0 + slot * 0.1 + bar * static_cast<double>(k), v = values[k][g];
      if (std::isnan(v)) {  // not measured (e.g. no trial inside the window): say so, not 0
        s << "<g class=\"na\"><rect x=\"" << px(x) << "\" y=\"" << px(kTop + kPlotH - 22) << "\" width=\""
          << px(bar * 0.92) << "\" height=\"22\" fill=\"none\" stroke=\"" << kColors[k % 10]
          << "\" stroke-dasharray=\"3 2\"/><text x=\"" << px(x + bar / 2) << "\" y=\"" << px(kTop + kPlotH - 7)
          << "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555555\">n/a</text><title>"
          << xml_escape(series_names[k] + ", " + group_labels[g]) << ": n/a (no measurement)</title></g>\n";
        continue;
      }
      const double top = Y(v), base = Y(std::max(y_min, 0.0));
      s << "<rect class=\"bar\" x=\"" << px(x) << "\" y=\"" << px(std::min(top, base)) << "\" width=\""
        << px(bar * 0.92) << "\" height=\"" << px(std::abs(base - top)) << "\" fill=\"" << kColors[k % 10]
        << "\"><title>" << xml_escape(series_names[k] + ", " + group_labels[g]) << ": " << num(v) << "</title></rect>\n";
    }
  }
  for (size_t k = 0; k < series_names.size(); ++k) {
    const double ly = kTop + 10 + 18 * static_cast<double>(k);
    s << "<rect x=\"" << kWidth - kRight + 12 << "\" y=\"" << px(ly - 6) << "\" width=\"24\" height=\"12\" fill=\""
      << kColors[k % 10] << "\"/>\n<text x=\"" << kWidth - kRight + 42 << "\" y=\"" << px(ly + 4) << "\">"
      << xml_escape(series_names[k]) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_heatmap(const PlotLabels& labels, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels,
                        const std::vector<std::vector<double>>& values, double v_min, double v_max,
                        const std::vector<std::string>& row_notes) {
  if (values.size() != row_labels.size()) throw Error("svg_heatmap: rows and row labels differ in count");
  for (const auto& row : values)
    if (row.size() != col_labels.size()) throw Error("svg_heatmap: a row's length differs from the column labels");
  if (!row_notes.empty() && row_notes.size() != row_labels.size())
    throw Error("svg_heatmap: row notes and rows differ in count");
  if (!(v_max > v_min)) throw Error("svg_heatmap: v_max must exceed v_min");
  auto color = [&](double v) {  // white -> #08519c over [v_min, v_max]
    const double a = std::clamp((v - v_min) / (v_max - v_min), 0.0, 1.0);
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(255 - a * (255 - 8)),
                  static_cast<int>(255 - a * (255 - 81)), static_cast<int>(255 - a * (255 - 156)));
    return std::string(buf);
  };
  std::ostringstream s;
  s << header(labels)
    << "<defs><pattern id=\"skipped\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" "
       "patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#eeeeee\"/>"
       "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#bbbbbb\" stroke-width=\"3\"/></pattern>\n"
    << "<linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int i = 0; i <= 4; ++i)
    s << "<stop offset=\"" << num(i / 4.0) << "\" stop-color=\"" << color(v_min + (v_max - v_min) * i / 4.0) << "\"/>";
  s << "</linearGradient></defs>\n";
  const double cw = kPlotW / static_cast<double>(std::max<size_t>(col_labels.size(), 1));
  const double ch = kPlotH / static_cast<double>(std::max<size_t>(row_labels.size(), 1));
  for (size_t r = 0; r < values.size(); ++r) {
    const double y = kTop + ch * static_cast<double>(r);
    s << "<text x=\"" << kLeft - 6 << "\" y=\"" << px(y + ch / 2 + 4) << "\" text-anchor=\"end\">"
      << xml_escape(row_labels[r]) << "</text>\n";
    if (!row_notes.empty() && !row_notes[r].empty()) {  // a row not measured at all
      s << "<g class=\"skipped-row\"><rect x=\"" << kLeft << "\" y=\"" << px(y) << "\" width=\"" << kPlotW
        << "\" height=\"" << px(ch) << "\" fill=\"url(#skipped)\" stroke=\"#bbbbbb\"/>\n"
        << "<text x=\"" << px(kLeft + kPlotW / 2) << "\" y=\"" << px(y + ch / 2 + 4)
        << "\" text-anchor=\"middle\" fill=\"#444444\">" << xml_escape(row_notes[r]) << "</text></g>\n";
      continue;
    }
    for (size_t c = 0; c < col_labels.size(); ++c) {
      const double v = values[r][c];
      const double x = kLeft + cw * static_cast<double>(c);
      std::string fill = "#cccccc", text = "n/a";
      if (!std::isnan(v)) {
        fill = color(v);
        char t[16];
        std::snprintf(t, sizeof t, "%.2f", v);
        text = t;
      }
      const bool dark = !std::isnan(v) && (v - v_min) / (v_max - v_min) > 0.55;
      s << "<rect class=\"cell\" x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(cw) << "\" height=\""
        << px(ch) << "\" fill=\"" << fill << "\" stroke=\"#bbbbbb\"/>\n"
        << "<text x=\"" << px(x + cw / 2) << "\" y=\"" << px(y + ch / 2 + 4) << "\" text-anchor=\"middle\" fill=\""
        << (dark ? "white" : "black") << "\">" << text << "</text>\n";
    }
  }
  for (size_t c = 0; c < col_labels.size(); ++c)
    s << "<text x=\"" << px(kLeft + cw * (static_cast<double>(c) + 0.5)) << "\" y=\"" << kTop + kPlotH + 18
      << "\" text-anchor=\"middle\">" << xml_escape(col_labels[c]) << "</text>\n";
  // The colour scale: a bar from v_min (bottom) to v_max (top) with five ticks, and the n/a swatch.
  const double bx = kWidth - kRight + 16, bw = 18, by = kTop + 10, bh = kPlotH - 70;
  s << "<g class=\"colour-scale\"><rect x=\"" << bx << "\" y=\"" << by << "\" width=\"" << bw << "\" height=\"" << bh
    << "\" fill=\"url(#scale)\" stroke=\"#999999\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double ty = by + bh - bh * i / 4.0;
    s << "<line x1=\"" << bx + bw << "\" y1=\"" << px(ty) << "\" x2=\"" << bx + bw + 4 << "\" y2=\"" << px(ty)
      << "\" stroke=\"black\"/><text x=\"" << bx + bw + 7 << "\" y=\"" << px(ty + 4) << "\">"
      << num(v_min + (v_max - v_min) * i / 4.0) << "</text>\n";
  }
  s << "<rect x=\"" << bx << "\" y=\"" << by + bh + 18 << "\" width=\"" << bw << "\" height=\"14\" fill=\"#cccccc\" "
       "stroke=\"#bbbbbb\"/><text x=\"" << bx + bw + 7 << "\" y=\"" << by + bh + 30 << "\">n/a</text>\n";
  if (!row_notes.empty())
    s << "<rect x=\"" << bx << "\" y=\"" << by + bh + 38 << "\" width=\"" << bw << "\" height=\"14\" fill=\"url(#skipped)\" "
         "stroke=\"#bbbbbb\"/><text x=\"" << bx + bw + 7 << "\" y=\"" << by + bh + 50 << "\">not run</text>\n";
  s << "</g>\n</svg>\n";
  return s.str();
}

std::string svg_stack(const std::vector<std::string>& figures) {
  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
    << kHeight * static_cast<double>(figures.size()) << "\" viewBox=\"0 0 " << kWidth << " "
    << kHeight * static_cast<double>(figures.size()) << "\">\n";
  for (size_t i = 0; i < figures.size(); ++i) {
    std::string f = figures[i];
    if (f.rfind("<?xml", 0) == 0) f = f.substr(f.find('\n') + 1);  // one declaration, at the top
    const size_t root = f.find("<svg ");
    if (root == std::string::npos) throw Error("svg_stack: figure " + std::to_string(i) + " is not an SVG document");
    f.insert(root + 5, "y=\"" + num(kHeight * static_cast<double>(i)) + "\" ");
    s << f;
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace swiattn
