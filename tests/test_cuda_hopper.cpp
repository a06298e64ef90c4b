// tests/test_cuda_hopper.cpp: the Hopper attention forward (kernels/cuda/hopper_attention.cu)
// against the CPU float64 reference and against the sm_80 kernel it replaces (flash_attention.cu),
// variant by variant, through the public entry points with the kernel family forced
// (cuda::set_flash_kernel):
//   plain causal and windowed (bf16 out + lse, float32 out), the one-pass switch forward (hard
//   gate r = 0.13, real gate, one branch), routed prefill (routes all 0, all 1, r = 0.13).
// Checks: each output of the Hopper kernel by the bf16 rule of tests/attention_test_util.h
// (err <= 2 err_ctrl + 1e-3; lse <= 1e-5); and no less accurate than the sm_80 kernel on the same
// inputs (err <= 1.25 err_sm80 + 1e-4; lse <= 2 err_sm80 + 1e-6).
// A whole-tensor norm can hide one wrong tile, so the large case also runs with V = key-band
// indicators (v[j][d] = 1 when d = j / band): column d of the output is then the attention mass a
// row puts on key band d, and errors are reported and checked per key band (distance band) and
// per 128-row query tile.
// Every check prints one line ("HOPPER-CHECK ..."; scripts/gpu/hopper-check.sh tabulates them)
// with the largest element error and the first element off by more than 1e-2 + 1e-2 |truth|;
// a "HOPPER-START" line before each variant names it in case it hangs or crashes. Outputs are
// NaN-poisoned and every launch is synchronised (StrictDevice), so a fault names its kernel.
// Sizes: T 1, 3, 113, 127, 129, 200, 385, 1000, 4099; w 1, 64, 100, 128, 1000 (= T), 1024, > T;
// GQA 16/8, 4/2, 8/8; D 64 and 128; B 1, 2, 3.
// Without a device, or where the Hopper kernel cannot run, each case prints a SKIPPED line.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_attention.h"
#include "tests/attention_test_util.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

using namespace testing;

struct UseKernel {  // the kernel family for the life of the object
  cuda::FlashKernel before;
  explicit UseKernel(cuda::FlashKernel k) : before(cuda::flash_kernel()) { cuda::set_flash_kernel(k); }
  ~UseKernel() { cuda::set_flash_kernel(before); }
};

bool skip_without_hopper(const std::string& what) {
  if (skip_without_device(what)) return true;
  if (cuda::hopper_kernel_available()) return false;
  const std::string line = "SKIPPED (no Hopper kernel here: " + cuda::hopper_kernel_status() + "): " + what;
  MESSAGE(line);
  return true;
}

// Where an element error sits: the first bad element and the largest error, as (b, t, h, d).
std::string where(size_t i, const std::vector<int64_t>& dims) {
  std::vector<int64_t> at(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    at[k] = int64_t(i) % dims[k];
    i /= size_t(dims[k]);
  }
  std::string s = "(";
  for (size_t k = 0; k < at.size(); ++k) s += (k ? "," : "") + std::to_string(at[k]);
  return s + ")";
}

struct Problem {
  int64_t B, T, Hq, Hkv, D, w;
  std::string name() const {
    return "B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(Hq) + "/" +
           std::to_string(Hkv) + " D" + std::to_string(D) + " w" + std::to_string(w);
  }
  cpu::AttentionShape shape() const { return {B, T, Hq, Hkv, D}; }
};

