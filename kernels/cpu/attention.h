// kernels/cpu/attention.h: causal attention with an optional sliding window, grouped-query.
//
// Layout: q (B, T, Hq, D); k, v (B, T, Hkv, D); out (B, T, Hq, D); lse (B, T, Hq).
// Query head h reads kv head h / (Hq / Hkv). Query position t (0-based) attends to keys
// [window_first_key(t, window), t] (kernels/cpu/window.h):
//   window == 0 : 0 <= j <= t                      (full causal attention)
//   window == w : max(0, t - w + 1) <= j <= t      (exactly w keys, the query's own included)
// score_j = q_t . k_j / sqrt(D); out_t = sum_j softmax(score)_j v_j; lse_t = log sum_j e^score_j.
// The backward adds (+=) into dq, dk, dv.
#pragma once

#include <cstdint>

#include "kernels/cpu/window.h"  // window_first_key: the key range [first key, t]

namespace swiattn::cpu {

struct AttentionShape {
  int64_t B, T, Hq, Hkv, D;
  int64_t group() const { return Hq / Hkv; }  // query heads per kv head
};

// One query row against the keys [lo, hi] (inclusive) of one kv head, stored every `key_stride`
// elements from k and v. Writes the row's output and returns its log-sum-exp.
template <class T>
T attend_range_forward(int64_t D, T scale, const T* q_row, const T* k, const T* v,
                       int64_t key_stride, int64_t lo, int64_t hi, T* out_row);
// The backward of attend_range_forward given its output, lse and the output's gradient:
//   p_j = exp(score_j - lse);  ds_j = p_j (dout . v_j - dout . out)
//   dq += scale sum_j ds_j k_j;  dk_j += scale ds_j q;  dv_j += p_j dout
template <class T>
void attend_range_backward(int64_t D, T scale, const T* q_row, const T* k, const T* v,
                           int64_t key_stride, int64_t lo, int64_t hi, const T* out_row, T lse,
                           const T* dout_row, T* dq_row, T* dk, T* dv);

// Rows in parallel over (b, t, h).
template <class T>
void attention_forward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                       const T* v, T* out, T* lse);
// Parallel over (b, kv head): each thread owns its dk, dv slices, so no two threads add into
// the same element.
template <class T>
void attention_backward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

// The textbook definition, for tests: per (b, h) the whole (T, T) score matrix, masked with
// -inf outside the legal keys, softmaxed row by row, times V.
template <class T>
void attention_forward_reference(const AttentionShape& s, int64_t window, const T* q, const T* k,
                                 const T* v, T* out);

}  // namespace swiattn::cpu
