// model/kv_cache.h: the unified KV cache of incremental decoding (spec §7), on the model's device.
//
// Shape legend: S sequences in the batch, P capacity (positions per sequence), L layers,
// H query heads, Hkv key/value heads, D head_dim, W sliding_window.
//
// One cache per batch of sequences. For every layer it holds K and V of EVERY token of every
// sequence, whatever branch the token took: a later full-attention query may read any earlier
// key, so a switch layer cannot drop the keys of SWA-routed tokens. Only the keys READ per step
// shrink.
//
//   keys(l), values(l)   (S, P, Hkv, D)   row (s, j) = k_j, v_j of sequence s at position j
//   length(s)                             tokens stored for sequence s
//
// Sequences are left-aligned: position j of every sequence is row j, so sequences of different
// lengths share one buffer, each with its own length (prompts of different lengths need no
// padding in the cache, and RoPE positions are the row indices). Key j of kv head g of sequence
// s sits at element ((s * P + j) * Hkv + g) * D: the keys of one head are Hkv * D elements apart.
//
// Tokens enter in one of the two modes of the attention block (model/transformer.h, KvCacheUse):
//   prefill  store_prefix(l, first, k, v): the k, v of whole prompts (N, T, Hkv, D) at rows
//            [0, T) of sequences [first, first + N); then set_length(s, n) per sequence.
//   step     begin_step() checks that every sequence has room and puts each sequence's next
//            position on the device (once for all layers); per layer append_step(l, k, v) stores
//            the new token of every sequence at row length(s), the router writes its decision
//            into step_route(l), and attend_step(l, q, w) reads the cached keys:
//              route 1 (FA):  keys [0, t]             t = length(s), the new token's position
//              route 0 (SWA): keys [max(0, t-W+1), t]
//            end_step() then counts the token (every length += 1). A step that throws before
//            end_step leaves the lengths as they were (rows past length(s) are never read).
// On CUDA nothing in a step waits for the device: positions, lengths and routes are device
// tensors, and the attention is kernels/cuda/decode_attention.h. On the CPU the same calls run
// kernels/cpu/decode_attention.h, the reference.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "tensor/tensor.h"

namespace swiattn {

class KvCache {
 public:
  // A cache for `sequences` sequences of up to `capacity` tokens each, for a model with `config`,
  // in `dtype` on `device` (float32 / float64 on the CPU, float32 / bfloat16 on CUDA: the model's
  // compute dtype). capacity 0 means max_position_embeddings; larger than max_position_embeddings
  // is an error (RoPE positions past it were never trained and the full forward rejects them).
  KvCache(const ModelConfig& config, DType dtype, int64_t sequences, int64_t capacity = 0,
          Device device = Device::CPU);

  int64_t sequences() const { return sequences_; }   // S
  int64_t capacity() const { return capacity_; }     // P
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }  // L
  int64_t kv_heads() const { return kv_heads_; }     // Hkv
  int64_t head_dim() const { return head_dim_; }     // D
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t bytes() const;                              // memory held by all K and V buffers

  // Tokens stored for sequence s (the next one goes to position length(s)).
  int64_t length(int64_t sequence) const;
  const std::vector<int64_t>& lengths() const { return lengths_; }  // (S)

  // Layer l's buffers (S, P, Hkv, D); rows [0, length(s)) of sequence s are valid.
  const Tensor& keys(int64_t layer) const;
  const Tensor& values(int64_t layer) const;

  // ---- prefill ----
  // k, v (N, T, Hkv, D) in the cache's dtype and device: rows [0, T) of sequences
  // [first_sequence, first_sequence + N). Throws if T > capacity or the sequences are out of range.
  void store_prefix(int64_t layer, int64_t first_sequence, const Tensor& k, const Tensor& v);
  // length(s) = n (0 <= n <= capacity), after store_prefix has written rows [0, n) of every layer.
  void set_length(int64_t sequence, int64_t n);

  // ---- one decode step (one new token for every sequence) ----
  // Throws a clear Error, before anything changes, if some sequence is full; else uploads the
  // positions length(s) (and length(s) + 1, the keys each query reads up to) for the step.
  void begin_step();
  // (S) int32 on the cache's device: length(s), the new token's position (RoPE reads it).
  const Tensor& step_positions() const;
  // k, v (S, Hkv, D): the new token of every sequence, stored at row length(s).
  void append_step(int64_t layer, const Tensor& k, const Tensor& v);
  // (S) int32 on the cache's device: this step's route m_t of layer l per sequence. "full" layers
  // hold 1 and "swa" layers 0 from construction on; a switch layer's router writes its row
  // (hard_route_into, model/router.h) before attend_step reads it.
  Tensor step_route(int64_t layer) const;
  const Tensor& step_routes() const { return step_routes_; }  // (L, S) int32, every layer's row
  // out (S, H, D) in q's dtype: q (S, H, D) of every sequence's new token over its cached keys,
  // the range its step_route(l) picks (spec §7; H a multiple of Hkv, query head h reads kv head
  // h / (H / Hkv)).
  Tensor attend_step(int64_t layer, const Tensor& q, int64_t window) const;
  // Every length += 1: call once per step, after every layer has appended.
  void end_step();

  // Forgets every token (all lengths 0); the buffers are kept.
  void clear();

 private:
  void check_sequence(int64_t sequence, const char* what) const;
  void check_layer(int64_t layer, const char* what) const;

  int64_t sequences_, capacity_, kv_heads_, head_dim_;
  DType dtype_;
  Device device_;
  std::vector<Tensor> keys_;      // L tensors (S, P, Hkv, D)
  std::vector<Tensor> values_;    // L tensors (S, P, Hkv, D)
  std::vector<int64_t> lengths_;  // (S), on the host: the decode loop's bookkeeping
  Tensor step_;                   // (2, S) int32 on device_: row 0 length(s), row 1 length(s) + 1
  Tensor step_positions_;         // row 0 of step_, (S)
  Tensor step_lengths_;           // row 1 of step_, (S): keys each new query reads up to
  Tensor step_routes_;            // (L, S) int32 on device_
  bool in_step_ = false;          // between begin_step and end_step
};

}  // namespace swiattn
