#include "train/regularizer.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/cuda/routing.h"
#include "model/route_count.h"

namespace swiattn {

Tensor adaptive_gamma(const Tensor& per_token_nll, const Tensor& branch_diff_sq,
                      const RegularizerConfig& config, double gamma_base) {
  if (per_token_nll.numel() != branch_diff_sq.numel())
    shape_error("adaptive_gamma", "one NLL per token", per_token_nll, branch_diff_sq);
  check_same_device("adaptive_gamma", per_token_nll, branch_diff_sq);
  if (branch_diff_sq.device() == Device::CUDA) {  // float32 gamma whatever the inputs' dtype
    Tensor gamma = Tensor::empty(branch_diff_sq.shape(), DType::F32, Device::CUDA);
    cuda::adaptive_gamma(per_token_nll, branch_diff_sq, config.eps, config.alpha, gamma_base, gamma);
    return gamma;
  }
  check_same_dtype("adaptive_gamma", per_token_nll, branch_diff_sq);
  Tensor gamma = Tensor::empty(branch_diff_sq.shape(), branch_diff_sq.dtype());
  dispatch_float(gamma.dtype(), "adaptive_gamma", [&](auto zero) {
    using T = decltype(zero);
    const T* nll = per_token_nll.data<T>();
    const T* diff = branch_diff_sq.data<T>();
    T* g = gamma.data<T>();
    for (int64_t i = 0; i < gamma.numel(); ++i)  // Eq. 8
      g[i] = static_cast<T>(gamma_base / (config.eps + double(nll[i]) + config.alpha * double(diff[i])));
  });
  return gamma;
}

// The CUDA path of efficiency_regularizer: the same formulas, with the sums on the device.
static RegularizerResult efficiency_regularizer_cuda(const std::vector<LayerRouting>& routing,
                                                     const Tensor& per_token_nll, const RegularizerConfig& config,
                                                     double gamma_base, int64_t window, bool read_stats) {
  RegularizerResult result;
  const int64_t Ls = static_cast<int64_t>(routing.size());
  const Tensor sums = Tensor::zeros({Ls, 3}, DType::F64, Device::CUDA);  // per layer: routed, routed late, sum gamma
  std::vector<Tensor> layer_terms;  // () float32 on the device
  Var total;
  for (int64_t i = 0; i < Ls; ++i) {
    const LayerRouting& r = routing[i];
    Tensor gamma;
    if (config.mode != "off") {
      if (config.mode == "adaptive" && !r.branch_diff_sq.defined())
        throw Error("efficiency_regularizer: layer " + std::to_string(r.layer) +
                    " has no branch difference (run the forward with measure_branches)");
      if (config.mode == "fixed") {
        gamma = Tensor::empty(r.route.shape(), DType::F32, Device::CUDA);
        gamma.fill(gamma_base);
      } else {
        gamma = adaptive_gamma(per_token_nll, r.branch_diff_sq, config, gamma_base);
      }
      const Var logit = r.logit.dtype() == DType::F32 ? r.logit : cast(r.logit, DType::F32);
      Var layer_term = mean(mul(Var(gamma), softplus(logit)));  // Eq. 7, averaged over (B, T)
      layer_terms.push_back(layer_term.value());
      total = total.defined() ? add(total, layer_term) : layer_term;
    }
    cuda::routing_sums(r.route, gamma, window, sums.slice(i, i + 1).reshape({3}));
  }
  if (total.defined()) result.loss = scale(total, 1.0 / static_cast<double>(Ls));  // Eq. 9
  result.layers.resize(routing.size());
  for (int64_t i = 0; i < Ls; ++i) result.layers[i].layer = routing[i].layer;
  if (!read_stats) return result;
  const std::vector<double> s = sums.to_vector();  // the one copy (waits for the step's kernels)
  for (int64_t i = 0; i < Ls; ++i) {
    LayerRoutingStats& stats = result.layers[i];
    const int64_t B = routing[i].route.dim(0), T = routing[i].route.dim(1);
    const RouteCount count = RouteCount::from_sums(s[3 * i], B * T, s[3 * i + 1], T > window ? B * (T - window) : 0);
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

RegularizerResult efficiency_regularizer(const std::vector<LayerRouting>& routing,
                                         const Tensor& per_token_nll, const RegularizerConfig& config,
                                         double gamma_base, int64_t window, bool read_stats) {
  RegularizerResult result;
  if (routing.empty()) return result;
  if (routing.front().route.device() == Device::CUDA)
    return efficiency_regularizer_cuda(routing, per_token_nll, config, gamma_base, window, read_stats);
  Var total;
  for (const LayerRouting& r : routing) {
    LayerRoutingStats stats;
    stats.layer = r.layer;
    const int64_t B = r.route.dim(0), T = r.route.dim(1);
    RouteCount count;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) count.add(r.route.at(b * T + t), t, window);
    stats.ratio = count.ratio();
    stats.effective_ratio = count.far_ratio(0.0);
    if (config.mode != "off") {
      if (config.mode == "adaptive" && !r.branch_diff_sq.defined())
        throw Error("efficiency_regularizer: layer " + std::to_string(r.layer) +
                    " has no branch difference (run the forward with measure_branches)");
      const Tensor gamma = config.mode == "fixed"
                               ? Tensor::full(r.route.shape(), gamma_base, r.route.dtype())
                               : adaptive_gamma(per_token_nll, r.branch_diff_sq, config, gamma_base);
      Var layer_term = mean(mul(Var(gamma), softplus(r.logit)));  // Eq. 7, averaged over (B, T)
      stats.regularizer = layer_term.value().item();
      double gamma_sum = 0.0;
      for (int64_t i = 0; i < gamma.numel(); ++i) gamma_sum += gamma.at(i);
      stats.mean_gamma = gamma_sum / static_cast<double>(gamma.numel());
      total = total.defined() ? add(total, layer_term) : layer_term;
    }
    result.ratio += stats.ratio / static_cast<double>(routing.size());
    result.effective_ratio += stats.effective_ratio / static_cast<double>(routing.size());
    result.layers.push_back(stats);
  }
  if (total.defined()) result.loss = scale(total, 1.0 / static_cast<double>(routing.size()));  // Eq. 9
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
