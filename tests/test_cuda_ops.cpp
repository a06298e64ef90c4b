// tests/test_cuda_ops.cpp: the CUDA backend checked against the CPU (docs/cuda.md).
//
// Without a CUDA device (tensor/cuda/device.h: device_count() == 0) every test that needs one
// prints one line "SKIPPED (no CUDA device): ..." and returns; doctest then counts it as passed,
// so the line is what tells. The GPU-free checks (bf16 rounding on the host, allocator buckets,
// the op table's coverage, the clear error when there is no device) run everywhere.
//
// The op table: every op of autograd/op_list.h has at least one row (static_assert below, and
// "cuda: every op has a row"). Each row runs f on the same inputs four ways, forward and
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
// and head dims 2 .. 256.
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
#include "autograd/ops.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/device.h"
#include "tensor/random.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

static_assert(kNumOps == 22, "a new op? add its rows to cuda_cases() below, then update this count");

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

using X = const std::vector<Var>&;

struct CudaCase {
  std::string name;  // what a failure prints
  OpId op;           // the op under test (OpId::Leaf: a chain of ops, not counted for coverage)
  std::vector<Shape> inputs;
  std::function<Var(X)> f;
  double input_scale = 1.0;
};

Tensor ids_tensor(const Shape& shape, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(shape_numel(shape)));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(vocab));
  return Tensor::from_ints(ids, shape);
}

// A constant float tensor (given in float64) in the dtype and on the device of `like`.
Var constant_like(const Tensor& value64, const Var& like) {
  return Var(value64.to(like.dtype()).to(like.value().device()));
}
// Index tensors moved to the device of `like` (the CUDA kernels also take them from the host).
Tensor ids_like(const Tensor& ids, const Var& like) { return ids.to(like.value().device()); }

CudaCase attention_row(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w) {
  char name[96];
  std::snprintf(name, sizeof name, "attention B%lld T%lld H%lld Hkv%lld D%lld w%lld", (long long)B, (long long)T,
                (long long)H, (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::Attention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}},
          [w](X x) { return attention(x[0], x[1], x[2], w); }};
}

CudaCase switch_row(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w, SwitchMethod method) {
  char name[112];
  std::snprintf(name, sizeof name, "switch %s B%lld T%lld H%lld Hkv%lld D%lld w%lld",
                method == SwitchMethod::OnePass ? "1-pass" : "2-pass", (long long)B, (long long)T, (long long)H,
                (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::SwitchAttention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}, {B, T}},
          [w, method](X x) { return switch_attention(x[0], x[1], x[2], w, x[3], nullptr, method); }};
}

