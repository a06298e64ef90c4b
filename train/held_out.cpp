// train/held_out.cpp: the held-out loss pass (train/held_out.h).
#include "train/held_out.h"

#include "autograd/autograd.h"
#include "model/route_count.h"

namespace swiattn {

double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches,
                     std::vector<double>* layer_ratios, const HeldOutVisitor& each_batch) {
  if (batches.empty()) throw Error("evaluate_loss: no batches");
  NoGradGuard no_grad;
  double total = 0.0;
  std::vector<RouteCount> counts;  // per switch layer
  for (const auto& [inputs, targets] : batches) {
    const auto on_model = [&](const Tensor& x) { return x.device() == model.device() ? x : x.to(model.device()); };
    const ForwardResult f = model.forward_with_routing(on_model(inputs), false);
    Tensor per_token;
    const double loss = next_token_loss(f.logits, on_model(targets), each_batch ? &per_token : nullptr).value().item();
    total += loss;
    if (each_batch) each_batch(HeldOutBatch{f, per_token, loss});
    if (!layer_ratios) continue;
    counts.resize(f.routing.size());
    for (size_t l = 0; l < f.routing.size(); ++l)
      for (double m : f.routing[l].route.to_vector()) counts[l].add(m);  // one copy from the device, if there
  }
  if (layer_ratios) {
    layer_ratios->clear();
    for (const RouteCount& c : counts) layer_ratios->push_back(c.ratio());
  }
  return total / static_cast<double>(batches.size());
}

}  // namespace swiattn
