// kernels/cpu/softmax.h: softmax over the last dimension and the fused cross-entropy.
// Backward kernels add (+=) into the gradients they are given.
#pragma once

#include <cstdint>

namespace swiattn::cpu {

// y[n, :] = softmax(x[n, :]) for N rows of length C.
template <class T> void softmax_forward(int64_t N, int64_t C, const T* x, T* y);
template <class T> void softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx);

// Fused log-softmax + negative log-likelihood on logits (N, V) and targets (N).
// Rows whose target equals ignore_index are skipped. For the others:
//   nll[n] = logsumexp(logits[n, :]) - logits[n, target[n]]
// Writes nll (N; 0 for ignored rows) and lse (N) for the backward; returns the number of rows
// that count. Throws Error for a target outside [0, V) that is not ignore_index.
template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                              int32_t ignore_index, T* nll, T* lse);
// dlogits[n, :] += dnll[n] * (softmax(logits[n, :]) - onehot(target[n])) for rows that count.
template <class T>
void cross_entropy_backward(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                            int32_t ignore_index, const T* lse, const T* dnll, T* dlogits);

}  // namespace swiattn::cpu
