// eval/route_map.cpp: `swiattn routes` (eval/route_map.h): routes and router probabilities of
// one text, as an HTML page and JSON.
#include "eval/route_map.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <memory>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/args.h"
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "data/read_file.h"
#include "data/synthetic.h"
#include "eval/svg.h"
#include "kernels/cpu/window.h"
#include "tensor/cuda/device.h"
#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "tensor/random.h"
#include "model/route_count.h"

namespace swiattn {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Length of the UTF-8 sequence starting at s[i], 0 when it is not a well-formed one.
size_t utf8_length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}

// A token's text as printable UTF-8: a byte that is not part of a well-formed sequence (a byte
// token in the middle of a multi-byte character) becomes "\xNN"; control characters other than
// newline and tab become "\xNN" too.
std::string printable_piece(const std::string& piece) {
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    const unsigned char c = static_cast<unsigned char>(piece[i]);
    const size_t n = utf8_length(piece, i);
    if (n == 0 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
      ++i;
      continue;
    }
    out += piece.substr(i, n);
    i += n;
  }
  return out;
}

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// Background of one token: full attention red, the window blue; in a switch layer the shade
// grows with the router's confidence in the route taken (p_t for full, 1 - p_t for the window).
std::string token_style(int route, double p) {
  const double confidence = std::isnan(p) ? 0.5 : (route ? p : 1.0 - p);
  const double alpha = 0.15 + 0.75 * std::clamp(confidence, 0.0, 1.0);
  std::ostringstream s;
  s << "background:rgba(" << (route ? "214,39,40," : "31,119,180,") << fixed(alpha, 2) << ")";
  return s.str();
}

}  // namespace

double RouteMap::fa_ratio(size_t layer) const {
  RouteCount count;
  for (int m : route[layer]) count.add(m);
  return count.ratio();
}

RouteMap compute_route_map(const Transformer& model, const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                           int64_t token) {
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n == 0) throw Error("routes: the text encodes to no tokens");
  if (n > c.max_position_embeddings)
    throw Error("routes: " + std::to_string(n) + " tokens exceed model.max_position_embeddings " +
                std::to_string(c.max_position_embeddings) + " (use --max-tokens)");
  if (token < 0 || token >= n)
    throw Error("routes: --token " + std::to_string(token) + " is outside the text's " + std::to_string(n) + " tokens");
  RouteMap map;
  map.ids = ids;
  map.window = c.sliding_window;
  map.token = token;
  for (int32_t id : ids) map.pieces.push_back(printable_piece(tokenizer.decode({id})));

  NoGradGuard no_grad;
  Tensor input = Tensor::from_ints(ids, {1, n});
  if (model.device() != Device::CPU) input = input.to(model.device());
  const ForwardResult f = model.forward_with_routing(input, false);
  size_t next_switch = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerType type = c.layer_type(l);
    map.layer_types.push_back(type);
    if (type != LayerType::Switch) {
      map.probability.emplace_back(static_cast<size_t>(n), kNaN);
      map.route.emplace_back(static_cast<size_t>(n), type == LayerType::Full ? 1 : 0);
      continue;
    }
    if (next_switch >= f.routing.size() || f.routing[next_switch].layer != l)
      throw Error("routes: no routing recorded for switch layer " + std::to_string(l));
    const LayerRouting& r = f.routing[next_switch++];
    const std::vector<double> logits = r.logit.value().to_vector(), routes = r.route.to_vector();  // (1, n) each
    std::vector<double> p(static_cast<size_t>(n));
    std::vector<int> m(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
      p[static_cast<size_t>(t)] = 1.0 / (1.0 + std::exp(-logits[static_cast<size_t>(t)]));  // Eq. 1
      m[static_cast<size_t>(t)] = routes[static_cast<size_t>(t)] > 0.5 ? 1 : 0;            // Eq. 2, as the forward took it
    }
    map.probability.push_back(std::move(p));
    map.route.push_back(std::move(m));
  }
  return map;
}

json route_map_json(const RouteMap& map) {
  json layers = json::array();
  for (size_t l = 0; l < map.layer_types.size(); ++l) {
    json p = json::array();
    for (double x : map.probability[l]) p.push_back(std::isnan(x) ? json() : json(x));
    layers.push_back({{"layer", l}, {"type", layer_type_name(map.layer_types[l])}, {"fa_ratio", map.fa_ratio(l)},
                      {"route", map.route[l]}, {"router_probability", p}});
  }
  json marks = json::array();
  for (size_t i = 0; i < map.marks.size(); ++i)
    marks.push_back({{"name", map.mark_names[i]}, {"begin", map.marks[i].first}, {"end", map.marks[i].second}});
  return {{"title", map.title}, {"window", map.window}, {"token", map.token}, {"ids", map.ids},
          {"pieces", map.pieces}, {"layers", layers}, {"marks", marks}};
}

