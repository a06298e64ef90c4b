#include "model/sampling.h"

#include <algorithm>
#include <cmath>

namespace swiattn {

int32_t sample_token(const std::vector<double>& logits, double temperature, Rng& rng) {
  if (logits.empty()) throw Error("sample_token: empty logits");
  if (!(temperature > 0)) throw Error("sample_token: temperature must be > 0");
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) total += (p[i] = std::exp((logits[i] - mx) / temperature));
  double u = rng.uniform() * total;  // inverse-CDF sampling
  for (size_t i = 0; i < p.size(); ++i) {
    if (u < p[i]) return static_cast<int32_t>(i);
    u -= p[i];
  }
  return static_cast<int32_t>(p.size() - 1);  // only reached through rounding
}

std::vector<int32_t> generate(const Transformer& model, std::vector<int32_t> prompt,
                              int64_t new_tokens, double temperature, int64_t context, Rng& rng) {
  if (prompt.empty()) throw Error("generate: the prompt must hold at least one token");
  context = std::min(context, model.config().max_position_embeddings);
  if (context < 1) throw Error("generate: context must be >= 1");
  NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size;
  for (int64_t n = 0; n < new_tokens; ++n) {
    const int64_t T = std::min<int64_t>(context, prompt.size());
    std::vector<int32_t> window(prompt.end() - T, prompt.end());
    const Tensor logits = model.forward(Tensor::from_ints(window, {1, T})).value();  // (1, T, V)
    std::vector<double> last(V);
    for (int64_t v = 0; v < V; ++v) last[v] = logits.at((T - 1) * V + v);
    prompt.push_back(sample_token(last, temperature, rng));
  }
  return prompt;
}

}  // namespace swiattn