// One output of one variant: the Hopper result against the truth, its control and the sm_80 result.
void compare(const Problem& pr, const std::string& what, const std::vector<double>& hopper,
             const std::vector<double>& sm80, const std::vector<double>& truth, const std::vector<double>* control32) {
  const bool lse = control32 == nullptr;
  const std::vector<int64_t> dims = lse ? std::vector<int64_t>{pr.B, pr.T, pr.Hq}
                                        : std::vector<int64_t>{pr.B, pr.T, pr.Hq, pr.D};
  const double err = rel_error(hopper, truth), err80 = rel_error(sm80, truth);
  const double ctrl = lse ? 0.0 : rel_error(rounded_bf16(*control32), truth);
  const double bound = lse ? 1e-5 : 2 * ctrl + 1e-3, bound80 = lse ? 2 * err80 + 1e-6 : 1.25 * err80 + 1e-4;
  size_t worst = 0, bad = 0, first_bad = hopper.size();
  double worst_abs = 0.0;
  for (size_t i = 0; i < hopper.size(); ++i) {
    const double d = std::fabs(hopper[i] - truth[i]);
    if (!(d <= worst_abs)) worst_abs = d, worst = i;  // NaN counts as the worst
    if (!(d <= 1e-2 + 1e-2 * std::fabs(truth[i]))) {
      ++bad;
      if (first_bad == hopper.size()) first_bad = i;
    }
  }
  std::printf("HOPPER-CHECK %-34s | %-24s | err %.2e sm80 %.2e ctrl %.2e bound %.2e | max abs %.1e at %s | bad %zu",
              pr.name().c_str(), what.c_str(), err, err80, ctrl, bound, worst_abs, where(worst, dims).c_str(), bad);
  if (bad) std::printf(" first %s got %.5g want %.5g", where(first_bad, dims).c_str(), hopper[first_bad], truth[first_bad]);
  std::printf(" | %s\n", err <= bound && err <= bound80 ? "ok" : "FAIL");
  std::fflush(stdout);  // a later hang or crash must not swallow it
  INFO(pr.name(), " ", what, ": err ", err, " (bound ", bound, "), sm80 err ", err80, " (bound vs sm80 ", bound80, ")");
  CHECK(err <= bound);
  CHECK(err <= bound80);
}

// Runs f under the sm_80 kernel, then under the Hopper kernel: {sm80 outputs, hopper outputs}.
// The HOPPER-START line names the variant first (for a run that hangs or crashes in it).
using Outputs = std::vector<std::vector<double>>;
std::pair<Outputs, Outputs> both_kernels(const Problem& pr, const std::string& what, const std::function<Outputs()>& f) {
  std::printf("HOPPER-START %s | %s\n", pr.name().c_str(), what.c_str());
  std::fflush(stdout);
  Outputs sm80, hopper;
  {
    UseKernel use(cuda::FlashKernel::Sm80);
    sm80 = f();
  }
  {
    UseKernel use(cuda::FlashKernel::Hopper);
    hopper = f();
  }
  return {sm80, hopper};
}

