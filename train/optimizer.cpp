// train/optimizer.cpp: AdamW, gradient clipping and the learning-rate schedule.
// The formulas are stated in train/optimizer.h; the per-element arithmetic is kernels/optimizer.h
// (CPU: kernels/cpu/optimizer.cpp, CUDA: kernels/cuda/optimizer.cu).
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "kernels/optimizer.h"

namespace swiattn {

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string param_label(const Var& p, size_t index) {
  return p.name().empty() ? "#" + std::to_string(index) : "'" + p.name() + "'";
}

// Every parameter defined, float32/float64 on the CPU or float32 on CUDA, all on one device, and
// listed once (a parameter listed twice would be updated twice and counted twice in the norm).
void check_params(const char* op, const std::vector<Var>& params) {
  std::set<const Node*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined())
      throw Error(std::string(op) + ": parameter #" + std::to_string(i) + " is undefined");
    const Tensor& value = params[i].value();
    if (value.device() == Device::CUDA) {
      if (value.dtype() != DType::F32)
        throw Error(std::string(op) + ": parameter " + param_label(params[i], i) + " is " + dtype_name(value.dtype()) +
                    " on cuda; CUDA parameters are float32 (bfloat16 compute keeps float32 master weights)");
    } else {
      check_float(op, value);
    }
    if (value.device() != params[0].value().device())
      throw Error(std::string(op) + ": parameter " + param_label(params[i], i) + " is on " +
                  device_name(value.device()) + " but the first is on " + device_name(params[0].value().device()));
    if (!seen.insert(params[i].node()).second)
      throw Error(std::string(op) + ": parameter " + param_label(params[i], i) +
                  " appears more than once");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AdamW
// ---------------------------------------------------------------------------------------------

AdamW::AdamW(std::vector<Var> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  check_params("AdamW", params_);
  for (const Var& p : params_) {
    first_moments_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.value().device()));
    second_moments_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.value().device()));
  }
}

void AdamW::step(double lr) {
  ++steps_taken_;
  const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
  const double t = static_cast<double>(steps_taken_);
  const double bias_correction1 = 1.0 - std::pow(b1, t);  // 1 - beta1^t
  const double bias_correction2 = 1.0 - std::pow(b2, t);  // 1 - beta2^t

  for (size_t i = 0; i < params_.size(); ++i) {
    const Var& param = params_[i];
    const Tensor& grad = param.grad();
    if (!grad.defined()) continue;  // no backward reached it: leave it (and its decay) alone
    check_same_shape("AdamW.step", param.value(), grad);
    check_same_dtype("AdamW.step", param.value(), grad);
    const double wd = param.value().ndim() >= 2 ? options_.weight_decay : 0.0;

    kernels::adamw_step(param.value(), grad, first_moments_[i], second_moments_[i], lr, b1, b2, eps, wd,
                        bias_correction1, bias_correction2);
  }
}

void AdamW::zero_grad() {
  for (const Var& p : params_) p.zero_grad();
}

void AdamW::load_state(int64_t steps_taken, const std::vector<Tensor>& first_moments,
                       const std::vector<Tensor>& second_moments) {
  if (steps_taken < 0)
    throw Error("AdamW.load_state: steps_taken must be >= 0, got " + std::to_string(steps_taken));
  if (first_moments.size() != params_.size() || second_moments.size() != params_.size())
    throw Error("AdamW.load_state: expected " + std::to_string(params_.size()) +
                " first and second moments (one per parameter), got " +
                std::to_string(first_moments.size()) + " and " +
                std::to_string(second_moments.size()));
  // Check everything before changing anything, so a failed load leaves the state as it was.
  for (size_t i = 0; i < params_.size(); ++i) {
    check_float("AdamW.load_state", first_moments[i]);
    check_float("AdamW.load_state", second_moments[i]);
    check_same_shape("AdamW.load_state", params_[i].value(), first_moments[i]);
    check_same_shape("AdamW.load_state", params_[i].value(), second_moments[i]);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Device device = first_moments_[i].device();  // converts to the parameter's dtype and device
    first_moments_[i].copy_from(first_moments[i].device() == device ? first_moments[i] : first_moments[i].to(device));
    second_moments_[i].copy_from(second_moments[i].device() == device ? second_moments[i] : second_moments[i].to(device));
  }
  steps_taken_ = steps_taken;
}

// ---------------------------------------------------------------------------------------------
// Gradient norm and clipping
// ---------------------------------------------------------------------------------------------

// The parameters' gradients (undefined where no backward reached), for the kernels.
static std::vector<Tensor> grads_of(const std::vector<Var>& params) {
  std::vector<Tensor> grads;
  for (const Var& p : params) grads.push_back(p.grad());
  return grads;
}

static Device device_of(const std::vector<Var>& params) {
  return params.empty() ? Device::CPU : params[0].value().device();
}

// norm = sqrt(sum over params and elements of g^2); when max_norm > 0 and norm > max_norm (and
// finite), g *= max_norm / norm, so |g| becomes max_norm. Both on the parameters' device.
Tensor clip_grad_norm_on_device(const std::vector<Var>& params, double max_norm) {
  check_params("clip_grad_norm", params);
  const std::vector<Tensor> grads = grads_of(params);
  const Tensor norm_and_factor = kernels::grad_norm_and_clip_factor(grads, max_norm, device_of(params));
  for (const Tensor& g : grads)
    if (g.defined()) kernels::scale_by_clip_factor(g, norm_and_factor);
  return norm_and_factor.slice(0, 1).reshape({});
}

double global_grad_norm(const std::vector<Var>& params) {
  check_params("global_grad_norm", params);
  return kernels::grad_norm_and_clip_factor(grads_of(params), 0.0, device_of(params)).at(0);
}

double clip_grad_norm(const std::vector<Var>& params, double max_norm) {
  return clip_grad_norm_on_device(params, max_norm).item();
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedule
// ---------------------------------------------------------------------------------------------

double learning_rate_at(int64_t step, double peak, double floor, int64_t warmup_steps,
                        int64_t total_steps) {
  if (step < 0 || warmup_steps < 0 || total_steps < 1)
    throw Error("learning_rate_at: need step >= 0, warmup_steps >= 0, total_steps >= 1; got " +
                std::to_string(step) + ", " + std::to_string(warmup_steps) + ", " +
                std::to_string(total_steps));
  // s < W: lr = peak * (s + 1) / W
  if (step < warmup_steps)
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  // s >= N - 1: lr = floor
  if (step >= total_steps - 1) return floor;
  // W <= s < N - 1: cosine from peak (s = W) towards floor (s = N - 1); here N - 1 - W >= 1.
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - 1 - warmup_steps);
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(kPi * progress));
}

}  // namespace swiattn
