#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>

namespace swiattn::cpu {

// Loops longer than this run on all OpenMP threads.
constexpr int64_t kParallelThreshold = 1 << 15;

// ---------------------------------------------------------------------------------------------
// Broadcasting

BroadcastPlan plan_broadcast(const char* op, const Shape& a, const Shape& b) {
  BroadcastPlan plan;
  const size_t n = std::max(a.size(), b.size());
  plan.out.assign(n, 1);
  std::vector<int64_t> ad(n, 1), bd(n, 1);  // a and b padded with leading 1s
  std::copy(a.begin(), a.end(), ad.begin() + (n - a.size()));
  std::copy(b.begin(), b.end(), bd.begin() + (n - b.size()));
  for (size_t d = 0; d < n; ++d) {
    if (ad[d] != bd[d] && ad[d] != 1 && bd[d] != 1)
      throw Error(std::string(op) + ": shapes cannot broadcast: " + shape_str(a) + " vs " + shape_str(b));
    plan.out[d] = ad[d] == 1 ? bd[d] : ad[d];
  }
  // Row-major strides of each padded input, zeroed where the input repeats.
  plan.a_stride.assign(n, 0);
  plan.b_stride.assign(n, 0);
  int64_t sa = 1, sb = 1;
  for (size_t d = n; d-- > 0;) {
    plan.a_stride[d] = ad[d] == 1 ? 0 : sa;
    plan.b_stride[d] = bd[d] == 1 ? 0 : sb;
    sa *= ad[d];
    sb *= bd[d];
  }
  plan.same_shape = (a == b);
  return plan;
}

// Calls f(i_out, i_a, i_b) for every output element, in row-major order (serial).
template <class F>
static void for_each_broadcast(const BroadcastPlan& plan, F&& f) {
  const size_t n = plan.out.size();
  const int64_t total = shape_numel(plan.out);
  std::vector<int64_t> index(n, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < total; ++i) {
    f(i, ia, ib);
    for (size_t d = n; d-- > 0;) {  // increment the multi-index, last dimension fastest
      ia += plan.a_stride[d];
      ib += plan.b_stride[d];
      if (++index[d] < plan.out[d]) break;
      ia -= plan.a_stride[d] * plan.out[d];
      ib -= plan.b_stride[d] * plan.out[d];
      index[d] = 0;
    }
  }
}

template <class T>
static inline T apply(BinaryKind kind, T a, T b) {
  switch (kind) {
    case BinaryKind::Add: return a + b;
    case BinaryKind::Sub: return a - b;
    case BinaryKind::Mul: return a * b;
  }
  return 0;
}

template <class T>
void binary_forward(BinaryKind kind, const BroadcastPlan& plan, const T* a, const T* b, T* out) {
  if (plan.same_shape) {
    const int64_t n = shape_numel(plan.out);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = apply(kind, a[i], b[i]);
    return;
  }
  for_each_broadcast(plan, [&](int64_t i, int64_t ia, int64_t ib) { out[i] = apply(kind, a[ia], b[ib]); });
}

template <class T>
void binary_backward(BinaryKind kind, const BroadcastPlan& plan, const T* a, const T* b,
                     const T* dout, T* da, T* db) {
  // d(out)/da and d(out)/db for one element.
  auto grad_a = [&](int64_t i, int64_t ib) { return kind == BinaryKind::Mul ? dout[i] * b[ib] : dout[i]; };
  auto grad_b = [&](int64_t i, int64_t ia) {
    if (kind == BinaryKind::Mul) return dout[i] * a[ia];
    return kind == BinaryKind::Sub ? -dout[i] : dout[i];
  };
  if (plan.same_shape) {
    const int64_t n = shape_numel(plan.out);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      if (da) da[i] += grad_a(i, i);
      if (db) db[i] += grad_b(i, i);
    }
    return;
  }
  for_each_broadcast(plan, [&](int64_t i, int64_t ia, int64_t ib) {
    if (da) da[ia] += grad_a(i, ib);
    if (db) db[ib] += grad_b(i, ia);
  });
}

// ---------------------------------------------------------------------------------------------
// Unary ops: each forward is followed by its backward.

template <class T> void scale_forward(int64_t n, T c, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = c * x[i];
}
template <class T> void scale_backward(int64_t n, T c, const T* dy, T* dx) {
  // y = c x  =>  dx += c dy
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] += c * dy[i];
}

template <class T> void sigmoid_forward(int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
}
template <class T> void sigmoid_backward(int64_t n, const T* y, const T* dy, T* dx) {
  // y = 1 / (1 + e^-x)  =>  dy/dx = y (1 - y)
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * y[i] * (T(1) - y[i]);
}

template <class T> void silu_forward(int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_scalar(x[i]);
}
template <class T> void silu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  // y = x s(x)  =>  dy/dx = s + x s (1 - s)
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid_scalar(x[i]);
    dx[i] += dy[i] * (s + x[i] * s * (T(1) - s));
  }
}

template <class T> void softplus_forward(int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = softplus_scalar(x[i]);
}
template <class T> void softplus_backward(int64_t n, const T* x, const T* dy, T* dx) {
  // y = log(1 + e^x)  =>  dy/dx = sigmoid(x)
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * sigmoid_scalar(x[i]);
}

template <class T> void swiglu_forward(int64_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * sigmoid_scalar(a[i]) * b[i];
}
template <class T>
void swiglu_backward(int64_t n, const T* a, const T* b, const T* dy, T* da, T* db) {
  // y = silu(a) b  =>  da += dy b silu'(a),  db += dy silu(a)
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid_scalar(a[i]);
    if (da) da[i] += dy[i] * b[i] * (s + a[i] * s * (T(1) - s));
    if (db) db[i] += dy[i] * a[i] * s;
  }
}

#define SWIATTN_INSTANTIATE(T)                                                                   \
  template void binary_forward<T>(BinaryKind, const BroadcastPlan&, const T*, const T*, T*);     \
  template void binary_backward<T>(BinaryKind, const BroadcastPlan&, const T*, const T*,         \
                                   const T*, T*, T*);                                            \
  template void scale_forward<T>(int64_t, T, const T*, T*);                                      \
  template void scale_backward<T>(int64_t, T, const T*, T*);                                     \
  template void sigmoid_forward<T>(int64_t, const T*, T*);                                       \
  template void sigmoid_backward<T>(int64_t, const T*, const T*, T*);                            \
  template void silu_forward<T>(int64_t, const T*, T*);                                          \
  template void silu_backward<T>(int64_t, const T*, const T*, T*);                               \
  template void softplus_forward<T>(int64_t, const T*, T*);                                      \
  template void softplus_backward<T>(int64_t, const T*, const T*, T*);                           \
  template void swiglu_forward<T>(int64_t, const T*, const T*, T*);                              \
  template void swiglu_backward<T>(int64_t, const T*, const T*, const T*, T*, T*);
SWIATTN_INSTANTIATE(float)
SWIATTN_INSTANTIATE(double)
#undef SWIATTN_INSTANTIATE

}  // namespace swiattn::cpu
