// tests/test_cuda_decode.cpp: the batched routed decode kernel (kernels/cuda/decode_attention.h)
// and the cache append against the CPU reference (kernels/cpu/decode_attention.h), by the
// bfloat16 rule of docs/cuda.md; the greedy argmax against the CPU's. Without a device each GPU
// test prints "SKIPPED (no CUDA device): ..." and returns. The whole model decoding on the GPU:
// tests/test_cuda_generate.cpp.
//
// Every case runs the same bfloat16-valued inputs four ways: CPU float64 (truth), CPU float32
// (control), CUDA float32, CUDA bfloat16; with err = ||x - truth|| / ||truth||:
//   float32:  err_cuda <= 2 * err_cpu32 + 1e-6
//   bfloat16: err_cuda <= 2 * err(CPU float32 rounded to bfloat16) + 1e-2
//   lse (float32 in both runs): err_cuda <= 2 * err_cpu32 + 1e-6
// Lengths cover 1, 3, w - 1, w, w + 1, 8191 with mixed routes in one launch; several grid sizes
// (the kernel's stream-K chunks: one CTA walking every range, a few, the default, and so many
// that ranges are cut into many pieces merged by the last CTA) exercise every way a range can
// fall into chunks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/cuda_test_util.h"
#include "kernels/cpu/decode_attention.h"
#include "tensor/cuda/allocator.h"
#include "kernels/cuda/decode_attention.h"
#include "tensor/cuda/device.h"
#include "model/sampling.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

double rel_error(const Tensor& x, const Tensor& ref) {  // both float64 on the host
  const double* a = x.data<double>();
  const double* r = ref.data<double>();
  double err = 0.0, norm = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) err += (a[i] - r[i]) * (a[i] - r[i]), norm += r[i] * r[i];
  return norm > 0.0 ? std::sqrt(err / norm) : std::sqrt(err);  // NaN stays NaN: it fails
}

struct DecodeCase {
  std::string name;
  int64_t P, Hq, Hkv, D, window, ctas;  // ctas: the kernel's grid (0 = its default)
  std::vector<int64_t> lengths;  // (S)
  std::vector<int32_t> routes;   // (S)
};

struct Run {
  Tensor out, lse;  // float64 on the host
};

// CPU reference in T (float or double) on the float64 inputs converted to T.
template <class T>
Run cpu_run(const DecodeCase& c, const Tensor& q64, const Tensor& k64, const Tensor& v64) {
  const DType dt = sizeof(T) == 8 ? DType::F64 : DType::F32;
  const Tensor q = q64.to(dt), k = k64.to(dt), v = v64.to(dt);
  const int64_t S = q.dim(0);
  Tensor out = Tensor::empty(q.shape(), dt), lse = Tensor::empty({S, c.Hq}, dt);
  cpu::decode_attention_forward<T>({S, c.P, c.Hq, c.Hkv, c.D}, c.window, q.data<T>(), k.data<T>(), v.data<T>(),
                                   c.lengths, c.routes, out.data<T>(), lse.data<T>());
  return {out.to(DType::F64), lse.to(DType::F64)};
}

Run cuda_run(const DecodeCase& c, DType dtype, const Tensor& q64, const Tensor& k64, const Tensor& v64) {
  const Tensor q = q64.to(dtype).to_device(), k = k64.to(dtype).to_device(), v = v64.to(dtype).to_device();
  std::vector<int32_t> len32(c.lengths.begin(), c.lengths.end());
  const int64_t S = q.dim(0);
  const Tensor lengths = Tensor::from_ints(len32, {S}).to_device();
  const Tensor route = Tensor::from_ints(c.routes, {S}).to_device();
  const Tensor out = Tensor::empty(q.shape(), dtype, Device::CUDA);
  const Tensor lse = Tensor::empty({S, c.Hq}, DType::F32, Device::CUDA);
  cuda::decode_attention_forward(c.window, q, k, v, lengths, route, out, lse, c.ctas);
  return {out.to_host().to(DType::F64), lse.to_host().to(DType::F64)};
}

