// tests/test_cuda_flash_backward.cpp: the tensor-core attention backward
// (kernels/cuda/flash_backward.{h,cu}) against the CPU float64 reference.
//
// Each case draws q, k, v, dout (and a gate) in float64, rounds them to bfloat16, and runs:
//   CPU float64 forward + backward (truth), CPU float32 (control), CUDA bfloat16 (the forward
//   that cuda::switch_attention_forward / attention_forward take, then the backward through the
//   wired entry points, which must take the flash path: flash_backward_supported is checked).
// For dq, dk, dv (and dgate), err = ||x - x64|| / ||x64||, and the rule of docs/cuda.md:
//   err_cuda <= 2 * err_ctrl16 + 1e-2, err_ctrl16 = err of the float32 result rounded to bf16.
// Sizes: T in {1, 3, 113, 1031}, w in {1, 64, w > T}, GQA 16/8 and 4/4, D 64 / 128, B = 2,
// gates hard 0/1 (P(1) = 0.13, 0.5) and real-valued. Without a device: SKIPPED lines.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/cuda_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/switch_attention.h"
#include "tensor/cuda/allocator.h"
#include "kernels/cuda/attention.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_backward.h"
#include "kernels/cuda/switch_attention.h"
#include "tensor/random.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

enum class Gate { None, HardLow, HardHalf, Real };  // hard: P(1) = 0.13 or 0.5
const char* gate_name(Gate g) {
  return g == Gate::None ? "none" : g == Gate::HardLow ? "hard r=0.13" : g == Gate::HardHalf ? "hard r=0.5" : "real";
}

struct Case {
  int64_t B, T, Hq, Hkv, D, window;
  Gate gate;
  bool complement = false;  // plain attention: the branch receives (1 - gate) dout
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " Hq/Hkv=" + std::to_string(Hq) + "/" +
           std::to_string(Hkv) + " D=" + std::to_string(D) + " w=" + std::to_string(window) + " gate " +
           gate_name(gate) + (complement ? " (1-g)" : "");
  }
};

// float64 values that are exactly bfloat16 numbers.
Tensor bf16_valued(const Shape& shape, uint64_t seed) {
  return Tensor::randn(shape, DType::F64, seed).to(DType::BF16).to(DType::F64);
}
Tensor gate_values(const Case& c, uint64_t seed) {
  std::vector<double> g(c.B * c.T);
  Rng rng(seed);
  for (double& x : g) {
    const double u = rng.uniform();
    x = c.gate == Gate::HardLow ? (u < 0.13) : c.gate == Gate::HardHalf ? (u < 0.5) : u;
  }
  return Tensor::from_vector(g, {c.B, c.T}, DType::F64).to(DType::BF16).to(DType::F64);
}

double rel_error(const Tensor& x, const Tensor& ref) {
  const std::vector<double> a = x.to_vector(), b = ref.to_vector();
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  if (norm == 0.0) return std::sqrt(err);  // an exactly zero truth (t < w: dgate): absolute
  return std::isfinite(err) ? std::sqrt(err / norm) : INFINITY;
}

// The control: (init + x) stored in bfloat16, minus init (what a bf16 gradient that started at
// init can hold of x).
Tensor stored_in_bf16(const Tensor& x, double init) {
  std::vector<double> v = x.to_vector();
  for (double& e : v) e += init;
  std::vector<double> r = Tensor::from_vector(v, x.shape(), DType::F64).to(DType::BF16).to(DType::F64).to_vector();
  for (double& e : r) e -= init;
  return Tensor::from_vector(r, x.shape(), DType::F64);
}

struct Grads {
  Tensor dq, dk, dv, dgate;  // float64 on the host
};

