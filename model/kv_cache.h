// model/kv_cache.h: the unified KV cache of incremental decoding (spec §7).
//
// Shape legend: S sequences in the batch, P capacity (positions per sequence), L layers,
// Hkv key/value heads, D head_dim.
//
// One cache per model. For every layer it holds K and V of EVERY token of every sequence,
// whatever branch the token took: a later full-attention query may read any earlier key, so a
// switch layer cannot drop the keys of SWA-routed tokens. Only the keys READ per step shrink.
//
//   keys(l), values(l)   (S, P, Hkv, D)   row (s, j) = k_j, v_j of sequence s at position j
//
// Key j of kv head g of sequence s sits at element ((s * P + j) * Hkv + g) * D, so the keys of
// one head are `key_stride() = Hkv * D` elements apart: the layout cpu::attend_range_forward
// reads a key range [lo, hi] from.
//
// Writing a token takes two calls: write(l, s, k, v) for each layer stores the token at position
// length(s); advance(s) then makes it part of the sequence. So the attention of layer l in the
// same step already sees the new key, and every layer writes at the same position.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "tensor/tensor.h"

namespace swiattn {

class KvCache {
 public:
  // A cache for `sequences` sequences of up to `capacity` tokens each, of a model with `config`,
  // in `dtype` (the model's: float32 or float64). capacity 0 means max_position_embeddings;
  // larger than max_position_embeddings is an error (RoPE positions past it were never trained
  // and the full forward rejects them).
  KvCache(const ModelConfig& config, DType dtype, int64_t sequences, int64_t capacity = 0);

  int64_t sequences() const { return sequences_; }   // S
  int64_t capacity() const { return capacity_; }     // P
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }  // L
  int64_t kv_heads() const { return kv_heads_; }     // Hkv
  int64_t head_dim() const { return head_dim_; }     // D
  int64_t key_stride() const { return kv_heads_ * head_dim_; }  // elements between keys j, j+1
  DType dtype() const { return dtype_; }
  size_t bytes() const;                              // memory held by all K and V buffers

  // Tokens stored for sequence s (the next token goes to position length(s)).
  int64_t length(int64_t sequence) const;
  // Throws a clear Error if sequence s has no room for one more token.
  void check_room(int64_t sequence) const;

  // Layer l's buffers (S, P, Hkv, D); rows [0, length(s)) of sequence s are valid.
  const Tensor& keys(int64_t layer) const;
  const Tensor& values(int64_t layer) const;

  // Stores k, v (Hkv, D) of layer l for sequence s at position length(s). Does not advance.
  void write(int64_t layer, int64_t sequence, const Tensor& k, const Tensor& v);
  // length(s) += 1: call once per token, after every layer has written it.
  void advance(int64_t sequence);
  // Forgets every token (all lengths 0); the buffers are kept.
  void clear();

 private:
  void check_sequence(int64_t sequence, const char* what) const;
  void check_layer(int64_t layer, const char* what) const;

  int64_t sequences_, capacity_, kv_heads_, head_dim_;
  DType dtype_;
  std::vector<Tensor> keys_;     // L tensors (S, P, Hkv, D)
  std::vector<Tensor> values_;   // L tensors (S, P, Hkv, D)
  std::vector<int64_t> lengths_; // (S)
};

}  // namespace swiattn
