// kernels/cuda/optimizer.cu: AdamW, gradient norm and clipping, non-finite counts (optimizer.h).
#include "kernels/cuda/optimizer.h"

#include <algorithm>

#include "tensor/cuda/common.cuh"

namespace swiattn::cuda {

namespace {

void check_cuda_tensor(const char* op, const Tensor& t, DType dtype) {
  if (t.device() != Device::CUDA || t.dtype() != dtype)
    throw Error(std::string(op) + ": expected a " + dtype_name(dtype) + " CUDA tensor, got " + dtype_name(t.dtype()) +
                " " + shape_str(t.shape()) + " on " + device_name(t.device()));
}

}  // namespace

// ---- AdamW ----

__global__ void adamw_kernel(int64_t n, float* p, const float* g, float* m, float* v, double lr, double b1,
                             double b2, double eps, double wd, double bc1, double bc2) {
  SWIATTN_GRID_STRIDE_LOOP(k, n) {
    const double gk = g[k];
    const double mk = b1 * m[k] + (1.0 - b1) * gk;       // m = b1 m + (1 - b1) g
    const double vk = b2 * v[k] + (1.0 - b2) * gk * gk;  // v = b2 v + (1 - b2) g^2
    const double mhat = mk / bc1;
    const double vhat = vk / bc2;
    const double pk = p[k];
    p[k] = static_cast<float>(pk - lr * (mhat / (sqrt(vhat) + eps) + wd * pk));  // p -= lr (...)
    m[k] = static_cast<float>(mk);
    v[k] = static_cast<float>(vk);
  }
}

void adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr, double b1, double b2,
                double eps, double wd, double bias_correction1, double bias_correction2) {
  for (const Tensor* t : {&p, &g, &m, &v}) {
    check_cuda_tensor("adamw_step", *t, DType::F32);
    check_same_shape("adamw_step", p, *t);
  }
  const int64_t n = p.numel();
  if (n == 0) return;
  adamw_kernel<<<grid_for(n), kThreads>>>(n, ptr<float>(p), ptr<float>(g), ptr<float>(m), ptr<float>(v), lr, b1, b2,
                                          eps, wd, bias_correction1, bias_correction2);
  SWIATTN_CUDA_CHECK_LAUNCH("adamw");
}

// ---- gradient norm and clipping ----

// Pass 1: block b squares and sums its own contiguous chunk of g; pass 2: one block adds the
// blocks' sums in block order. A fixed partition and a fixed order, no atomics: the same bits on
// every run. (One block over the whole tensor, as before, took 1.3 ms of an 8 ms training step
// for 46 small gradients: a single SM per tensor.)
constexpr int kNormThreads = 256;
constexpr int64_t kNormChunk = 8192;       // elements per block in pass 1, at least
constexpr int64_t kNormMaxBlocks = 1024;   // pass 2 adds at most this many partial sums

template <class T> __global__ void sum_of_squares_kernel(int64_t n, int64_t chunk, const T* g, double* partial) {
  const int64_t begin = int64_t(blockIdx.x) * chunk, end = min(n, begin + chunk);
  double acc = 0.0;
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
    const double x = to_float(g[k]);
    acc += x * x;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void add_partial_sums_kernel(int64_t count, const double* partial, double* out) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = acc;
}

void sum_of_squares(const Tensor& g, const Tensor& sums, int64_t slot) {
  check_cuda_tensor("sum_of_squares", sums, DType::F64);
  if (slot < 0 || slot >= sums.numel())
    throw Error("sum_of_squares: slot " + std::to_string(slot) + " out of range for " + shape_str(sums.shape()));
  if (g.device() != Device::CUDA) throw Error("sum_of_squares: the gradient is not on cuda");
  const int64_t n = g.numel();
  const int64_t chunk = std::max(kNormChunk, (n + kNormMaxBlocks - 1) / kNormMaxBlocks);
  const int64_t blocks = std::max<int64_t>(1, (n + chunk - 1) / chunk);
  double* out = ptr<double>(sums) + slot;
  // One block writes the sum itself; more write partial sums that pass 2 adds.
  const Tensor partial = blocks > 1 ? Tensor::empty({blocks}, DType::F64, Device::CUDA) : Tensor();
  dispatch(g.dtype(), "sum_of_squares", [&](auto zero) {
    using T = decltype(zero);
    sum_of_squares_kernel<<<unsigned(blocks), kNormThreads>>>(n, chunk, ptr<T>(g), blocks > 1 ? ptr<double>(partial) : out);
    SWIATTN_CUDA_CHECK_LAUNCH("sum_of_squares");
  });
  if (blocks > 1) {
    add_partial_sums_kernel<<<1, kNormThreads>>>(blocks, ptr<double>(partial), out);
    SWIATTN_CUDA_CHECK_LAUNCH("sum_of_squares (partial sums)");
  }
}

__global__ void norm_factor_kernel(int64_t slots, const double* sums, double max_norm, double* out) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < slots; i += blockDim.x) acc += sums[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) {
    const double norm = sqrt(acc);
    out[0] = norm;
    out[1] = (max_norm > 0 && isfinite(norm) && norm > max_norm) ? max_norm / norm : 1.0;  // g *= max / norm
  }
}

