// kernels/cuda/elementwise.cu: broadcasting add / sub / mul, scale, sigmoid, SiLU, softplus and
// the SwiGLU product. One thread per element; float32 arithmetic whatever the storage type.
#include "kernels/cuda/elementwise.h"

#include <vector>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

// Numerically stable scalars, as in kernels/cpu/elementwise.h.
__device__ __forceinline__ float sigmoid_scalar(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}
__device__ __forceinline__ float softplus_scalar(float x) {  // log(1 + e^x)
  return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

// ---------------------------------------------------------------------------------------------
// Broadcasting: the CPU plan (output shape, per-dim strides of a and b, 0 where they repeat),
// copied into a struct passed by value; each thread turns its output index into ia and ib.

constexpr int kMaxDims = 8;
struct BroadcastIndex {
  int ndim;
  int64_t out[kMaxDims], a_stride[kMaxDims], b_stride[kMaxDims];
};

static BroadcastIndex broadcast_index(const char* op, const cpu::BroadcastPlan& plan) {
  if (plan.out.size() > size_t(kMaxDims))
    throw Error(std::string(op) + ": more than " + std::to_string(kMaxDims) + " dims are not supported on CUDA, shape " +
                shape_str(plan.out));
  BroadcastIndex ix{};
  ix.ndim = static_cast<int>(plan.out.size());
  for (int d = 0; d < ix.ndim; ++d) {
    ix.out[d] = plan.out[d];
    ix.a_stride[d] = plan.a_stride[d];
    ix.b_stride[d] = plan.b_stride[d];
  }
  return ix;
}

__device__ __forceinline__ void input_offsets(const BroadcastIndex& ix, int64_t i, int64_t& ia, int64_t& ib) {
  ia = 0;
  ib = 0;
  for (int d = ix.ndim - 1; d >= 0; --d) {  // last dimension fastest
    const int64_t k = i % ix.out[d];
    i /= ix.out[d];
    ia += k * ix.a_stride[d];
    ib += k * ix.b_stride[d];
  }
}

__device__ __forceinline__ float apply(cpu::BinaryKind kind, float a, float b) {
  switch (kind) {
    case cpu::BinaryKind::Add: return a + b;
    case cpu::BinaryKind::Sub: return a - b;
    case cpu::BinaryKind::Mul: return a * b;
  }
  return 0.0f;
}

template <class T>
__global__ void binary_forward_kernel(cpu::BinaryKind kind, BroadcastIndex ix, int64_t n, const T* a,
                                      const T* b, T* out) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    int64_t ia, ib;
    input_offsets(ix, i, ia, ib);
    out[i] = from_float<T>(apply(kind, to_float(a[ia]), to_float(b[ib])));
  }
}

void binary_forward(cpu::BinaryKind kind, const cpu::BroadcastPlan& plan, const Tensor& a,
                    const Tensor& b, const Tensor& out) {
  const BroadcastIndex ix = broadcast_index("binary op", plan);
  if (out.numel() == 0) return;
  dispatch(a.dtype(), "binary op", [&](auto zero) {
    using T = decltype(zero);
    binary_forward_kernel<<<grid_for(out.numel()), kThreads>>>(kind, ix, out.numel(), ptr<T>(a), ptr<T>(b), ptr<T>(out));
    SWIATTN_CUDA_CHECK_LAUNCH("binary_forward");
  });
}

// d out / d a and d out / d b at one output element (g = dout there). Only mul reads the other
// operand: add and sub keep neither (autograd/ops_elementwise.cpp), so a and b are null there.
template <class T>
__device__ __forceinline__ float grad_a(cpu::BinaryKind kind, float g, const T* b, int64_t ib) {
  return kind == cpu::BinaryKind::Mul ? g * to_float(b[ib]) : g;
}
template <class T>
__device__ __forceinline__ float grad_b(cpu::BinaryKind kind, float g, const T* a, int64_t ia) {
  return kind == cpu::BinaryKind::Mul ? g * to_float(a[ia]) : kind == cpu::BinaryKind::Sub ? -g : g;
}

