// bench/cases.cpp: the three `swiattn bench` subcommands (bench/bench.h). Each case builds random
// bf16 inputs on the device, times our kernel with CUDA events (tensor/cuda/timing.h: warm-up,
// then N reps, L2 flushed before each), and prints one JSON line with the median.
//
// Which kernels run: the tensor-core ones of kernels/cuda/flash_attention.h when that header is
// in the tree (routed_attention_prefill, flash_attention_forward, flash_switch_attention_forward),
// else the reference warp-per-row ones (switch_attention_forward, attention_forward). The
// backward is cuda::switch_attention_backward, which takes the fast path itself when it can; its
// main kernel is named in brackets too ([sm80] or [hopper]: SWIATTN_ATTENTION_BACKWARD picks,
// kernels/cuda/flash_backward.h; ", deterministic" with --deterministic).
// The JSON's "impl" names what ran, with the forward kernel family in brackets ([hopper]: the
// sm_90a kernel of kernels/cuda/hopper_attention.cu, [sm80]: flash_attention.cu's; the process
// picks it, SWIATTN_ATTENTION_KERNEL=sm80 forces the sm_80 one).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>

#include "bench/bench.h"
#include "kernels/cpu/window.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/decode_attention.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/switch_attention.h"
#include "tensor/cuda/timing.h"
#include "tensor/random.h"

#if __has_include("kernels/cuda/flash_attention.h")
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/flash_backward.h"
#define SWIATTN_BENCH_FLASH 1
#else
#define SWIATTN_BENCH_FLASH 0
#endif

