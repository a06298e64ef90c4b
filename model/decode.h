// model/decode.h: incremental decoding with the unified KV cache (spec §7), batched generation,
// and the count of keys each token reads (spec §8).
//
// Shape legend: S sequences in the batch, P cache capacity, C = hidden_size, V vocab_size,
// L layers, W sliding_window.
//
// A Decoder holds a KvCache on the model's device (in its compute dtype) and runs the model's
// own layer code (Transformer::final_hidden) in its two modes:
//   prefill(prompts)  every prompt through the full forward at once (sequence mode): the layers
//                     compute attention over the prompt as in training and store every k, v in
//                     the cache (rows [0, len) of sequence s); returns the logits after each
//                     prompt's last token. Prompts of different lengths share a batch: rows are
//                     padded to the longest prompt of the batch (causal attention: a row's real
//                     positions never read its padding, and the padding's cache rows past
//                     length(s) are overwritten by the next steps before anything reads them).
//   step(tokens)      one new token per sequence at its own position t = length(s) (step mode):
//                     RoPE at t, k, v appended, the router's m_t per sequence, and the attention
//                     reads keys [0, t] (m = 1) or [max(0, t-W+1), t] (m = 0) from the cache.
//                     Sequences of one batch take their own branch in the same step. On CUDA the
//                     routes and positions stay on the device for all L layers; the host waits
//                     for the device once per step, when the logits (or the greedy tokens) and,
//                     with stats, the step's routes come back.
// Both are exactly the full forward's arithmetic: tests/test_decode.cpp checks the logits and
// routes agree with Transformer::forward to 1e-10 in float64 on the CPU, and
// tests/test_cuda_decode.cpp the same on the GPU (bfloat16 by the 2x-control rule).
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/sampling.h"
#include "model/transformer.h"
#include "tensor/random.h"

namespace swiattn {

// One token of one sequence: which branch each layer took and how many keys it read.
struct DecodedToken {
  int64_t sequence = 0;                 // s
  int64_t position = 0;                 // t
  bool prefill = false;                 // a prompt token (prefill), not a decode step
  std::vector<uint8_t> full_attention;  // (L) m_t per layer: 1 = FA (keys [0, t]), 0 = SWA
  std::vector<int64_t> keys_read;       // (L) keys each query head of layer l read: hi - lo + 1
};

// Spec §8 accounting over everything recorded (prompt tokens included: see `prefill`).
// Per token and layer the keys read are m_t (t+1) + (1 - m_t) min(t+1, W); K and V of a key are
// 2 * Hkv * D elements.
struct DecodeStats {
  int64_t num_layers = 0, kv_heads = 0, head_dim = 0;  // set by the decoder
  int64_t bytes_per_element = 0;  // 0: the decoder sets the cache's dtype size; set it (e.g. 2
                                  // for bfloat16) before decoding to account for another storage
  std::vector<DecodedToken> tokens;  // in the order they were recorded

  // Token i's keys read, in tokens, averaged over layers (spec §8 "decode memory access").
  double keys_read_tokens(size_t i) const;
  // The same in bytes: keys_read_tokens(i) * 2 * Hkv * D * bytes_per_element (one average
  // layer; the whole model reads num_layers times that).
  double keys_read_bytes(size_t i) const;
  // keys_read_tokens averaged over every recorded token.
  double mean_keys_read_tokens() const;
  // Fraction of recorded tokens that took the FA branch in layer l (1 for "full", 0 for "swa").
  double full_attention_ratio(int64_t layer) const;
  // The same over the tokens of one sequence, decode steps only (prompt tokens left out);
  // NaN when that sequence has no decoded token.
  double decoded_full_attention_ratio(int64_t layer, int64_t sequence) const;
};

class Decoder {
 public:
  // A decoder for `sequences` sequences of up to `capacity` tokens each (0: the model's
  // max_position_embeddings). The cache is on the model's device in its compute dtype. The
  // weights are taken now (with mixed precision: their casts, made once): build a new Decoder
  // after changing the model.
  // prefill_tokens bounds the tokens of one prefill forward (rows x padded length; at least one
  // row per forward): it bounds the activations' memory.
  Decoder(const Transformer& model, int64_t sequences, int64_t capacity = 0, int64_t prefill_tokens = 65536);

  const KvCache& cache() const { return cache_; }
  int64_t sequences() const { return cache_.sequences(); }

  // Prefill: prompts[s] (non-empty, at most the capacity) into sequence s; every sequence must
  // be empty. Returns the logits (S, V) after each prompt's last token, on the model's device in
  // the compute dtype. With stats, every prompt token is recorded (prefill = true) with the
  // routes of the forward.
  Tensor prefill(const std::vector<std::vector<int32_t>>& prompts, DecodeStats* stats = nullptr);

  // One new token per sequence (tokens (S)) at its next position -> logits (S, V) on the
  // model's device in the compute dtype. Throws, before changing the cache, if a sequence is
  // full, the token count differs from S, or a token is outside the vocabulary.
  Tensor step(const std::vector<int32_t>& tokens, DecodeStats* stats = nullptr);

  // Forgets every sequence (the buffers are kept).
  void clear() { cache_.clear(); }

 private:
  void start_stats(DecodeStats* stats) const;

  const Transformer& model_;
  ComputeWeights weights_;
  KvCache cache_;
  int64_t prefill_tokens_;
};

// Generates new_tokens tokens after each prompt (non-empty), all prompts decoded as one batch:
// one prefill, then new_tokens - 1 steps (the last sampled token is not fed back). Every
// sequence gets exactly new_tokens tokens; sequence s must fit prompt + new_tokens - 1 <=
// max_position_embeddings. Tokens are chosen by sample_rows (model/sampling.h), sequence 0
// first in every step (one rng draw per sequence and step unless greedy). Returns prompt +
// generated tokens per sequence, in input order.
std::vector<std::vector<int32_t>> generate_batch(const Transformer& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 int64_t new_tokens, const SamplingOptions& sampling, Rng& rng,
                                                 DecodeStats* stats = nullptr);

// One prompt: generate_batch of {prompt} with temperature sampling. With the same rng it samples
// what generate() (model/sampling.h) samples with context = max_position_embeddings.
std::vector<int32_t> generate_with_cache(const Transformer& model, std::vector<int32_t> prompt,
                                         int64_t new_tokens, double temperature, Rng& rng,
                                         DecodeStats* stats = nullptr);

}  // namespace swiattn
