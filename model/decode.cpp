// model/decode.cpp: see model/decode.h. The Decoder only feeds the model's own forward
// (Transformer::final_hidden) in its prefill and step modes and keeps the books; the arithmetic
// of a layer lives in model/transformer.cpp, the cache's reads and writes in model/kv_cache.cpp.
#include "model/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/decode_attention.h"
#include "model/route_count.h"

namespace swiattn {

// ---- spec §8 accounting ----

double DecodeStats::keys_read_tokens(size_t i) const {
  const DecodedToken& token = tokens.at(i);
  double total = 0;
  for (int64_t n : token.keys_read) total += static_cast<double>(n);
  return token.keys_read.empty() ? 0.0 : total / static_cast<double>(token.keys_read.size());
}

double DecodeStats::keys_read_bytes(size_t i) const {
  return keys_read_tokens(i) * 2.0 * static_cast<double>(kv_heads * head_dim * bytes_per_element);
}

double DecodeStats::mean_keys_read_tokens() const {
  double total = 0;
  for (size_t i = 0; i < tokens.size(); ++i) total += keys_read_tokens(i);
  return tokens.empty() ? 0.0 : total / static_cast<double>(tokens.size());
}

static void check_stats_layer(const DecodeStats& s, int64_t layer) {
  if (layer < 0 || layer >= s.num_layers)
    throw Error("decode stats: layer " + std::to_string(layer) + " out of range [0, " +
                std::to_string(s.num_layers) + ")");
}

double DecodeStats::full_attention_ratio(int64_t layer) const {
  check_stats_layer(*this, layer);
  RouteCount count;
  for (const DecodedToken& token : tokens) count.add(token.full_attention[layer]);
  return count.ratio(0.0);
}

double DecodeStats::decoded_full_attention_ratio(int64_t layer, int64_t sequence) const {
  check_stats_layer(*this, layer);
  RouteCount count;
  for (const DecodedToken& token : tokens)
    if (token.sequence == sequence && !token.prefill) count.add(token.full_attention[layer]);
  return count.ratio();
}

namespace {

// The record of token (s, t) given its route per layer (L), with the keys each layer's
// attention read: [first key, t] by the decode attention's own rule (kernels/cpu/decode_attention.h).
DecodedToken token_record(const std::vector<TransformerLayer>& layers, int64_t s, int64_t t, bool prefill,
                          std::vector<uint8_t> full) {
  DecodedToken token{s, t, prefill, std::move(full), std::vector<int64_t>(layers.size())};
  for (size_t l = 0; l < layers.size(); ++l)
    token.keys_read[l] = t - cpu::decode_first_key(t + 1, token.full_attention[l] != 0, layers[l].window) + 1;
  return token;
}

}  // namespace

// ---- the decoder ----

Decoder::Decoder(const Transformer& model, int64_t sequences, int64_t capacity, int64_t prefill_tokens)
    : model_(model),
      weights_([&] {
        NoGradGuard no_grad;  // the casts are plain tensors: made once, no graph
        return model.compute_weights();
      }()),
      cache_(model.config(), model.compute_dtype(), sequences, capacity, model.device()),
      prefill_tokens_(prefill_tokens) {
  if (prefill_tokens < 1) throw Error("decoder: prefill_tokens must be >= 1, got " + std::to_string(prefill_tokens));
}

void Decoder::start_stats(DecodeStats* stats) const {
  if (!stats) return;
  stats->num_layers = cache_.num_layers();
  stats->kv_heads = cache_.kv_heads();
  stats->head_dim = cache_.head_dim();
  if (stats->bytes_per_element == 0) stats->bytes_per_element = static_cast<int64_t>(dtype_size(cache_.dtype()));
}

Tensor Decoder::prefill(const std::vector<std::vector<int32_t>>& prompts, DecodeStats* stats) {
  const int64_t S = cache_.sequences(), L = cache_.num_layers(), C = model_.config().hidden_size;
  const int64_t V = model_.config().vocab_size;
  if (static_cast<int64_t>(prompts.size()) != S)
    throw Error("prefill: need one prompt per sequence of the cache (" + std::to_string(S) + "), got " +
                std::to_string(prompts.size()));
  for (int64_t s = 0; s < S; ++s) {
    if (prompts[s].empty()) throw Error("prefill: prompt " + std::to_string(s) + " is empty");
    if (cache_.length(s) != 0)
      throw Error("prefill: sequence " + std::to_string(s) + " already holds " + std::to_string(cache_.length(s)) +
                  " tokens (prefill fills empty sequences; continue with step)");
    if (static_cast<int64_t>(prompts[s].size()) > cache_.capacity())
      throw Error("prefill: prompt " + std::to_string(s) + " (" + std::to_string(prompts[s].size()) +
                  " tokens) does not fit the cache's capacity " + std::to_string(cache_.capacity()));
  }
  NoGradGuard no_grad;
  start_stats(stats);
  Tensor last_logits = Tensor::empty({S, V}, model_.compute_dtype(), model_.device());  // (S, V)
  // Batches of consecutive prompts, rows padded to the batch's longest prompt, at most
  // prefill_tokens_ tokens per forward (a bound on the activations' memory), one row at least.
  for (int64_t first = 0; first < S;) {
    int64_t longest = static_cast<int64_t>(prompts[first].size()), end = first + 1;
    while (end < S && std::max<int64_t>(longest, prompts[end].size()) * (end - first + 1) <= prefill_tokens_)
      longest = std::max<int64_t>(longest, prompts[end++].size());
    const int64_t N = end - first;
    std::vector<int32_t> ids(static_cast<size_t>(N * longest), 0);  // padding: token 0, never read
    for (int64_t n = 0; n < N; ++n) std::copy(prompts[first + n].begin(), prompts[first + n].end(), ids.begin() + n * longest);
    std::vector<LayerRouting> routing;
    const Var h = model_.final_hidden(Tensor::from_ints(ids, {N, longest}), weights_,
                                      KvCacheUse{&cache_, false, first}, false, routing);  // (N, T, C)
    // The hidden state after each prompt's last token, then its logits.
    Tensor last = Tensor::empty({N, 1, C}, h.dtype(), h.value().device());  // (N, 1, C)
    const Tensor rows = h.value().reshape({N * longest, C});
    for (int64_t n = 0; n < N; ++n) {
      const int64_t at = n * longest + static_cast<int64_t>(prompts[first + n].size()) - 1;
      last.slice(n, n + 1).copy_from(rows.slice(at, at + 1).reshape({1, 1, C}));
    }
    last_logits.slice(first, end).copy_from(model_.output_logits(Var(last), weights_).value().reshape({N, V}));
    for (int64_t n = 0; n < N; ++n) cache_.set_length(first + n, static_cast<int64_t>(prompts[first + n].size()));
    if (stats) {  // the forward's routes (static layers: constant), one copy per switch layer
      std::vector<std::vector<double>> routes(static_cast<size_t>(L));
      size_t next_switch = 0;
      for (int64_t l = 0; l < L; ++l)
        if (model_.config().layer_type(l) == LayerType::Switch) routes[l] = routing.at(next_switch++).route.to_vector();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < static_cast<int64_t>(prompts[first + n].size()); ++t) {
          std::vector<uint8_t> full(static_cast<size_t>(L));
          for (int64_t l = 0; l < L; ++l)
            full[l] = routes[l].empty() ? model_.config().layer_type(l) == LayerType::Full : routes[l][n * longest + t] > 0.5;
          stats->tokens.push_back(token_record(weights_.layers, first + n, t, true, std::move(full)));
        }
    }
    first = end;
  }
  return last_logits;
}

