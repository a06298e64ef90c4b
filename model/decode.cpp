#include "model/decode.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/attention.h"
#include "model/sampling.h"

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

double DecodeStats::full_attention_ratio(int64_t layer) const {
  if (layer < 0 || layer >= num_layers)
    throw Error("decode stats: layer " + std::to_string(layer) + " out of range [0, " +
                std::to_string(num_layers) + ")");
  double full = 0;
  for (const DecodedToken& token : tokens) full += token.full_attention[layer];
  return tokens.empty() ? 0.0 : full / static_cast<double>(tokens.size());
}

namespace {

void check_cache_fits_model(const Transformer& model, const KvCache& cache) {
  const ModelConfig& c = model.config();
  if (cache.num_layers() != c.num_hidden_layers || cache.kv_heads() != c.num_key_value_heads ||
      cache.head_dim() != c.head_dim || cache.dtype() != model.dtype() ||
      cache.capacity() > c.max_position_embeddings)
    throw Error("decode: the cache (L " + std::to_string(cache.num_layers()) + ", Hkv " +
                std::to_string(cache.kv_heads()) + ", D " + std::to_string(cache.head_dim()) + ", " +
                dtype_name(cache.dtype()) + ", capacity " + std::to_string(cache.capacity()) +
                ") does not fit the model (L " + std::to_string(c.num_hidden_layers) + ", Hkv " +
                std::to_string(c.num_key_value_heads) + ", D " + std::to_string(c.head_dim) + ", " +
                dtype_name(model.dtype()) + ", max_position_embeddings " +
                std::to_string(c.max_position_embeddings) + ")");
}

// Applies RoPE to row n of x (N, 1, heads, D) at its own position positions[n].
Tensor rope_rows(const Tensor& x, const std::vector<int64_t>& positions, double base) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());  // (N, 1, heads, D)
  for (int64_t n = 0; n < x.dim(0); ++n)
    y.slice(n, n + 1).copy_from(rope(Var(x.slice(n, n + 1)), base, positions[n]).value());
  return y;
}

// The attention half of layer l for one new token per sequence: (N, 1, C) -> (N, 1, C).
// Writes k, v into the cache and fills records[n].full_attention[l] and .keys_read[l].
Var attention_step(const Transformer& model, int64_t l, KvCache& cache,
                   const std::vector<int64_t>& sequences, const std::vector<int64_t>& positions,
                   const Var& x, std::vector<DecodedToken>& records) {
  const ModelConfig& c = model.config();
  const TransformerLayer& layer = model.layers()[l];
  const int64_t N = x.value().dim(0), H = c.num_attention_heads, Hkv = c.num_key_value_heads,
                D = c.head_dim;
  Var u = rms_norm(x, layer.attn_norm, c.rms_norm_eps);                                      // (N, 1, C)
  const Tensor q = rope_rows(split_heads(matmul(u, layer.attn.q_proj, false, true), H).value(), positions, c.rope_theta);    // (N, 1, H, D)
  const Tensor k = rope_rows(split_heads(matmul(u, layer.attn.k_proj, false, true), Hkv).value(), positions, c.rope_theta);  // (N, 1, Hkv, D)
  const Tensor v = split_heads(matmul(u, layer.attn.v_proj, false, true), Hkv).value();                                     // (N, 1, Hkv, D)
  for (int64_t n = 0; n < N; ++n)  // every token's k, v, whatever its route
    cache.write(l, sequences[n], k.slice(n, n + 1).reshape({Hkv, D}), v.slice(n, n + 1).reshape({Hkv, D}));

  // The route of each sequence's token: m = 1 reads keys [0, t], m = 0 the window.
  std::vector<uint8_t> full(static_cast<size_t>(N), layer.type == "full" ? 1 : 0);
  if (layer.type == "switch") {
    const Var router_input = c.router_input == "normed" ? u : x;  // the input the forward's router reads
    const Tensor route = route_tokens(router_input, layer.attn.router_weight, layer.attn.router_bias,
                                      c.router_threshold).route;  // (N, 1), 0 or 1
    for (int64_t n = 0; n < N; ++n) full[n] = route.at(n) > 0.5 ? 1 : 0;
  }
  std::vector<int64_t> lo(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    lo[n] = cpu::window_begin(positions[n], full[n] ? 0 : layer.window);
    records[n].full_attention[l] = full[n];
    records[n].keys_read[l] = positions[n] - lo[n] + 1;
  }

  Tensor o = Tensor::empty({N, 1, H, D}, x.dtype());  // (N, 1, H, D)
  dispatch_float(x.dtype(), "decode", [&](auto zero) {
    using T = decltype(zero);
    const T scale = static_cast<T>(1.0 / std::sqrt(double(D)));
    const int64_t stride = cache.key_stride(), group = H / Hkv, P = cache.capacity();
    const T* keys = cache.keys(l).data<T>();    // (S, P, Hkv, D)
    const T* values = cache.values(l).data<T>();
    const T* qp = q.data<T>();
    T* op = o.data<T>();
    const int64_t work = N * H * (*std::max_element(positions.begin(), positions.end()) + 1) * D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (work > (1 << 16))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t key0 = sequences[n] * P * stride + (h / group) * D;  // key 0 of kv head h / group
        cpu::attend_range_forward<T>(D, scale, qp + (n * H + h) * D, keys + key0, values + key0, stride,
                                     lo[n], positions[n], op + (n * H + h) * D);
      }
  });
  return matmul(merge_heads(Var(o)), layer.attn.o_proj, false, true);  // (N, 1, C)
}

}  // namespace

