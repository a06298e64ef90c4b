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
// logs nor runs the controller does not wait for the device (the trainer reads them on every
// CPU step, where they cost nothing).
RegularizerResult efficiency_regularizer(const std::vector<LayerRouting>& routing,
                                         const Tensor& per_token_nll, const RegularizerConfig& config,
                                         double gamma_base, int64_t window, bool read_stats = true);

// Our target-ratio controller [R] (reg.controller = "bias"; docs/swiattn.md says why it acts on the
// router biases and not on gamma_base). After an optimizer step it moves every switch layer's
// router bias b_r by one common shift
//     delta = clamp(k * (theta - q), -1, +1),      k = controller_rate in (0, 1],
// where theta = log(tau / (1 - tau)) is the logit threshold of the hard route (m = [s > theta]) and
// q the value that exactly target_ratio of this step's router logits exceed: the step's tokens
// re-scored by the routers as the optimizer step left them (Transformer::router_logits on the
// recorded router inputs), pooled over switch layers and positions. With k = 1 this step's tokens,
// under the updated routers and shifted by delta, would route exactly the target share to full
// attention: a one-step ("deadbeat") controller of the level, with nothing to wind up, no drift
// left from the optimizer's own router update, and no gain to tune against AdamW's per-parameter
// normalisation; k < 1 averages over steps. Which tokens go to full attention stays learned (the router weights get
// the straight-through gradient of the LM loss and the regulariser), and layers keep their own
// levels (one shift for all). Every step is bounded by 1 logit, so it cannot run away.
// Returns delta (0 when the controller is off or there is no switch layer).
double apply_ratio_controller(const Transformer& model, const std::vector<LayerRouting>& routing,
                              const RegularizerConfig& config);

// The two halves of apply_ratio_controller, for data-parallel training (train/data_parallel.h),
// which pools the logits of every rank's rows before taking the quantile:
//   the step's router logits re-scored by the updated routers, every switch layer's pooled;
std::vector<double> controller_router_logits(const Transformer& model, const std::vector<LayerRouting>& routing);
//   b_r <- b_r + delta for every switch layer.
void shift_router_biases(const Transformer& model, double delta);

// The shift above for a plain list of logits (exposed for tests): the midpoint between the k-th
// and (k+1)-th largest logit, k = round(target * n), as q (the largest, or just below the
// smallest, at the ends), then delta = clamp(rate * (theta - q), -1, 1).
double ratio_controller_shift(std::vector<double> logits, double target_ratio, double threshold, double rate);

}  // namespace swiattn
