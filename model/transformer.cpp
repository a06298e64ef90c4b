#include "model/transformer.h"

#include <cmath>

#include "model/kv_cache.h"
#include "model/memory_estimate.h"
#include "tensor/random.h"

namespace swiattn {

Var Transformer::new_parameter(const std::string& name, const Shape& shape, double stddev) {
  const uint64_t stream_seed = derive_seed(seed_, parameters_.size());
  Var p(Tensor::randn(shape, dtype_, stream_seed, 0.0, stddev), true, name);
  parameters_.push_back(p);
  return p;
}

Var Transformer::new_filled(const std::string& name, const Shape& shape, double value) {
  Var p(Tensor::full(shape, value, dtype_), true, name);
  parameters_.push_back(p);
  return p;
}

Transformer::Transformer(const ModelConfig& config, DType dtype, uint64_t seed)
    : config_(config), dtype_(dtype), compute_dtype_(dtype), seed_(seed) {
  config_.validate();
  // The weights alone must fit before the first one is allocated (model/memory_estimate.h).
  require_memory_fits(estimate_memory(config, dtype, /*training=*/false, 0, 0, ""), Device::CPU, "model");
  const int64_t C = config.hidden_size, H = config.num_attention_heads,
                Hkv = config.num_key_value_heads, D = config.head_dim, F = config.intermediate_size;
  const double std = config.initializer_range;
  const double residual_std = std / std::sqrt(2.0 * config.num_hidden_layers);

  embed_ = new_parameter("embed.weight", {config.vocab_size, C}, std);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    TransformerLayer layer;
    layer.attn_norm = new_filled(p + "attn_norm.weight", {C}, 1.0);
    layer.attn.q_proj = new_parameter(p + "attn.q_proj.weight", {H * D, C}, std);
    layer.attn.k_proj = new_parameter(p + "attn.k_proj.weight", {Hkv * D, C}, std);
    layer.attn.v_proj = new_parameter(p + "attn.v_proj.weight", {Hkv * D, C}, std);
    layer.attn.o_proj = new_parameter(p + "attn.o_proj.weight", {C, H * D}, residual_std);
    layer.mlp_norm = new_filled(p + "mlp_norm.weight", {C}, 1.0);
    layer.mlp.gate_proj = new_parameter(p + "mlp.gate_proj.weight", {F, C}, std);
    layer.mlp.up_proj = new_parameter(p + "mlp.up_proj.weight", {F, C}, std);
    layer.mlp.down_proj = new_parameter(p + "mlp.down_proj.weight", {C, F}, residual_std);
    layer.type = config.layer_type(l);
    layer.window = layer.type == LayerType::Full ? 0 : config.sliding_window;
    if (layer.type == LayerType::Switch) {
      const bool full = config.router_init == "full";
      layer.attn.router_weight = new_parameter(p + "attn.router.weight", {1, C}, full ? 0.0 : config.router_init_std);
      layer.attn.router_bias = new_filled(p + "attn.router.bias", {1}, full ? config.router_full_bias : 0.0);
    }
    layers_.push_back(layer);
  }
  final_norm_ = new_filled("final_norm.weight", {C}, 1.0);
  if (!config.tie_word_embeddings) lm_head_ = new_parameter("lm_head.weight", {config.vocab_size, C}, std);
}

int64_t Transformer::parameter_count() const {
  int64_t n = 0;
  for (const Var& p : parameters_) n += p.value().numel();
  return n;
}

void Transformer::to(Device device) {
  if (device == this->device()) return;
  for (const Var& p : parameters_) {
    p.set_value(p.value().to(device));  // every handle of this Var sees the moved value (grad dropped)
  }
  if (device == Device::CPU) compute_dtype_ = dtype_;
}

void Transformer::set_compute_dtype(DType dtype) {
  if (dtype == dtype_) {
    compute_dtype_ = dtype;
    return;
  }
  if (dtype != DType::BF16 || dtype_ != DType::F32)
    throw Error(std::string("model: compute dtype ") + dtype_name(dtype) + " with " + dtype_name(dtype_) +
                " parameters is not supported (mixed precision is bfloat16 compute on float32 parameters)");
  if (device() != Device::CUDA)
    throw Error("model: bfloat16 compute needs the parameters on cuda (call to(Device::CUDA) first); "
                "the CPU computes in float32 or float64");
  compute_dtype_ = dtype;
}

