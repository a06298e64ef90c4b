// train/optimizer.h: the AdamW optimizer, global-norm gradient clipping and the learning-rate
// schedule (linear warm-up, then cosine decay to a floor).
//
// Conventions:
//   - Parameters are Vars whose grad() was filled by backward(); a parameter whose grad is
//     undefined (no backward reached it) is skipped entirely by step(): no moment update and
//     no weight decay. The same parameter may not appear twice in one list.
//   - Moments are stored in the parameter's dtype (float32 moments for float32 parameters);
//     the per-element update arithmetic is done in double and rounded once when stored.
//   - Weight decay is DECOUPLED (Loshchilov & Hutter) and applied only to parameters with
//     ndim >= 2 (weight matrices, embeddings), never to 1-D norm gains or biases.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/autograd.h"
#include "tensor/tensor.h"

namespace swiattn {

struct AdamWOptions {
  double beta1 = 0.9;          // decay of the first moment (mean of g)
  double beta2 = 0.95;         // decay of the second moment (mean of g^2)
  double eps = 1e-8;           // added to sqrt(vhat)
  double weight_decay = 0.1;   // decoupled; matrices only
};

// One AdamW step t = 1, 2, ... for each parameter p with gradient g:
//   m    = beta1 * m + (1 - beta1) * g
//   v    = beta2 * v + (1 - beta2) * g^2
//   mhat = m / (1 - beta1^t)                  (bias correction: at t = 1, mhat = g)
//   vhat = v / (1 - beta2^t)                  (at t = 1, vhat = g^2, so the update is ~lr*sign(g))
//   p   -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)     wd = weight_decay if ndim(p) >= 2, else 0
// t counts calls to step() (one count for the optimizer, not one per parameter).
class AdamW {
 public:
  // Parameters must be defined float32/float64 CPU tensors or float32 CUDA tensors, all on one
  // device, each listed once. The moments live with the parameters; on CUDA step() runs
  // kernels/cuda/optimizer.cu's adamw_step (the loop below, one thread per element).
  explicit AdamW(std::vector<Var> params, AdamWOptions options = {});

  void step(double lr);  // one update of every parameter that has a defined grad
  void zero_grad();      // drops every parameter's grad (it becomes undefined)

  const std::vector<Var>& params() const { return params_; }
  const AdamWOptions& options() const { return options_; }
  int64_t steps_taken() const { return steps_taken_; }

  // The optimizer state, for checkpoints: m and v of params()[i], each with that parameter's
  // shape and dtype (zeros before the first step).
  const std::vector<Tensor>& first_moments() const { return first_moments_; }
  const std::vector<Tensor>& second_moments() const { return second_moments_; }
  // Restores a saved state. The moment lists must have one tensor per parameter, each of the
  // parameter's shape (any float dtype: values are converted to the parameter's dtype).
  void load_state(int64_t steps_taken, const std::vector<Tensor>& first_moments,
                  const std::vector<Tensor>& second_moments);

 private:
  std::vector<Var> params_;
  AdamWOptions options_;
  std::vector<Tensor> first_moments_;   // m, one per parameter, same shape and dtype
  std::vector<Tensor> second_moments_;  // v, one per parameter, same shape and dtype
  int64_t steps_taken_ = 0;
};

// sqrt of the sum of g^2 over every element of every defined grad (accumulated in double).
double global_grad_norm(const std::vector<Var>& params);

// clip_grad_norm without reading the norm back: it returns the norm before clipping as a ()
// float64 tensor on the parameters' device (item() copies it). On CUDA the norm and the factor
// max_norm / norm are computed and applied on the device, so a step need not wait for them.
Tensor clip_grad_norm_on_device(const std::vector<Var>& params, double max_norm);

// Scales every defined grad by max_norm / norm when norm > max_norm, so the global norm becomes
// exactly max_norm. Returns the norm measured before clipping. max_norm <= 0 disables clipping
// (the norm is still returned); a non-finite norm is returned as is and nothing is scaled.
double clip_grad_norm(const std::vector<Var>& params, double max_norm);

// The learning rate of 0-based optimizer step s, with W = warmup_steps, N = total_steps:
//   s < W:            lr = peak * (s + 1) / W                     (reaches peak at s = W - 1)
//   W <= s < N - 1:   lr = floor + (peak - floor) * (1 + cos(pi * (s - W) / (N - 1 - W))) / 2
//                                                                  (peak at s = W)
//   s >= N - 1:       lr = floor                                   (the last step and beyond)
// The warm-up rule wins where they overlap (W >= N: every step of the run is warm-up).
// Requires s >= 0, W >= 0, N >= 1; throws Error otherwise.
double learning_rate_at(int64_t step, double peak, double floor, int64_t warmup_steps,
                        int64_t total_steps);

}  // namespace swiattn