// The CPU forward + backward in T (double: truth, float: control).
template <class T>
Grads cpu_switch(const Case& c, const cpu::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& gate, const Tensor& dout) {
  const DType dt = std::is_same_v<T, double> ? DType::F64 : DType::F32;
  const Tensor qt = q.to(dt), kt = k.to(dt), vt = v.to(dt), gt = gate.to(dt), dot = dout.to(dt);
  const Tensor out = Tensor::empty(q.shape(), dt), of = Tensor::empty(q.shape(), dt), os = Tensor::empty(q.shape(), dt);
  const Tensor lf = Tensor::empty({c.B, c.T, c.Hq}, dt), ls = Tensor::empty({c.B, c.T, c.Hq}, dt);
  cpu::switch_attention_forward<T>(s, c.window, qt.data<T>(), kt.data<T>(), vt.data<T>(), gt.data<T>(), true,
                                   out.data<T>(), of.data<T>(), os.data<T>(), lf.data<T>(), ls.data<T>());
  Grads g{Tensor::zeros(q.shape(), dt), Tensor::zeros(k.shape(), dt), Tensor::zeros(v.shape(), dt),
          Tensor::zeros(gate.shape(), dt)};
  cpu::switch_attention_backward<T>(s, c.window, qt.data<T>(), kt.data<T>(), vt.data<T>(), gt.data<T>(),
                                    of.data<T>(), os.data<T>(), lf.data<T>(), ls.data<T>(), dot.data<T>(),
                                    g.dq.data<T>(), g.dk.data<T>(), g.dv.data<T>(), g.dgate.data<T>());
  return {g.dq.to(DType::F64), g.dk.to(DType::F64), g.dv.to(DType::F64), g.dgate.to(DType::F64)};
}

// Plain attention: the branch's output gradient is w_t dout_t (w = 1, gate or 1 - gate).
template <class T>
Grads cpu_attention(const Case& c, const cpu::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                    const Tensor& gate, const Tensor& dout) {
  const DType dt = std::is_same_v<T, double> ? DType::F64 : DType::F32;
  std::vector<double> wd = dout.to_vector();
  if (c.gate != Gate::None) {
    const std::vector<double> g = gate.to_vector();
    for (size_t i = 0; i < wd.size(); ++i) {
      const double gt = g[i / (c.Hq * c.D)];
      wd[i] *= c.complement ? 1.0 - gt : gt;
    }
  }
  const Tensor qt = q.to(dt), kt = k.to(dt), vt = v.to(dt), dot = Tensor::from_vector(wd, dout.shape(), dt);
  const Tensor out = Tensor::empty(q.shape(), dt), lse = Tensor::empty({c.B, c.T, c.Hq}, dt);
  cpu::attention_forward<T>(s, c.window, qt.data<T>(), kt.data<T>(), vt.data<T>(), out.data<T>(), lse.data<T>());
  Grads g{Tensor::zeros(q.shape(), dt), Tensor::zeros(k.shape(), dt), Tensor::zeros(v.shape(), dt), Tensor()};
  cpu::attention_backward<T>(s, c.window, qt.data<T>(), kt.data<T>(), vt.data<T>(), out.data<T>(), lse.data<T>(),
                             dot.data<T>(), g.dq.data<T>(), g.dk.data<T>(), g.dv.data<T>());
  return {g.dq.to(DType::F64), g.dk.to(DType::F64), g.dv.to(DType::F64), Tensor()};
}