Var Transformer::compute_weight(const Var& parameter) const {
  if (!parameter.defined() || parameter.dtype() == compute_dtype_) return parameter;
  return cast(parameter, compute_dtype_);
}

Var Transformer::to_compute(const Var& x) const { return x.dtype() == compute_dtype_ ? x : cast(x, compute_dtype_); }
Var Transformer::to_residual(const Var& x) const { return x.dtype() == dtype_ ? x : cast(x, dtype_); }

Var Transformer::attention_block(const TransformerLayer& layer, int64_t l, const Var& x, const KvCacheUse& use,
                                 bool measure_branches, std::vector<LayerRouting>& routing) const {
  const ModelConfig& c = config_;
  const bool step = use.cache && use.step;
  // RoPE positions: row b starts at 0 (sequence mode) or at its sequence's length (step mode).
  const Tensor positions = step ? use.cache->step_positions() : Tensor();
  Var u = to_compute(rms_norm(x, layer.attn_norm, c.rms_norm_eps));                     // (B, T, C)
  Var q = rope(split_heads(matmul(u, layer.attn.q_proj, false, true), c.num_attention_heads), c.rope_theta, 0, positions);  // (B, T, H, D)
  Var k = rope(split_heads(matmul(u, layer.attn.k_proj, false, true), c.num_key_value_heads), c.rope_theta, 0, positions);  // (B, T, Hkv, D)
  Var v = split_heads(matmul(u, layer.attn.v_proj, false, true), c.num_key_value_heads);                                   // (B, T, Hkv, D)
  RouterDecision r;  // switch layers: Eq. 1-2, every token routed from the same u (or x)
  Tensor router_input_value;  // kept for Transformer::router_logits (the target-ratio controller)
  if (layer.type == LayerType::Switch) {
    const Var router_input = c.router_input == "normed" ? u : to_compute(x);
    r = route_tokens(c.router_detach_input ? stop_gradient(router_input) : router_input, layer.attn.router_weight,
                     layer.attn.router_bias, c.router_threshold);
    router_input_value = router_input.value();
  }
  LayerRouting record{l, r.logit, r.route, Tensor(), router_input_value};
  Var o;  // (B, T, H, D)
  if (step) {
    // The cached branch-selective read (spec §7): every token's k, v appended whatever its
    // route; m_t picks the keys [0, t] (FA) or [t - w + 1, t] (SWA) of the cache.
    KvCache& cache = *use.cache;
    const Shape q_shape = q.value().shape();  // (S, 1, H, D)
    const int64_t S = q_shape[0], H = q_shape[2], Hkv = c.num_key_value_heads, D = q_shape[3];
    cache.append_step(l, k.value().reshape({S, Hkv, D}), v.value().reshape({S, Hkv, D}));
    if (layer.type == LayerType::Switch) hard_route_into(r.prob.value(), c.router_threshold, cache.step_route(l));
    o = Var(cache.attend_step(l, q.value().reshape({S, H, D}), layer.window).reshape(q_shape));
  } else {
    // Eq. 4-6: both branches from the same q, k, v, mixed by the gate; or one static branch.
    o = layer.type == LayerType::Switch
            ? switch_attention(q, k, v, layer.window, r.gate, measure_branches ? &record.branch_diff_sq : nullptr)
            : attention(q, k, v, layer.window);
    if (use.cache) use.cache->store_prefix(l, use.first_sequence, k.value(), v.value());  // prefill
  }
  if (layer.type == LayerType::Switch) routing.push_back(record);
  return to_residual(matmul(merge_heads(o), layer.attn.o_proj, false, true));           // (B, T, C)
}

Tensor Transformer::router_logits(int64_t l, const Tensor& input) const {
  if (l < 0 || l >= static_cast<int64_t>(layers_.size()) || layers_[static_cast<size_t>(l)].type != LayerType::Switch)
    throw Error("router_logits: layer " + std::to_string(l) + " is not a switch layer");
  const TransformerLayer& layer = layers_[static_cast<size_t>(l)];
  NoGradGuard no_grad;
  return route_tokens(Var(input), compute_weight(layer.attn.router_weight), compute_weight(layer.attn.router_bias),
                      config_.router_threshold)
      .logit.value();
}

