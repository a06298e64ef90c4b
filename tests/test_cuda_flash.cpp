// tests/test_cuda_flash.cpp: the tensor-core attention forwards (kernels/cuda/flash_attention.h)
// against the CPU float64 reference (kernels/cpu/switch_attention.h, whose o_full and o_swa are
// full causal and sliding-window attention, and lse_full, lse_swa their log-sum-exps).
//
// Inputs are drawn in float64 and rounded to bfloat16, so the CPU and the GPU see the same
// numbers. Rule (docs/cuda.md, flash-attention's): err = ||x - x64|| / ||x64||, and
//   bfloat16 outputs and the float32 branch outputs: err <= 2 * err_ctrl + 1e-3, err_ctrl being
//   the CPU float32 result rounded to bfloat16 (P is rounded to bfloat16 before P V, so the
//   float32 branch outputs carry bfloat16-level error too). The floor is a tenth of the op
//   table's 1e-2: nothing here reads a bfloat16 intermediate back, and with w = 1 (the output
//   is v itself) both errors are exactly 0;
//   log-sum-exps (float32, no bfloat16 step on the way): err <= 1e-5.
// Every output is poisoned (NaN) before the kernels run, so an unwritten element fails.
// Sizes: T 1, 3, 113, 1031, 4099; w 1, 64, 1024 and w > T; GQA 16 / 8 and 4 / 4; D 64 and 128;
// B 2; routes all 0, all 1 and random with P(1) = 0.13.
//
// These go through the public entry points, so on an H100 / H200 with sm_90a code they test the
// Hopper kernel (flash_attention.h: FlashKernel::Auto); tests/test_cuda_hopper.cpp runs both
// kernel families side by side. Without a device each test prints "SKIPPED (no CUDA device): ...".
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/attention_test_util.h"
#include "tests/cuda_test_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/switch_attention.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_attention.h"
#include "tensor/random.h"

