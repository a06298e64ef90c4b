// model/transformer.h: the decoder-only transformer (spec §1).
//
// Shape legend: B batch, T time, C = hidden_size, H query heads, Hkv key/value heads,
// D head_dim, F intermediate_size, V vocab_size, W sliding_window, L layers.
//
//   x = embed[ids]                                    (B, T, C)
//   for each layer l (pre-norm):
//     u = RMSNorm(x)
//     q = RoPE(u Wq^T), k = RoPE(u Wk^T), v = u Wv^T  (B, T, H|Hkv, D)
//     x = x + Attn_l(q, k, v) Wo^T                   full causal, a window of W keys, or
//                                                    switched per token by a router (spec §3-4)
//     x = x + W2( silu(W1 RMSNorm(x)) * W3 RMSNorm(x) )
//   logits = RMSNorm(x) E^T                          (B, T, V); E = embed when tied
//
// A layer's attention is chosen by model.layer_types[l]: "full", "swa" or "switch".
//
// One layer, two modes (spec §4 and §7): the same attention block (norm, projections, RoPE,
// router) serves the full forward and incremental decoding; only where the attention reads its
// keys differs (KvCacheUse below):
//   sequence mode  each batch row is a whole sequence from position 0; attention over the
//                  block's own k, v (training, evaluation; with a cache: prefill, the k, v are
//                  also stored in it);
//   step mode      each batch row is ONE new token of cache sequence b, at position length(b);
//                  RoPE rotates it there, its k, v are appended to the cache and the attention
//                  reads the cache's branch-selected key range (model/kv_cache.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "model/config.h"
#include "model/router.h"

namespace swiattn {

class KvCache;  // model/kv_cache.h

struct AttentionWeights {
  Var q_proj;  // (H * D, C)
  Var k_proj;  // (Hkv * D, C)
  Var v_proj;  // (Hkv * D, C)
  Var o_proj;  // (C, H * D)
  Var router_weight;  // (1, C), switch layers only: w_r
  Var router_bias;    // (1), switch layers only: b_r
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
  LayerType type = LayerType::Full;
  int64_t window = 0;  // keys an SWA query reads (0 for a full layer: all causal keys)
};

// What one switch layer decided in a forward pass (spec §3-5 need these).
struct LayerRouting {
  int64_t layer = 0;
  Var logit;              // s_t (B, T), in the graph: the regulariser differentiates it
  Tensor route;           // m_t (B, T), 1 = full attention
  Tensor branch_diff_sq;  // ||O_FULL_t - O_SWA_t||^2 (B, T), detached; undefined if not measured
  Tensor input;           // the router's input (B, T, C) (u_t or x_t, compute dtype), for router_logits
};

// The weights a forward computes with: the parameters themselves, or with mixed precision their
// compute-dtype casts (the norms' gains stay in the residual dtype). A training forward makes
// them per call (the casts are in the graph, so the master weights get the gradients); a decoder
// makes them once (model/decode.h), so a decode step does not re-cast every weight.
struct ComputeWeights {
  std::vector<TransformerLayer> layers;
  Var embed;       // (V, C): the master table (the lookup reads it)
  Var final_norm;  // (C)
  Var output;      // (V, C) in the compute dtype: the embedding's cast when tied, else lm_head's
};

// How a forward's attention meets the KV cache: the two modes of the one attention block.
struct KvCacheUse {
  KvCache* cache = nullptr;  // null: no cache (training, evaluation): sequence mode
  bool step = false;         // false: sequence mode, k and v of every position stored in the cache
                             //   (prefill; batch row b is cache sequence first_sequence + b);
                             // true: step mode, batch row b is sequence b's next token (T = 1)
  int64_t first_sequence = 0;
};

struct ForwardResult {
  Var logits;                          // (B, T, V)
  std::vector<LayerRouting> routing;   // one entry per switch layer, in layer order
  std::vector<Tensor> layer_outputs;   // the residual stream after each layer (B, T, C)
};

// Mean next-token cross-entropy of logits (B, T, V) against targets (B, T) int32 (-100 = ignore).
// per_token_nll, if given, receives the (B * T) per-token losses (detached).
Var next_token_loss(const Var& logits, const Tensor& targets, Tensor* per_token_nll = nullptr);

class Transformer {
 public:
  // Parameters are drawn from N(0, initializer_range^2), each tensor from its own seeded stream;
  // the two projections that write into the residual stream (o_proj, down_proj) are scaled by
  // 1/sqrt(2 L) so the residual's variance does not grow with depth; norm gains start at 1.
  // Routers follow model.router_init (spec §3): "random" w_r ~ N(0, router_init_std^2), b_r = 0;
  // "full" w_r = 0, b_r = router_full_bias, so the layer starts as full attention.
  Transformer(const ModelConfig& config, DType dtype, uint64_t seed);