namespace swiattn::bench {

Tensor random_device(const Shape& shape, DType dtype, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  const int64_t block = std::min<int64_t>(n, (int64_t(1) << 22) + 1021);  // odd size: no aligned repeats
  const Tensor src = Tensor::randn({block}, DType::F32, seed).to(dtype).to_device();
  Tensor flat = Tensor::empty({n}, dtype, Device::CUDA);
  for (int64_t at = 0; at < n; at += block) {
    const int64_t len = std::min(block, n - at);
    flat.slice(at, at + len).copy_from(src.slice(0, len));
  }
  return flat.reshape(shape);
}

std::vector<double> random_routes(int64_t n, double r, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
  std::vector<double> route(static_cast<size_t>(n), 0.0);
  const int64_t full = static_cast<int64_t>(r * double(n) + 0.5);
  for (int64_t i = 0; i < full; ++i) route[order[i]] = 1.0;
  return route;
}

double median(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

namespace {

// Times f: one untimed probe run, then the options' warm-up and reps (3 reps when the probe
// took over 200 ms). Returns {median, min, reps}.
struct Timing {
  double ms, ms_min;
  int reps;
};
Timing time_case(const Options& o, const std::function<void()>& f) {
  const double probe = cuda::time_device_ms(f, 0, 1, false).at(0);
  const int reps = probe > 200.0 ? 3 : o.reps;
  const std::vector<double> ms = cuda::time_device_ms(f, probe > 200.0 ? 0 : o.warmup, reps, o.flush_l2);
  return {median(ms), *std::min_element(ms.begin(), ms.end()), reps};
}

// Forward flops of attention rows under routes (B, T) flattened: 4 D Hq per (query, key).
double routed_flops(const Options& o, int64_t T, const std::vector<double>& route) {
  double keys = 0.0;
  for (int64_t b = 0; b < o.B; ++b)
    for (int64_t t = 0; t < T; ++t)
      keys += route[b * T + t] != 0.0 ? double(t + 1) : double(window_key_count(t, o.window));
  return 4.0 * double(o.D) * double(o.Hq) * keys;
}

void print_case(const char* kind, const Options& o, int64_t T, double r, const Timing& t, double flops,
                double bytes, const std::string& impl, const std::string& extra = "") {
  std::printf(
      "{\"kind\": \"%s\", \"T\": %lld, \"B\": %lld, \"Hq\": %lld, \"Hkv\": %lld, \"D\": %lld, \"w\": %lld, "
      "\"r\": %g, \"ms\": %.5f, \"ms_min\": %.5f, \"reps\": %d, \"flops_needed\": %.6e, \"bytes_read\": %.6e, "
      "\"tflops\": %.3f, \"gbps\": %.1f, \"impl\": \"%s\"%s}\n",
      kind, (long long)T, (long long)o.B, (long long)o.Hq, (long long)o.Hkv, (long long)o.D, (long long)o.window, r,
      t.ms, t.ms_min, t.reps, flops, bytes, flops / (t.ms * 1e9), bytes / (t.ms * 1e6), impl.c_str(), extra.c_str());
  std::fflush(stdout);
}

struct Inputs {  // q (B, T, Hq, D); k, v (B, T, Hkv, D), bf16 on the device
  Tensor q, k, v;
};
Inputs random_inputs(const Options& o, int64_t T) {
  return {random_device({o.B, T, o.Hq, o.D}, DType::BF16, o.seed),
          random_device({o.B, T, o.Hkv, o.D}, DType::BF16, o.seed + 1),
          random_device({o.B, T, o.Hkv, o.D}, DType::BF16, o.seed + 2)};
}

}  // namespace

#if SWIATTN_BENCH_FLASH
namespace {
std::string family() { return " [" + cuda::flash_kernel_in_use() + "]"; }  // the forward kernel family
}  // namespace
#endif

// ---- prefill: full causal attention, the training forward, then routed attention at each r ----
void bench_prefill(const Options& o) {
  for (int64_t T : o.T) {
    const cpu::AttentionShape s{o.B, T, o.Hq, o.Hkv, o.D};
    const Inputs in = random_inputs(o, T);
    const Tensor out = Tensor::empty({o.B, T, o.Hq, o.D}, DType::BF16, Device::CUDA);
    const Tensor lse = Tensor::empty({o.B, T, o.Hq}, DType::F32, Device::CUDA);
    // q, k, v read once, out written once (bf16)
    const double bytes = 2.0 * double(o.B * T) * double(2 * o.Hq * o.D + 2 * o.Hkv * o.D);
    {  // causal attention: our full-attention kernel, the r = 1 work without routing
      const std::vector<double> all(size_t(o.B * T), 1.0);
#if SWIATTN_BENCH_FLASH
      const std::string impl = "flash_attention_forward" + family();
      const auto run = [&] { cuda::flash_attention_forward(s, 0, in.q, in.k, in.v, out, lse); };
#else
      const std::string impl = "attention_forward (reference)";
      const auto run = [&] { cuda::attention_forward(s, 0, in.q, in.k, in.v, out, lse); };
#endif
      print_case("causal", o, T, 1.0, time_case(o, run), routed_flops(o, T, all), bytes, impl);
    }
#if SWIATTN_BENCH_FLASH
    {  // the one-pass training forward, both branches (routes r = 0.13): full causal work, plus
       // the float32 o_full, o_swa written (8 bytes each per element)
      const std::vector<double> all(size_t(o.B * T), 1.0);
      const Tensor gate = Tensor::from_vector(random_routes(o.B * T, 0.13, o.seed + 7), {o.B, T}, DType::F32)
                              .to(DType::BF16)
                              .to_device();
      const Tensor o_full = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
      const Tensor o_swa = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
      const Tensor lse_swa = Tensor::empty({o.B, T, o.Hq}, DType::F32, Device::CUDA);
      const auto run = [&] {
        cuda::flash_switch_attention_forward(s, o.window, in.q, in.k, in.v, gate, true, out, o_full, o_swa, lse,
                                             lse_swa);
      };
      const double sw_bytes = bytes + 16.0 * double(o.B * T * o.Hq * o.D);
      print_case("switch-forward", o, T, 0.13, time_case(o, run), routed_flops(o, T, all), sw_bytes,
                 "flash_switch_attention_forward" + family());
    }
#endif
    for (double r : o.r) {
      const std::vector<double> route = random_routes(o.B * T, r, o.seed + 7);
      const Tensor gate = Tensor::from_vector(route, {o.B, T}, DType::F32).to(DType::BF16).to_device();
#if SWIATTN_BENCH_FLASH
      const std::string impl = "routed_attention_prefill" + family();
      const auto run = [&] { cuda::routed_attention_prefill(s, o.window, in.q, in.k, in.v, gate, out); };
#else
      const std::string impl = "switch_attention_forward (reference, far keys skipped for route 0)";
      const Tensor o_full = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
      const Tensor o_swa = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
      const Tensor lse2 = Tensor::empty({o.B, T, o.Hq}, DType::F32, Device::CUDA);
      const auto run = [&] {
        cuda::switch_attention_forward(s, o.window, in.q, in.k, in.v, gate, false, out, o_full, o_swa, lse, lse2);
      };
#endif
      print_case("prefill", o, T, r, time_case(o, run), routed_flops(o, T, route), bytes, impl);
    }
  }
}

// ---- training: one switch attention layer, both branches, forward + backward ----
void bench_train_attention(const Options& o) {
  cuda::set_deterministic(o.deterministic);
  for (int64_t T : o.T) {
    const cpu::AttentionShape s{o.B, T, o.Hq, o.Hkv, o.D};
    const Inputs in = random_inputs(o, T);
    const Tensor dout = random_device({o.B, T, o.Hq, o.D}, DType::BF16, o.seed + 3);
    const Tensor out = Tensor::empty({o.B, T, o.Hq, o.D}, DType::BF16, Device::CUDA);
    const Tensor o_full = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
    const Tensor o_swa = Tensor::empty({o.B, T, o.Hq, o.D}, DType::F32, Device::CUDA);
    const Tensor lse_full = Tensor::empty({o.B, T, o.Hq}, DType::F32, Device::CUDA);
    const Tensor lse_swa = Tensor::empty({o.B, T, o.Hq}, DType::F32, Device::CUDA);
    const Tensor dq = Tensor::zeros({o.B, T, o.Hq, o.D}, DType::BF16, Device::CUDA);
    const Tensor dk = Tensor::zeros({o.B, T, o.Hkv, o.D}, DType::BF16, Device::CUDA);
    const Tensor dv = Tensor::zeros({o.B, T, o.Hkv, o.D}, DType::BF16, Device::CUDA);
    const Tensor dgate = Tensor::zeros({o.B, T}, DType::BF16, Device::CUDA);
    // Both branches: every row's O_FULL over keys [0, t] (the window is part of it) = causal
    // forward work; the backward counted as 2.5x the forward (5 matrix products against 2).
    const std::vector<double> all(size_t(o.B * T), 1.0);
    const double flops = 3.5 * routed_flops(o, T, all);
    const double qo = double(o.B * T * o.Hq * o.D), kv = double(o.B * T * o.Hkv * o.D);
    // forward: q k v read, out (bf16) + o_full, o_swa (f32) written; backward: q k v dout (bf16),
    // o_full o_swa (f32) read, dq dk dv (bf16) written; lse / gate terms are small.
    const double bytes = 2 * (qo + 2 * kv) + 2 * qo + 8 * qo + 2 * (2 * qo + 2 * kv) + 8 * qo + 2 * (qo + 2 * kv);
    for (double r : o.r) {
      const std::vector<double> route = random_routes(o.B * T, r, o.seed + 7);
      const Tensor gate = Tensor::from_vector(route, {o.B, T}, DType::F32).to(DType::BF16).to_device();
#if SWIATTN_BENCH_FLASH
      const std::string impl = "flash_switch_attention_forward" + family() + " + switch_attention_backward [" +
                               cuda::flash_backward_kernel_in_use() + (o.deterministic ? ", deterministic]" : "]");
      const auto forward = [&] {
        cuda::flash_switch_attention_forward(s, o.window, in.q, in.k, in.v, gate, true, out, o_full, o_swa, lse_full,
                                             lse_swa);
      };
#else
      const std::string impl = "switch_attention_forward + switch_attention_backward (reference)";
      const auto forward = [&] {
        cuda::switch_attention_forward(s, o.window, in.q, in.k, in.v, gate, true, out, o_full, o_swa, lse_full,
                                       lse_swa);
      };
#endif
      const auto run = [&] {
        forward();
        cuda::switch_attention_backward(s, o.window, in.q, in.k, in.v, gate, o_full, o_swa, lse_full, lse_swa, dout,
                                        dq, dk, dv, dgate);
      };
      const Timing fwd = time_case(o, forward);
      const std::string extra = ", \"ms_forward\": " + std::to_string(fwd.ms);
      print_case("train-attention", o, T, r, time_case(o, run), flops, bytes, impl, extra);
    }
  }
}

// ---- decode: S sequences, each with `cache` keys (the new one included) ----
void bench_decode(const Options& o) {
  for (int64_t P : o.cache) {
    const int64_t S = o.S;
    const Tensor q = random_device({S, o.Hq, o.D}, DType::BF16, o.seed);
    const Tensor k = random_device({S, P, o.Hkv, o.D}, DType::BF16, o.seed + 1);
    const Tensor v = random_device({S, P, o.Hkv, o.D}, DType::BF16, o.seed + 2);
    const Tensor out = Tensor::empty({S, o.Hq, o.D}, DType::BF16, Device::CUDA);
    const Tensor lengths = Tensor::from_ints(std::vector<int32_t>(size_t(S), int32_t(P)), {S}).to_device();
    for (double r : o.r) {
      const std::vector<double> route = random_routes(S, r, o.seed + 7);
      std::vector<int32_t> route32(route.begin(), route.end());
      const Tensor route_dev = Tensor::from_ints(route32, {S}).to_device();
      double keys = 0.0;  // keys read per kv head, over the batch
      for (double m : route) keys += m != 0.0 ? double(P) : double(window_key_count(P - 1, o.window));
      const double flops = 4.0 * double(o.D) * double(o.Hq) * keys;
      // K and V rows read once per kv head (bf16), q read and out written once
      const double bytes = 2.0 * 2.0 * keys * double(o.Hkv * o.D) + 2.0 * 2.0 * double(S * o.Hq * o.D);
      const auto run = [&] {
        cuda::decode_attention_forward(o.window, q, k, v, lengths, route_dev, out, Tensor(), o.ctas, P);
      };
      char extra[200];
      std::snprintf(extra, sizeof extra,
                    ", \"S\": %lld, \"cache\": %lld, \"full_sequences\": %lld, \"ctas\": %lld, \"kv_bytes\": %.6e",
                    (long long)S, (long long)P, (long long)std::count(route32.begin(), route32.end(), 1),
                    (long long)o.ctas,
                    2.0 * 2.0 * keys * double(o.Hkv * o.D));
      print_case("decode", o, 1, r, time_case(o, run), flops, bytes, "decode_attention_forward", extra);
    }
  }
}

}  // namespace swiattn::bench