// ---- decoding ----

Tensor decode_sequences(const Transformer& model, KvCache& cache, const std::vector<int64_t>& sequences,
                        const std::vector<int32_t>& tokens, DecodeStats* stats) {
  check_cache_fits_model(model, cache);
  const int64_t N = static_cast<int64_t>(sequences.size()), L = cache.num_layers();
  if (N == 0 || tokens.size() != sequences.size())
    throw Error("decode: need one token per sequence, got " + std::to_string(tokens.size()) +
                " tokens for " + std::to_string(N) + " sequences");
  std::vector<int64_t> positions(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    cache.check_room(sequences[n]);  // also checks the index
    if (std::count(sequences.begin(), sequences.end(), sequences[n]) > 1)
      throw Error("decode: sequence " + std::to_string(sequences[n]) + " appears twice in one step");
    positions[n] = cache.length(sequences[n]);  // t
  }
  // (A bad token id throws in the embedding, before any layer writes the cache.)

  NoGradGuard no_grad;
  std::vector<DecodedToken> records(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    records[n] = {sequences[n], positions[n], std::vector<uint8_t>(L), std::vector<int64_t>(L)};
  Var x = embedding(model.embedding_weight(), Tensor::from_ints(tokens, {N, 1}));  // (N, 1, C)
  for (int64_t l = 0; l < L; ++l) {
    x = add(x, attention_step(model, l, cache, sequences, positions, x, records));
    x = add(x, model.mlp_block(model.layers()[l], x));
  }
  for (int64_t s : sequences) cache.advance(s);  // every layer has written position t
  Var h = rms_norm(x, model.final_norm_weight(), model.config().rms_norm_eps);
  const int64_t V = model.config().vocab_size;
  const Tensor logits = matmul(h, model.output_weight(), false, true).value().reshape({N, V});  // (N, V)

  if (stats) {
    stats->num_layers = L;
    stats->kv_heads = cache.kv_heads();
    stats->head_dim = cache.head_dim();
    if (stats->bytes_per_element == 0) stats->bytes_per_element = static_cast<int64_t>(dtype_size(cache.dtype()));
    for (DecodedToken& r : records) stats->tokens.push_back(std::move(r));
  }
  return logits;
}

Tensor decode_step(const Transformer& model, KvCache& cache, const std::vector<int32_t>& tokens,
                   DecodeStats* stats) {
  if (static_cast<int64_t>(tokens.size()) != cache.sequences())
    throw Error("decode_step: need one token per sequence of the cache (" +
                std::to_string(cache.sequences()) + "), got " + std::to_string(tokens.size()));
  std::vector<int64_t> all(tokens.size());
  for (size_t s = 0; s < all.size(); ++s) all[s] = static_cast<int64_t>(s);
  return decode_sequences(model, cache, all, tokens, stats);
}

Tensor prefill(const Transformer& model, KvCache& cache, const std::vector<std::vector<int32_t>>& prompts,
               DecodeStats* stats) {
  const int64_t S = cache.sequences();
  if (static_cast<int64_t>(prompts.size()) != S)
    throw Error("prefill: need one prompt per sequence of the cache (" + std::to_string(S) + "), got " +
                std::to_string(prompts.size()));
  size_t longest = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (prompts[s].empty()) throw Error("prefill: prompt " + std::to_string(s) + " is empty");
    if (cache.length(s) + static_cast<int64_t>(prompts[s].size()) > cache.capacity())
      throw Error("prefill: prompt " + std::to_string(s) + " (" + std::to_string(prompts[s].size()) +
                  " tokens after " + std::to_string(cache.length(s)) + ") does not fit the cache's capacity " +
                  std::to_string(cache.capacity()));
    longest = std::max(longest, prompts[s].size());
  }
  const int64_t V = model.config().vocab_size;
  Tensor last_logits = Tensor::empty({S, V}, model.dtype());  // (S, V)
  for (size_t i = 0; i < longest; ++i) {
    std::vector<int64_t> sequences;
    std::vector<int32_t> tokens;
    for (int64_t s = 0; s < S; ++s)
      if (i < prompts[s].size()) {
        sequences.push_back(s);
        tokens.push_back(prompts[s][i]);
      }
    const Tensor logits = decode_sequences(model, cache, sequences, tokens, stats);  // (N, V)
    for (size_t n = 0; n < sequences.size(); ++n)
      if (i + 1 == prompts[sequences[n]].size())
        last_logits.slice(sequences[n], sequences[n] + 1).copy_from(logits.slice(n, n + 1));
  }
  return last_logits;
}

