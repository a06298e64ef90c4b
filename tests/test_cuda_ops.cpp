// tests/test_cuda_ops.cpp: the CUDA backend checked against the CPU (docs/cuda.md).
//
// Without a CUDA device (tensor/cuda/device.h: device_count() == 0) every test that needs one
// prints one line "SKIPPED (no CUDA device): ..." and returns; doctest then counts it as passed,
// so the line is what tells. The GPU-free checks (bf16 rounding on the host, allocator buckets,
// the op table's coverage, the clear error when there is no device) run everywhere.
//
// The op table is tests/op_cases.h's, its Cuda rows: every op of autograd/op_list.h has at least
// one (an op without a case there does not compile; "cuda: every op has a row" checks the Cuda
// mode). Each row runs f on the same inputs four ways, forward and
// backward (L = sum(R * f(x)) for a fixed random R, then L.backward()):
//   CPU float64 (ground truth), CPU float32 (the control), CUDA float32, CUDA bfloat16.
// Inputs and R are drawn in float64 and rounded to bfloat16, so all four runs see exactly the
// same numbers. For the output and every input gradient, err = ||x - x64|| / ||x64|| (2-norm).
// Pass when (flash-attention's rule: at most twice the error of a low-precision control, plus a
// small floor for rounding that differs between two correct programs):
//   float32:  err_cuda <= 2 * err_cpu32 + 1e-6
//             (1e-6 is about 8 float32 ulps at unit scale: summation order, expf vs std::exp)
//   bfloat16: err_cuda <= 2 * err_ctrl16 + 1e-2,  err_ctrl16 = err of the CPU float32 result
//             rounded to bfloat16 (the error of merely storing the answer in bfloat16)
//             (1e-2 is 2.5 bfloat16 ulps (2^-8 = 3.9e-3): outputs a backward reads back are
//             stored in bfloat16 too, e.g. softmax's y, attention's out)
// Sizes are odd (1, 3, 7, 13, 33, 113, 1031), attention rows cover w = 1, w >= T, t < w, GQA
// and head dims 2 .. 256 (tests/op_cases.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/cuda_test_util.h"
#include "tests/op_cases.h"
#include "autograd/ops.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/device.h"
#include "tensor/random.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

std::string thrown_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no exception thrown>";
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

uint16_t bits(bfloat16 b) { return b.bits; }
float float_of_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---------------------------------------------------------------------------------------------
// GPU-free

TEST_CASE("cuda: bfloat16 conversion on the host rounds to nearest even") {
  auto from_bits = [](uint32_t u) { return bits(bf16_from_float(float_of_bits(u))); };
  CHECK(from_bits(0x3F800000u) == 0x3F80);  // 1
  CHECK(from_bits(0x3F808000u) == 0x3F80);  // 1 + 2^-8: a tie, to the even 1
  CHECK(from_bits(0x3F818000u) == 0x3F82);  // 1 + 3 * 2^-8: a tie, to the even 1 + 2^-6
  CHECK(from_bits(0x3F808001u) == 0x3F81);  // just above the tie: up
  CHECK(from_bits(0x3F807FFFu) == 0x3F80);  // just below the tie: down
  CHECK(from_bits(0xBF808000u) == 0xBF80);  // negative tie
  CHECK(from_bits(0x80000000u) == 0x8000);  // -0 keeps its sign
  CHECK(from_bits(0x00008000u) == 0x0000);  // subnormal tie, to even (0)
  CHECK(from_bits(0x00018000u) == 0x0002);  // subnormal tie, to even (2)
  CHECK(from_bits(0x7F7F7FFFu) == 0x7F7F);  // the largest value that stays finite
  CHECK(from_bits(0x7F7FFFFFu) == 0x7F80);  // float32 max rounds up to infinity
  CHECK(from_bits(0x7F800000u) == 0x7F80);  // +inf
  CHECK(from_bits(0xFF800000u) == 0xFF80);  // -inf
  CHECK(std::isnan(bf16_to_float(bf16_from_float(float_of_bits(0x7F800001u)))));  // a NaN stays NaN
  CHECK(std::isnan(bf16_to_float(bf16_from_float(float_of_bits(0xFFC00000u)))));
  CHECK(bf16_to_float({0x3F80}) == 1.0f);
  CHECK(bf16_to_float({0x4049}) == 3.140625f);
  CHECK(bf16_to_float({0xC000}) == -2.0f);

  // From double: one rounding. 1 + 2^-8 + 2^-30 is above the tie; through float32 it would
  // first become the tie itself and then round down to 1.
  const double above_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  CHECK(bits(bf16_from_float(static_cast<float>(above_tie))) == 0x3F80);  // double rounding
  CHECK(bits(bf16_from_double(above_tie)) == 0x3F81);
  CHECK(bits(bf16_from_double(1.0 + std::ldexp(1.0, -8))) == 0x3F80);
  CHECK(bits(bf16_from_double(-(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)))) == 0xBF81);
  CHECK(bits(bf16_from_double(3.0)) == 0x4040);
  CHECK(bits(bf16_from_double(1e300)) == 0x7F80);
  CHECK(bits(bf16_from_double(-1e300)) == 0xFF80);
  CHECK(bits(bf16_from_double(1e-300)) == 0x0000);

  // Through tensors on the CPU: to(BF16), at(), to(F32) back, fill.
  const Tensor t = Tensor::from_vector({1.0, 1.0 + std::ldexp(1.0, -8), above_tie, -2.5}, {4}, DType::F64);
  const Tensor b = t.to(DType::BF16);
  CHECK(b.dtype() == DType::BF16);
  CHECK(b.at(0) == 1.0);
  CHECK(b.at(1) == 1.0);
  CHECK(b.at(2) == 1.0 + std::ldexp(1.0, -7));
  CHECK(b.at(3) == -2.5);
  CHECK(b.to(DType::F32).to_vector() == std::vector<double>{1.0, 1.0, 1.0 + std::ldexp(1.0, -7), -2.5});
  Tensor f = Tensor::empty({2}, DType::BF16);
  f.fill(0.1);
  CHECK(f.data<bfloat16>()[1].bits == bf16_from_double(0.1).bits);
}

