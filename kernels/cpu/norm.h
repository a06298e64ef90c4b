// kernels/cpu/norm.h: RMSNorm, RoPE and the embedding lookup: the per-row transforms of the
// model. Backward kernels add (+=) into the gradients they are given; null = not needed.
#pragma once

#include <cstdint>

namespace swiattn::cpu {

// RMSNorm over the last dim C of N rows: y = x / sqrt(mean(x^2) + eps) * gain.
// inv_rms (N) is saved for the backward.
template <class T>
void rms_norm_forward(int64_t N, int64_t C, double eps, const T* x, const T* gain, T* y, T* inv_rms);
template <class T>
void rms_norm_backward(int64_t N, int64_t C, const T* x, const T* gain, const T* inv_rms,
                       const T* dy, T* dx, T* dgain);

// Rotary position embedding on x (B, T, H, D), the half-split ("rotate half") convention:
// for i < D/2 the pair (x_i, x_{i+D/2}) of row b at time t sits at position
//   p = position_offset + row_positions[b] + t        (row_positions null: 0)
// and is rotated by the angle p * base^(-2i/D). row_positions (B) lets each row of a batch start
// at its own position (a decode step: row b is sequence b's next token). inverse = true rotates
// by the negative angle (that is the backward, since a rotation's transpose is its inverse):
// dx += R^T dy.
template <class T>
void rope_apply(int64_t B, int64_t T_, int64_t H, int64_t D, double base, int64_t position_offset,
                const int32_t* row_positions, const T* x, T* y, bool inverse, bool accumulate);

// Embedding lookup: out[n, :] = weight[ids[n], :] for n < N; weight is (V, C).
// Throws Error if an id is outside [0, V).
template <class T>
void embedding_forward(int64_t N, int64_t V, int64_t C, const int32_t* ids, const T* weight, T* out);
template <class T>
void embedding_backward(int64_t N, int64_t C, const int32_t* ids, const T* dout, T* dweight);

}  // namespace swiattn::cpu