// The CUDA bfloat16 forward, then the backward through the wired entry point. `init` is added
// to every gradient before the call (backward functions add).
Grads cuda_run(const Case& c, bool switch_op, const cpu::AttentionShape& s, const Tensor& q, const Tensor& k,
               const Tensor& v, const Tensor& gate, const Tensor& dout, double init) {
  auto dev = [](const Tensor& t) { return t.to(DType::BF16).to(Device::CUDA); };
  const Tensor qd = dev(q), kd = dev(k), vd = dev(v), gd = dev(gate), dod = dev(dout);
  REQUIRE(cuda::flash_backward_supported(s, qd, kd, vd, dod));
  auto grad = [&](const Tensor& like) {
    Tensor t = Tensor::full(like.shape(), init, DType::BF16).to(Device::CUDA);
    return t;
  };
  Grads g{grad(q), grad(k), grad(v), switch_op ? grad(gate) : Tensor()};
  const Shape rows{c.B, c.T, c.Hq};
  if (switch_op) {
    const Tensor out = Tensor::empty(q.shape(), DType::BF16, Device::CUDA);
    const Tensor of = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
    const Tensor os = Tensor::empty(q.shape(), DType::F32, Device::CUDA);
    const Tensor lf = Tensor::empty(rows, DType::F32, Device::CUDA), ls = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::switch_attention_forward(s, c.window, qd, kd, vd, gd, true, out, of, os, lf, ls);
    cuda::switch_attention_backward(s, c.window, qd, kd, vd, gd, of, os, lf, ls, dod, g.dq, g.dk, g.dv, g.dgate);
  } else {
    // out in float32 for the complement rows, bfloat16 otherwise (both dtypes are accepted)
    const Tensor out = Tensor::empty(q.shape(), c.complement ? DType::F32 : DType::BF16, Device::CUDA);
    const Tensor lse = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::attention_forward(s, c.window, qd, kd, vd, out, lse);
    cuda::attention_backward(s, c.window, qd, kd, vd, out, lse, dod, c.gate == Gate::None ? Tensor() : gd,
                             c.complement, g.dq, g.dk, g.dv);
  }
  auto host = [&](const Tensor& t) {
    if (!t.defined()) return Tensor();
    std::vector<double> x = t.to_host().to(DType::F64).to_vector();
    for (double& e : x) e -= init;
    return Tensor::from_vector(x, t.shape(), DType::F64);
  };
  return {host(g.dq), host(g.dk), host(g.dv), host(g.dgate)};
}

void check_case(const Case& c, bool switch_op, uint64_t seed, double init = 0.0) {
  const cpu::AttentionShape s{c.B, c.T, c.Hq, c.Hkv, c.D};
  const Tensor q = bf16_valued({c.B, c.T, c.Hq, c.D}, seed), k = bf16_valued({c.B, c.T, c.Hkv, c.D}, seed + 1);
  const Tensor v = bf16_valued({c.B, c.T, c.Hkv, c.D}, seed + 2), dout = bf16_valued({c.B, c.T, c.Hq, c.D}, seed + 3);
  const Tensor gate = gate_values(c, seed + 4);
  const Grads truth =
      switch_op ? cpu_switch<double>(c, s, q, k, v, gate, dout) : cpu_attention<double>(c, s, q, k, v, gate, dout);
  const Grads ctrl =
      switch_op ? cpu_switch<float>(c, s, q, k, v, gate, dout) : cpu_attention<float>(c, s, q, k, v, gate, dout);
  const Grads gpu = cuda_run(c, switch_op, s, q, k, v, gate, dout, init);
  const char* names[] = {"dq", "dk", "dv", "dgate"};
  const Tensor* t[] = {&truth.dq, &truth.dk, &truth.dv, &truth.dgate};
  const Tensor* r[] = {&ctrl.dq, &ctrl.dk, &ctrl.dv, &ctrl.dgate};
  const Tensor* x[] = {&gpu.dq, &gpu.dk, &gpu.dv, &gpu.dgate};
  for (int i = 0; i < 4; ++i) {
    if (!t[i]->defined()) continue;
    const double e16 = rel_error(*x[i], *t[i]);
    const double ctrl16 = rel_error(stored_in_bf16(*r[i], init), *t[i]);
    const double bound = 2 * ctrl16 + 1e-2;
    const std::string what = std::string(switch_op ? "switch " : "attention ") + c.name() +
                             " init=" + std::to_string(init) + ": " + names[i] + " err " + std::to_string(e16) +
                             " ctrl " + std::to_string(ctrl16) + " bound " + std::to_string(bound);
    INFO(what);
    MESSAGE(what);
    CHECK(e16 <= bound);
  }
}

}  // namespace

TEST_CASE("cuda flash backward: small switch and attention (sanitizer size)") {
  if (skip_without_device("flash backward, small sizes")) return;
  StrictDevice strict;
  check_case({2, 3, 4, 4, 64, 1, Gate::HardHalf}, true, 11);
  check_case({2, 113, 16, 8, 128, 64, Gate::Real}, true, 12);
  check_case({2, 113, 4, 4, 64, 64, Gate::None}, false, 13);
  check_case({1, 70, 4, 4, 128, 0, Gate::Real, true}, false, 14);
}

