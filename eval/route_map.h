// eval/route_map.h: `swiattn routes`: a page that shows where a model spends full attention.
//
// The text is run through the model once (one forward, batch 1). For every layer and token:
// the route m_t (full attention or the sliding window) and, in switch layers, the router
// probability p_t = sigmoid(s_t) (spec §3, Eq. 1-2). The page (routes.html) prints the text once
// per layer, each token coloured by its route and shaded by p_t (hover a token: its id, text,
// p_t and route), and draws the window of one chosen token: the W tokens it reads when it is
// routed to the window, marked in every layer, and whether it reads them or everything before it.
// With --passkey the text is a passkey example (data/synthetic.h) from the checkpoint's
// validation split, the needle and the answer marked, the chosen token the one that predicts the
// answer's first token: does the model route it to full attention in the layers that retrieve?
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "data/tokenizer.h"
#include "model/transformer.h"

namespace swiattn {

struct RouteMap {
  std::string title;                             // what was run, e.g. the checkpoint and text file
  std::vector<int32_t> ids;                      // (n)
  std::vector<std::string> pieces;               // (n) each token's text, printable UTF-8
  std::vector<LayerType> layer_types;            // (L) full, swa or switch
  std::vector<std::vector<double>> probability;  // (L, n) p_t in switch layers; NaN in static ones
  std::vector<std::vector<int>> route;           // (L, n) 1 = full attention, 0 = the window
  int64_t window = 0;                            // W
  int64_t token = 0;                             // the token whose window is drawn
  // Spans [begin, end) of tokens to mark, with a name (e.g. the passkey's needle and answer).
  std::vector<std::pair<int64_t, int64_t>> marks;
  std::vector<std::string> mark_names;
  double fa_ratio(size_t layer) const;           // mean route of one layer
};

// One forward of `ids` (1, n) without gradients; token in [0, n). Throws Error for an empty text,
// a text longer than the model's max_position_embeddings, or a token outside the text.
RouteMap compute_route_map(const Transformer& model, const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                           int64_t token);

std::string route_map_html(const RouteMap& map);
nlohmann::json route_map_json(const RouteMap& map);

// The command line: --checkpoint DIR (--text FILE | --passkey LENGTH) --out DIR [--token N]
// [--max-tokens N] [--device cpu|cuda]. Writes OUT/routes.html and OUT/routes.json.
int run_routes_command(const std::vector<std::string>& args, std::ostream& log);

}  // namespace swiattn