std::vector<int32_t> generate_with_cache(const Transformer& model, std::vector<int32_t> prompt,
                                         int64_t new_tokens, double temperature, Rng& rng,
                                         DecodeStats* stats) {
  if (prompt.empty()) throw Error("generate_with_cache: the prompt must hold at least one token");
  if (new_tokens < 0) throw Error("generate_with_cache: new_tokens must be >= 0");
  if (new_tokens == 0) return prompt;
  // The last sampled token is never fed back, so the cache holds prompt + new_tokens - 1 tokens.
  const int64_t needed = static_cast<int64_t>(prompt.size()) + new_tokens - 1;
  const int64_t limit = model.config().max_position_embeddings;
  if (needed > limit)
    throw Error("generate_with_cache: prompt (" + std::to_string(prompt.size()) + ") + new_tokens (" +
                std::to_string(new_tokens) + ") - 1 = " + std::to_string(needed) +
                " tokens exceed max_position_embeddings " + std::to_string(limit));
  KvCache cache(model.config(), model.dtype(), 1, needed);
  Tensor logits = prefill(model, cache, {prompt}, stats);  // (1, V)
  for (int64_t n = 0; n < new_tokens; ++n) {
    const int32_t token = sample_token(logits.to_vector(), temperature, rng);
    prompt.push_back(token);
    if (n + 1 < new_tokens) logits = decode_step(model, cache, {token}, stats);
  }
  return prompt;
}

}  // namespace swiattn