std::string route_map_html(const RouteMap& map) {
  const int64_t n = static_cast<int64_t>(map.ids.size()), k = map.token, W = map.window;
  const int64_t window_begin = window_first_key(k, W);
  auto mark_of = [&](int64_t t) -> std::string {
    for (size_t i = 0; i < map.marks.size(); ++i)
      if (t >= map.marks[i].first && t < map.marks[i].second) return map.mark_names[i];
    return "";
  };
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>routes: " << xml_escape(map.title)
    << "</title>\n<style>\n"
    << "body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}\n"
    << ".layer{margin:1.2em 0;padding:.4em .8em;border:1px solid #ddd;border-radius:4px}\n"
    << ".layer h2{font-size:1em;margin:.3em 0}\n"
    << ".text{font-family:monospace;white-space:pre-wrap;word-break:break-all;line-height:2.1}\n"
    << ".t{padding:2px 0}\n"
    << ".win{box-shadow:inset 0 -3px 0 #111}\n"
    << ".chosen{outline:2px solid #000;outline-offset:1px}\n"
    << ".mark{text-decoration:underline wavy #2ca02c}\n"
    << ".key{display:inline-block;padding:0 .4em;margin-right:.6em}\n"
    << "</style></head><body>\n"
    << "<h1>Routes: " << xml_escape(map.title) << "</h1>\n"
    << "<p>" << n << " tokens, " << map.layer_types.size() << " layers, window W = " << W << ". Each token is coloured "
    << "by its route in that layer: <span class=\"key\" style=\"" << token_style(1, 1.0) << "\">full attention</span>"
    << "<span class=\"key\" style=\"" << token_style(0, 0.0) << "\">sliding window</span> and, in switch layers, "
    << "shaded by the router's probability p<sub>t</sub> (strong: the router is sure of the route; pale: p<sub>t</sub> "
    << "near the threshold). Hover a token for its id, p<sub>t</sub> and route. The token in a black box is token " << k
    << " (\"" << xml_escape(map.pieces[static_cast<size_t>(k)]) << "\"); the "
    << (k - window_begin + 1) << " tokens underlined in black are its window [" << window_begin << ", " << k
    << "]: routed to the window it reads only them; routed to full attention it reads all " << k + 1
    << " tokens up to itself.";
  for (size_t i = 0; i < map.marks.size(); ++i)
    h << (i == 0 ? " Wavy green underline: " : ", ") << xml_escape(map.mark_names[i]) << " [" << map.marks[i].first
      << ", " << map.marks[i].second << ")";
  h << (map.marks.empty() ? "" : ".") << "</p>\n";
  for (size_t l = 0; l < map.layer_types.size(); ++l) {
    const LayerType type = map.layer_types[l];
    const std::string name = layer_type_name(type);
    const int m_k = map.route[l][static_cast<size_t>(k)];
    h << "<div class=\"layer\"><h2>layer " << l << " (" << name << "): full-attention ratio " << fixed(map.fa_ratio(l), 3)
      << "; token " << k << " " << (m_k ? "reads all " + std::to_string(k + 1) + " tokens (full attention)"
                                        : "reads its window of " + std::to_string(k - window_begin + 1) + " tokens");
    if (type == LayerType::Switch) h << ", p = " << fixed(map.probability[l][static_cast<size_t>(k)], 3);
    h << "</h2>\n<div class=\"text\">";
    for (int64_t t = 0; t < n; ++t) {
      const double p = map.probability[l][static_cast<size_t>(t)];
      const int m = map.route[l][static_cast<size_t>(t)];
      std::string cls = "t";
      if (t >= window_begin && t <= k) cls += " win";
      if (t == k) cls += " chosen";
      const std::string mark = mark_of(t);
      if (!mark.empty()) cls += " mark";
      std::string piece = map.pieces[static_cast<size_t>(t)];
      std::string shown = xml_escape(piece);
      if (piece == "\n") shown = "&#8629;\n";  // a visible newline, then the line break
      h << "<span class=\"" << cls << "\" style=\"" << token_style(m, p) << "\" title=\"layer " << l << ", token " << t
        << " (id " << map.ids[static_cast<size_t>(t)] << "): " << xml_escape(piece == "\n" ? "\\n" : piece) << " | "
        << (type == LayerType::Switch ? "p = " + fixed(p, 3) + " | " : name + " layer | ") << (m ? "full attention" : "window")
        << (mark.empty() ? "" : " | " + xml_escape(mark)) << "\">" << shown << "</span>";
    }
    h << "</div></div>\n";
  }
  h << "</body></html>\n";
  return h.str();
}

