// model/transformer.h: the decoder-only transformer (spec §1).
//
// Shape legend: B batch, T time, C = hidden_size, H query heads, Hkv key/value heads,
// D head_dim, F intermediate_size, V vocab_size, W sliding_window, L layers.
//
//   x = embed[ids]                                    (B, T, C)
//   for each layer l (pre-norm):
//     u = RMSNorm(x)
//     q = RoPE(u Wq^T), k = RoPE(u Wk^T), v = u Wv^T  (B, T, H|Hkv, D)
//     x = x + Attn_l(q, k, v) Wo^T                   full causal, or a window of W keys
//     x = x + W2( silu(W1 RMSNorm(x)) * W3 RMSNorm(x) )
//   logits = RMSNorm(x) E^T                          (B, T, V); E = embed when tied
//
// A layer's attention is chosen by model.layer_types[l]: "full" or "swa".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "model/config.h"

namespace swiattn {

struct AttentionWeights {
  Var q_proj;  // (H * D, C)
  Var k_proj;  // (Hkv * D, C)
  Var v_proj;  // (Hkv * D, C)
  Var o_proj;  // (C, H * D)
};

struct MlpWeights {
  Var gate_proj;  // W1 (F, C), through SiLU
  Var up_proj;    // W3 (F, C)
  Var down_proj;  // W2 (C, F)
};

struct TransformerLayer {
  Var attn_norm;  // (C) RMSNorm gain before attention
  AttentionWeights attn;
  Var mlp_norm;   // (C) RMSNorm gain before the MLP
  MlpWeights mlp;
  int64_t window = 0;  // 0 = full causal attention, else sliding window of this many keys
};

class Transformer {
 public:
  // Parameters are drawn from N(0, initializer_range^2), each tensor from its own seeded stream;
  // the two projections that write into the residual stream (o_proj, down_proj) are scaled by
  // 1/sqrt(2 L) so the residual's variance does not grow with depth; norm gains start at 1.
  Transformer(const ModelConfig& config, DType dtype, uint64_t seed);

  // ids (B, T) int32 -> logits (B, T, V).
  Var forward(const Tensor& ids) const;
  // Mean next-token cross-entropy of forward(ids) against targets (B, T) int32.
  // per_token_nll, if given, receives the (B * T) per-token losses (detached).
  Var loss(const Tensor& ids, const Tensor& targets, Tensor* per_token_nll = nullptr) const;

  const ModelConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  // Every trainable tensor, each named for what it is ("layers.3.attn.q_proj.weight").
  const std::vector<Var>& parameters() const { return parameters_; }
  int64_t parameter_count() const;

 private:
  Var attention_block(const TransformerLayer& layer, const Var& x) const;  // (B, T, C) -> (B, T, C)
  Var mlp_block(const TransformerLayer& layer, const Var& x) const;        // (B, T, C) -> (B, T, C)
  Var new_parameter(const std::string& name, const Shape& shape, double stddev);
  Var new_gain(const std::string& name, int64_t size);

  ModelConfig config_;
  DType dtype_;
  uint64_t seed_;
  Var embed_;       // (V, C)
  std::vector<TransformerLayer> layers_;
  Var final_norm_;  // (C)
  Var lm_head_;     // (V, C); undefined when tie_word_embeddings
  std::vector<Var> parameters_;
};

}  // namespace swiattn
