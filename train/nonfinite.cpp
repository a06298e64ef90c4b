#include "train/nonfinite.h"

#include <cmath>

namespace swiattn {

bool all_finite(const Tensor& t) {
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
  for (size_t l = 0; l < L; ++l)
    if (!all_finite(forward.layer_outputs[l]))
      return "the output of layer " + std::to_string(l) + " (of " + std::to_string(L) + ")";
  if (!all_finite(forward.logits.value())) return "the logits (after the final norm and output head)";
  if (!all_finite(loss.value())) return "the loss";
  for (const Var& p : params)
    if (p.grad().defined() && !all_finite(p.grad())) return "the gradient of " + p.name();
  return "";
}

}  // namespace swiattn