void check_case(const DecodeCase& c, uint64_t seed) {
  const int64_t S = static_cast<int64_t>(c.lengths.size());
  // bfloat16-valued float64 inputs: every run sees the same numbers. Keys scaled so that the
  // softmax is neither flat nor one-hot.
  const Tensor q64 = Tensor::randn({S, c.Hq, c.D}, DType::F64, seed, 0.0, 1.5).to(DType::BF16).to(DType::F64);
  const Tensor k64 = Tensor::randn({S, c.P, c.Hkv, c.D}, DType::F64, seed + 1).to(DType::BF16).to(DType::F64);
  const Tensor v64 = Tensor::randn({S, c.P, c.Hkv, c.D}, DType::F64, seed + 2).to(DType::BF16).to(DType::F64);
  const Run truth = cpu_run<double>(c, q64, k64, v64), cpu32 = cpu_run<float>(c, q64, k64, v64);
  const Run gpu32 = cuda_run(c, DType::F32, q64, k64, v64), gpu16 = cuda_run(c, DType::BF16, q64, k64, v64);

  const double e32 = rel_error(gpu32.out, truth.out), c32 = rel_error(cpu32.out, truth.out);
  const double e16 = rel_error(gpu16.out, truth.out);
  const double c16 = rel_error(cpu32.out.to(DType::BF16).to(DType::F64), truth.out);
  const double l32 = rel_error(gpu32.lse, truth.lse), l16 = rel_error(gpu16.lse, truth.lse);
  const double lc = rel_error(cpu32.lse, truth.lse);
  std::printf("cuda decode %-34s out f32 %.2e (cpu %.2e)  bf16 %.2e (control %.2e)  lse %.2e / %.2e (cpu %.2e)\n",
              c.name.c_str(), e32, c32, e16, c16, l32, l16, lc);
  INFO(c.name);
  CHECK(e32 <= 2 * c32 + 1e-6);
  CHECK(e16 <= 2 * c16 + 1e-2);
  CHECK(l32 <= 2 * lc + 1e-6);
  CHECK(l16 <= 2 * lc + 1e-6);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda decode: the CPU reference reads the routed key range and rejects bad lengths") {
  // Two keys, values 1 and 3; q = 0 makes the scores equal: full attention averages (2), the
  // window of 1 reads the last key only (3).
  const cpu::DecodeShape s{2, 2, 1, 1, 1};
  const std::vector<double> q{0, 0}, k{0, 0, 0, 0}, v{1, 3, 1, 3};
  std::vector<double> out(2), lse(2);
  cpu::decode_attention_forward<double>(s, 1, q.data(), k.data(), v.data(), {2, 2}, {1, 0}, out.data(), lse.data());
  CHECK(out[0] == doctest::Approx(2.0));
  CHECK(out[1] == doctest::Approx(3.0));
  CHECK(lse[0] == doctest::Approx(std::log(2.0)));
  CHECK(lse[1] == doctest::Approx(0.0));
  bool threw = false;
  try {
    cpu::decode_attention_forward<double>(s, 1, q.data(), k.data(), v.data(), {0, 2}, {1, 0}, out.data(), lse.data());
  } catch (const Error& e) {
    threw = std::string(e.what()).find("length 0") != std::string::npos;
  }
  CHECK(threw);
}

TEST_CASE("cuda decode: matches the CPU reference, mixed routes, S = 16, lengths to 8191") {
  if (skip_without_device("decode_attention_forward vs the CPU")) return;
  StrictDevice strict;
  const int64_t w = 64;
  // S = 16: lengths 1, 3, w - 1, w, w + 1, 8191 under both routes, and some in between.
  const std::vector<int64_t> lengths{1, 3, w - 1, w, w + 1, 8191, 1, 3, w - 1, w, w + 1, 8191, 200, 777, 2, 4000};
  const std::vector<int32_t> routes{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1};
  for (int64_t ctas : {0, 1, 7, 1000})  // default, one CTA for everything, few, many pieces per range
    check_case({"long D64 G4 ctas " + std::to_string(ctas), 8192, 4, 1, 64, w, ctas, lengths, routes}, 11 + ctas);
  // D 128, G 2 (the benchmark's shape) with 8 kv heads: ranges of different heads side by side.
  const std::vector<int64_t> shorter{1, 3, w - 1, w, w + 1, 2100, 1, 3, w - 1, w, w + 1, 2100, 200, 777, 2, 1500};
  check_case({"D128 G2 Hkv8 ctas 300", 2100, 16, 8, 128, w, 300, shorter, routes}, 77);
  check_case({"D128 G2 Hkv8 ctas 0", 2100, 16, 8, 128, w, 0, shorter, routes}, 78);
}

TEST_CASE("cuda decode: head dims 64 and 128, groups 1, 2, 4, 8, windows") {
  if (skip_without_device("decode_attention_forward vs the CPU")) return;
  StrictDevice strict;
  Rng rng(5);
  for (int64_t D : {64, 128})
    for (int64_t G : {1, 2, 4, 8})
      for (int64_t w : {1, 33, 0}) {  // w = 0: no window, both routes read everything
        const int64_t Hkv = G == 8 ? 1 : 2, S = 16, P = 301;
        std::vector<int64_t> lengths(S);
        std::vector<int32_t> routes(S);
        for (int64_t s = 0; s < S; ++s) {
          lengths[s] = 1 + static_cast<int64_t>(rng.below(P));
          routes[s] = static_cast<int32_t>(rng.below(2));
        }
        lengths[0] = P, lengths[1] = 1, lengths[2] = w + 1 < P ? w + 1 : P;
        check_case({"D" + std::to_string(D) + " G" + std::to_string(G) + " w" + std::to_string(w), P, G * Hkv, Hkv,
                    D, w, 37, lengths, routes},
                   100 + D + G + w);
      }
}

