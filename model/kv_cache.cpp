// model/kv_cache.cpp: see model/kv_cache.h. The decode step's cache operations are the entries of
// kernels/decode_attention.h, which choose the device: kernels/cpu/decode_attention.h (the
// reference) or kernels/cuda/decode_attention.h.
#include "model/kv_cache.h"

#include <string>

#include "kernels/decode_attention.h"

namespace swiattn {

KvCache::KvCache(const ModelConfig& config, DType dtype, int64_t sequences, int64_t capacity, Device device)
    : sequences_(sequences),
      capacity_(capacity == 0 ? config.max_position_embeddings : capacity),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype),
      device_(device),
      lengths_(static_cast<size_t>(sequences > 0 ? sequences : 0), 0) {
  if (sequences < 1) throw Error("kv cache: sequences must be >= 1, got " + std::to_string(sequences));
  if (capacity_ < 1 || capacity_ > config.max_position_embeddings)
    throw Error("kv cache: capacity must be in [1, max_position_embeddings = " +
                std::to_string(config.max_position_embeddings) + "], got " + std::to_string(capacity));
  const bool cpu_ok = device == Device::CPU && (dtype == DType::F32 || dtype == DType::F64);
  const bool cuda_ok = device == Device::CUDA && (dtype == DType::F32 || dtype == DType::BF16);
  if (!cpu_ok && !cuda_ok)
    throw Error(std::string("kv cache: dtype ") + dtype_name(dtype) + " on " + device_name(device) +
                " is not supported (float32 / float64 on the cpu, float32 / bfloat16 on cuda)");
  const Shape shape{sequences_, capacity_, kv_heads_, head_dim_};  // (S, P, Hkv, D)
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(Tensor::zeros(shape, dtype, device));
    values_.push_back(Tensor::zeros(shape, dtype, device));
  }
  step_ = Tensor::zeros({2, sequences_}, DType::I32, device);
  step_positions_ = step_.slice(0, 1).reshape({sequences_});
  step_lengths_ = step_.slice(1, 2).reshape({sequences_});
  // Static layers route the same way for every token: "full" 1, "swa" 0 (spec §9).
  Tensor routes = Tensor::zeros({config.num_hidden_layers, sequences_}, DType::I32);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    if (config.layer_type(l) == LayerType::Full) routes.slice(l, l + 1).fill(1.0);
  step_routes_ = routes.to(device);
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

const Tensor& KvCache::keys(int64_t layer) const {
  check_layer(layer, "keys");
  return keys_[layer];
}

const Tensor& KvCache::values(int64_t layer) const {
  check_layer(layer, "values");
  return values_[layer];
}

// ---- prefill ----

void KvCache::store_prefix(int64_t layer, int64_t first, const Tensor& k, const Tensor& v) {
  check_layer(layer, "store_prefix");
  if (k.ndim() != 4 || k.shape() != v.shape() || k.dim(2) != kv_heads_ || k.dim(3) != head_dim_)
    throw Error("kv cache store_prefix: k and v must be (N, T, " + std::to_string(kv_heads_) + ", " +
                std::to_string(head_dim_) + "), got k " + shape_str(k.shape()) + " and v " + shape_str(v.shape()));
  const int64_t N = k.dim(0), T = k.dim(1);
  if (first < 0 || first + N > sequences_)
    throw Error("kv cache store_prefix: sequences [" + std::to_string(first) + ", " + std::to_string(first + N) +
                ") out of range [0, " + std::to_string(sequences_) + ")");
  if (T > capacity_)
    throw Error("kv cache store_prefix: " + std::to_string(T) + " tokens do not fit the capacity " +
                std::to_string(capacity_));
  const Shape rows{T, kv_heads_, head_dim_};
  for (int64_t n = 0; n < N; ++n) {  // sequence first + n, rows [0, T): one contiguous block each
    const int64_t s = first + n;
    keys_[layer].slice(s, s + 1).reshape({capacity_, kv_heads_, head_dim_}).slice(0, T).copy_from(
        k.slice(n, n + 1).reshape(rows));
    values_[layer].slice(s, s + 1).reshape({capacity_, kv_heads_, head_dim_}).slice(0, T).copy_from(
        v.slice(n, n + 1).reshape(rows));
  }
}