// An input the size of the output owns one element per thread: plain += (da, db). When a and b
// are the same tensor (x * x), both += run in the same thread, one after the other.
template <class T>
__global__ void binary_backward_kernel(cpu::BinaryKind kind, BroadcastIndex ix, int64_t n, const T* a,
                                       const T* b, const T* dout, T* da, T* db) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    int64_t ia, ib;
    input_offsets(ix, i, ia, ib);
    const float g = to_float(dout[i]);
    if (da) add_to(da, ia, grad_a(kind, g, b, ib));
    if (db) add_to(db, ib, grad_b(kind, g, a, ia));
  }
}

// A repeated input x (a or b) gets many contributions per element; they are summed in a fixed
// order (no atomics: the same bits on every run). The output dims split into x's own ("kept":
// x's stride is not 0, or the dim is 1) and the repeated ones; element k of x (its kept digits)
// is read by the R output elements of the repeated digits r. Pass 1: a thread per (chunk of
// kRepeatChunk r's, k) sums its chunk in double; pass 2: a thread per k sums the chunks in order
// and adds into the gradient once.
constexpr int64_t kRepeatChunk = 64;
struct RepeatIndex {
  int kept_dims, repeat_dims;
  int64_t kept_size[kMaxDims], kept_out_stride[kMaxDims], kept_x_stride[kMaxDims];
  int64_t repeat_size[kMaxDims], repeat_out_stride[kMaxDims];
  int64_t K, R;  // elements of x, repeats per element
};

RepeatIndex repeat_index(const cpu::BroadcastPlan& plan, bool of_a) {
  RepeatIndex r{};
  const int nd = static_cast<int>(plan.out.size());
  std::vector<int64_t> out_stride(size_t(nd), 1);
  for (int d = nd - 1; d > 0; --d) out_stride[size_t(d - 1)] = out_stride[size_t(d)] * plan.out[size_t(d)];
  r.K = r.R = 1;
  for (int d = 0; d < nd; ++d) {
    const int64_t x_stride = of_a ? plan.a_stride[size_t(d)] : plan.b_stride[size_t(d)];
    if (x_stride == 0 && plan.out[size_t(d)] > 1) {
      r.repeat_size[r.repeat_dims] = plan.out[size_t(d)];
      r.repeat_out_stride[r.repeat_dims++] = out_stride[size_t(d)];
      r.R *= plan.out[size_t(d)];
    } else {
      r.kept_size[r.kept_dims] = plan.out[size_t(d)];
      r.kept_out_stride[r.kept_dims] = out_stride[size_t(d)];
      r.kept_x_stride[r.kept_dims++] = x_stride;
      r.K *= plan.out[size_t(d)];
    }
  }
  return r;
}

// The output index of (x element k, repeat r), and x's offset of k (digits: last dim fastest).
__device__ __forceinline__ int64_t repeat_output(const RepeatIndex& r, int64_t k, int64_t rep, int64_t* x_offset) {
  int64_t o = 0, xo = 0;
  for (int d = r.kept_dims - 1; d >= 0; --d) {
    const int64_t digit = k % r.kept_size[d];
    k /= r.kept_size[d];
    o += digit * r.kept_out_stride[d];
    xo += digit * r.kept_x_stride[d];
  }
  for (int d = r.repeat_dims - 1; d >= 0; --d) {
    o += (rep % r.repeat_size[d]) * r.repeat_out_stride[d];
    rep /= r.repeat_size[d];
  }
  if (x_offset) *x_offset = xo;
  return o;
}

template <class T>
__global__ void repeated_grad_partial_kernel(cpu::BinaryKind kind, BroadcastIndex ix, RepeatIndex r, bool of_a,
                                             int64_t chunks, const T* a, const T* b, const T* dout, double* partial) {
  SWIATTN_GRID_STRIDE_LOOP(idx, chunks * r.K) {
    const int64_t chunk = idx / r.K, k = idx % r.K;
    const int64_t end = min(r.R, (chunk + 1) * kRepeatChunk);
    double acc = 0.0;
    for (int64_t rep = chunk * kRepeatChunk; rep < end; ++rep) {
      const int64_t i = repeat_output(r, k, rep, nullptr);
      int64_t ia, ib;
      input_offsets(ix, i, ia, ib);
      const float g = to_float(dout[i]);
      acc += of_a ? grad_a(kind, g, b, ib) : grad_b(kind, g, a, ia);
    }
    partial[chunk * r.K + k] = acc;
  }
}