TEST_CASE("cuda decode: the routes are read on the device") {
  if (skip_without_device("decode_attention_forward route flip")) return;
  StrictDevice strict;
  // Same inputs and host-side arguments, only the device route tensor differs between two
  // launches: the output of each sequence follows its route (full vs window give different outputs here).
  const int64_t S = 4, P = 500, H = 2, D = 64, w = 16;
  const Tensor q = Tensor::randn({S, H, D}, DType::F32, 1).to_device();
  const Tensor k = Tensor::randn({S, P, H, D}, DType::F32, 2).to_device();
  const Tensor v = Tensor::randn({S, P, H, D}, DType::F32, 3).to_device();
  const Tensor lengths = Tensor::from_ints({500, 400, 300, 200}, {S}).to_device();
  const Tensor route = Tensor::from_ints({1, 0, 1, 0}, {S}).to_device();
  const Tensor flipped = Tensor::from_ints({0, 1, 0, 1}, {S}).to_device();
  const Tensor out1 = Tensor::empty({S, H, D}, DType::F32, Device::CUDA);
  const Tensor out2 = Tensor::empty({S, H, D}, DType::F32, Device::CUDA);
  cuda::decode_attention_forward(w, q, k, v, lengths, route, out1, Tensor());
  cuda::decode_attention_forward(w, q, k, v, lengths, flipped, out2, Tensor());
  const std::vector<double> a = out1.to_host().to_vector(), b = out2.to_host().to_vector();
  for (int64_t s = 0; s < S; ++s) {
    double diff = 0.0;
    for (int64_t i = s * H * D; i < (s + 1) * H * D; ++i) diff = std::max(diff, std::abs(a[i] - b[i]));
    CHECK(diff > 1e-3);  // the ranges differ (>= 184 keys outside the window), so must the outputs
  }
}

TEST_CASE("cuda decode: pieces merged across launches, empty sequences, and the cache append") {
  if (skip_without_device("decode_attention_forward pieces / kv_cache_append")) return;
  StrictDevice strict;
  // Many CTAs cut every range into pieces; the per-range counters must be back at 0 after each
  // launch, so a second launch of the same inputs gives the same bits.
  const int64_t S = 5, P = 700, H = 4, Hkv = 2, D = 128, w = 50;
  const Tensor q = Tensor::randn({S, H, D}, DType::F32, 1).to(DType::BF16).to_device();
  const Tensor k = Tensor::randn({S, P, Hkv, D}, DType::F32, 2).to(DType::BF16).to_device();
  const Tensor v = Tensor::randn({S, P, Hkv, D}, DType::F32, 3).to(DType::BF16).to_device();
  const Tensor lengths = Tensor::from_ints({700, 0, 333, 1, 64}, {S}).to_device();  // sequence 1 is empty
  const Tensor route = Tensor::from_ints({1, 1, 0, 0, 1}, {S}).to_device();
  std::vector<std::vector<double>> outs, lses;
  for (int64_t ctas : {2000, 2000, 3}) {
    const Tensor out = Tensor::empty({S, H, D}, DType::BF16, Device::CUDA);
    const Tensor lse = Tensor::empty({S, H}, DType::F32, Device::CUDA);
    cuda::decode_attention_forward(w, q, k, v, lengths, route, out, lse, ctas);
    outs.push_back(out.to_host().to_vector());
    lses.push_back(lse.to_host().to_vector());
  }
  CHECK(outs[0] == outs[1]);  // bit for bit: the counters were reset
  CHECK(lses[0] == lses[1]);
  double diff = 0.0;          // 3 CTAs (few pieces) agree within rounding
  for (size_t i = 0; i < outs[0].size(); ++i) diff = std::max(diff, std::abs(outs[0][i] - outs[2][i]));
  CHECK(diff < 2e-2);
  for (int64_t i = H * D; i < 2 * H * D; ++i) CHECK(outs[0][i] == 0.0);  // the empty sequence: 0 ...
  for (int64_t h = 0; h < H; ++h) CHECK(std::isinf(lses[0][H + h]));    // ... and lse -inf
  for (int64_t h = 0; h < H; ++h) CHECK(std::isfinite(lses[0][h]));

  // The append: row positions[s] of each sequence gets k[s], nothing else changes.
  for (DType dt : {DType::F32, DType::BF16}) {
    const Tensor kn = Tensor::randn({S, Hkv, D}, DType::F32, 8).to(dt), vn = Tensor::randn({S, Hkv, D}, DType::F32, 9).to(dt);
    const Tensor kc = Tensor::randn({S, 6, Hkv, D}, DType::F32, 10).to(dt), vc = Tensor::randn({S, 6, Hkv, D}, DType::F32, 11).to(dt);
    const std::vector<int32_t> pos = {0, 5, 2, 3, 1};
    const Tensor kd = kc.to_device(), vd = vc.to_device();
    cuda::kv_cache_append(kn.to_device(), vn.to_device(), Tensor::from_ints(pos, {S}).to_device(), kd, vd);
    const Tensor k64 = kc.to(DType::F64), v64 = vc.to(DType::F64);
    const Tensor kn64 = kn.to(DType::F64), vn64 = vn.to(DType::F64);
    cpu::kv_cache_append<double>({S, 6, 0, Hkv, D}, kn64.data<double>(), vn64.data<double>(), pos.data(),
                                 k64.data<double>(), v64.data<double>());
    CHECK(kd.to_host().to(DType::F64).to_vector() == k64.to_vector());
    CHECK(vd.to_host().to(DType::F64).to_vector() == v64.to_vector());
  }
}

