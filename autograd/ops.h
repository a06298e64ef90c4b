// autograd/ops.h: every differentiable op, with the shapes it takes and returns.
//
// Shape legend: B batch, T time, C channels (d_model), H query heads, Hkv key/value heads,
// D head dim, V vocabulary, N rows (any leading dims flattened), W window.
// Each op is defined in autograd/ops_<family>.cpp, forward first, its backward right below.
// All float inputs of one op share a dtype (float32 or float64); index inputs are int32 Tensors.
#pragma once

#include <cstdint>

#include "autograd/autograd.h"

namespace swiattn {

// ---- ops_matmul.cpp ----
// (..., M, K) x (..., K, N) -> (..., M, N). The transposes apply to the last two dims of the
// stored operand. b may be 2-D (K, N) and is then shared by every batch entry (a linear layer:
// x (B, T, C_in) times W (C_out, C_in) with transpose_b).
Var matmul(const Var& a, const Var& b, bool transpose_a = false, bool transpose_b = false);

// ---- ops_elementwise.cpp ----
// Binary ops broadcast like numpy: (B, T, C) with (C), (B, T, 1), () or the same shape.
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& x, double c);          // c * x
Var sigmoid(const Var& x);                  // 1 / (1 + e^-x)
Var silu(const Var& x);                     // x * sigmoid(x)
Var softplus(const Var& x);                 // log(1 + e^x)
Var swiglu(const Var& a, const Var& b);     // silu(a) * b, a and b the same shape

// ---- ops_reduce.cpp ----
Var sum(const Var& x);   // all elements -> () scalar
Var mean(const Var& x);  // all elements -> () scalar

// ---- ops_shape.cpp ----
Var reshape(const Var& x, const Shape& shape);   // a view: shares storage with x
Var transpose(const Var& x, int dim0, int dim1); // a contiguous copy with two dims swapped
Var stop_gradient(const Var& x);                 // same value, no gradient flows back through it
// The same values in another dtype (float32, float64, bfloat16; one rounding), on x's device.
// Its gradient flows back converted to x's dtype: mixed precision keeps float32 master weights
// and computes on cast(w, bfloat16) copies whose gradients land, in float32, on the masters.
Var cast(const Var& x, DType dtype);
// (B, T, H * D) -> (B, T, H, D) and back: the heads layout the attention op reads.
Var split_heads(const Var& x, int64_t heads);
Var merge_heads(const Var& x);

// ---- ops_norm.cpp ----
Var embedding(const Var& weight /* (V, C) */, const Tensor& ids /* (B, T) int32 */);  // (B, T, C)
Var rms_norm(const Var& x /* (..., C) */, const Var& gain /* (C) */, double eps);      // (..., C)
// Rotary embedding of x (B, T, H, D) at positions position_offset + row_positions[b] + t; D even.
// row_positions: undefined (all 0), or (B) int32 on x's device: where each row of the batch
// starts (a decode step feeds sequence b's next token at position length(b): model/decode.h).
Var rope(const Var& x, double base, int64_t position_offset = 0, const Tensor& row_positions = Tensor());

// ---- ops_loss.cpp ----
Var softmax(const Var& x);  // over the last dim
// Mean over counted rows of -log softmax(logits)[target]; logits (N, V), targets (N) int32.
// Rows with target == ignore_index do not count (all ignored: the loss is 0). If per_token_nll
// is given it receives the (N) per-row losses (0 for ignored rows), detached from the graph.
Var cross_entropy(const Var& logits, const Tensor& targets, int32_t ignore_index = -100,
                  Tensor* per_token_nll = nullptr);

// ---- ops_attention.cpp ----
// Causal attention, grouped-query, optional sliding window (spec §2): q (B, T, H, D),
// k and v (B, T, Hkv, D) -> (B, T, H, D). window = 0: full causal; window = w >= 1: each query
// reads exactly the w most recent keys, itself included (fewer when t < w).
Var attention(const Var& q, const Var& k, const Var& v, int64_t window);

// Switch attention (spec §4, Eq. 4-6): both branches from one q, k, v, mixed per token by the
// router's gate (B, T) (one route per token, shared by all heads):
//   out_t = gate_t * O_FULL_t + (1 - gate_t) * O_SWA_t            (B, T, H, D)
// O_FULL attends to keys [0, t], O_SWA to the window [max(0, t-w+1), t]. The gate's gradient is
// sum over heads and dims of dout_t * (O_FULL_t - O_SWA_t). With branch_diff_sq given, it
// receives ||O_FULL_t - O_SWA_t||^2 per token (B, T), detached (Eq. 8 needs it).
// Without gradients and without branch_diff_sq, SWA-routed queries (gate 0) skip the far keys.
enum class SwitchMethod { OnePass, TwoPassReference };
Var switch_attention(const Var& q, const Var& k, const Var& v, int64_t window, const Var& gate,
                     Tensor* branch_diff_sq = nullptr, SwitchMethod method = SwitchMethod::OnePass);

}  // namespace swiattn
