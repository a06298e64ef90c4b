// train/regularizer.cpp: the efficiency regulariser (train/regularizer.h, spec §5 Eq. 7-9) and
// the target-ratio controller. The per-token arithmetic (Eq. 8, the routing sums) is
// kernels/routing.h (CPU: kernels/cpu/routing.cpp, CUDA: kernels/cuda/routing.cu).
#include "train/regularizer.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/cpu/window.h"
#include "kernels/routing.h"
#include "model/route_count.h"

namespace swiattn {

Tensor adaptive_gamma(const Tensor& per_token_nll, const Tensor& branch_diff_sq,
                      const RegularizerConfig& config, double gamma_base) {
  if (per_token_nll.numel() != branch_diff_sq.numel())
    shape_error("adaptive_gamma", "one NLL per token", per_token_nll, branch_diff_sq);
  check_same_device("adaptive_gamma", per_token_nll, branch_diff_sq);
  return kernels::adaptive_gamma(per_token_nll, branch_diff_sq, config.eps, config.alpha, gamma_base);  // Eq. 8
}

RegularizerResult efficiency_regularizer(const std::vector<LayerRouting>& routing,
                                         const Tensor& per_token_nll, const RegularizerConfig& config,
                                         double gamma_base, int64_t window, bool read_stats) {
  RegularizerResult result;
  if (routing.empty()) return result;
  const int64_t Ls = static_cast<int64_t>(routing.size());
  const Device device = routing.front().route.device();
  // Per layer: sum of m, sum of m over t >= w, sum of gamma; on the routes' device, read once.
  const Tensor sums = Tensor::zeros({Ls, 3}, DType::F64, device);
  std::vector<Tensor> layer_terms;  // () each layer's Eq. 7 mean, on the device
  Var total;
  for (int64_t i = 0; i < Ls; ++i) {
    const LayerRouting& r = routing[i];
    Tensor gamma;
    if (config.mode != "off") {
      if (config.mode == "adaptive" && !r.branch_diff_sq.defined())
        throw Error("efficiency_regularizer: layer " + std::to_string(r.layer) +
                    " has no branch difference (run the forward with measure_branches)");
      if (config.mode == "fixed") {
        gamma = Tensor::empty(r.route.shape(), kernels::statistics_dtype(r.route), device);
        gamma.fill(gamma_base);
      } else {
        gamma = adaptive_gamma(per_token_nll, r.branch_diff_sq, config, gamma_base);
      }
      // On CUDA the loss is float32: bfloat16 router logits are cast first.
      const Var logit = r.logit.dtype() == gamma.dtype() ? r.logit : cast(r.logit, gamma.dtype());
      Var layer_term = mean(mul(Var(gamma), softplus(logit)));  // Eq. 7, averaged over (B, T)
      layer_terms.push_back(layer_term.value());
      total = total.defined() ? add(total, layer_term) : layer_term;
    }
    kernels::routing_sums(r.route, gamma, window, sums.slice(i, i + 1).reshape({3}));
  }
  if (total.defined()) result.loss = scale(total, 1.0 / static_cast<double>(Ls));  // Eq. 9
  result.layers.resize(routing.size());
  for (int64_t i = 0; i < Ls; ++i) result.layers[i].layer = routing[i].layer;
  if (!read_stats) return result;
  const std::vector<double> s = sums.to_vector();  // the one copy (on CUDA it waits for the step's kernels)
  for (int64_t i = 0; i < Ls; ++i) {
    LayerRoutingStats& stats = result.layers[i];
    const int64_t B = routing[i].route.dim(0), T = routing[i].route.dim(1);
    const RouteCount count = RouteCount::from_sums(s[3 * i], B * T, s[3 * i + 1], B * window_far_queries(T, window));
    stats.ratio = count.ratio();
    stats.effective_ratio = count.far_ratio(0.0);
    if (!layer_terms.empty()) {
      stats.mean_gamma = s[3 * i + 2] / static_cast<double>(B * T);
      stats.regularizer = layer_terms[i].item();
    }
    result.ratio += stats.ratio / static_cast<double>(Ls);
    result.effective_ratio += stats.effective_ratio / static_cast<double>(Ls);
  }
  return result;
}

double ratio_controller_shift(std::vector<double> logits, double target_ratio, double threshold, double rate) {
  if (logits.empty()) return 0.0;
  if (!(target_ratio >= 0.0 && target_ratio <= 1.0) || !(threshold > 0.0 && threshold < 1.0) || !(rate > 0.0 && rate <= 1.0))
    throw Error("ratio_controller_shift: target in [0, 1], threshold in (0, 1) and rate in (0, 1] expected");
  for (double s : logits)
    if (!std::isfinite(s)) throw Error("ratio_controller_shift: a router logit is not finite");
  const size_t n = logits.size();
  const size_t k = static_cast<size_t>(std::llround(target_ratio * static_cast<double>(n)));
  std::sort(logits.begin(), logits.end(), std::greater<double>());  // largest first
  double q;  // exactly k logits lie above q
  if (k == 0) q = logits.front();
  else if (k == n) q = logits.back() - 1e-6 * (1.0 + std::abs(logits.back()));
  else q = 0.5 * (logits[k - 1] + logits[k]);
  const double theta = std::log(threshold / (1.0 - threshold));
  return std::clamp(rate * (theta - q), -1.0, 1.0);
}

std::vector<double> controller_router_logits(const Transformer& model, const std::vector<LayerRouting>& routing) {
  // The step's tokens re-scored by the updated routers (the optimizer step has moved w_r and b_r),
  // every switch layer's s_t pooled; one copy per layer from the device.
  std::vector<double> logits;
  for (const LayerRouting& r : routing) {
    if (!r.input.defined()) throw Error("apply_ratio_controller: layer " + std::to_string(r.layer) + " recorded no router input");
    Tensor s = model.router_logits(r.layer, r.input);
    if (s.dtype() == DType::BF16) s = s.to(DType::F32);
    const std::vector<double> v = s.to_vector();
    logits.insert(logits.end(), v.begin(), v.end());
  }
  return logits;
}

void shift_router_biases(const Transformer& model, double delta) {
  NoGradGuard no_grad;
  Tensor shift;  // (1) on the parameters' device, made once for every layer
  for (const TransformerLayer& layer : model.layers()) {
    if (layer.type != LayerType::Switch) continue;
    Tensor bias = layer.attn.router_bias.value();  // (1), shares the parameter's storage
    if (!shift.defined()) shift = Tensor::full({1}, delta, bias.dtype()).to(bias.device());
    bias.copy_from(add(Var(bias), Var(shift)).value());  // b_r <- b_r + delta
  }
}

double apply_ratio_controller(const Transformer& model, const std::vector<LayerRouting>& routing,
                              const RegularizerConfig& config) {
  if (config.controller != "bias" || routing.empty()) return 0.0;
  const double delta = ratio_controller_shift(controller_router_logits(model, routing), config.target_ratio,
                                              model.config().router_threshold, config.controller_rate);
  shift_router_biases(model, delta);
  return delta;
}

}  // namespace swiattn