TEST_CASE("cuda decode: the greedy argmax per row matches the CPU's, ties and NaN included") {
  if (skip_without_device("argmax_rows")) return;
  StrictDevice strict;
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t V : {1, 3, 1000, 50257}) {
      const int64_t N = 7;
      Tensor x = Tensor::randn({N, V}, DType::F64, 20 + V).to(dt).to(DType::F64);  // values exact in dt
      double* p = x.data<double>();
      if (V >= 3) p[1 * V + V - 1] = p[1 * V + 1] = 50.0;  // row 1: a tie, the lower index wins
      std::vector<int32_t> expected(N);
      for (int64_t n = 0; n < N; ++n)
        expected[n] = int32_t(std::max_element(p + n * V, p + (n + 1) * V) - (p + n * V));  // first maximum
      CAPTURE(V);
      CHECK(argmax_rows(x.to(dt).to_device()) == expected);
      if (V >= 3) CHECK(expected[1] == 1);
      p[3 * V + V / 2] = std::nan("");
      CHECK_THROWS_WITH_AS(argmax_rows(x.to(dt).to_device()), doctest::Contains("row 3"), Error);
    }
}

TEST_CASE("cuda decode: unsupported shapes and bad inputs raise clear errors") {
  if (skip_without_device("decode_attention_forward errors")) return;
  const auto error_of = [](auto f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "<no exception thrown>";
  };
  const auto dev = [](const Shape& s, DType dt = DType::F32) { return Tensor::zeros(s, dt, Device::CUDA); };
  const Tensor len = Tensor::from_ints({5}, {1}).to_device(), route = Tensor::from_ints({1}, {1}).to_device();
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, dev({1, 2, 96}), dev({1, 8, 2, 96}), dev({1, 8, 2, 96}), len, route,
                                         dev({1, 2, 96}), Tensor());
        }).find("head dim 96 is not implemented") != std::string::npos);
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, dev({1, 3, 64}), dev({1, 8, 1, 64}), dev({1, 8, 1, 64}), len, route,
                                         dev({1, 3, 64}), Tensor());
        }).find("Hq / Hkv = 3 is not implemented") != std::string::npos);
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, dev({1, 2, 64}), dev({1, 8, 2, 64}), dev({1, 8, 2, 64}),
                                         dev({1}), route, dev({1, 2, 64}), Tensor());
        }).find("lengths and route must be int32") != std::string::npos);
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, dev({1, 2, 64}), dev({1, 8, 2, 64}, DType::BF16),
                                         dev({1, 8, 2, 64}, DType::BF16), len, route, dev({1, 2, 64}), Tensor());
        }).find("must share a dtype") != std::string::npos);
  const Tensor many_len = Tensor::from_ints(std::vector<int32_t>(1025, 1), {1025}).to_device();
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, dev({1025, 1, 64}), dev({1025, 1, 1, 64}), dev({1025, 1, 1, 64}), many_len,
                                         many_len, dev({1025, 1, 64}), Tensor());
        }).find("1025 sequences in one launch is not implemented") != std::string::npos);
  CHECK(error_of([&] {
          cuda::decode_attention_forward(0, Tensor::zeros({1, 2, 64}, DType::F32), dev({1, 8, 2, 64}),
                                         dev({1, 8, 2, 64}), len, route, dev({1, 2, 64}), Tensor());
        }).find("defined CUDA tensor") != std::string::npos);
}

}  // namespace
}  // namespace swiattn