void KvCache::set_length(int64_t sequence, int64_t n) {
  check_sequence(sequence, "set_length");
  if (n < 0 || n > capacity_)
    throw Error("kv cache set_length: " + std::to_string(n) + " is outside [0, capacity " +
                std::to_string(capacity_) + "]");
  lengths_[sequence] = n;
}

// ---- one decode step ----

void KvCache::begin_step() {
  for (int64_t s = 0; s < sequences_; ++s)
    if (lengths_[s] >= capacity_)
      throw Error("kv cache: sequence " + std::to_string(s) + " is full (" + std::to_string(lengths_[s]) +
                  " of capacity " + std::to_string(capacity_) + " tokens)");
  std::vector<int32_t> host(static_cast<size_t>(2 * sequences_));
  for (int64_t s = 0; s < sequences_; ++s) {
    host[s] = static_cast<int32_t>(lengths_[s]);                   // the new token's position t
    host[sequences_ + s] = static_cast<int32_t>(lengths_[s] + 1);  // keys [.., t] it reads
  }
  step_.copy_from(Tensor::from_ints(host, {2, sequences_}).to(device_));  // one upload per step
  in_step_ = true;
}

const Tensor& KvCache::step_positions() const {
  if (!in_step_) throw Error("kv cache: step_positions outside a step (call begin_step first)");
  return step_positions_;
}

Tensor KvCache::step_route(int64_t layer) const {
  check_layer(layer, "step_route");
  return step_routes_.slice(layer, layer + 1).reshape({sequences_});
}

void KvCache::append_step(int64_t layer, const Tensor& k, const Tensor& v) {
  check_layer(layer, "append_step");
  if (!in_step_) throw Error("kv cache: append_step outside a step (call begin_step first)");
  const Shape row{sequences_, kv_heads_, head_dim_};
  if (k.shape() != row || v.shape() != row)
    throw Error("kv cache append_step: k and v must be " + shape_str(row) + ", got k " + shape_str(k.shape()) +
                " and v " + shape_str(v.shape()));
  check_same_dtype("kv cache append_step", k, keys_[layer]);
  check_same_dtype("kv cache append_step", v, keys_[layer]);
  check_same_device("kv cache append_step", k, keys_[layer]);
  check_same_device("kv cache append_step", v, keys_[layer]);
  kernels::kv_cache_append(k, v, step_positions_, keys_[layer], values_[layer]);
}

Tensor KvCache::attend_step(int64_t layer, const Tensor& q, int64_t window) const {
  check_layer(layer, "attend_step");
  if (!in_step_) throw Error("kv cache: attend_step outside a step (call begin_step first)");
  if (q.ndim() != 3 || q.dim(0) != sequences_ || q.dim(2) != head_dim_ || q.dim(1) % kv_heads_ != 0)
    throw Error("kv cache attend_step: q must be (S = " + std::to_string(sequences_) + ", H, D = " +
                std::to_string(head_dim_) + ") with H a multiple of " + std::to_string(kv_heads_) + ", got " +
                shape_str(q.shape()));
  check_same_dtype("kv cache attend_step", q, keys_[layer]);
  check_same_device("kv cache attend_step", q, keys_[layer]);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());  // (S, H, D)
  int64_t longest = 0;  // a host-side bound on the lengths, the new key included
  for (int64_t n : lengths_) longest = std::max(longest, n + 1);
  kernels::decode_attention_forward(window, q, keys_[layer], values_[layer], step_lengths_, step_route(layer), out,
                                    longest);
  return out;
}

void KvCache::end_step() {
  if (!in_step_) throw Error("kv cache: end_step without begin_step");
  for (int64_t& n : lengths_) ++n;
  in_step_ = false;
}

void KvCache::clear() {
  for (int64_t& n : lengths_) n = 0;
  in_step_ = false;
}

}  // namespace swiattn