TEST_CASE("cuda: allocator size buckets") {
  CHECK(cuda::bucket_size(0) == 0);
  CHECK(cuda::bucket_size(1) == 512);
  CHECK(cuda::bucket_size(512) == 512);
  CHECK(cuda::bucket_size(513) == 1024);
  CHECK(cuda::bucket_size(4000) == 4096);
  CHECK(cuda::bucket_size(size_t(1) << 20) == (size_t(1) << 20));
  CHECK(cuda::bucket_size((size_t(1) << 20) + 1) == (size_t(2) << 20));
  CHECK(cuda::bucket_size(size_t(3) << 20) == (size_t(4) << 20));
  CHECK(cuda::bucket_size((size_t(5) << 20) - 7) == (size_t(6) << 20));
}

TEST_CASE("cuda: asking for a CUDA tensor without a CUDA device is a clear error") {
  if (cuda::device_count() > 0) {
    const std::string line = "not applicable: a CUDA device is present (" + cuda::device_description() + ")";
    MESSAGE(line);
    return;
  }
  const std::string m = thrown_message([] { Tensor::empty({3}, DType::F32, Device::CUDA); });
  INFO(m);
  CHECK(contains(m, "cuda"));
  CHECK((contains(m, "no CUDA device") || contains(m, "not compiled")));
  CHECK(contains(thrown_message([] { Tensor::zeros({2}, DType::F32).to_device(); }), "cuda"));
}

// ---------------------------------------------------------------------------------------------
// Device tensors

TEST_CASE("cuda: the caching allocator reuses freed blocks") {
  if (skip_without_device("allocator reuse")) return;
  cuda::release_cached_blocks();
  CHECK(cuda::allocator_stats().bytes_cached == 0);
  const cuda::AllocatorStats s0 = cuda::allocator_stats();
  const void* first = nullptr;
  {
    const Tensor a = Tensor::empty({1000}, DType::F32, Device::CUDA);  // 4000 bytes: bucket 4096
    first = a.raw();
  }
  CHECK(cuda::allocator_stats().bytes_cached == 4096);
  {
    const Tensor b = Tensor::empty({1001}, DType::F32, Device::CUDA);  // 4004 bytes: same bucket
    CHECK(b.raw() == first);
    const cuda::AllocatorStats s1 = cuda::allocator_stats();
    CHECK(s1.malloc_calls == s0.malloc_calls + 1);
    CHECK(s1.reuses == s0.reuses + 1);
    CHECK(s1.bytes_in_use == s0.bytes_in_use + 4096);
    const Tensor c = Tensor::empty({1000}, DType::F32, Device::CUDA);  // b still alive: a new block
    CHECK(c.raw() != first);
  }
  cuda::release_cached_blocks();
  CHECK(cuda::allocator_stats().bytes_cached == 0);
  CHECK(cuda::allocator_stats().bytes_in_use == s0.bytes_in_use);
}