template <class T>
__global__ void repeated_grad_add_kernel(RepeatIndex r, int64_t chunks, const double* partial, T* dx) {
  SWIATTN_GRID_STRIDE_LOOP(k, r.K) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * r.K + k];
    int64_t xo;
    repeat_output(r, k, 0, &xo);
    dx[xo] = from_double<T>(double(to_float(dx[xo])) + sum);
  }
}

template <class T>
void repeated_grad(cpu::BinaryKind kind, const BroadcastIndex& ix, const cpu::BroadcastPlan& plan, bool of_a,
                   const Tensor& a, const Tensor& b, const Tensor& dout, const Tensor& dx) {
  const RepeatIndex r = repeat_index(plan, of_a);
  if (r.K == 0 || r.R == 0) return;
  const int64_t chunks = (r.R + kRepeatChunk - 1) / kRepeatChunk;
  const Tensor partial = Tensor::empty({chunks, r.K}, DType::F64, Device::CUDA);  // every element written
  repeated_grad_partial_kernel<<<grid_for(chunks * r.K), kThreads>>>(kind, ix, r, of_a, chunks, ptr<T>(a), ptr<T>(b),
                                                                     ptr<T>(dout), ptr<double>(partial));
  SWIATTN_CUDA_CHECK_LAUNCH("binary_backward_repeated");
  repeated_grad_add_kernel<<<grid_for(r.K), kThreads>>>(r, chunks, ptr<double>(partial), ptr<T>(dx));
  SWIATTN_CUDA_CHECK_LAUNCH("binary_backward_repeated_add");
}

void binary_backward(cpu::BinaryKind kind, const cpu::BroadcastPlan& plan, const Tensor& a,
                     const Tensor& b, const Tensor& dout, const Tensor& da, const Tensor& db) {
  const BroadcastIndex ix = broadcast_index("binary op", plan);
  const int64_t n = dout.numel();
  if (n == 0) return;
  // From the plan, not the operands (add and sub pass none): an input repeats along some output dim.
  const bool a_repeats = repeat_index(plan, true).R > 1, b_repeats = repeat_index(plan, false).R > 1;
  dispatch(dout.dtype(), "binary op", [&](auto zero) {
    using T = decltype(zero);
    const bool plain_a = da.defined() && !a_repeats, plain_b = db.defined() && !b_repeats;
    if (plain_a || plain_b) {
      binary_backward_kernel<<<grid_for(n), kThreads>>>(kind, ix, n, ptr<T>(a), ptr<T>(b), ptr<T>(dout),
                                                        plain_a ? ptr<T>(da) : nullptr, plain_b ? ptr<T>(db) : nullptr);
      SWIATTN_CUDA_CHECK_LAUNCH("binary_backward");
    }
    if (da.defined() && a_repeats) repeated_grad<T>(kind, ix, plan, true, a, b, dout, da);
    if (db.defined() && b_repeats) repeated_grad<T>(kind, ix, plan, false, a, b, dout, db);
  });
}

// ---------------------------------------------------------------------------------------------
// Unary ops: y = f(x), and dx += g(u, dy) where u is what the backward reads (x or y). Each
// functor below is one formula; the two kernels apply them to every element.

template <class T, class F> __global__ void map_kernel(int64_t n, F f, const T* x, T* y) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) y[i] = from_float<T>(f(to_float(x[i])));
}
template <class T, class G> __global__ void map_backward_kernel(int64_t n, G g, const T* u, const T* dy, T* dx) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) add_to(dx, i, g(to_float(u[i]), to_float(dy[i])));
}

template <class F> static void map(const char* name, F f, const Tensor& x, const Tensor& y) {
  if (x.numel() == 0) return;
  dispatch(x.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    map_kernel<<<grid_for(x.numel()), kThreads>>>(x.numel(), f, ptr<T>(x), ptr<T>(y));
    SWIATTN_CUDA_CHECK_LAUNCH(name);
  });
}
template <class G> static void map_backward(const char* name, G g, const Tensor& u, const Tensor& dy, const Tensor& dx) {
  if (dx.numel() == 0) return;
  dispatch(dx.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    map_backward_kernel<<<grid_for(dx.numel()), kThreads>>>(dx.numel(), g, ptr<T>(u), ptr<T>(dy), ptr<T>(dx));
    SWIATTN_CUDA_CHECK_LAUNCH(name);
  });
}

