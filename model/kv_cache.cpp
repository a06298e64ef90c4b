#include "model/kv_cache.h"

#include <string>

namespace swiattn {

KvCache::KvCache(const ModelConfig& config, DType dtype, int64_t sequences, int64_t capacity)
    : sequences_(sequences),
      capacity_(capacity == 0 ? config.max_position_embeddings : capacity),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype),
      lengths_(static_cast<size_t>(sequences > 0 ? sequences : 0), 0) {
  if (sequences < 1) throw Error("kv cache: sequences must be >= 1, got " + std::to_string(sequences));
  if (capacity_ < 1 || capacity_ > config.max_position_embeddings)
    throw Error("kv cache: capacity must be in [1, max_position_embeddings = " +
                std::to_string(config.max_position_embeddings) + "], got " + std::to_string(capacity));
  if (dtype != DType::F32 && dtype != DType::F64)
    throw Error(std::string("kv cache: dtype must be float32 or float64, got ") + dtype_name(dtype));
  const Shape shape{sequences_, capacity_, kv_heads_, head_dim_};  // (S, P, Hkv, D)
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(Tensor::zeros(shape, dtype));
    values_.push_back(Tensor::zeros(shape, dtype));
  }
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (size_t l = 0; l < keys_.size(); ++l) total += keys_[l].nbytes() + values_[l].nbytes();
  return total;
}

void KvCache::check_sequence(int64_t sequence, const char* what) const {
  if (sequence < 0 || sequence >= sequences_)
    throw Error(std::string("kv cache ") + what + ": sequence " + std::to_string(sequence) +
                " out of range [0, " + std::to_string(sequences_) + ")");
}

void KvCache::check_layer(int64_t layer, const char* what) const {
  if (layer < 0 || layer >= num_layers())
    throw Error(std::string("kv cache ") + what + ": layer " + std::to_string(layer) +
                " out of range [0, " + std::to_string(num_layers()) + ")");
}

int64_t KvCache::length(int64_t sequence) const {
  check_sequence(sequence, "length");
  return lengths_[sequence];
}

void KvCache::check_room(int64_t sequence) const {
  check_sequence(sequence, "check_room");
  if (lengths_[sequence] >= capacity_)
    throw Error("kv cache: sequence " + std::to_string(sequence) + " is full (" +
                std::to_string(lengths_[sequence]) + " of capacity " + std::to_string(capacity_) +
                " tokens)");
}

const Tensor& KvCache::keys(int64_t layer) const {
  check_layer(layer, "keys");
  return keys_[layer];
}

const Tensor& KvCache::values(int64_t layer) const {
  check_layer(layer, "values");
  return values_[layer];
}

void KvCache::write(int64_t layer, int64_t sequence, const Tensor& k, const Tensor& v) {
  check_layer(layer, "write");
  check_room(sequence);
  const Shape row{kv_heads_, head_dim_};  // (Hkv, D)
  if (k.shape() != row || v.shape() != row)
    throw Error("kv cache write: k and v must be " + shape_str(row) + ", got k " + shape_str(k.shape()) +
                " and v " + shape_str(v.shape()));
  const int64_t slot = sequence * capacity_ + lengths_[sequence];  // row (s, t) of (S, P, ...)
  // (S, P, Hkv, D) viewed as (S * P, Hkv, D): slice one row; copy_from checks shape and converts dtype.
  keys_[layer].reshape({sequences_ * capacity_, kv_heads_, head_dim_}).slice(slot, slot + 1)
      .reshape(row).copy_from(k);
  values_[layer].reshape({sequences_ * capacity_, kv_heads_, head_dim_}).slice(slot, slot + 1)
      .reshape(row).copy_from(v);
}

void KvCache::advance(int64_t sequence) {
  check_room(sequence);
  ++lengths_[sequence];
}

void KvCache::clear() {
  for (int64_t& n : lengths_) n = 0;
}

}  // namespace swiattn