// Every variant of one problem, random q, k, v.
void check_variants(const Problem& pr, uint64_t seed) {
  const cpu::AttentionShape s = pr.shape();
  const int64_t B = pr.B, T = pr.T, Hq = pr.Hq, Hkv = pr.Hkv, D = pr.D, w = pr.w;
  auto draw = [&](int64_t h, uint64_t sd) { return rounded_bf16(Tensor::randn({B, T, h, D}, DType::F64, sd).to_vector()); };
  const std::vector<double> q = draw(Hq, seed), k = draw(Hkv, seed + 1), v = draw(Hkv, seed + 2);
  const Reference<double> truth = cpu_reference<double>(s, w, q, k, v);
  const Reference<float> ctrl = cpu_reference<float>(s, w, q, k, v);
  const Tensor Q = device_bf16(q, {B, T, Hq, D}), K = device_bf16(k, {B, T, Hkv, D}), V = device_bf16(v, {B, T, Hkv, D});
  StrictDevice strict;  // NaN-poisoned outputs; a sync after each launch names a faulting kernel
  auto empty = [](const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype, Device::CUDA); };

  for (const int64_t window : {int64_t(0), w}) {  // plain: full causal, then windowed
    const std::string kind = window == 0 ? "causal" : "window";
    auto [s80, hop] = both_kernels(pr, kind, [&] {
      const Tensor out = empty({B, T, Hq, D}, DType::BF16), out32 = empty({B, T, Hq, D}, DType::F32);
      const Tensor lse = empty({B, T, Hq}, DType::F32);
      cuda::flash_attention_forward(s, window, Q, K, V, out, lse);
      cuda::flash_attention_forward(s, window, Q, K, V, out32, Tensor());
      return Outputs{host(out), host(lse), host(out32)};
    });
    const auto& o_truth = window == 0 ? truth.o_full : truth.o_swa;
    const auto o_ctrl = as_double(window == 0 ? ctrl.o_full : ctrl.o_swa);
    compare(pr, kind + " out", hop[0], s80[0], o_truth, &o_ctrl);
    compare(pr, kind + " lse", hop[1], s80[1], window == 0 ? truth.lse_full : truth.lse_swa, nullptr);
    compare(pr, kind + " out f32", hop[2], s80[2], o_truth, &o_ctrl);
  }

  for (const int gate_kind : {0, 1, 2}) {  // switch: hard gate, real gate, hard gate one branch
    std::vector<double> g = routes(B * T, 0.13, seed + 3);
    if (gate_kind == 1) g = rounded_bf16(Tensor::rand_uniform({B, T}, DType::F64, seed + 4).to_vector());
    const Tensor G = device_bf16(g, {B, T});
    const bool both = gate_kind != 2;
    const std::string kind = gate_kind == 0 ? "switch hard" : gate_kind == 1 ? "switch real" : "switch 1-branch";
    auto [s80, hop] = both_kernels(pr, kind, [&] {
      const Tensor out = empty({B, T, Hq, D}, DType::BF16), o_full = empty({B, T, Hq, D}, DType::F32);
      const Tensor o_swa = empty({B, T, Hq, D}, DType::F32), lse_full = empty({B, T, Hq}, DType::F32);
      const Tensor lse_swa = empty({B, T, Hq}, DType::F32);
      cuda::flash_switch_attention_forward(s, w, Q, K, V, G, both, out, o_full, o_swa, lse_full, lse_swa);
      return Outputs{host(out), host(o_full), host(o_swa), host(lse_full), host(lse_swa)};
    });
    const std::vector<double> mixed = mix(s, g, truth), mixed_ctrl = mix(s, g, ctrl);
    compare(pr, kind + " out", hop[0], s80[0], mixed, &mixed_ctrl);
    const std::vector<double> c_swa = as_double(ctrl.o_swa);
    compare(pr, kind + " o_swa", hop[2], s80[2], truth.o_swa, &c_swa);
    compare(pr, kind + " lse_swa", hop[4], s80[4], truth.lse_swa, nullptr);
    if (both) {
      const std::vector<double> c_full = as_double(ctrl.o_full);
      compare(pr, kind + " o_full", hop[1], s80[1], truth.o_full, &c_full);
      compare(pr, kind + " lse_full", hop[3], s80[3], truth.lse_full, nullptr);
    } else {  // a gate-0 row skips its far keys: its o_full is exactly its o_swa
      int64_t differ = 0;
      for (size_t i = 0; i < hop[1].size(); ++i) differ += g[i / size_t(Hq * D)] == 0.0 && hop[1][i] != hop[2][i];
      INFO(pr.name(), ": gate-0 rows with o_full != o_swa: ", differ);
      CHECK(differ == 0);
    }
  }

  for (const double r : {0.0, 1.0, 0.13}) {  // routed prefill
    const std::vector<double> g = routes(B * T, r, seed + 5);
    const Tensor G = device_bf16(g, {B, T});
    const std::string kind = "routed r=" + std::to_string(r).substr(0, 4);
    auto [s80, hop] = both_kernels(pr, kind, [&] {
      const Tensor out = empty({B, T, Hq, D}, DType::BF16);
      cuda::routed_attention_prefill(s, w, Q, K, V, G, out);
      return Outputs{host(out)};
    });
    const std::vector<double> mixed_ctrl = mix(s, g, ctrl);
    compare(pr, kind, hop[0], s80[0], mix(s, g, truth), &mixed_ctrl);
  }
}