int run_routes_command(const std::vector<std::string>& args, std::ostream& log) {
  std::string checkpoint, text_path, out_dir, device_arg = "cpu";
  int64_t token = -1, max_tokens = 0, passkey_length = 0;
  for (ArgCursor a(args); a.next();) {
    if (a.is("--checkpoint")) checkpoint = a.value();
    else if (a.is("--text")) text_path = a.value();
    else if (a.is("--passkey")) passkey_length = a.number<int64_t>();
    else if (a.is("--out")) out_dir = a.value();
    else if (a.is("--token")) token = a.number<int64_t>();
    else if (a.is("--max-tokens")) max_tokens = a.number<int64_t>();
    else if (a.is("--device")) device_arg = a.value();
    else throw a.unknown();
  }
  if (checkpoint.empty()) throw UsageError("needs --checkpoint DIR");
  if (text_path.empty() == (passkey_length == 0)) throw UsageError("give --text FILE or --passkey LENGTH (one of them)");
  if (out_dir.empty()) throw UsageError("needs --out DIR");
  if (passkey_length < 0 || max_tokens < 0) throw UsageError("--passkey and --max-tokens must be >= 1");
  if (device_arg != "cpu" && device_arg != "cuda") throw UsageError("--device: cpu or cuda, got \"" + device_arg + "\"");
  const Device device = device_arg == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA) cuda::require_cuda_device("--device cuda");

  const std::string ckpt = resolve_checkpoint_dir(checkpoint, "routes");
  const Config run = read_checkpoint_run_config(ckpt);
  const ModelConfig mc = read_checkpoint_model_config(ckpt);
  const auto tokenizer = make_tokenizer(run.data.tokenizer, run.data.cache_dir);
  std::vector<int32_t> ids;
  std::vector<std::pair<int64_t, int64_t>> marks;
  std::vector<std::string> mark_names;
  std::string title = ckpt;
  if (!text_path.empty()) {
    ids = tokenizer->encode(read_whole_file(text_path, "routes: --text"));
    const int64_t limit = max_tokens > 0 ? max_tokens : run.train.seq_len;
    if (static_cast<int64_t>(ids.size()) > limit) {
      log << "routes: the text has " << ids.size() << " tokens; reading the first " << limit
          << (max_tokens > 0 ? " (--max-tokens)\n" : " (train.seq_len; --max-tokens changes it)\n");
      ids.resize(static_cast<size_t>(limit));
    }
    title += " on " + text_path;
  } else {
    // A passkey example in the checkpoint's own validation text, the needle farthest from the answer.
    const TokenSplits splits = load_token_splits(run.data.corpus, run.data.cache_dir, run.data.val_fraction, *tokenizer);
    Rng rng(20261201);
    const RetrievalExample ex = make_passkey_example(*tokenizer, splits.val, passkey_length, 0.0, rng);
    ids = ex.tokens;
    marks = {{ex.evidence[0], ex.evidence[0] + passkey_needle_length(*tokenizer, ex.answer_text[0])}, ex.answers[0]};
    mark_names = {"the needle", "the answer " + ex.answer_text[0]};
    if (token < 0) {  // the position that predicts the answer's first scored token (a digit, not the space)
      int64_t first = ex.answers[0].first;
      while (first + 1 < ex.answers[0].second && !scored_answer_token(*tokenizer, ex.tokens[static_cast<size_t>(first)])) ++first;
      token = first - 1;
    }
    title += " on a passkey example of " + std::to_string(passkey_length) + " tokens";
  }
  if (token < 0) token = static_cast<int64_t>(ids.size()) - 1;

  const DType dtype = run.train.dtype == "float64" && device == Device::CPU ? DType::F64 : DType::F32;
  Transformer model(mc, dtype, 0);
  load_model_weights(ckpt, model);
  if (device == Device::CUDA) model.to(device);
  RouteMap map = compute_route_map(model, *tokenizer, ids, token);
  map.title = title;
  map.marks = marks;
  map.mark_names = mark_names;

  fs::create_directories(out_dir);
  write_file_atomically((fs::path(out_dir) / "routes.html").string(), route_map_html(map));
  write_file_atomically((fs::path(out_dir) / "routes.json").string(), route_map_json(map).dump(1) + "\n");
  log << "routes: " << ids.size() << " tokens through " << map.layer_types.size() << " layers; full-attention ratio per layer:";
  for (size_t l = 0; l < map.layer_types.size(); ++l) log << " " << fixed(map.fa_ratio(l), 3);
  log << "\nroutes: wrote " << (fs::path(out_dir) / "routes.html").string() << " and routes.json\n";
  return 0;
}

}  // namespace swiattn