Tensor Decoder::step(const std::vector<int32_t>& tokens, DecodeStats* stats) {
  const int64_t S = cache_.sequences(), L = cache_.num_layers(), V = model_.config().vocab_size;
  if (static_cast<int64_t>(tokens.size()) != S)
    throw Error("decode step: need one token per sequence of the cache (" + std::to_string(S) + "), got " +
                std::to_string(tokens.size()));
  for (size_t s = 0; s < tokens.size(); ++s)  // before anything runs: a bad id changes nothing
    if (tokens[s] < 0 || tokens[s] >= V)
      throw Error("decode step: token " + std::to_string(tokens[s]) + " of sequence " + std::to_string(s) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
  NoGradGuard no_grad;
  cache_.begin_step();  // checks room in every sequence; the positions go to the device once
  std::vector<LayerRouting> routing;
  const Var h = model_.final_hidden(Tensor::from_ints(tokens, {S, 1}), weights_, KvCacheUse{&cache_, true, 0},
                                    false, routing);  // (S, 1, C)
  const Tensor logits = model_.output_logits(h, weights_).value().reshape({S, V});  // (S, V)
  if (stats) {
    start_stats(stats);
    const std::vector<int32_t> routes = cache_.step_routes().to_ints();  // (L, S): one copy back
    for (int64_t s = 0; s < S; ++s) {
      std::vector<uint8_t> full(static_cast<size_t>(L));
      for (int64_t l = 0; l < L; ++l) full[l] = routes[l * S + s] != 0;
      stats->tokens.push_back(token_record(weights_.layers, s, cache_.length(s), false, std::move(full)));
    }
  }
  cache_.end_step();  // every layer has appended position length(s)
  return logits;
}

// ---- generation ----

std::vector<std::vector<int32_t>> generate_batch(const Transformer& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 int64_t new_tokens, const SamplingOptions& sampling, Rng& rng,
                                                 DecodeStats* stats) {
  check_sampling(sampling);
  if (prompts.empty()) throw Error("generate: no prompts");
  if (new_tokens < 0) throw Error("generate: new_tokens must be >= 0, got " + std::to_string(new_tokens));
  int64_t longest = 0;
  for (size_t s = 0; s < prompts.size(); ++s) {
    if (prompts[s].empty()) throw Error("generate: prompt " + std::to_string(s) + " holds no tokens");
    longest = std::max<int64_t>(longest, prompts[s].size());
  }
  std::vector<std::vector<int32_t>> out = prompts;
  if (new_tokens == 0) return out;
  // The last sampled token is never fed back, so the cache holds prompt + new_tokens - 1 tokens.
  const int64_t needed = longest + new_tokens - 1, limit = model.config().max_position_embeddings;
  if (needed > limit)
    throw Error("generate: the longest prompt (" + std::to_string(longest) + " tokens) + new_tokens (" +
                std::to_string(new_tokens) + ") - 1 = " + std::to_string(needed) +
                " tokens exceed max_position_embeddings " + std::to_string(limit) +
                " (positions past it were never trained): ask for at most " + std::to_string(limit - longest + 1) +
                " new tokens");
  Decoder decoder(model, static_cast<int64_t>(prompts.size()), needed);
  Tensor logits = decoder.prefill(prompts, stats);  // (S, V)
  for (int64_t n = 0; n < new_tokens; ++n) {
    const std::vector<int32_t> next = sample_rows(logits, sampling, rng);
    for (size_t s = 0; s < out.size(); ++s) out[s].push_back(next[s]);
    if (n + 1 < new_tokens) logits = decoder.step(next, stats);
  }
  return out;
}

std::vector<int32_t> generate_with_cache(const Transformer& model, std::vector<int32_t> prompt,
                                         int64_t new_tokens, double temperature, Rng& rng, DecodeStats* stats) {
  SamplingOptions sampling;
  sampling.temperature = temperature;
  return generate_batch(model, {std::move(prompt)}, new_tokens, sampling, rng, stats).at(0);
}

}  // namespace swiattn