namespace swiattn {
namespace {

using namespace testing;

struct Checker {  // the two rules of the header, with a line per check in the log
  std::string name;
  void bf16(const char* what, const std::vector<double>& x, const std::vector<double>& truth,
            const std::vector<double>& control32) {
    const double err = rel_error(x, truth), ctrl = rel_error(rounded_bf16(control32), truth);
    INFO(name, " ", what, ": err ", err, " control ", ctrl);
    CHECK(err <= 2 * ctrl + 1e-3);
    std::printf("  %-44s %-22s err %.2e  bf16 control %.2e\n", name.c_str(), what, err, ctrl);
  }
  void lse(const char* what, const std::vector<double>& x, const std::vector<double>& truth) {
    const double err = rel_error(x, truth);
    INFO(name, " ", what, ": err ", err);
    CHECK(err <= 1e-5);
  }
};

void check_problem(int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t w, uint64_t seed) {
  const cpu::AttentionShape s{B, T, Hq, Hkv, D};
  auto draw = [&](int64_t h, uint64_t sd) {  // N(0, 1) rounded to bfloat16
    return rounded_bf16(Tensor::randn({B, T, h, D}, DType::F64, sd).to_vector());
  };
  const std::vector<double> q = draw(Hq, seed), k = draw(Hkv, seed + 1), v = draw(Hkv, seed + 2);
  const Reference<double> truth = cpu_reference<double>(s, w, q, k, v);
  const Reference<float> ctrl = cpu_reference<float>(s, w, q, k, v);
  Checker c{"B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(Hq) + "/" +
            std::to_string(Hkv) + " D" + std::to_string(D) + " w" + std::to_string(w)};
  const Tensor Q = device_bf16(q, {B, T, Hq, D}), K = device_bf16(k, {B, T, Hkv, D}), V = device_bf16(v, {B, T, Hkv, D});
  PoisonNewBlocks poison;

  // flash_attention_forward: full causal (window 0) and windowed, bf16 and float32 out.
  for (const int64_t window : {int64_t(0), w}) {
    const auto& o_truth = window == 0 ? truth.o_full : truth.o_swa;
    const auto& o_ctrl = window == 0 ? ctrl.o_full : ctrl.o_swa;
    const auto& lse_truth = window == 0 ? truth.lse_full : truth.lse_swa;
    const Tensor out = Tensor::empty({B, T, Hq, D}, DType::BF16, Device::CUDA);
    const Tensor out32 = Tensor::empty({B, T, Hq, D}, DType::F32, Device::CUDA);
    const Tensor lse = Tensor::empty({B, T, Hq}, DType::F32, Device::CUDA);
    cuda::flash_attention_forward(s, window, Q, K, V, out, lse);
    c.bf16(window == 0 ? "flash full out" : "flash window out", host(out), o_truth, as_double(o_ctrl));
    c.lse(window == 0 ? "flash full lse" : "flash window lse", host(lse), lse_truth);
    cuda::flash_attention_forward(s, window, Q, K, V, out32, Tensor());
    c.bf16(window == 0 ? "flash full out f32" : "flash window out f32", host(out32), o_truth, as_double(o_ctrl));
  }

  // The training forward (both branches), gate random with P(1) = 0.13, and a real-valued gate.
  for (const bool hard : {true, false}) {
    std::vector<double> g = routes(B * T, 0.13, seed + 3);
    if (!hard) g = rounded_bf16(Tensor::rand_uniform({B, T}, DType::F64, seed + 4).to_vector());
    const Tensor G = device_bf16(g, {B, T});
    const Tensor out = Tensor::empty({B, T, Hq, D}, DType::BF16, Device::CUDA);
    const Tensor o_full = Tensor::empty({B, T, Hq, D}, DType::F32, Device::CUDA);
    const Tensor o_swa = Tensor::empty({B, T, Hq, D}, DType::F32, Device::CUDA);
    const Tensor lse_full = Tensor::empty({B, T, Hq}, DType::F32, Device::CUDA);
    const Tensor lse_swa = Tensor::empty({B, T, Hq}, DType::F32, Device::CUDA);
    cuda::flash_switch_attention_forward(s, w, Q, K, V, G, true, out, o_full, o_swa, lse_full, lse_swa);
    c.bf16(hard ? "switch out (hard gate)" : "switch out (real gate)", host(out), mix(s, g, truth), mix(s, g, ctrl));
    c.bf16("switch o_full", host(o_full), as_double(truth.o_full), as_double(ctrl.o_full));
    c.bf16("switch o_swa", host(o_swa), as_double(truth.o_swa), as_double(ctrl.o_swa));
    c.lse("switch lse_full", host(lse_full), as_double(truth.lse_full));
    c.lse("switch lse_swa", host(lse_swa), as_double(truth.lse_swa));
    if (!hard) continue;
    // Without both branches a gate-0 row skips its far keys: its o_full is exactly its o_swa.
    cuda::flash_switch_attention_forward(s, w, Q, K, V, G, false, out, o_full, o_swa, lse_full, lse_swa);
    c.bf16("switch out (one branch)", host(out), mix(s, g, truth), mix(s, g, ctrl));
    const std::vector<double> of = host(o_full), os = host(o_swa);
    int64_t differ = 0;
    for (size_t i = 0; i < of.size(); ++i) differ += g[i / size_t(Hq * D)] == 0.0 && of[i] != os[i];
    INFO(c.name, ": gate-0 rows with o_full != o_swa: ", differ);
    CHECK(differ == 0);
  }

  // Inference: routes all 0, all 1, random (P(1) = 0.13); out only.
  for (const double p_full : {0.0, 1.0, 0.13}) {
    const std::vector<double> g = routes(B * T, p_full, seed + 5);
    const Tensor out = Tensor::empty({B, T, Hq, D}, DType::BF16, Device::CUDA);
    cuda::routed_attention_prefill(s, w, Q, K, V, device_bf16(g, {B, T}), out);
    const std::string what = "routed r=" + std::to_string(p_full).substr(0, 4);
    c.bf16(what.c_str(), host(out), mix(s, g, truth), mix(s, g, ctrl));
  }
}

TEST_CASE("cuda flash: forward kernels against the CPU float64 reference, small") {
  if (skip_without_device("flash attention forwards, small sizes")) return;
  check_problem(2, 1, 4, 4, 64, 64, 11);
  check_problem(2, 3, 16, 8, 128, 1, 12);
  check_problem(2, 113, 4, 4, 64, 64, 13);
  check_problem(2, 113, 16, 8, 128, 1, 14);
  check_problem(2, 113, 16, 8, 64, 200, 15);  // w > T
}

TEST_CASE("cuda flash: forward kernels against the CPU float64 reference, large") {
  if (skip_without_device("flash attention forwards, large sizes")) return;
  check_problem(2, 1031, 16, 8, 128, 64, 21);
  check_problem(2, 1031, 4, 4, 64, 1, 22);
  check_problem(2, 1031, 4, 4, 128, 2000, 23);  // w > T
  check_problem(2, 4099, 4, 4, 128, 1024, 24);
  check_problem(2, 4099, 16, 8, 64, 64, 25);
}

TEST_CASE("cuda flash: bad input is refused with a clear message") {
  if (skip_without_device("flash attention argument checks")) return;
  const cpu::AttentionShape s{1, 5, 4, 2, 64};
  const Tensor q = Tensor::zeros({1, 5, 4, 64}, DType::BF16, Device::CUDA);
  const Tensor kv = Tensor::zeros({1, 5, 2, 64}, DType::BF16, Device::CUDA);
  const Tensor out = Tensor::zeros({1, 5, 4, 64}, DType::BF16, Device::CUDA);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "<nothing thrown>";
  };
  CHECK(message([&] { cuda::flash_attention_forward({1, 5, 4, 2, 32}, 0, q, kv, kv, out, Tensor()); })
            .find("head dim 32 is not supported") != std::string::npos);
  CHECK(message([&] { cuda::flash_attention_forward({1, 5, 4, 3, 64}, 0, q, kv, kv, out, Tensor()); })
            .find("not a multiple of kv heads") != std::string::npos);
  CHECK(message([&] { cuda::flash_attention_forward(s, 0, q, kv, kv, q.to(DType::F32), Tensor()); })
            .find("q is float32") == std::string::npos);  // out may be float32
  CHECK(message([&] { cuda::flash_attention_forward(s, 0, q.to(DType::F32), kv, kv, out, Tensor()); })
            .find("q is float32, expected bfloat16") != std::string::npos);
  CHECK(message([&] { cuda::routed_attention_prefill(s, 2, q, kv, kv, Tensor::zeros({1, 4}, DType::BF16, Device::CUDA), out); })
            .find("route has shape (1, 4), expected (1, 5)") != std::string::npos);
  CHECK(message([&] { cuda::flash_attention_forward(s, 0, q.to_host(), kv, kv, out, Tensor()); })
            .find("is not on cuda") != std::string::npos);
  CHECK(cuda::is_hard_route(Tensor::from_vector({0, 1, 1, 0}, {2, 2}, DType::F64).to(DType::BF16).to(Device::CUDA)));
  CHECK(!cuda::is_hard_route(Tensor::from_vector({0, 1, 0.5, 0}, {2, 2}, DType::F64).to(DType::BF16).to(Device::CUDA)));
}

TEST_CASE("cuda flash: the no-grad switch_attention op with hard gates takes the routed kernel") {
  if (skip_without_device("switch_attention inference through routed_attention_prefill")) return;
  const int64_t B = 2, T = 77, Hq = 4, Hkv = 2, D = 64, w = 16;
  auto draw = [&](int64_t h, uint64_t sd) {
    return Tensor::randn({B, T, h, D}, DType::F64, sd).to(DType::BF16).to(DType::F64);
  };
  const Tensor q = draw(Hq, 31), k = draw(Hkv, 32), v = draw(Hkv, 33);
  const Tensor gate = Tensor::from_vector(routes(B * T, 0.13, 34), {B, T}, DType::F64);
  NoGradGuard no_grad;
  auto run = [&](DType dtype, Device device) {
    auto in = [&](const Tensor& x) { return Var(x.to(dtype).to(device)); };
    return switch_attention(in(q), in(k), in(v), w, in(gate)).value().to_host().to(DType::F64).to_vector();
  };
  const std::vector<double> truth = run(DType::F64, Device::CPU), gpu = run(DType::BF16, Device::CUDA);
  const double err = rel_error(gpu, truth), ctrl = rel_error(rounded_bf16(run(DType::F32, Device::CPU)), truth);
  INFO("err ", err, " control ", ctrl);
  CHECK(err <= 2 * ctrl + 1e-3);
  // The same bits as the routed kernel called directly (the training kernel sums the keys of a
  // full row in another order, window first, so its bits differ).
  const Tensor out = Tensor::empty({B, T, Hq, D}, DType::BF16, Device::CUDA);
  auto dev = [](const Tensor& x) { return x.to(DType::BF16).to(Device::CUDA); };
  cuda::routed_attention_prefill({B, T, Hq, Hkv, D}, w, dev(q), dev(k), dev(v), dev(gate), out);
  CHECK(rel_error(gpu, host(out)) == 0.0);
}

// Timing, not a correctness test: runs only with SWIATTN_FLASH_BENCH=1 (on the GPU machine).
// B 1, Hq 16, Hkv 8, D 128, w 1024, T 4K .. 32K; time per call (median of 7, each synchronised)
// and TFLOP/s counted as 4 D Hq (keys read) per query row. Checks on the way that the routed
// kernel with all routes 1 (0) gives the plain full (window) kernel's bits.
TEST_CASE("cuda flash: timing (SWIATTN_FLASH_BENCH=1)") {
  const char* env = std::getenv("SWIATTN_FLASH_BENCH");
  if (!env || std::string(env) != "1") {
    MESSAGE("SKIPPED (set SWIATTN_FLASH_BENCH=1): flash attention timing");
    return;
  }
  if (skip_without_device("flash attention timing")) return;
  const int64_t Hq = 16, Hkv = 8, D = 128, w = 1024;
  std::printf("| T | kernel | ms | TFLOP/s (keys read) | full-causal TFLOP/s equiv |\n|---|---|---|---|---|\n");
  for (const int64_t T : {int64_t(4096), int64_t(8192), int64_t(16384), int64_t(32768)}) {
    const cpu::AttentionShape s{1, T, Hq, Hkv, D};
    const Tensor Q = Tensor::randn({1, T, Hq, D}, DType::F32, 1).to(DType::BF16).to(Device::CUDA);
    const Tensor K = Tensor::randn({1, T, Hkv, D}, DType::F32, 2).to(DType::BF16).to(Device::CUDA);
    const Tensor V = Tensor::randn({1, T, Hkv, D}, DType::F32, 3).to(DType::BF16).to(Device::CUDA);
    const Tensor out = Tensor::empty({1, T, Hq, D}, DType::BF16, Device::CUDA);
    const Tensor ref = Tensor::empty({1, T, Hq, D}, DType::BF16, Device::CUDA);
    const Tensor lse = Tensor::empty({1, T, Hq}, DType::F32, Device::CUDA);
    const Tensor o_full = Tensor::empty({1, T, Hq, D}, DType::F32, Device::CUDA);
    const Tensor o_swa = Tensor::empty({1, T, Hq, D}, DType::F32, Device::CUDA);
    const Tensor lse_swa = Tensor::empty({1, T, Hq}, DType::F32, Device::CUDA);
    const double full_keys = double(T) * double(T + 1) / 2;
    auto keys = [&](const std::vector<double>& g) {
      double n = 0;
      for (int64_t t = 0; t < T; ++t) n += g[size_t(t)] != 0.0 ? double(t + 1) : double(std::min(t + 1, w));
      return n;
    };
    auto time_ms = [&](const std::function<void()>& f) {
      f();
      f();
      cuda::synchronize();
      std::vector<double> ms;
      for (int i = 0; i < 7; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        cuda::synchronize();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      return ms[ms.size() / 2];
    };
    auto row = [&](const std::string& name, double ms, double n_keys) {
      const double flop = 4.0 * double(D * Hq) * n_keys, full = 4.0 * double(D * Hq) * full_keys;
      std::printf("| %lld | %s | %.3f | %.1f | %.1f |\n", (long long)T, name.c_str(), ms, flop / ms * 1e-9,
                  full / ms * 1e-9);
    };
    const std::vector<double> ones(size_t(T), 1.0), zeros(size_t(T), 0.0), r13 = routes(T, 0.13, 7);
    row("flash full causal", time_ms([&] { cuda::flash_attention_forward(s, 0, Q, K, V, ref, lse); }), full_keys);
    for (const auto* g : {&ones, &r13, &zeros}) {
      const Tensor G = device_bf16(*g, {1, T});
      const std::string name = g == &ones ? "routed r=1" : g == &r13 ? "routed r=0.13" : "routed r=0";
      row(name, time_ms([&] { cuda::routed_attention_prefill(s, w, Q, K, V, G, out); }), keys(*g));
      if (g == &r13) {
        row("switch training fwd (r=0.13)", time_ms([&] {
              cuda::flash_switch_attention_forward(s, w, Q, K, V, G, true, out, o_full, o_swa, lse, lse_swa);
            }), full_keys);
        continue;
      }
      if (g == &zeros) cuda::flash_attention_forward(s, w, Q, K, V, ref, Tensor());
      else cuda::flash_attention_forward(s, 0, Q, K, V, ref, Tensor());
      cuda::routed_attention_prefill(s, w, Q, K, V, G, out);
      INFO(name, " against the plain kernel at T ", T);
      CHECK(rel_error(host(out), host(ref)) == 0.0);
    }
    row("flash window w=1024", time_ms([&] { cuda::flash_attention_forward(s, w, Q, K, V, ref, lse); }),
        keys(zeros));
  }
}

}  // namespace
}  // namespace swiattn
