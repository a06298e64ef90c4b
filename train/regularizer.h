// train/regularizer.h: the adaptive efficiency regulariser (spec §5, Eq. 7-9).
//
//   L_t^l     = gamma_t^l * softplus(s_t^l)                                     Eq. 7
//   gamma_t^l = gamma_base / (eps + NLL_t + alpha * ||O_FULL_t^l - O_SWA_t^l||^2)  Eq. 8
//   L         = L_LM + (1 / (L_s * B * T)) * sum_l sum_{b,t} L_t^l              Eq. 9
//
// Our readings [R], documented in docs/swiattn.md:
//   - gamma is a weight: computed from detached values, it carries no gradient;
//   - NLL_t is the next-token loss of the prediction made at position t (the position whose
//     hidden state the router reads); ignored targets count as NLL 0;
//   - L_s counts the switch layers (the only ones with a router), and the mean runs over the
//     batch too;
//   - mode "fixed" uses gamma = gamma_base; "off" adds nothing (ratios are still reported).
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "train/config.h"

namespace swiattn {

struct LayerRoutingStats {
  int64_t layer = 0;
  double ratio = 0.0;            // mean m_t over all positions
  double effective_ratio = 0.0;  // mean m_t over positions t >= w (where the branches differ)
  double mean_gamma = 0.0;
  double regularizer = 0.0;      // this layer's mean gamma * softplus(s)
};

struct RegularizerResult {
  Var loss;                              // scalar Eq. 9 term; undefined when mode is "off"
  std::vector<LayerRoutingStats> layers;
  double ratio = 0.0;                    // mean over switch layers
  double effective_ratio = 0.0;
};

// Eq. 8 for one layer: per_token_nll (B * T) and branch_diff_sq (B, T) -> gamma (B, T), detached.
Tensor adaptive_gamma(const Tensor& per_token_nll, const Tensor& branch_diff_sq,
                      const RegularizerConfig& config, double gamma_base);

// Eq. 7 and 9 over all switch layers of one forward pass. window = the model's sliding_window
// (for the effective ratio). On CUDA (routes on the device) the loss is built on the device in
// float32 (bfloat16 router logits are cast first); the statistics (ratios, mean gamma, each
// layer's term) are summed there too and copied to the host only when read_stats is true (one
// copy for all layers): with read_stats = false they stay 0, so a training step that neither
// logs nor runs the controller does not wait for the device. On the CPU they are always read.
RegularizerResult efficiency_regularizer(const std::vector<LayerRouting>& routing,
                                         const Tensor& per_token_nll, const RegularizerConfig& config,
                                         double gamma_base, int64_t window, bool read_stats = true);

// Our target-ratio controller [R]: gamma_base * exp(rate * (ratio - target)).
double update_gamma_base(double gamma_base, double measured_ratio, const RegularizerConfig& config);

}  // namespace swiattn