TEST_CASE("cuda: host <-> device round trips are exact") {
  if (skip_without_device("host <-> device round trips")) return;
  Rng rng(11);
  for (DType dtype : {DType::F32, DType::F64, DType::BF16, DType::I32}) {
    Tensor host = Tensor::empty({3, 7, 13}, dtype);
    auto* p = static_cast<unsigned char*>(host.raw());
    for (size_t i = 0; i < host.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng.below(256));  // any bits, NaNs too
    const Tensor dev = host.to_device();
    CHECK(dev.device() == Device::CUDA);
    CHECK(dev.dtype() == dtype);
    const Tensor back = dev.to_host();
    CHECK(std::memcmp(back.raw(), host.raw(), host.nbytes()) == 0);
    const Tensor copy = dev.clone().to_host();  // device -> device, then back
    CHECK(std::memcmp(copy.raw(), host.raw(), host.nbytes()) == 0);
    const Tensor rows = dev.slice(1, 3).to_host();  // a view at an offset
    CHECK(std::memcmp(rows.raw(), host.slice(1, 3).raw(), rows.nbytes()) == 0);
  }
  const Tensor x = Tensor::randn({5, 3}, DType::F32, 3);
  const Tensor d = x.to_device();
  CHECK(d.at(7) == x.at(7));
  CHECK(d.to_vector() == x.to_vector());
  CHECK(Tensor::zeros({4}, DType::F32, Device::CUDA).to_vector() == std::vector<double>(4, 0.0));
  Tensor filled = Tensor::empty({5}, DType::BF16, Device::CUDA);
  filled.fill(-1.5);
  CHECK(filled.to_vector() == std::vector<double>(5, -1.5));
  CHECK(Tensor::from_ints({3, -1, 7}, {3}).to_device().to_ints() == std::vector<int32_t>{3, -1, 7});
}

TEST_CASE("cuda: conversions on the device give the same bits as the host") {
  if (skip_without_device("device dtype conversions")) return;
  Rng rng(5);
  const int64_t n = 1 << 16;
  Tensor f32 = Tensor::empty({n}, DType::F32);
  uint32_t* u = static_cast<uint32_t*>(f32.raw());
  for (int64_t i = 0; i < n; ++i) {
    uint32_t v = static_cast<uint32_t>(rng.below(uint64_t(1) << 32));
    if (i % 4 == 0) v = (v & 0xFFFF0000u) | 0x8000u;  // exact ties
    if ((v & 0x7F800000u) == 0x7F800000u) v &= 0xBFFFFFFFu;  // no NaN / inf here: their bits may differ
    u[i] = v;
  }
  const Tensor on_device = f32.to_device().to(DType::BF16).to_host();
  const Tensor on_host = f32.to(DType::BF16);
  CHECK(std::memcmp(on_device.raw(), on_host.raw(), on_host.nbytes()) == 0);
  CHECK(std::memcmp(on_device.to_device().to(DType::F32).to_host().raw(), on_host.to(DType::F32).raw(), f32.nbytes()) == 0);
  const Tensor f64 = Tensor::randn({4097}, DType::F64, 9, 0.0, 100.0);
  CHECK(std::memcmp(f64.to_device().to(DType::BF16).to_host().raw(), f64.to(DType::BF16).raw(), 2 * 4097) == 0);
  CHECK(std::memcmp(f64.to_device().to(DType::F32).to_host().raw(), f64.to(DType::F32).raw(), 4 * 4097) == 0);
}