void grad_norm_and_clip_factor(const Tensor& sums, double max_norm, const Tensor& norm_and_factor) {
  check_cuda_tensor("grad_norm_and_clip_factor", sums, DType::F64);
  check_cuda_tensor("grad_norm_and_clip_factor", norm_and_factor, DType::F64);
  if (norm_and_factor.numel() != 2) throw Error("grad_norm_and_clip_factor: norm_and_factor must have 2 elements");
  norm_factor_kernel<<<1, kThreads>>>(sums.numel(), ptr<double>(sums), max_norm, ptr<double>(norm_and_factor));
  SWIATTN_CUDA_CHECK_LAUNCH("grad_norm_and_clip_factor");
}

template <class T> __global__ void scale_by_factor_kernel(int64_t n, T* g, const double* norm_and_factor) {
  const double factor = norm_and_factor[1];
  if (factor == 1.0) return;
  SWIATTN_GRID_STRIDE_LOOP(k, n) g[k] = from_double<T>(static_cast<double>(to_float(g[k])) * factor);
}

void scale_by_clip_factor(const Tensor& g, const Tensor& norm_and_factor) {
  check_cuda_tensor("scale_by_clip_factor", norm_and_factor, DType::F64);
  if (g.numel() == 0) return;
  dispatch(g.dtype(), "scale_by_clip_factor", [&](auto zero) {
    using T = decltype(zero);
    scale_by_factor_kernel<<<grid_for(g.numel()), kThreads>>>(g.numel(), ptr<T>(g), ptr<double>(norm_and_factor));
    SWIATTN_CUDA_CHECK_LAUNCH("scale_by_clip_factor");
  });
}

// ---- non-finite counts ----

// A training step checks about 100 tensors (weights, layer outputs, logits, loss, gradients);
// a launch each cost 0.32 ms of a 6.5 ms step, so up to kCountTensors of them go in one launch,
// described in its parameters (nothing to copy to the device first). blockIdx.y picks the tensor.
constexpr int kCountTensors = 32;
struct CountList {
  const void* data[kCountTensors];
  int64_t numel[kCountTensors];
  int32_t slot[kCountTensors];  // where its count goes in `counts`
  bool bf16[kCountTensors];     // else float32
};

__global__ void count_nonfinite_kernel(CountList list, int32_t* counts) {
  const int e = blockIdx.y;
  int32_t c = 0;
  SWIATTN_GRID_STRIDE_LOOP(i, list.numel[e]) {
    const float x = list.bf16[e] ? to_float(static_cast<const bf16*>(list.data[e])[i])
                                 : static_cast<const float*>(list.data[e])[i];
    c += isfinite(x) ? 0 : 1;
  }
  c = block_sum(c);
  if (threadIdx.x == 0 && c) atomicAdd(counts + list.slot[e], c);  // integers: any order, same sum
}

// counts[first_slot + i] += the count of xs[i].
static void count_nonfinite_from(const std::vector<Tensor>& xs, int64_t first_slot, const Tensor& counts) {
  check_cuda_tensor("count_nonfinite", counts, DType::I32);
  if (first_slot < 0 || first_slot + static_cast<int64_t>(xs.size()) > counts.numel())
    throw Error("count_nonfinite: slot " + std::to_string(first_slot) +
                (xs.size() == 1 ? "" : " and the " + std::to_string(xs.size() - 1) + " after it") +
                " out of range for " + shape_str(counts.shape()));
  for (size_t first = 0; first < xs.size(); first += kCountTensors) {
    CountList list{};
    int entries = 0;
    int64_t largest = 0;
    for (size_t i = first; i < std::min(xs.size(), first + kCountTensors); ++i) {
      const Tensor& x = xs[i];
      if (x.device() != Device::CUDA) throw Error("count_nonfinite: the tensor is not on cuda");
      if (x.dtype() != DType::F32 && x.dtype() != DType::BF16)
        throw Error(std::string("count_nonfinite: float32 or bfloat16 on cuda, got ") + dtype_name(x.dtype()));
      if (x.numel() == 0) continue;
      list.data[entries] = x.raw();
      list.numel[entries] = x.numel();
      list.slot[entries] = static_cast<int32_t>(first_slot + static_cast<int64_t>(i));
      list.bf16[entries] = x.dtype() == DType::BF16;
      largest = std::max(largest, x.numel());
      ++entries;
    }
    if (entries == 0) continue;
    const dim3 grid(std::min(grid_for(largest), 512u), unsigned(entries));  // short tensors: idle blocks exit at once
    count_nonfinite_kernel<<<grid, kThreads>>>(list, ptr<int32_t>(counts));
    SWIATTN_CUDA_CHECK_LAUNCH("count_nonfinite");
  }
}

void count_nonfinite(const Tensor& x, const Tensor& counts, int64_t slot) { count_nonfinite_from({x}, slot, counts); }
void count_nonfinite_each(const std::vector<Tensor>& xs, const Tensor& counts) { count_nonfinite_from(xs, 0, counts); }

}  // namespace swiattn::cuda
