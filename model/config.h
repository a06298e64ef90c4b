// model/config.h: the model's configuration. Field names follow the Hugging Face config.json
// convention so a checkpoint's config reads the same in both ecosystems.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace swiattn {

// A layer's attention (spec §2-3): always full causal, always the sliding window, or routed per
// token by a router. The config names them "full", "swa", "switch"; code compares the enum.
enum class LayerType { Full, Swa, Switch };

// The config name of a layer type ("full", "swa", "switch"), and back (nullopt for any other).
const char* layer_type_name(LayerType type);
std::optional<LayerType> layer_type_from_name(const std::string& name);

struct ModelConfig {
  int64_t vocab_size = 256;               // V: 256 for the byte tokenizer, 50257 for GPT-2 BPE
  int64_t hidden_size = 128;              // C = d_model
  int64_t num_hidden_layers = 4;          // L
  int64_t num_attention_heads = 4;        // H, query heads
  int64_t num_key_value_heads = 2;        // Hkv; H must be a multiple of it
  int64_t head_dim = 32;                  // D; even (RoPE rotates pairs)
  int64_t intermediate_size = 384;        // SwiGLU hidden width
  int64_t sliding_window = 64;            // W: keys a `swa` query reads, itself included
  std::vector<std::string> layer_types;   // one per layer: "full" | "swa" | "switch"; empty = all "full"
  double rope_theta = 10000.0;            // RoPE base
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = true;        // output head = embedding matrix
  int64_t max_position_embeddings = 1024; // longest sequence the model accepts
  double initializer_range = 0.02;        // std of the normal initialisation

  // The router of `switch` layers (spec §3; the spec's `router.input` is router_input, etc.).
  std::string router_input = "normed";    // "normed": u_t = RMSNorm(x_t), what Q/K/V read | "residual": x_t
  std::string router_init = "random";     // "random": w_r ~ N(0, router_init_std^2), b_r = 0
                                          // "full": w_r = 0, b_r = router_full_bias (starts as FA)
  double router_threshold = 0.5;          // tau: m_t = 1 (full attention) when p_t > tau
  double router_init_std = 0.02;
  double router_full_bias = 3.0;
  // [R] The straight-through signal trains the router's own w_r, b_r only: its input is detached,
  // so every other parameter gets exactly the gradient of the hard-routed forward (the check of
  // spec §4). false: the STE gradient also flows into the hidden state the router reads.
  bool router_detach_input = true;

  // Layer l's type, parsed from layer_types (Full when layer_types is empty; an Error with
  // validate()'s message for a name that is not a layer type).
  LayerType layer_type(int64_t layer) const;
  // Throws Error naming the offending key ("model.sliding_window: must be >= 1, got 0").
  void validate() const;
};

}  // namespace swiattn