std::vector<CudaCase> cuda_cases() {
  const Tensor ids = ids_tensor({3, 7}, 13, 7);  // repeated ids: their gradients accumulate
  const Tensor big_ids = ids_tensor({4, 257}, 40, 12);  // ids < 40 of a vocabulary of 300
  std::vector<int32_t> t = ids_tensor({7}, 13, 8).to_ints();
  t[2] = -100;  // an ignored row
  const Tensor targets = Tensor::from_ints(t, {7});
  const Tensor all_ignored = Tensor::from_ints(std::vector<int32_t>(3, -100), {3});
  const Tensor big_targets = ids_tensor({9}, 1031, 9);
  // Hard 0 / 1 factors for the gate: rows routed to one branch only (the kernels skip the other).
  std::vector<double> hard(2 * 7);
  for (size_t i = 0; i < hard.size(); ++i) hard[i] = (i % 3 == 0) ? 0.0 : 1.0;
  const Tensor mask = Tensor::from_vector(hard, {2, 7}, DType::F64);
  const Tensor chain_ids = ids_tensor({2, 9}, 13, 10), chain_targets = ids_tensor({18}, 13, 11);
  return {
      {"matmul (7,3)x(3,5)", OpId::Matmul, {{7, 3}, {3, 5}}, [](X x) { return matmul(x[0], x[1]); }},
      {"matmul A^T", OpId::Matmul, {{3, 7}, {3, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
      {"matmul B^T", OpId::Matmul, {{7, 3}, {5, 3}}, [](X x) { return matmul(x[0], x[1], false, true); }},
      {"matmul A^T B^T", OpId::Matmul, {{3, 7}, {5, 3}}, [](X x) { return matmul(x[0], x[1], true, true); }},
      {"matmul batched (2,3,7,5)x(2,3,5,1)", OpId::Matmul, {{2, 3, 7, 5}, {2, 3, 5, 1}}, [](X x) { return matmul(x[0], x[1]); }},
      {"matmul batched A^T B^T (3,5,7)(3,9,5)", OpId::Matmul, {{3, 5, 7}, {3, 9, 5}}, [](X x) { return matmul(x[0], x[1], true, true); }},
      {"matmul linear (3,7,13)x(5,13)^T", OpId::Matmul, {{3, 7, 13}, {5, 13}}, [](X x) { return matmul(x[0], x[1], false, true); }},
      {"matmul shared B, A^T (2,7,3)^T x(7,5)", OpId::Matmul, {{2, 7, 3}, {7, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
      {"matmul (37,129)x(129,67)", OpId::Matmul, {{37, 129}, {129, 67}}, [](X x) { return matmul(x[0], x[1]); }},
      {"matmul M=1 (1,33)x(33,1)", OpId::Matmul, {{1, 33}, {33, 1}}, [](X x) { return matmul(x[0], x[1]); }},
      {"add same shape (3,7)", OpId::Add, {{3, 7}, {3, 7}}, [](X x) { return add(x[0], x[1]); }},
      {"add bias (3,7,5)+(5)", OpId::Add, {{3, 7, 5}, {5}}, [](X x) { return add(x[0], x[1]); }},
      {"add (3,7,5)+(3,7,1)", OpId::Add, {{3, 7, 5}, {3, 7, 1}}, [](X x) { return add(x[0], x[1]); }},
      {"add scalar (7)+()", OpId::Add, {{7}, {}}, [](X x) { return add(x[0], x[1]); }},
      // a router bias: one element read by 8 x 1031 outputs (130 fixed-order chunks)
      {"add router bias (8,1031)+(1)", OpId::Add, {{8, 1031}, {1}}, [](X x) { return add(x[0], x[1]); }},
      {"add (1031,3)+(1031,3)", OpId::Add, {{1031, 3}, {1031, 3}}, [](X x) { return add(x[0], x[1]); }},
      {"sub (1,5)-(7,1)", OpId::Sub, {{1, 5}, {7, 1}}, [](X x) { return sub(x[0], x[1]); }},
      {"sub same shape (13)", OpId::Sub, {{13}, {13}}, [](X x) { return sub(x[0], x[1]); }},
      {"mul same shape (3,7)", OpId::Mul, {{3, 7}, {3, 7}}, [](X x) { return mul(x[0], x[1]); }},
      {"mul route (3,7,1)*(3,7,5)", OpId::Mul, {{3, 7, 1}, {3, 7, 5}}, [](X x) { return mul(x[0], x[1]); }},
      {"mul self x*x", OpId::Mul, {{7}}, [](X x) { return mul(x[0], x[0]); }},
      {"scale (3,7) by -2.5", OpId::Scale, {{3, 7}}, [](X x) { return scale(x[0], -2.5); }},
      {"sum (3,7)", OpId::Sum, {{3, 7}}, [](X x) { return sum(x[0]); }},
      {"sum (100003)", OpId::Sum, {{100003}}, [](X x) { return sum(x[0]); }},
      {"mean (33)", OpId::Mean, {{33}}, [](X x) { return mean(x[0]); }},
      {"embedding (13,5)[3,7]", OpId::Embedding, {{13, 5}}, [ids](X x) { return embedding(x[0], ids); }},
      {"embedding, ids on the device", OpId::Embedding, {{13, 5}}, [ids](X x) { return embedding(x[0], ids_like(ids, x[0])); }},
      {"embedding (300,7)[4,257]: unused ids, long runs", OpId::Embedding, {{300, 7}}, [big_ids](X x) { return embedding(x[0], big_ids); }},
      {"rms_norm (3,7,13)", OpId::RmsNorm, {{3, 7, 13}, {13}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }},
      // (C = 1 is left to the gradcheck table: there dx is 0 up to eps, all cancellation, and a
      // relative error of it measures only rounding noise.)
      {"rms_norm C=2 (7,2)", OpId::RmsNorm, {{7, 2}, {2}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }},
      {"rms_norm (5,1031)", OpId::RmsNorm, {{5, 1031}, {1031}}, [](X x) { return rms_norm(x[0], x[1], 1e-5); }},
      {"rope (2,7,3,8)", OpId::Rope, {{2, 7, 3, 8}}, [](X x) { return rope(x[0], 10000.0); }},
      {"rope offset 5, base 100 (1,13,1,2)", OpId::Rope, {{1, 13, 1, 2}}, [](X x) { return rope(x[0], 100.0, 5); }},
      {"rope row positions {0, 9, 2} + offset 1 (3,5,2,4)", OpId::Rope, {{3, 5, 2, 4}},
       [](X x) { return rope(x[0], 100.0, 1, ids_like(Tensor::from_ints({0, 9, 2}, {3}), x[0])); }},
      {"sigmoid (3,7)", OpId::Sigmoid, {{3, 7}}, [](X x) { return sigmoid(x[0]); }, 4.0},
      {"silu (3,7)", OpId::Silu, {{3, 7}}, [](X x) { return silu(x[0]); }, 4.0},
      {"softplus (3,7)", OpId::Softplus, {{3, 7}}, [](X x) { return softplus(x[0]); }, 4.0},
      {"swiglu (13,7)", OpId::Swiglu, {{13, 7}, {13, 7}}, [](X x) { return swiglu(x[0], x[1]); }, 3.0},
      {"softmax (7,13)", OpId::Softmax, {{7, 13}}, [](X x) { return softmax(x[0]); }, 3.0},
      {"softmax C=1 (3,1)", OpId::Softmax, {{3, 1}}, [](X x) { return softmax(x[0]); }},
      {"softmax (5,1031)", OpId::Softmax, {{5, 1031}}, [](X x) { return softmax(x[0]); }, 3.0},
      {"cross_entropy (7,13), one row ignored", OpId::CrossEntropy, {{7, 13}},
       [targets](X x) { return cross_entropy(x[0], targets); }, 3.0},
      {"cross_entropy, targets on the device", OpId::CrossEntropy, {{7, 13}},
       [targets](X x) { return cross_entropy(x[0], ids_like(targets, x[0])); }, 3.0},
      {"cross_entropy all rows ignored", OpId::CrossEntropy, {{3, 13}},
       [all_ignored](X x) { return add(cross_entropy(x[0], all_ignored), sum(x[0])); }},
      {"cross_entropy (9,1031)", OpId::CrossEntropy, {{9, 1031}},
       [big_targets](X x) { return cross_entropy(x[0], big_targets); }, 3.0},
      {"stop_gradient x*sg(x)", OpId::StopGradient, {{3, 7}}, [](X x) { return mul(x[0], stop_gradient(x[0])); }},
      {"reshape (3,7,2)->(6,7)", OpId::Reshape, {{3, 7, 2}}, [](X x) { return mul(reshape(x[0], {6, 7}), reshape(x[0], {6, 7})); }},
      {"split_heads / merge_heads", OpId::Reshape, {{2, 3, 12}}, [](X x) { return merge_heads(rope(split_heads(x[0], 3), 10000.0)); }},
      {"transpose (3,7,5) dims 0,2", OpId::Transpose, {{3, 7, 5}}, [](X x) { return transpose(x[0], 0, 2); }},
      {"transpose (2,3,7,5) dims 1,2", OpId::Transpose, {{2, 3, 7, 5}}, [](X x) { return transpose(x[0], 1, 2); }},
      // cast: inputs are bfloat16-valued, so rounding to bfloat16 is exact and every run sees the
      // same values; the gradient flows back through bfloat16 and float32 to the input's dtype.
      {"cast round trip through bfloat16", OpId::Cast, {{3, 7}, {3, 7}},
       [](X x) { return mul(cast(cast(x[0], DType::BF16), x[0].dtype()), x[1]); }},
      {"cast round trip through float32 (1031)", OpId::Cast, {{1031}},
       [](X x) { return cast(cast(x[0], DType::F32), x[0].dtype()); }},
      attention_row(1, 1, 1, 1, 4, 0),      // T = 1
      attention_row(2, 7, 2, 2, 3, 0),      // full causal, odd head dim
      attention_row(1, 7, 2, 1, 4, 1),      // w = 1: each query reads only itself
      attention_row(1, 7, 4, 2, 4, 3),      // GQA, w = 3 < T: rows t < 3 see fewer than w keys
      attention_row(1, 13, 2, 1, 4, 13),    // w = T
      attention_row(1, 7, 2, 2, 4, 33),     // w > T: same as full
      attention_row(1, 33, 3, 1, 2, 7),     // 3 query heads on one kv head
      attention_row(2, 113, 4, 2, 64, 17),  // a realistic head dim, T = 113
      attention_row(1, 37, 2, 2, 129, 0),   // D = 129: 5 entries on one lane, 4 on the others
      attention_row(1, 9, 1, 1, 256, 4),    // D = 256: the largest supported
      switch_row(2, 7, 2, 1, 4, 3, SwitchMethod::OnePass),
      switch_row(1, 13, 4, 2, 3, 1, SwitchMethod::OnePass),  // w = 1
      switch_row(1, 7, 2, 2, 4, 13, SwitchMethod::OnePass),  // T < w: the branches coincide
      switch_row(1, 33, 2, 1, 2, 5, SwitchMethod::OnePass),
      switch_row(2, 113, 4, 2, 64, 17, SwitchMethod::OnePass),
      switch_row(2, 7, 2, 1, 4, 3, SwitchMethod::TwoPassReference),
      switch_row(2, 113, 4, 2, 64, 17, SwitchMethod::TwoPassReference),
      {"switch 1-pass, hard 0/1 gates", OpId::SwitchAttention, {{2, 7, 2, 4}, {2, 7, 1, 4}, {2, 7, 1, 4}, {2, 7}},
       [mask](X x) { return switch_attention(x[0], x[1], x[2], 3, mul(x[3], constant_like(mask, x[3]))); }},
      {"switch branch_diff_sq * mean(out)", OpId::SwitchAttention, {{2, 7, 2, 4}, {2, 7, 1, 4}, {2, 7, 1, 4}, {2, 7}},
       [](X x) {
         Tensor diff;
         const Var out = switch_attention(x[0], x[1], x[2], 3, x[3], &diff);
         return mul(Var(diff.to(x[0].dtype())), mean(out));
       }},
      // Ops composed: W is read twice (embedding and tied logits), so its gradient accumulates
      // on the device from two backward closures.
      {"chain: a tiny transformer layer + loss", OpId::Leaf, {{13, 16}, {16}, {16, 16}, {8, 16}, {8, 16}, {16, 16}},
       [chain_ids, chain_targets](X x) {
         const Var h0 = embedding(x[0], chain_ids);  // (2, 9, 16)
         const Var h = rms_norm(h0, x[1], 1e-6);
         const Var q = rope(split_heads(matmul(h, x[2], false, true), 2), 10000.0);  // (2, 9, 2, 8)
         const Var k = rope(split_heads(matmul(h, x[3], false, true), 1), 10000.0);  // (2, 9, 1, 8)
         const Var v = split_heads(matmul(h, x[4], false, true), 1);
         const Var r = add(h0, matmul(merge_heads(attention(q, k, v, 4)), x[5], false, true));
         return cross_entropy(reshape(matmul(r, x[0], false, true), {18, 13}), chain_targets);
       }, 0.5},
  };
}

// The output and every input gradient of one run, as float64 host tensors.
std::vector<Tensor> run_case(const CudaCase& c, const std::vector<Tensor>& inputs64, const Tensor& R64, DType dtype,
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
  for (const CudaCase& c : cuda_cases()) covered.insert(c.op);
  for (int i = 0; i < kNumOps; ++i) {
    INFO("op without a CUDA check: ", op_name(static_cast<OpId>(i)));
    CHECK(covered.count(static_cast<OpId>(i)) == 1);
  }
}

TEST_CASE("cuda: every op matches the CPU, forward and backward, float32 and bfloat16") {
  if (skip_without_device("the CUDA op table (" + std::to_string(cuda_cases().size()) + " rows)")) return;
  StrictDevice strict;
  std::map<std::string, OpErrors> summary;
  std::printf("cuda op table on %s: relative 2-norm error vs CPU float64\n", cuda::device_description().c_str());
  std::printf("%-40s %-6s %12s %12s %12s %12s %12s\n", "case", "tensor", "cuda f32", "cpu f32", "cuda bf16",
              "ctrl bf16", "bf16 bound");
  for (const CudaCase& c : cuda_cases()) {
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
