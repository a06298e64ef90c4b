// model/memory_estimate.cpp: see model/memory_estimate.h.
#include "model/memory_estimate.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "tensor/cuda/device.h"
#include "tensor/checked_math.h"

namespace swiattn {

namespace {

std::string value_of(const char* key, int64_t value) { return std::string(key) + " = " + std::to_string(value); }

// The elements one token keeps per layer in a training forward (the header's 8 C + 6 H D + ...).
int64_t activations_per_token_layer(const ModelConfig& c, const std::string& what) {
  const int64_t HD = checked_mul(c.num_attention_heads, c.head_dim, what);
  const int64_t HkvD = checked_mul(c.num_key_value_heads, c.head_dim, what);
  int64_t n = checked_mul(8, c.hidden_size, what);
  n = checked_add(n, checked_mul(6, HD, what), what);
  n = checked_add(n, checked_mul(4, HkvD, what), what);
  return checked_add(n, checked_mul(5, c.intermediate_size, what), what);
}

}  // namespace

int64_t estimate_parameter_count(const ModelConfig& c) {
  const std::string what = "model: the parameter count of hidden_size " + std::to_string(c.hidden_size) +
                           ", vocab_size " + std::to_string(c.vocab_size) + ", num_hidden_layers " +
                           std::to_string(c.num_hidden_layers);
  const int64_t C = c.hidden_size;
  const int64_t HD = checked_mul(c.num_attention_heads, c.head_dim, what);
  const int64_t HkvD = checked_mul(c.num_key_value_heads, c.head_dim, what);
  int64_t per_layer = checked_mul(2, checked_mul(HD, C, what), what);                 // Wq, Wo
  per_layer = checked_add(per_layer, checked_mul(2, checked_mul(HkvD, C, what), what), what);  // Wk, Wv
  per_layer = checked_add(per_layer, checked_mul(3, checked_mul(c.intermediate_size, C, what), what), what);
  per_layer = checked_add(per_layer, checked_mul(2, C, what), what);                  // the two norms' gains
  const int64_t embedding = checked_mul(c.tie_word_embeddings ? 1 : 2, checked_mul(c.vocab_size, C, what), what);
  int64_t switch_layers = 0;
  for (int64_t l = 0; l < static_cast<int64_t>(c.layer_types.size()); ++l)
    switch_layers += c.layer_type(l) == LayerType::Switch;
  int64_t n = checked_add(embedding, C, what);  // + the final norm's gain
  n = checked_add(n, checked_mul(c.num_hidden_layers, per_layer, what), what);
  return checked_add(n, checked_mul(switch_layers, C + 1, what), what);
}

int64_t MemoryEstimate::total_bytes() const {
  const std::string what = "memory estimate";
  return checked_add(checked_add(weight_bytes, training_state_bytes, what), activation_bytes, what);
}

MemoryEstimate estimate_memory(const ModelConfig& c, DType dtype, bool training, int64_t batch, int64_t seq_len,
                               const std::string& activation_keys, bool bf16_compute) {
  const std::string what = "memory estimate";
  MemoryEstimate e;
  e.parameters = estimate_parameter_count(c);
  const int64_t bytes = static_cast<int64_t>(dtype_size(dtype));
  e.weight_bytes = checked_mul(e.parameters, bytes, what);
  if (training) e.training_state_bytes = checked_mul(3, e.weight_bytes, what);
  if (bf16_compute) e.training_state_bytes = checked_add(e.training_state_bytes, checked_mul(2, e.parameters, what), what);
  const int64_t tokens = checked_mul(batch, seq_len, what);
  const int64_t per_layer = activations_per_token_layer(c, what);
  int64_t elements;
  if (training) {
    elements = checked_mul(checked_mul(tokens, c.num_hidden_layers, what), per_layer, what);
    elements = checked_add(elements, checked_mul(3, checked_mul(tokens, c.vocab_size, what), what), what);
  } else {
    elements = checked_mul(tokens, checked_add(per_layer, checked_mul(2, c.vocab_size, what), what), what);
    const int64_t kv = checked_mul(checked_mul(2, c.num_hidden_layers, what),
                                   checked_mul(c.num_key_value_heads, c.head_dim, what), what);
    elements = checked_add(elements, checked_mul(tokens, kv, what), what);
  }
  e.activation_bytes = checked_mul(elements, bytes, what);

  // The largest cause: the embedding, the layers or the activations.
  const int64_t embedding_bytes = checked_mul(checked_mul(c.vocab_size, c.hidden_size, what), bytes, what);
  const int64_t layer_bytes = std::max<int64_t>(0, e.weight_bytes - embedding_bytes);
  const int64_t state_factor = training ? 4 : 1;  // weights + gradients + two moments
  if (e.activation_bytes >= layer_bytes * state_factor && e.activation_bytes >= embedding_bytes * state_factor)
    e.largest_cause = activation_keys + " (" + std::to_string(batch) + " x " + std::to_string(seq_len) +
                      " tokens) through " + value_of("model.num_hidden_layers", c.num_hidden_layers) + " layers";
  else if (layer_bytes >= embedding_bytes)
    e.largest_cause = value_of("model.num_hidden_layers", c.num_hidden_layers) + " layers of " +
                      value_of("model.hidden_size", c.hidden_size) + ", " +
                      value_of("model.intermediate_size", c.intermediate_size);
  else
    e.largest_cause = value_of("model.vocab_size", c.vocab_size) + " x " + value_of("model.hidden_size", c.hidden_size);
  return e;
}

int64_t device_memory_bytes(Device device) {
  if (device == Device::CUDA) return static_cast<int64_t>(cuda::total_memory_bytes());
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  int64_t bytes = pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0;
  // In a container the cgroup's limit is what the process can really have ("max": none).
  for (const char* file : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(file);
    long long limit = 0;
    if (in >> limit && limit > 0 && (bytes == 0 || limit < bytes)) bytes = limit;
  }
  return bytes;
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) value /= 1024.0, ++unit;
  char text[64];
  if (unit == 0) std::snprintf(text, sizeof text, "%lld bytes", static_cast<long long>(bytes));
  else std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

void require_memory_fits(const MemoryEstimate& e, Device device, const std::string& what) {
  const int64_t available = device_memory_bytes(device);
  const int64_t needed = e.total_bytes();
  if (available <= 0 || needed <= available) return;
  std::string parts = "weights " + format_bytes(e.weight_bytes);
  if (e.training_state_bytes > 0) parts += ", gradients and optimizer moments " + format_bytes(e.training_state_bytes);
  parts += ", activations " + format_bytes(e.activation_bytes);
  throw Error(what + ": " + std::to_string(e.parameters) + " parameters need about " + format_bytes(needed) + " (" +
              parts + "; estimated from the configuration), more than the " + format_bytes(available) + " of " +
              (device == Device::CUDA ? std::string("the GPU") : std::string("this machine's memory")) +
              "; the largest part comes from " + e.largest_cause);
}

}  // namespace swiattn
