// train/nonfinite.cpp: see train/nonfinite.h. The counting is kernels/optimizer.h's
// count_nonfinite (CPU: kernels/cpu/optimizer.cpp, CUDA: kernels/cuda/optimizer.cu).
#include "train/nonfinite.h"

#include "kernels/optimizer.h"

namespace swiattn {

bool all_finite(const Tensor& t) {
  const Tensor count = Tensor::zeros({1}, DType::I32, t.device());
  kernels::count_nonfinite(t, count, 0);
  return count.to_ints()[0] == 0;
}

namespace {

// The index of the first tensor holding a non-finite value, or -1: one count per tensor (on
// CUDA on the device), then one copy to the host for all of them.
int64_t first_nonfinite_tensor(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return -1;
  const Tensor counts = Tensor::zeros({static_cast<int64_t>(tensors.size())}, DType::I32, tensors.front().device());
  kernels::count_nonfinite_each(tensors, counts);
  const std::vector<int32_t> c = counts.to_ints();
  for (size_t i = 0; i < c.size(); ++i)
    if (c[i] != 0) return static_cast<int64_t>(i);
  return -1;
}

// What first_nonfinite checks, in its order, appended to places / tensors.
void step_tensors(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params,
                  std::vector<std::string>& places, std::vector<Tensor>& tensors) {
  // Forward order first: the earliest layer whose output is not finite caused the rest.
  const size_t L = forward.layer_outputs.size();
  for (size_t l = 0; l < L; ++l) {
    places.push_back("the output of layer " + std::to_string(l) + " (of " + std::to_string(L) + ")");
    tensors.push_back(forward.layer_outputs[l]);
  }
  places.push_back("the logits (after the final norm and output head)");
  tensors.push_back(forward.logits.value());
  places.push_back("the loss");
  tensors.push_back(loss.value());
  for (const Var& p : params)
    if (p.grad().defined()) {
      places.push_back("the gradient of " + p.name());
      tensors.push_back(p.grad());
    }
}

}  // namespace

std::string first_nonfinite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params) {
  std::vector<std::string> places;  // what each checked tensor is, in the order of the report
  std::vector<Tensor> tensors;
  step_tensors(forward, loss, params, places, tensors);
  const int64_t bad = first_nonfinite_tensor(tensors);
  return bad < 0 ? "" : places[static_cast<size_t>(bad)];
}

StepCheck check_step_finite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params) {
  std::vector<std::string> places;
  std::vector<Tensor> tensors;
  for (const Var& p : params) {
    places.push_back("the weights of " + p.name());
    tensors.push_back(p.value());
  }
  const size_t weights = tensors.size();
  step_tensors(forward, loss, params, places, tensors);
  StepCheck check;
  const int64_t bad = first_nonfinite_tensor(tensors);
  if (bad >= 0) (static_cast<size_t>(bad) < weights ? check.bad_weight : check.bad_step) = places[static_cast<size_t>(bad)];
  return check;
}

std::string first_nonfinite_state(const std::vector<Var>& params, const AdamW* optimizer) {
  std::vector<std::string> places;
  std::vector<Tensor> tensors;
  for (const Var& p : params) {
    places.push_back("the weights of " + p.name());
    tensors.push_back(p.value());
  }
  if (optimizer)
    for (size_t i = 0; i < optimizer->params().size(); ++i) {
      const std::string& name = optimizer->params()[i].name();
      places.push_back("the first moment (AdamW m) of " + name);
      tensors.push_back(optimizer->first_moments()[i]);
      places.push_back("the second moment (AdamW v) of " + name);
      tensors.push_back(optimizer->second_moments()[i]);
    }
  const int64_t bad = first_nonfinite_tensor(tensors);
  return bad < 0 ? "" : places[static_cast<size_t>(bad)];
}

}  // namespace swiattn
