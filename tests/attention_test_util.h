// tests/attention_test_util.h: what the attention-forward GPU tests share (test_cuda_flash.cpp,
// test_cuda_hopper.cpp): the CPU float64 reference of both branches, the bf16 error rule of
// docs/cuda.md, routes, host <-> device copies.
//
// Rule (flash-attention's): err = ||x - x64|| / ||x64||, and a bfloat16 result (or a float32
// branch output, which carries bf16-level error because P is rounded to bf16 before P V) passes
// when err <= 2 * err_ctrl + 1e-3, err_ctrl being the CPU float32 result rounded to bfloat16; a
// log-sum-exp (float32, no bf16 step) when err <= 1e-5.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/switch_attention.h"
#include "tensor/cuda/allocator.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn::testing {

struct PoisonNewBlocks {  // NaN in every fresh device block: unwritten outputs fail
  PoisonNewBlocks() { cuda::set_poison_new_blocks(true); }
  ~PoisonNewBlocks() { cuda::set_poison_new_blocks(false); }
};

inline double rel_error(const std::vector<double>& x, const std::vector<double>& ref) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - ref[i]) * (x[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0.0 ? std::sqrt(err / norm) : std::sqrt(err);  // NaN stays NaN: it fails
}
inline std::vector<double> rounded_bf16(const std::vector<double>& x) {
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = bf16_to_float(bf16_from_double(x[i]));
  return r;
}

// The CPU reference of one problem in type T: both branches and their lse (gate-free).
template <class T>
struct Reference {
  std::vector<T> o_full, o_swa, lse_full, lse_swa;
};
template <class T>
Reference<T> cpu_reference(const cpu::AttentionShape& s, int64_t w, const std::vector<double>& q,
                           const std::vector<double>& k, const std::vector<double>& v) {
  auto cast = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  const std::vector<T> qt = cast(q), kt = cast(k), vt = cast(v), gate(size_t(s.B * s.T), T(1));
  Reference<T> r;
  const size_t n = size_t(s.B * s.T * s.Hq);
  std::vector<T> out(n * s.D);
  r.o_full.resize(n * s.D), r.o_swa.resize(n * s.D), r.lse_full.resize(n), r.lse_swa.resize(n);
  cpu::switch_attention_forward<T>(s, w, qt.data(), kt.data(), vt.data(), gate.data(), true, out.data(),
                                   r.o_full.data(), r.o_swa.data(), r.lse_full.data(), r.lse_swa.data());
  return r;
}
// out = g O_FULL + (1 - g) O_SWA per token (Eq. 6), in double.
template <class T>
std::vector<double> mix(const cpu::AttentionShape& s, const std::vector<double>& g, const Reference<T>& r) {
  std::vector<double> out(r.o_full.size());
  const int64_t row = s.Hq * s.D;
  for (size_t i = 0; i < out.size(); ++i) {
    const double gt = g[i / row];
    out[i] = gt * double(r.o_full[i]) + (1 - gt) * double(r.o_swa[i]);
  }
  return out;
}
template <class T> std::vector<double> as_double(const std::vector<T>& x) { return {x.begin(), x.end()}; }

// Hard routes: each entry 1 with probability p_full.
inline std::vector<double> routes(int64_t n, double p_full, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> g(size_t(n), 0.0);
  for (auto& x : g) x = rng.uniform() < p_full ? 1.0 : 0.0;
  return g;
}

inline Tensor device_bf16(const std::vector<double>& x, const Shape& shape) {
  return Tensor::from_vector(x, shape, DType::F64).to(DType::BF16).to(Device::CUDA);
}
inline std::vector<double> host(const Tensor& t) { return t.to_vector(); }

}  // namespace swiattn::testing
