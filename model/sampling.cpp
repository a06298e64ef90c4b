// model/sampling.cpp: see model/sampling.h.
#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "kernels/cuda/reduce.h"

namespace swiattn {

void check_sampling(const SamplingOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0)
    throw Error("sampling: temperature must be a finite number >= 0 (0 = greedy), got " + std::to_string(o.temperature));
  if (o.top_k < 0) throw Error("sampling: top-k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0.0 && o.top_p <= 1.0))
    throw Error("sampling: top-p must be in (0, 1] (1 = off), got " + std::to_string(o.top_p));
}

// The lowest index of the maximum; -1 when a NaN or an infinity is present (a broken model's
// logits: no token may be drawn from them as if they were a distribution).
static int64_t argmax_of(const std::vector<double>& v) {
  int64_t best = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) return -1;
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& o) {
  check_sampling(o);
  if (logits.empty()) throw Error("sampling: empty logits");
  const int64_t best = argmax_of(logits);
  if (best < 0) throw Error("sampling: the logits contain a NaN or an infinity (the model's weights or activations are broken)");
  const size_t V = logits.size();
  std::vector<double> p(V, 0.0);
  if (o.temperature == 0.0) {  // greedy
    p[static_cast<size_t>(best)] = 1.0;
    return p;
  }
  const double mx = logits[static_cast<size_t>(best)];
  for (size_t i = 0; i < V; ++i) p[i] = std::exp((logits[i] - mx) / o.temperature);
  if (o.top_k > 0 || o.top_p < 1.0) {
    // Tokens by decreasing logit, ties by increasing index: the order both filters cut in.
    std::vector<size_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
    size_t keep = o.top_k > 0 ? std::min<size_t>(V, static_cast<size_t>(o.top_k)) : V;
    if (o.top_p < 1.0) {
      double total = 0.0;
      for (size_t r = 0; r < keep; ++r) total += p[order[r]];
      double mass = 0.0;
      size_t nucleus = 0;
      while (nucleus < keep) {  // the smallest prefix whose probability reaches top_p
        mass += p[order[nucleus++]];
        if (mass >= o.top_p * total) break;
      }
      keep = nucleus;
    }
    for (size_t r = keep; r < V; ++r) p[order[r]] = 0.0;
  }
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= total;
  return p;
}

int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& o, Rng& rng) {
  const std::vector<double> p = sampling_distribution(logits, o);
  if (o.temperature == 0.0) return static_cast<int32_t>(std::max_element(p.begin(), p.end()) - p.begin());
  double u = rng.uniform();  // inverse-CDF sampling, in index order
  size_t last = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) continue;
    if (u < p[i]) return static_cast<int32_t>(i);
    u -= p[i];
    last = i;
  }
  return static_cast<int32_t>(last);  // only reached through rounding: the last kept token
}

int32_t sample_token(const std::vector<double>& logits, double temperature, Rng& rng) {
  if (!(temperature > 0)) throw Error("sample_token: temperature must be > 0");
  SamplingOptions o;
  o.temperature = temperature;
  return sample_token(logits, o, rng);
}

std::vector<int32_t> argmax_rows(const Tensor& logits) {
  if (logits.ndim() != 2 || logits.dim(1) < 1)
    throw Error("argmax_rows: logits must be (N, V) with V >= 1, got " + shape_str(logits.shape()));
  const int64_t N = logits.dim(0), V = logits.dim(1);
  std::vector<int32_t> out(static_cast<size_t>(N));
  if (logits.device() == Device::CUDA) {
    const Tensor index = Tensor::empty({N}, DType::I32, Device::CUDA);
    cuda::argmax_rows(logits, index);  // -1 for a row holding a NaN
    out = index.to_ints();
  } else {
    const std::vector<double> all = logits.to_vector();
    for (int64_t n = 0; n < N; ++n)
      out[n] = static_cast<int32_t>(argmax_of(std::vector<double>(all.begin() + n * V, all.begin() + (n + 1) * V)));
  }
  for (int64_t n = 0; n < N; ++n)
    if (out[n] < 0)
      throw Error("sampling: the logits of row " + std::to_string(n) +
                  " contain a NaN or an infinity (the model's weights or activations are broken)");
  return out;
}

std::vector<int32_t> sample_rows(const Tensor& logits, const SamplingOptions& o, Rng& rng) {
  check_sampling(o);
  if (o.temperature == 0.0) return argmax_rows(logits);
  if (logits.ndim() != 2) throw Error("sample_rows: logits must be (N, V), got " + shape_str(logits.shape()));
  const int64_t N = logits.dim(0), V = logits.dim(1);
  const Tensor host = logits.dtype() == DType::BF16 ? logits.to(DType::F32).to_host() : logits.to_host();
  const std::vector<double> all = host.to_vector();
  std::vector<int32_t> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    out[n] = sample_token(std::vector<double>(all.begin() + n * V, all.begin() + (n + 1) * V), o, rng);
  return out;
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
    SamplingOptions sampling;  // temperature 0: greedy
    sampling.temperature = temperature;
    prompt.push_back(sample_token(last, sampling, rng));
  }
  return prompt;
}

}  // namespace swiattn