// Per key band (column d of the probe output = mass on keys [band d, band (d + 1))) and per
// 128-row query tile: err <= 2 ctrl + 1e-3 in each.
void check_bands(const Problem& pr, const std::string& what, int64_t band, const std::vector<double>& x,
                 const std::vector<double>& truth, const std::vector<double>& control32) {
  const std::vector<double> ctrl = rounded_bf16(control32);
  const int64_t D = pr.D, rows = pr.B * pr.T * pr.Hq, tiles = (pr.T + 127) / 128;
  auto column = [&](const std::vector<double>& y, int64_t d) {
    std::vector<double> c(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) c[size_t(r)] = y[size_t(r * D + d)];
    return c;
  };
  auto tile_rows = [&](const std::vector<double>& y, int64_t tile) {
    std::vector<double> c;
    for (int64_t b = 0; b < pr.B; ++b)
      for (int64_t t = tile * 128; t < std::min(pr.T, tile * 128 + 128); ++t)
        for (int64_t i = 0; i < pr.Hq * D; ++i) c.push_back(y[size_t((b * pr.T + t) * pr.Hq * D + i)]);
    return c;
  };
  double worst = -1.0;
  std::string worst_at;
  int failures = 0;
  auto one = [&](const std::string& label, const std::vector<double>& xs, const std::vector<double>& ts,
                 const std::vector<double>& cs) {
    const double err = rel_error(xs, ts), c = rel_error(cs, ts), bound = 2 * c + 1e-3;
    if (!(err <= bound)) {
      ++failures;
      std::printf("HOPPER-TILE %s | %s | %s err %.2e ctrl %.2e | FAIL\n", pr.name().c_str(), what.c_str(), label.c_str(), err, c);
    }
    if (!(err / bound <= worst)) worst = err / bound, worst_at = label + " err " + std::to_string(err);
    INFO(pr.name(), " ", what, " ", label, ": err ", err, " bound ", bound);
    CHECK(err <= bound);
  };
  const int64_t bands = (pr.T + band - 1) / band;
  for (int64_t d = 0; d < D; ++d)
    one("key band " + std::to_string(d) + (d < bands ? "" : " (empty)"), column(x, d), column(truth, d), column(ctrl, d));
  for (int64_t tile = 0; tile < tiles; ++tile)
    one("query tile " + std::to_string(tile), tile_rows(x, tile), tile_rows(truth, tile), tile_rows(ctrl, tile));
  std::printf("HOPPER-TILES %-34s | %-16s | %lld key bands of %lld, %lld query tiles | worst err/bound %.2f (%s) | %s\n",
              pr.name().c_str(), what.c_str(), (long long)bands, (long long)band, (long long)tiles, worst,
              worst_at.c_str(), failures ? "FAIL" : "ok");
  std::fflush(stdout);
}