Var Transformer::mlp_block(const TransformerLayer& layer, const Var& x) const {
  Var h = to_compute(rms_norm(x, layer.mlp_norm, config_.rms_norm_eps));     // (B, T, C)
  Var gated = swiglu(matmul(h, layer.mlp.gate_proj, false, true),            // silu(W1 h) * W3 h
                     matmul(h, layer.mlp.up_proj, false, true));             // (B, T, F)
  return to_residual(matmul(gated, layer.mlp.down_proj, false, true));       // (B, T, C)
}

ComputeWeights Transformer::compute_weights() const {
  ComputeWeights w;
  for (TransformerLayer layer : layers_) {  // handles; with mixed precision, their casts
    for (Var* p : {&layer.attn.q_proj, &layer.attn.k_proj, &layer.attn.v_proj, &layer.attn.o_proj,
                   &layer.attn.router_weight, &layer.attn.router_bias, &layer.mlp.gate_proj,
                   &layer.mlp.up_proj, &layer.mlp.down_proj})  // the norms' gains stay in dtype()
      *p = compute_weight(*p);
    w.layers.push_back(layer);
  }
  w.embed = embed_;
  w.final_norm = final_norm_;
  w.output = compute_weight(config_.tie_word_embeddings ? embed_ : lm_head_);
  return w;
}

Var Transformer::final_hidden(const Tensor& ids, const ComputeWeights& w, const KvCacheUse& cache,
                              bool measure_branches, std::vector<LayerRouting>& routing,
                              std::vector<Tensor>* layer_outputs) const {
  if (ids.dtype() != DType::I32 || ids.ndim() != 2)
    throw Error("model: ids must be an int32 (B, T) tensor, got " + std::string(dtype_name(ids.dtype())) +
                " " + shape_str(ids.shape()));
  if (ids.dim(1) > config_.max_position_embeddings)
    throw Error("model: sequence length " + std::to_string(ids.dim(1)) +
                " exceeds model.max_position_embeddings " + std::to_string(config_.max_position_embeddings));
  if (cache.cache && grad_enabled())
    throw Error("model: a forward with a KV cache builds no graph: run it under NoGradGuard");
  if (cache.cache && cache.step && ids.dim(1) != 1)
    throw Error("model: a decode step feeds one token per sequence, got ids " + shape_str(ids.shape()));
  Var x = embedding(w.embed, ids);  // (B, T, C), the residual stream in dtype(); ids on either device
  for (int64_t l = 0; l < static_cast<int64_t>(w.layers.size()); ++l) {
    x = add(x, attention_block(w.layers[l], l, x, cache, measure_branches, routing));
    x = add(x, mlp_block(w.layers[l], x));
    if (layer_outputs) layer_outputs->push_back(x.value());
  }
  return to_compute(rms_norm(x, w.final_norm, config_.rms_norm_eps));  // (B, T, C)
}

Var Transformer::output_logits(const Var& h, const ComputeWeights& w) const {
  return matmul(h, w.output, false, true);  // (..., V)
}

Var Transformer::forward(const Tensor& ids) const { return forward_with_routing(ids, false).logits; }

ForwardResult Transformer::forward_with_routing(const Tensor& ids, bool measure_branches) const {
  ForwardResult result;
  const ComputeWeights w = compute_weights();
  const Var h = final_hidden(ids, w, KvCacheUse{}, measure_branches, result.routing, &result.layer_outputs);
  result.logits = output_logits(h, w);  // (B, T, V)
  return result;
}

Var next_token_loss(const Var& logits, const Tensor& targets, Tensor* per_token_nll) {
  const Tensor& L = logits.value();
  check_ndim("next_token_loss", L, 3, "(B, T, V) of logits");
  if (targets.dtype() != DType::I32 || targets.shape() != Shape{L.dim(0), L.dim(1)})
    shape_error("next_token_loss", "targets must be int32 (B, T) for logits (B, T, V)", L, targets);
  const int64_t N = targets.numel();
  // Mixed precision: the loss (log-sum-exp, mean) is computed from float32 logits.
  const Var logits32 = logits.dtype() == DType::BF16 ? cast(logits, DType::F32) : logits;
  return cross_entropy(reshape(logits32, {N, L.dim(2)}), targets.reshape({N}), -100, per_token_nll);
}

Var Transformer::loss(const Tensor& ids, const Tensor& targets, Tensor* per_token_nll) const {
  if (targets.shape() != ids.shape())
    shape_error("model loss", "targets must have the shape of ids", ids, targets);
  return next_token_loss(forward(ids), targets, per_token_nll);
}

}  // namespace swiattn
