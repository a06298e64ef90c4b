#include "train/nonfinite.h"

#include <cmath>

#include "kernels/cuda/optimizer.h"

namespace swiattn {

bool all_finite(const Tensor& t) {
  if (t.device() == Device::CUDA) {
    const Tensor count = Tensor::zeros({1}, DType::I32, Device::CUDA);
    cuda::count_nonfinite(t, count, 0);
    return count.to_ints()[0] == 0;
  }
  return dispatch_float(t.dtype(), "all_finite", [&](auto zero) {
    using T = decltype(zero);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
}

std::string first_nonfinite(const ForwardResult& forward, const Var& loss, const std::vector<Var>& params) {
  // Forward order first: the earliest layer whose output is not finite caused the rest.
  const size_t L = forward.layer_outputs.size();
  std::vector<std::string> places;  // what each checked tensor is, in the order of the report
  std::vector<Tensor> tensors;
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
  if (loss.value().device() == Device::CUDA) {
    // One count per tensor on the device, then one copy to the host for all of them.
    const Tensor counts = Tensor::zeros({static_cast<int64_t>(tensors.size())}, DType::I32, Device::CUDA);
    for (size_t i = 0; i < tensors.size(); ++i) cuda::count_nonfinite(tensors[i], counts, static_cast<int64_t>(i));
    const std::vector<int32_t> c = counts.to_ints();
    for (size_t i = 0; i < c.size(); ++i)
      if (c[i] != 0) return places[i];
    return "";
  }
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!all_finite(tensors[i])) return places[i];
  return "";
}

}  // namespace swiattn