TEST_CASE("cuda flash backward: switch attention against the CPU float64 reference") {
  if (skip_without_device("flash switch attention backward")) return;
  StrictDevice strict;
  const std::vector<Case> cases = {
      {2, 1, 4, 4, 64, 64, Gate::Real},         {2, 3, 16, 8, 128, 1, Gate::HardHalf},
      {2, 113, 4, 4, 64, 1, Gate::HardLow},     {2, 113, 16, 8, 128, 64, Gate::Real},
      {2, 113, 16, 8, 64, 200, Gate::HardHalf}, {2, 1031, 16, 8, 128, 64, Gate::HardLow},
      {2, 1031, 4, 4, 64, 64, Gate::Real},      {2, 1031, 4, 4, 128, 2000, Gate::HardHalf},
      {2, 1031, 16, 8, 64, 1, Gate::Real},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) check_case(c, true, seed += 10);
}

TEST_CASE("cuda flash backward: plain attention (g = 1, gated, complement)") {
  if (skip_without_device("flash attention backward")) return;
  StrictDevice strict;
  const std::vector<Case> cases = {
      {2, 1031, 16, 8, 128, 0, Gate::None},       {2, 113, 4, 4, 64, 64, Gate::Real, true},
      {2, 3, 16, 8, 64, 1, Gate::HardHalf},       {2, 1031, 4, 4, 64, 100, Gate::None},
      {2, 113, 16, 8, 128, 500, Gate::HardLow},
  };
  uint64_t seed = 500;
  for (const Case& c : cases) check_case(c, false, seed += 10);
}

TEST_CASE("cuda flash backward: gradients are added, not overwritten") {
  if (skip_without_device("flash backward accumulation")) return;
  StrictDevice strict;
  check_case({2, 113, 16, 8, 64, 64, Gate::Real}, true, 900, 0.5);
  check_case({2, 113, 4, 4, 128, 0, Gate::None}, false, 910, -0.25);
}

TEST_CASE("cuda flash backward: deterministic mode (fixed-order dq) against the CPU float64 reference") {
  if (skip_without_device("flash backward, deterministic mode")) return;
  StrictDevice strict;
  struct Deterministic {
    Deterministic() { cuda::set_deterministic(true); }
    ~Deterministic() { cuda::set_deterministic(false); }
  } on;
  // Splits per (batch, kv head) = min(ceil(SMs / (B Hkv)), 16, key tiles): T 2500 has 20 key tiles,
  // so with B Hkv = 2 some splits walk 2 of them; B Hkv = 16 (T 1031, 9 key tiles): 9 splits; T 3
  // one tile, one split.
  const std::vector<Case> cases = {
      {1, 2500, 4, 2, 64, 128, Gate::HardLow}, {1, 2500, 8, 2, 128, 0, Gate::None},
      {2, 1031, 16, 8, 128, 64, Gate::Real},   {2, 3, 4, 2, 64, 1, Gate::HardHalf},
  };
  uint64_t seed = 1200;
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], cases[i].gate != Gate::None, seed += 10);
  check_case({2, 113, 4, 4, 64, 0, Gate::None}, false, 1300, 0.5);  // added, not overwritten
}

TEST_CASE("cuda flash backward: unsupported shapes are refused with a clear message") {
  if (skip_without_device("flash backward refusals")) return;
  const cpu::AttentionShape s{1, 5, 4, 4, 32};
  const Tensor q = Tensor::zeros({1, 5, 4, 32}, DType::BF16, Device::CUDA);
  CHECK_FALSE(cuda::flash_backward_supported(s, q, q, q, q));
  std::string msg;
  try {
    cuda::flash_attention_backward(s, 0, q, q, q, q, Tensor::zeros({1, 5, 4}, DType::F32, Device::CUDA), q,
                                   Tensor(), false, q, q, q);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("D in {64, 128}") != std::string::npos);
}

}  // namespace swiattn
