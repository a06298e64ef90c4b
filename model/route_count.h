// model/route_count.h: the full-attention ratio (spec §5, §8), defined once.
//
// The ratio of a set of routed tokens is the mean of their hard routes m_t (1 = full attention,
// 0 = the sliding window): sum m_t / count. The "effective" (far) ratio is the same mean over the
// positions t >= w only, where a query has keys outside its window and the two branches differ
// (window_has_far_keys, kernels/cpu/window.h). Training (the regulariser's stats, the validation
// ratios), evaluation (per layer, at the answers of retrieval tasks, route maps), decoding
// statistics and the generation benchmark all count routes with a RouteCount and read the
// ratio from it. What an empty count means differs by caller (no tokens: NaN in a report, 0 or
// 1 in a progress line), so the caller names it.
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/cpu/window.h"

namespace swiattn {

struct RouteCount {
  double full = 0.0;        // sum of m_t over the counted tokens
  int64_t tokens = 0;       // how many tokens
  double full_far = 0.0;    // sum of m_t over those at t >= w
  int64_t tokens_far = 0;   // how many of them are at t >= w

  // One token's route m (0 or 1), position not tracked (no far ratio).
  void add(double m) {
    full += m;
    ++tokens;
  }
  // One token's route m at position t of a layer with window w.
  void add(double m, int64_t t, int64_t window) {
    add(m);
    if (window_has_far_keys(t, window)) full_far += m, ++tokens_far;
  }
  // Routes already summed elsewhere (a device reduction): `full` over `tokens` tokens.
  static RouteCount from_sums(double full, int64_t tokens, double full_far = 0.0, int64_t tokens_far = 0) {
    return {full, tokens, full_far, tokens_far};
  }

  double ratio(double if_empty = std::numeric_limits<double>::quiet_NaN()) const {
    return tokens > 0 ? full / static_cast<double>(tokens) : if_empty;
  }
  double far_ratio(double if_empty = std::numeric_limits<double>::quiet_NaN()) const {
    return tokens_far > 0 ? full_far / static_cast<double>(tokens_far) : if_empty;
  }
};

}  // namespace swiattn
