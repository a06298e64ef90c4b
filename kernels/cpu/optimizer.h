// kernels/cpu/optimizer.h: the optimizer's per-element arithmetic on the CPU: one AdamW step, the
// sum of squares behind the global gradient norm, the clipping scale, and the count of
// non-finite values. The reference of kernels/cuda/optimizer.h (tests/test_cuda_train.cpp holds
// the two together); train/optimizer.h states the algorithm around them.
#pragma once

#include <cstdint>

namespace swiattn::cpu {

// One AdamW step of n elements, per element in double, rounded to T once:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ((m / bias_correction1) / (sqrt(v / bias_correction2) + eps) + wd * p)
template <class T>
void adamw_step(int64_t n, T* p, const T* g, T* m, T* v, double lr, double b1, double b2, double eps, double wd,
                double bias_correction1, double bias_correction2);

// acc += sum_k g[k]^2, in double, in index order (a running total over several tensors).
template <class T>
void add_sum_of_squares(int64_t n, const T* g, double& acc);

// g *= factor, in double, rounded to T once (the clip of clip_grad_norm).
template <class T>
void scale_in_place(int64_t n, double factor, T* g);

// The number of NaN or infinite elements among n.
template <class T>
int64_t count_nonfinite(int64_t n, const T* x);

}  // namespace swiattn::cpu
