// kernels/cpu/switch_attention.h: both attention branches of a switch layer, and their mix.
//
// Layout as in attention.h: q (B, T, Hq, D); k, v (B, T, Hkv, D); gate (B, T); lse (B, T, Hq).
// For query t, with the window part [max(0, t-w+1), t] and the far part [0, t-w]:
//   O_SWA_t  = attention over the window part                          (spec §2)
//   O_FULL_t = attention over [0, t]                                    (spec §2)
//   out_t    = gate_t * O_FULL_t + (1 - gate_t) * O_SWA_t               (Eq. 6)
// The gate is the router's sigma_t = m_t + p_t - stopgrad(p_t): its value is the hard route m_t,
// its gradient is that of the surrogate c * O_FULL + (1 - c) * O_SWA in c (spec §4).
//
// One pass (spec §4, our method): each part is attended once, with its log-sum-exp l, and
//   O_FULL = (e^l_win O_win + e^l_far O_far) / (e^l_win + e^l_far),  l_full = log(e^l_win + e^l_far)
// so both branches cost one causal attention. The two-pass reference computes O_FULL and O_SWA
// by two separate attention calls; the tests hold the two to 1e-12 in float64.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace swiattn::cpu {

// Forward. Writes out, and for the backward o_full, o_swa (B, T, Hq, D), lse_full, lse_swa
// (B, T, Hq). With both_branches = false (inference), the far part is computed only for queries
// whose gate is 1; for the others o_full is left equal to o_swa (it is not needed).
template <class T>
void switch_attention_forward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                              const T* v, const T* gate, bool both_branches, T* out, T* o_full,
                              T* o_swa, T* lse_full, T* lse_swa);

// The two-pass reference: O_FULL and O_SWA by separate calls of attention_forward, then Eq. 6.
template <class T>
void switch_attention_forward_two_pass(const AttentionShape& s, int64_t window, const T* q,
                                       const T* k, const T* v, const T* gate, T* out, T* o_full,
                                       T* o_swa, T* lse_full, T* lse_swa);

// Backward of out = gate * O_FULL + (1 - gate) * O_SWA. Adds into dq, dk, dv, dgate:
//   dgate_t += sum over heads and dims of dout_t * (O_FULL_t - O_SWA_t)
//   O_FULL's attention gets gate * dout, O_SWA's gets (1 - gate) * dout.
// Through the merge, O_FULL's gradient is that of attention over [0, t] with lse_full, so each
// branch's backward is attend_range_backward over its own key range.
template <class T>
void switch_attention_backward(const AttentionShape& s, int64_t window, const T* q, const T* k,
                               const T* v, const T* gate, const T* o_full, const T* o_swa,
                               const T* lse_full, const T* lse_swa, const T* dout, T* dq, T* dk,
                               T* dv, T* dgate);

// ||O_FULL_t - O_SWA_t||^2 over all heads and dims, per token (B, T): Eq. 8's branch difference.
template <class T>
void branch_difference_sq(const AttentionShape& s, const T* o_full, const T* o_swa, T* diff_sq);

}  // namespace swiattn::cpu
