// model/config.cpp: the model configuration's layer types and its validation (clear errors naming the key).

#include "model/config.h"

#include <cmath>

#include "tensor/checked_math.h"
#include "tensor/tensor.h"

namespace swiattn {

const char* layer_type_name(LayerType type) {
  switch (type) {
    case LayerType::Full: return "full";
    case LayerType::Swa: return "swa";
    case LayerType::Switch: return "switch";
  }
  return "?";
}

std::optional<LayerType> layer_type_from_name(const std::string& name) {
  for (LayerType type : {LayerType::Full, LayerType::Swa, LayerType::Switch})
    if (name == layer_type_name(type)) return type;
  return std::nullopt;
}

static void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw Error("model." + key + ": " + what);
}

// Entry i of layer_types as a type; the message of validate() for a name that is none.
static LayerType parse_layer_type(const std::vector<std::string>& names, size_t i) {
  const std::optional<LayerType> type = layer_type_from_name(names.at(i));
  require(type.has_value(), "layer_types",
          "entry " + std::to_string(i) + " is \"" + names[i] + "\"; expected \"full\", \"swa\" or \"switch\"");
  return *type;
}

LayerType ModelConfig::layer_type(int64_t layer) const {
  if (layer_types.empty()) return LayerType::Full;
  return parse_layer_type(layer_types, static_cast<size_t>(layer));
}

void ModelConfig::validate() const {
  require(vocab_size >= 1, "vocab_size", "must be >= 1, got " + std::to_string(vocab_size));
  require(hidden_size >= 1, "hidden_size", "must be >= 1, got " + std::to_string(hidden_size));
  require(num_hidden_layers >= 1, "num_hidden_layers", "must be >= 1, got " + std::to_string(num_hidden_layers));
  require(num_attention_heads >= 1, "num_attention_heads", "must be >= 1, got " + std::to_string(num_attention_heads));
  require(num_key_value_heads >= 1 && num_attention_heads % num_key_value_heads == 0,
          "num_key_value_heads", "must be >= 1 and divide num_attention_heads (" +
          std::to_string(num_attention_heads) + "), got " + std::to_string(num_key_value_heads));
  require(head_dim >= 2 && head_dim % 2 == 0, "head_dim", "must be even and >= 2 (RoPE rotates pairs), got " + std::to_string(head_dim));
  require(intermediate_size >= 1, "intermediate_size", "must be >= 1, got " + std::to_string(intermediate_size));
  require(sliding_window >= 1, "sliding_window", "must be >= 1, got " + std::to_string(sliding_window));
  require(layer_types.empty() || static_cast<int64_t>(layer_types.size()) == num_hidden_layers,
          "layer_types", "needs one entry per layer (" + std::to_string(num_hidden_layers) + "), got " +
          std::to_string(layer_types.size()));
  for (size_t i = 0; i < layer_types.size(); ++i) parse_layer_type(layer_types, i);
  // Upper bounds: the kernels take these as 32-bit ints (tensor/checked_math.h). Whether the
  // model fits in memory is model/memory_estimate.h's question, asked before anything is allocated.
  const std::pair<const char*, int64_t> sizes[] = {
      {"vocab_size", vocab_size}, {"hidden_size", hidden_size}, {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads}, {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim}, {"intermediate_size", intermediate_size}, {"sliding_window", sliding_window},
      {"max_position_embeddings", max_position_embeddings}};
  for (const auto& [key, value] : sizes) require_size(std::string("model.") + key, value, 1, kMaxSize);
  const std::pair<const char*, double> reals[] = {
      {"rope_theta", rope_theta}, {"rms_norm_eps", rms_norm_eps}, {"initializer_range", initializer_range},
      {"router_init_std", router_init_std}, {"router_full_bias", router_full_bias}};
  for (const auto& [key, value] : reals) require(std::isfinite(value), key, "must be a finite number");
  require(rope_theta > 0, "rope_theta", "must be > 0");
  require(rms_norm_eps > 0, "rms_norm_eps", "must be > 0");
  require(max_position_embeddings >= 1, "max_position_embeddings", "must be >= 1");
  require(initializer_range > 0, "initializer_range", "must be > 0");
  require(router_input == "normed" || router_input == "residual", "router_input",
          "must be \"normed\" or \"residual\", got \"" + router_input + "\"");
  require(router_init == "random" || router_init == "full", "router_init",
          "must be \"random\" or \"full\", got \"" + router_init + "\"");
  require(router_threshold > 0 && router_threshold < 1, "router_threshold", "must be in (0, 1)");
  require(router_init_std >= 0, "router_init_std", "must be >= 0");
}

}  // namespace swiattn