  // ids (B, T) int32 -> logits (B, T, V).
  Var forward(const Tensor& ids) const;
  // The same, with every switch layer's routing. measure_branches: also compute
  // ||O_FULL - O_SWA||^2 per token (needs both branches for every token, also without gradients).
  ForwardResult forward_with_routing(const Tensor& ids, bool measure_branches) const;
  // Mean next-token cross-entropy of forward(ids) against targets (B, T) int32.
  // per_token_nll, if given, receives the (B * T) per-token losses (detached).
  Var loss(const Tensor& ids, const Tensor& targets, Tensor* per_token_nll = nullptr) const;

  const ModelConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }  // the parameters' (master) dtype

  // Where the parameters live. to(device) moves every parameter there (a copy; gradients are
  // dropped); the Vars keep their identity, so an optimizer built on parameters() follows.
  // Build the optimizer after to(): its moments are allocated where the parameters are then.
  Device device() const { return embed_.value().device(); }
  void to(Device device);
  // The dtype the forward and backward compute in. Default: dtype(). bfloat16 (CUDA only) is
  // mixed precision: every forward casts the master weights of the matmuls to bfloat16 copies
  // (the cast op), so the projections, attention and MLP run in bfloat16 while the parameter
  // gradients arrive in the master dtype. The residual stream, the RMSNorms (and their gains)
  // and the loss stay float32: each block casts its normalised input to bfloat16 and its output
  // back to float32 before the residual add, so small updates to the residual are not rounded
  // away (measured: a bfloat16 residual stream trained to a visibly higher loss, docs/cuda.md).
  // Moving to the CPU resets it.
  DType compute_dtype() const { return compute_dtype_; }
  void set_compute_dtype(DType dtype);
  // Every trainable tensor, each named for what it is ("layers.3.attn.q_proj.weight").
  const std::vector<Var>& parameters() const { return parameters_; }
  int64_t parameter_count() const;

  // Switch layer `layer`'s router logits s_t = w_r . input_t + b_r (B, T) for a router input
  // (B, T, C) recorded by a forward (LayerRouting::input), with the current weights, computed as
  // the forward computes them (compute dtype). The target-ratio controller re-scores a step's
  // tokens with it after the optimizer step (train/regularizer.h).
  Tensor router_logits(int64_t layer, const Tensor& input) const;
  // Read access to the layers' weights (the controller shifts the router biases in place).
  const std::vector<TransformerLayer>& layers() const { return layers_; }

  // ---- the pieces of a forward, for incremental decoding (model/decode.h) ----
  // The weights in the compute dtype (see ComputeWeights): one cast per parameter, recorded in the
  // graph when gradients are enabled.
  ComputeWeights compute_weights() const;
  // ids (B, T) int32 through every layer with weights w, then the final RMSNorm: (B, T, C) in the
  // compute dtype. The attention of each layer meets the cache as `cache` says (KvCacheUse; a
  // cache needs NoGradGuard: decoding builds no graph). routing: each switch layer's decisions
  // are appended; layer_outputs (if given): the residual stream after each layer.
  // measure_branches as in forward_with_routing (sequence mode only).
  Var final_hidden(const Tensor& ids, const ComputeWeights& w, const KvCacheUse& cache, bool measure_branches,
                   std::vector<LayerRouting>& routing, std::vector<Tensor>* layer_outputs = nullptr) const;
  // h (..., C) -> logits (..., V) in the compute dtype: h E^T with E = w.output.
  Var output_logits(const Var& h, const ComputeWeights& w) const;

 private:
  // (B, T, C) -> (B, T, C), in either mode; a switch layer appends its decisions to `routing`.
  Var attention_block(const TransformerLayer& layer, int64_t l, const Var& x, const KvCacheUse& cache,
                      bool measure_branches, std::vector<LayerRouting>& routing) const;
  // The SwiGLU MLP block of one layer, (B, T, C) -> (B, T, C).
  Var mlp_block(const TransformerLayer& layer, const Var& x) const;
  // One parameter in the compute dtype: itself, or its cast (the embedding lookup reads the
  // master table, the tied output head its bfloat16 cast).
  Var compute_weight(const Var& parameter) const;
  // An activation in the compute dtype (to_compute) or back in the residual dtype dtype()
  // (to_residual); no-ops without mixed precision.
  Var to_compute(const Var& x) const;
  Var to_residual(const Var& x) const;
  Var new_parameter(const std::string& name, const Shape& shape, double stddev);
  Var new_filled(const std::string& name, const Shape& shape, double value);

  ModelConfig config_;
  DType dtype_;
  DType compute_dtype_;
  uint64_t seed_;
  Var embed_;       // (V, C)
  std::vector<TransformerLayer> layers_;
  Var final_norm_;  // (C)
  Var lm_head_;     // (V, C); undefined when tie_word_embeddings
  std::vector<Var> parameters_;
};

}  // namespace swiattn