struct Scale {
  float c;
  __device__ float operator()(float x) const { return c * x; }
};
struct ScaleGrad {  // y = c x  =>  dx += c dy
  float c;
  __device__ float operator()(float, float dy) const { return c * dy; }
};
void scale_forward(double c, const Tensor& x, const Tensor& y) { map("scale_forward", Scale{float(c)}, x, y); }
void scale_backward(double c, const Tensor& dy, const Tensor& dx) {
  map_backward("scale_backward", ScaleGrad{float(c)}, dy, dy, dx);
}

struct Sigmoid {
  __device__ float operator()(float x) const { return sigmoid_scalar(x); }
};
struct SigmoidGrad {  // y = 1 / (1 + e^-x)  =>  dx += dy y (1 - y), y recomputed from x
  __device__ float operator()(float x, float dy) const {
    const float y = sigmoid_scalar(x);
    return dy * y * (1.0f - y);
  }
};
void sigmoid_forward(const Tensor& x, const Tensor& y) { map("sigmoid_forward", Sigmoid{}, x, y); }
void sigmoid_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  map_backward("sigmoid_backward", SigmoidGrad{}, x, dy, dx);
}

struct Silu {
  __device__ float operator()(float x) const { return x * sigmoid_scalar(x); }
};
struct SiluGrad {  // y = x s(x)  =>  dx += dy (s + x s (1 - s))
  __device__ float operator()(float x, float dy) const {
    const float s = sigmoid_scalar(x);
    return dy * (s + x * s * (1.0f - s));
  }
};
void silu_forward(const Tensor& x, const Tensor& y) { map("silu_forward", Silu{}, x, y); }
void silu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  map_backward("silu_backward", SiluGrad{}, x, dy, dx);
}

struct Softplus {
  __device__ float operator()(float x) const { return softplus_scalar(x); }
};
struct SoftplusGrad {  // y = log(1 + e^x)  =>  dx += dy sigmoid(x)
  __device__ float operator()(float x, float dy) const { return dy * sigmoid_scalar(x); }
};
void softplus_forward(const Tensor& x, const Tensor& y) { map("softplus_forward", Softplus{}, x, y); }
void softplus_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  map_backward("softplus_backward", SoftplusGrad{}, x, dy, dx);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU's gated product y = silu(a) b

template <class T> __global__ void swiglu_forward_kernel(int64_t n, const T* a, const T* b, T* y) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    const float x = to_float(a[i]);
    y[i] = from_float<T>(x * sigmoid_scalar(x) * to_float(b[i]));
  }
}

template <class T>
__global__ void swiglu_backward_kernel(int64_t n, const T* a, const T* b, const T* dy, T* da, T* db) {
  // y = silu(a) b  =>  da += dy b silu'(a),  db += dy silu(a)
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    const float x = to_float(a[i]), g = to_float(dy[i]);
    const float s = sigmoid_scalar(x);
    if (da) add_to(da, i, g * to_float(b[i]) * (s + x * s * (1.0f - s)));
    if (db) add_to(db, i, g * x * s);
  }
}

void swiglu_forward(const Tensor& a, const Tensor& b, const Tensor& y) {
  if (a.numel() == 0) return;
  dispatch(a.dtype(), "swiglu", [&](auto zero) {
    using T = decltype(zero);
    swiglu_forward_kernel<<<grid_for(a.numel()), kThreads>>>(a.numel(), ptr<T>(a), ptr<T>(b), ptr<T>(y));
    SWIATTN_CUDA_CHECK_LAUNCH("swiglu_forward");
  });
}

void swiglu_backward(const Tensor& a, const Tensor& b, const Tensor& dy, const Tensor& da, const Tensor& db) {
  if (a.numel() == 0) return;
  dispatch(a.dtype(), "swiglu", [&](auto zero) {
    using T = decltype(zero);
    swiglu_backward_kernel<<<grid_for(a.numel()), kThreads>>>(a.numel(), ptr<T>(a), ptr<T>(b), ptr<T>(dy),
                                                              ptr<T>(da), ptr<T>(db));
    SWIATTN_CUDA_CHECK_LAUNCH("swiglu_backward");
  });
}

}  // namespace swiattn::cuda