TEST_CASE("cuda: an op on mixed devices or float64 on CUDA names the op and the devices") {
  if (skip_without_device("mixed-device errors")) return;
  const Tensor a = Tensor::randn({3, 7}, DType::F32, 1);
  const Var on_gpu(a.to_device()), on_cpu(a);
  struct Expect {
    std::function<void()> f;
    std::vector<std::string> parts;
  };
  const Tensor q = Tensor::randn({1, 5, 2, 4}, DType::F32, 2);
  const std::vector<Expect> cases = {
      {[&] { add(on_gpu, on_cpu); }, {"add", "devices differ", "cuda", "cpu", "(3, 7)"}},
      {[&] { mul(on_cpu, on_gpu); }, {"mul", "devices differ", "cpu", "cuda"}},
      {[&] { matmul(on_gpu, on_cpu, false, true); }, {"matmul", "devices differ", "cuda", "cpu"}},
      {[&] { swiglu(on_gpu, on_cpu); }, {"swiglu", "devices differ"}},
      {[&] { rms_norm(on_gpu, Var(Tensor::full({7}, 1.0, DType::F32)), 1e-6); }, {"rms_norm", "devices differ"}},
      {[&] { attention(Var(q.to_device()), Var(q), Var(q.to_device()), 0); }, {"attention", "devices differ", "cuda", "cpu"}},
      {[&] { sigmoid(Var(a.to(DType::F64).to_device())); }, {"sigmoid", "float64", "not supported on CUDA"}},
      {[&] { sigmoid(Var(a.to(DType::BF16))); }, {"sigmoid", "bfloat16"}},  // bf16 computes only on CUDA
  };
  for (const Expect& e : cases) {
    const std::string m = thrown_message(e.f);
    for (const std::string& part : e.parts) {
      INFO("message: ", m);
      CHECK(contains(m, part));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The op table

using testing::OpCase;
using testing::op_cases;

// The output and every input gradient of one run, as float64 host tensors.
std::vector<Tensor> run_case(const OpCase& c, const std::vector<Tensor>& inputs64, const Tensor& R64, DType dtype,
                             Device device) {
  std::vector<Var> x;
  for (const Tensor& t : inputs64) x.emplace_back(t.to(dtype).to(device), true);
  const Var y = c.f(x);
  REQUIRE(y.value().device() == device);
  Var loss = sum(mul(y, Var(R64.to(dtype).to(device))));
  loss.backward();
  std::vector<Tensor> result{y.value().to_host().to(DType::F64)};
  for (const Var& xi : x)
    result.push_back(xi.grad().defined() ? xi.grad().to_host().to(DType::F64) : Tensor::zeros(xi.shape(), DType::F64));
  return result;
}

double rel_error(const Tensor& x, const Tensor& ref) {
  const double* a = x.data<double>();
  const double* r = ref.data<double>();
  double err = 0.0, norm = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    err += (a[i] - r[i]) * (a[i] - r[i]);
    norm += r[i] * r[i];
  }
  return norm > 0.0 ? std::sqrt(err / norm) : std::sqrt(err);  // NaN stays NaN: it fails
}

// Rounded to bfloat16 and back: the control for the bfloat16 runs.
Tensor as_bf16(const Tensor& t64) { return t64.to(DType::BF16).to(DType::F64); }

struct OpErrors {  // the largest errors seen per op, for the summary (and docs/cuda.md)
  double f32 = 0, f32_control = 0, bf16 = 0, bf16_control = 0;
};

TEST_CASE("cuda: every op has a row in the CUDA table") {
  std::set<OpId> covered;
  for (const OpCase& c : op_cases(testing::kCuda)) covered.insert(c.op);
  for (int i = 0; i < kNumOps; ++i) {
    INFO("op without a CUDA check: ", op_name(static_cast<OpId>(i)));
    CHECK(covered.count(static_cast<OpId>(i)) == 1);
  }
}

TEST_CASE("cuda: every op matches the CPU, forward and backward, float32 and bfloat16") {
  if (skip_without_device("the CUDA op table (" + std::to_string(op_cases(testing::kCuda).size()) + " rows)")) return;
  StrictDevice strict;
  std::map<std::string, OpErrors> summary;
  std::printf("cuda op table on %s: relative 2-norm error vs CPU float64\n", cuda::device_description().c_str());
  std::printf("%-40s %-6s %12s %12s %12s %12s %12s\n", "case", "tensor", "cuda f32", "cpu f32", "cuda bf16",
              "ctrl bf16", "bf16 bound");
  for (const OpCase& c : op_cases(testing::kCuda)) {
    std::vector<Tensor> inputs;
    for (size_t k = 0; k < c.inputs.size(); ++k)
      inputs.push_back(as_bf16(Tensor::randn(c.inputs[k], DType::F64, derive_seed(2024, k), 0.0, c.input_scale)));
    Shape out_shape;
    {
      NoGradGuard no_grad;
      std::vector<Var> x;
      for (const Tensor& t : inputs) x.emplace_back(t);
      out_shape = c.f(x).shape();
    }
    const Tensor R = as_bf16(Tensor::randn(out_shape, DType::F64, 77));
    std::vector<Tensor> truth, cpu32, gpu32, gpu16;
    try {
      truth = run_case(c, inputs, R, DType::F64, Device::CPU);
      cpu32 = run_case(c, inputs, R, DType::F32, Device::CPU);
      gpu32 = run_case(c, inputs, R, DType::F32, Device::CUDA);
      gpu16 = run_case(c, inputs, R, DType::BF16, Device::CUDA);
    } catch (const Error& e) {
      FAIL_CHECK(c.name, ": ", e.what());
      continue;
    }
    OpErrors& s = summary[c.op == OpId::Leaf ? "chain" : op_name(c.op)];
    for (size_t i = 0; i < truth.size(); ++i) {
      const std::string which = i == 0 ? "out" : "d" + std::to_string(i - 1);
      const double e32 = rel_error(gpu32[i], truth[i]), c32 = rel_error(cpu32[i], truth[i]);
      const double e16 = rel_error(gpu16[i], truth[i]), c16 = rel_error(as_bf16(cpu32[i]), truth[i]);
      const double bound32 = 2 * c32 + 1e-6, bound16 = 2 * c16 + 1e-2;
      std::printf("%-40s %-6s %12.3e %12.3e %12.3e %12.3e %12.3e%s\n", c.name.c_str(), which.c_str(), e32, c32, e16,
                  c16, bound16, (e32 <= bound32 && e16 <= bound16) ? "" : "  <-- FAIL");
      INFO(c.name, " ", which, ": cuda f32 ", e32, " (bound ", bound32, "), cuda bf16 ", e16, " (bound ", bound16, ")");
      CHECK(e32 <= bound32);
      CHECK(e16 <= bound16);
      s.f32 = std::max(s.f32, e32);
      s.f32_control = std::max(s.f32_control, c32);
      s.bf16 = std::max(s.bf16, e16);
      s.bf16_control = std::max(s.bf16_control, c16);
    }
  }
  std::printf("\nper op, the largest error over its rows and tensors (output and gradients):\n");
  std::printf("| op | cuda f32 | cpu f32 (control) | cuda bf16 | bf16 control |\n|---|---|---|---|---|\n");
  for (const auto& [op, s] : summary)
    std::printf("| %s | %.2e | %.2e | %.2e | %.2e |\n", op.c_str(), s.f32, s.f32_control, s.bf16, s.bf16_control);
}

TEST_CASE("cuda: switch attention without gradients skips the far keys for gate 0, as on the CPU") {
  if (skip_without_device("switch attention inference path")) return;
  StrictDevice strict;
  const Tensor q = as_bf16(Tensor::randn({2, 13, 2, 8}, DType::F64, 1));
  const Tensor k = as_bf16(Tensor::randn({2, 13, 1, 8}, DType::F64, 2));
  const Tensor v = as_bf16(Tensor::randn({2, 13, 1, 8}, DType::F64, 3));
  std::vector<double> g(26);
  for (size_t i = 0; i < g.size(); ++i) g[i] = i % 2 ? 1.0 : 0.0;
  const Tensor gate = Tensor::from_vector(g, {2, 13}, DType::F64);
  NoGradGuard no_grad;
  auto run = [&](DType dtype, Device device) {
    auto in = [&](const Tensor& t) { return Var(t.to(dtype).to(device)); };
    return switch_attention(in(q), in(k), in(v), 4, in(gate)).value().to_host().to(DType::F64);
  };
  const Tensor truth = run(DType::F64, Device::CPU);
  const double e32 = rel_error(run(DType::F32, Device::CUDA), truth);
  const double c32 = rel_error(run(DType::F32, Device::CPU), truth);
  INFO("cuda f32 ", e32, " cpu f32 ", c32);
  CHECK(e32 <= 2 * c32 + 1e-6);
}

}  // namespace
}  // namespace swiattn
