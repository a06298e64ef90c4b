#include "model/transformer.h"

#include <cmath>

#include "tensor/random.h"

namespace swiattn {

Var Transformer::new_parameter(const std::string& name, const Shape& shape, double stddev) {
  const uint64_t stream_seed = derive_seed(seed_, parameters_.size());
  Var p(Tensor::randn(shape, dtype_, stream_seed, 0.0, stddev), true, name);
  parameters_.push_back(p);
  return p;
}

Var Transformer::new_gain(const std::string& name, int64_t size) {
  Var p(Tensor::full({size}, 1.0, dtype_), true, name);
  parameters_.push_back(p);
  return p;
}

Transformer::Transformer(const ModelConfig& config, DType dtype, uint64_t seed)
    : config_(config), dtype_(dtype), seed_(seed) {
  config_.validate();
  const int64_t C = config.hidden_size, H = config.num_attention_heads,
                Hkv = config.num_key_value_heads, D = config.head_dim, F = config.intermediate_size;
  const double std = config.initializer_range;
  const double residual_std = std / std::sqrt(2.0 * config.num_hidden_layers);

  embed_ = new_parameter("embed.weight", {config.vocab_size, C}, std);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    TransformerLayer layer;
    layer.attn_norm = new_gain(p + "attn_norm.weight", C);
    layer.attn.q_proj = new_parameter(p + "attn.q_proj.weight", {H * D, C}, std);
    layer.attn.k_proj = new_parameter(p + "attn.k_proj.weight", {Hkv * D, C}, std);
    layer.attn.v_proj = new_parameter(p + "attn.v_proj.weight", {Hkv * D, C}, std);
    layer.attn.o_proj = new_parameter(p + "attn.o_proj.weight", {C, H * D}, residual_std);
    layer.mlp_norm = new_gain(p + "mlp_norm.weight", C);
    layer.mlp.gate_proj = new_parameter(p + "mlp.gate_proj.weight", {F, C}, std);
    layer.mlp.up_proj = new_parameter(p + "mlp.up_proj.weight", {F, C}, std);
    layer.mlp.down_proj = new_parameter(p + "mlp.down_proj.weight", {C, F}, residual_std);
    layer.window = config.layer_window(l);
    layers_.push_back(layer);
  }
  final_norm_ = new_gain("final_norm.weight", C);
  if (!config.tie_word_embeddings) lm_head_ = new_parameter("lm_head.weight", {config.vocab_size, C}, std);
}

int64_t Transformer::parameter_count() const {
  int64_t n = 0;
  for (const Var& p : parameters_) n += p.value().numel();
  return n;
}

Var Transformer::attention_block(const TransformerLayer& layer, const Var& x) const {
  const ModelConfig& c = config_;
  Var u = rms_norm(x, layer.attn_norm, c.rms_norm_eps);                                 // (B, T, C)
  Var q = rope(split_heads(matmul(u, layer.attn.q_proj, false, true), c.num_attention_heads), c.rope_theta);  // (B, T, H, D)
  Var k = rope(split_heads(matmul(u, layer.attn.k_proj, false, true), c.num_key_value_heads), c.rope_theta);  // (B, T, Hkv, D)
  Var v = split_heads(matmul(u, layer.attn.v_proj, false, true), c.num_key_value_heads);                     // (B, T, Hkv, D)
  Var o = merge_heads(attention(q, k, v, layer.window));                                // (B, T, H * D)
  return matmul(o, layer.attn.o_proj, false, true);                                     // (B, T, C)
}

Var Transformer::mlp_block(const TransformerLayer& layer, const Var& x) const {
  Var h = rms_norm(x, layer.mlp_norm, config_.rms_norm_eps);                 // (B, T, C)
  Var gated = swiglu(matmul(h, layer.mlp.gate_proj, false, true),            // silu(W1 h) * W3 h
                     matmul(h, layer.mlp.up_proj, false, true));             // (B, T, F)
  return matmul(gated, layer.mlp.down_proj, false, true);                    // (B, T, C)
}

Var Transformer::forward(const Tensor& ids) const {
  if (ids.dtype() != DType::I32 || ids.ndim() != 2)
    throw Error("model: ids must be an int32 (B, T) tensor, got " + std::string(dtype_name(ids.dtype())) +
                " " + shape_str(ids.shape()));
  if (ids.dim(1) > config_.max_position_embeddings)
    throw Error("model: sequence length " + std::to_string(ids.dim(1)) +
                " exceeds model.max_position_embeddings " + std::to_string(config_.max_position_embeddings));
  Var x = embedding(embed_, ids);  // (B, T, C)
  for (const TransformerLayer& layer : layers_) {
    x = add(x, attention_block(layer, x));
    x = add(x, mlp_block(layer, x));
  }
  Var h = rms_norm(x, final_norm_, config_.rms_norm_eps);
  return matmul(h, config_.tie_word_embeddings ? embed_ : lm_head_, false, true);  // (B, T, V)
}

Var Transformer::loss(const Tensor& ids, const Tensor& targets, Tensor* per_token_nll) const {
  if (targets.shape() != ids.shape())
    shape_error("model loss", "targets must have the shape of ids", ids, targets);
  Var logits = forward(ids);
  const int64_t N = ids.numel();
  return cross_entropy(reshape(logits, {N, config_.vocab_size}), targets.reshape({N}), -100, per_token_nll);
}

}  // namespace swiattn
