// model/decode.h: incremental decoding with the unified KV cache (spec §7) and the count of
// keys each step reads (spec §8).
//
// Shape legend: S sequences in the cache, N sequences advanced by one call, C = hidden_size,
// H query heads, Hkv key/value heads, D head_dim, V vocab_size, W sliding_window, L layers.
//
// One decode step feeds one new token per sequence. For sequence s the token sits at position
// t = cache.length(s) (sequences may be at different positions). For every layer l:
//   u = RMSNorm(x)                                                   (N, 1, C)
//   q = RoPE_t(u Wq^T), k = RoPE_t(u Wk^T), v = u Wv^T              (N, 1, H|Hkv, D)
//   cache[l][s, t] = (k, v)                      every token, whatever its route
//   m = 1 for "full" layers, 0 for "swa" layers,
//       [sigmoid(w_r . r + b_r) > tau] for "switch" layers, r = u or x (model.router_input)
//   o = attention of q over the cached keys [0, t] if m = 1 (FA),
//                                        [max(0, t-W+1), t] if m = 0 (SWA)
//   x = x + o Wo^T;  x = x + W2( silu(W1 RMSNorm(x)) * W3 RMSNorm(x) )
// logits = RMSNorm(x) E^T                                           (N, V)
// Sequences of one batch take their own branch in the same step. Nothing builds an autograd
// graph (the step runs under NoGradGuard). This is exactly the full forward, one row at a time:
// tests/test_decode.cpp checks the logits and routes agree to 1e-10 in float64.
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tensor/random.h"

namespace swiattn {

// One query token of one sequence: which branch each layer took and how many keys it read.
struct DecodedToken {
  int64_t sequence = 0;                 // s
  int64_t position = 0;                 // t
  std::vector<uint8_t> full_attention;  // (L) m_t per layer: 1 = FA (keys [0, t]), 0 = SWA
  std::vector<int64_t> keys_read;       // (L) keys each query head of layer l read: hi - lo + 1
};

// Spec §8 accounting over everything decoded (prefill included: filter by position if needed).
// Per token and layer the keys read are m_t (t+1) + (1 - m_t) min(t+1, W); K and V of a key are
// 2 * Hkv * D elements.
struct DecodeStats {
  int64_t num_layers = 0, kv_heads = 0, head_dim = 0;  // set by the decoder
  int64_t bytes_per_element = 0;  // 0: the decoder sets the cache's dtype size; set it (e.g. 2
                                  // for bfloat16) before decoding to account for another storage
  std::vector<DecodedToken> tokens;  // in the order they were decoded

  // Token i's keys read, in tokens, averaged over layers (spec §8 "decode memory access").
  double keys_read_tokens(size_t i) const;
  // The same in bytes: keys_read_tokens(i) * 2 * Hkv * D * bytes_per_element (one average
  // layer; the whole model reads num_layers times that).
  double keys_read_bytes(size_t i) const;
  // keys_read_tokens averaged over every recorded token.
  double mean_keys_read_tokens() const;
  // Fraction of recorded tokens that took the FA branch in layer l (1 for "full", 0 for "swa").
  double full_attention_ratio(int64_t layer) const;
};

// Feeds tokens[n] (N) to sequence sequences[n] (N distinct indices of the cache) at its next
// position; the other sequences are untouched. Returns the next-token logits (N, V) in the
// model's dtype. Throws, before changing the cache, if a sequence is full, an index repeats or is
// out of range, the sizes differ, or the cache does not fit the model.
Tensor decode_sequences(const Transformer& model, KvCache& cache,
                        const std::vector<int64_t>& sequences, const std::vector<int32_t>& tokens,
                        DecodeStats* stats = nullptr);

// One new token for every sequence of the cache: tokens (S) -> logits (S, V).
Tensor decode_step(const Transformer& model, KvCache& cache, const std::vector<int32_t>& tokens,
                   DecodeStats* stats = nullptr);

// Appends prompts[s] (non-empty; lengths may differ) to sequence s, one token per step: step i
// feeds token i of every prompt that has one. Exact, and each token is counted in stats like a
// decoded one. Returns the logits after each prompt's last token (S, V).
Tensor prefill(const Transformer& model, KvCache& cache,
               const std::vector<std::vector<int32_t>>& prompts, DecodeStats* stats = nullptr);

// Appends new_tokens sampled tokens (sample_token, model/sampling.h) to a non-empty prompt,
// decoding with a KV cache: the prompt is prefilled once, then each step feeds one token. The
// whole sequence must fit in max_position_embeddings (no sliding context). With the same rng it
// samples what generate() samples with context = max_position_embeddings.
std::vector<int32_t> generate_with_cache(const Transformer& model, std::vector<int32_t> prompt,
                                         int64_t new_tokens, double temperature, Rng& rng,
                                         DecodeStats* stats = nullptr);

}  // namespace swiattn