void check_key_bands(const Problem& pr, uint64_t seed) {
  const cpu::AttentionShape s = pr.shape();
  const int64_t B = pr.B, T = pr.T, Hq = pr.Hq, Hkv = pr.Hkv, D = pr.D, w = pr.w;
  const int64_t band = 64 * ((T + 64 * D - 1) / (64 * D));  // every band a column of its own
  std::vector<double> v(size_t(B * T * Hkv * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < Hkv; ++h) v[size_t(((b * T + t) * Hkv + h) * D + t / band)] = 1.0;
  auto draw = [&](int64_t h, uint64_t sd) { return rounded_bf16(Tensor::randn({B, T, h, D}, DType::F64, sd).to_vector()); };
  const std::vector<double> q = draw(Hq, seed), k = draw(Hkv, seed + 1);
  const Reference<double> truth = cpu_reference<double>(s, w, q, k, v);
  const Reference<float> ctrl = cpu_reference<float>(s, w, q, k, v);
  const Tensor Q = device_bf16(q, {B, T, Hq, D}), K = device_bf16(k, {B, T, Hkv, D}), V = device_bf16(v, {B, T, Hkv, D});
  StrictDevice strict;  // NaN-poisoned outputs; a sync after each launch names a faulting kernel
  UseKernel use(cuda::FlashKernel::Hopper);
  std::printf("HOPPER-START %s | key bands (causal, window, switch, routed)\n", pr.name().c_str());
  std::fflush(stdout);
  const Tensor out = Tensor::empty({B, T, Hq, D}, DType::BF16, Device::CUDA);
  cuda::flash_attention_forward(s, 0, Q, K, V, out, Tensor());
  check_bands(pr, "causal", band, host(out), truth.o_full, as_double(ctrl.o_full));
  cuda::flash_attention_forward(s, w, Q, K, V, out, Tensor());
  check_bands(pr, "window", band, host(out), truth.o_swa, as_double(ctrl.o_swa));
  const std::vector<double> g = routes(B * T, 0.13, seed + 3);
  const Tensor G = device_bf16(g, {B, T});
  const Tensor o_full = Tensor::empty({B, T, Hq, D}, DType::F32, Device::CUDA);
  const Tensor o_swa = Tensor::empty({B, T, Hq, D}, DType::F32, Device::CUDA);
  const Tensor lse_full = Tensor::empty({B, T, Hq}, DType::F32, Device::CUDA);
  const Tensor lse_swa = Tensor::empty({B, T, Hq}, DType::F32, Device::CUDA);
  cuda::flash_switch_attention_forward(s, w, Q, K, V, G, true, out, o_full, o_swa, lse_full, lse_swa);
  check_bands(pr, "switch o_full", band, host(o_full), truth.o_full, as_double(ctrl.o_full));
  check_bands(pr, "switch o_swa", band, host(o_swa), truth.o_swa, as_double(ctrl.o_swa));
  cuda::routed_attention_prefill(s, w, Q, K, V, G, out);
  check_bands(pr, "routed r=0.13", band, host(out), mix(s, g, truth), mix(s, g, ctrl));
}

TEST_CASE("cuda hopper: the kernel choice (runs without a GPU too)") {
#ifndef SWIATTN_HAVE_CUDA
  MESSAGE("SKIPPED (the CUDA backend is not compiled in): the kernel choice");
  return;
#endif
  const cuda::FlashKernel before = cuda::flash_kernel();
  cuda::set_flash_kernel(cuda::FlashKernel::Sm80);
  CHECK(cuda::flash_kernel_in_use() == "sm80");
  cuda::set_flash_kernel(cuda::FlashKernel::Hopper);
  CHECK(cuda::flash_kernel_in_use() == (cuda::hopper_kernel_available() ? "hopper" : "hopper (unavailable)"));
  cuda::set_flash_kernel(before);
  const std::string status = cuda::hopper_kernel_status();
  const std::string line = "hopper kernel: " + status + "; device: " + cuda::device_description();
  MESSAGE(line);
  CHECK(!status.empty());
  if (cuda::device_count() == 0) CHECK(!cuda::hopper_kernel_available());
#ifdef SWIATTN_BUILT_SM90A
  // Built with 90a: on a compute capability 9.0 device the Hopper kernel must be the one that runs.
  if (cuda::device_description().find("(sm_90,") != std::string::npos) {
    INFO(status);
    CHECK(cuda::hopper_kernel_available());
  }
#endif
}

TEST_CASE("cuda hopper: asked for where it cannot run, the forward says why") {
  if (cuda::device_count() == 0 || cuda::hopper_kernel_available()) {
    MESSAGE("SKIPPED (needs a GPU without the Hopper kernel): the refusal message");
    return;
  }
  UseKernel use(cuda::FlashKernel::Hopper);
  const Tensor q = Tensor::zeros({1, 5, 2, 64}, DType::BF16, Device::CUDA);
  const Tensor out = Tensor::zeros({1, 5, 2, 64}, DType::BF16, Device::CUDA);
  const std::string message = error_of([&] { cuda::flash_attention_forward({1, 5, 2, 2, 64}, 0, q, q, q, out, Tensor()); });
  CHECK(message.find("the Hopper kernel was asked for") != std::string::npos);
}

TEST_CASE("cuda hopper: sanitizer sizes (small; scripts/gpu/hopper-check.sh runs memcheck and racecheck on these)") {
  if (skip_without_hopper("hopper forward, sanitizer sizes")) return;
  check_variants({1, 129, 2, 1, 64, 16}, 101);   // a tail tile of 1 row, GQA 2/1
  check_variants({2, 200, 2, 2, 128, 64}, 102);  // B 2, D 128
}

TEST_CASE("cuda hopper: every variant against the CPU float64 reference and the sm80 kernel") {
  if (skip_without_hopper("hopper forward variants")) return;
  check_variants({2, 1, 4, 2, 64, 64}, 111);       // T = 1
  check_variants({2, 3, 16, 8, 128, 1}, 112);      // w = 1
  check_variants({1, 113, 4, 2, 64, 200}, 113);    // w > T
  check_variants({2, 127, 16, 8, 128, 64}, 114);   // T < tile
  check_variants({2, 129, 4, 2, 128, 128}, 115);   // one row past a tile, w = tile
  check_variants({3, 200, 16, 8, 64, 1}, 116);     // B 3, w = 1
  check_variants({1, 1000, 4, 2, 128, 1000}, 117); // w = T
  check_variants({2, 385, 8, 8, 64, 100}, 118);    // group 1
}

TEST_CASE("cuda hopper: large T, errors per key band and per query tile") {
  if (skip_without_hopper("hopper forward, large T")) return;
  check_variants({1, 4099, 16, 8, 128, 1024}, 121);
  check_variants({2, 2053, 4, 2, 64, 333}, 122);
  check_key_bands({1, 4099, 4, 2, 128, 1024}, 123);
  check_key_bands({2, 4099, 16, 8, 64, 1024}, 124);
}

}  // namespace
}  // namespace swiattn
