// tests/op_cases.cpp: the rows of the op-test table (tests/op_cases.h), grouped by op.
//
// Sizes are deliberately odd (1, 3, 7, 13, 33; on the GPU also 113, 129, 257, 1031, 100003);
// attention rows cover the window edge cases w = 1, w >= T and t < w (the early rows of every
// windowed case), grouped-query heads, and (on the GPU) head dims 2 .. 256.
#include "tests/op_cases.h"

#include <cstdio>

#include "tensor/random.h"
#include "tests/test_util.h"

namespace swiattn::testing {
namespace {

using X = const std::vector<Var>&;

// The integer inputs and constants the rows share (ids, targets, a hard gate mask).
struct Constants {
  Tensor ids = random_ids({3, 7}, 13, 7);         // repeated ids: their gradients must accumulate
  Tensor big_ids = random_ids({4, 257}, 40, 12);  // ids < 40 of a vocabulary of 300
  Tensor targets, all_ignored, big_targets, mask, chain_ids, chain_targets;
  Constants() {
    std::vector<int32_t> t = random_ids({7}, 13, 8).to_ints();
    t[2] = -100;  // an ignored row
    targets = Tensor::from_ints(t, {7});
    all_ignored = Tensor::from_ints(std::vector<int32_t>(3, -100), {3});
    big_targets = random_ids({9}, 1031, 9);
    // Hard 0 / 1 factors for the gate: rows routed to one branch only (the kernels skip the other).
    std::vector<double> hard(2 * 7);
    for (size_t i = 0; i < hard.size(); ++i) hard[i] = (i % 3 == 0) ? 0.0 : 1.0;
    mask = Tensor::from_vector(hard, {2, 7}, DType::F64);
    chain_ids = random_ids({2, 9}, 13, 10);
    chain_targets = random_ids({18}, 13, 11);
  }
};

// A constant float tensor (given in float64) in the dtype and on the device of `like`.
Var constant_like(const Tensor& value64, const Var& like) {
  return Var(value64.to(like.dtype()).to(like.value().device()));
}
// Index tensors moved to the device of `like` (the CUDA kernels also take them from the host).
Tensor ids_like(const Tensor& ids, const Var& like) { return ids.to(like.value().device()); }

// Attention rows: (B, T, H, Hkv, D, window).
OpCase attention_row(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w, unsigned modes = kAllModes) {
  char name[96];
  std::snprintf(name, sizeof name, "attention B%lld T%lld H%lld Hkv%lld D%lld w%lld", (long long)B, (long long)T,
                (long long)H, (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::Attention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}},
          [w](X x) { return attention(x[0], x[1], x[2], w); }, 1.0, modes};
}

// Switch attention rows: the gate is a real-valued input here (the op is linear in it: Eq. 6 for
// any c); hard 0/1 gates, the STE and the one-pass = two-pass identity are in test_switch.cpp.
OpCase switch_row(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t w, SwitchMethod method,
                  unsigned modes = kAllModes) {
  char name[112];
  std::snprintf(name, sizeof name, "switch_attention %s B%lld T%lld H%lld Hkv%lld D%lld w%lld",
                method == SwitchMethod::OnePass ? "1-pass" : "2-pass", (long long)B, (long long)T, (long long)H,
                (long long)Hkv, (long long)D, (long long)w);
  return {name, OpId::SwitchAttention, {{B, T, H, D}, {B, T, Hkv, D}, {B, T, Hkv, D}, {B, T}},
          [w, method](X x) { return switch_attention(x[0], x[1], x[2], w, x[3], nullptr, method); }, 1.0, modes};
}

// The rows of one op. No default: a new OpId without a case here is a compile error.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
std::vector<OpCase> rows_of(OpId op, const Constants& c) {
  switch (op) {
    case OpId::Matmul:
      return {
          {"matmul (7,3)x(3,5)", op, {{7, 3}, {3, 5}}, [](X x) { return matmul(x[0], x[1]); }},
          {"matmul A^T (3,7)^T x(3,5)", op, {{3, 7}, {3, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
          {"matmul B^T (7,3)x(5,3)^T", op, {{7, 3}, {5, 3}}, [](X x) { return matmul(x[0], x[1], false, true); }},
          {"matmul A^T B^T", op, {{3, 7}, {5, 3}}, [](X x) { return matmul(x[0], x[1], true, true); }},
          {"matmul batched (2,3,7,5)x(2,3,5,1)", op, {{2, 3, 7, 5}, {2, 3, 5, 1}}, [](X x) { return matmul(x[0], x[1]); }},
          {"matmul batched A^T B^T (3,5,7)(3,9,5)", op, {{3, 5, 7}, {3, 9, 5}},
           [](X x) { return matmul(x[0], x[1], true, true); }, 1.0, kCuda},
          {"matmul linear (3,7,13)x(5,13)^T", op, {{3, 7, 13}, {5, 13}}, [](X x) { return matmul(x[0], x[1], false, true); }},
          {"matmul shared B, A^T (2,7,3)^T x(7,5)", op, {{2, 7, 3}, {7, 5}}, [](X x) { return matmul(x[0], x[1], true, false); }},
          {"matmul (37,129)x(129,67)", op, {{37, 129}, {129, 67}}, [](X x) { return matmul(x[0], x[1]); }, 1.0, kCuda},
          {"matmul M=1 (1,33)x(33,1)", op, {{1, 33}, {33, 1}}, [](X x) { return matmul(x[0], x[1]); }},
      };
    case OpId::Add:
      return {
          {"add same shape (3,7)", op, {{3, 7}, {3, 7}}, [](X x) { return add(x[0], x[1]); }},
          {"add bias (3,7,5)+(5)", op, {{3, 7, 5}, {5}}, [](X x) { return add(x[0], x[1]); }},
          {"add (3,7,5)+(3,7,1)", op, {{3, 7, 5}, {3, 7, 1}}, [](X x) { return add(x[0], x[1]); }},
          {"add scalar (7)+()", op, {{7}, {}}, [](X x) { return add(x[0], x[1]); }},
          // a router bias: one element read by 8 x 1031 outputs (130 fixed-order chunks)
          {"add router bias (8,1031)+(1)", op, {{8, 1031}, {1}}, [](X x) { return add(x[0], x[1]); }, 1.0, kCuda},
          {"add (1031,3)+(1031,3)", op, {{1031, 3}, {1031, 3}}, [](X x) { return add(x[0], x[1]); }, 1.0, kCuda},
      };
    case OpId::Sub:
      return {
          {"sub (1,5)-(7,1)", op, {{1, 5}, {7, 1}}, [](X x) { return sub(x[0], x[1]); }},
          {"sub same shape (13)", op, {{13}, {13}}, [](X x) { return sub(x[0], x[1]); }},
      };
    case OpId::Mul:
      return {
          {"mul same shape (3,7)", op, {{3, 7}, {3, 7}}, [](X x) { return mul(x[0], x[1]); }},
          {"mul route (3,7,1)*(3,7,5)", op, {{3, 7, 1}, {3, 7, 5}}, [](X x) { return mul(x[0], x[1]); }},
          {"mul self x*x", op, {{7}}, [](X x) { return mul(x[0], x[0]); }},
      };
    case OpId::Scale:
      return {{"scale (3,7) by -2.5", op, {{3, 7}}, [](X x) { return scale(x[0], -2.5); }}};
    case OpId::Sum:
      return {
          {"sum (3,7)", op, {{3, 7}}, [](X x) { return sum(x[0]); }},
          {"sum (100003)", op, {{100003}}, [](X x) { return sum(x[0]); }, 1.0, kCuda},
      };
    case OpId::Mean:
      return {{"mean (33)", op, {{33}}, [](X x) { return mean(x[0]); }}};
    case OpId::Embedding:
      return {
          {"embedding (13,5)[3,7]", op, {{13, 5}}, [ids = c.ids](X x) { return embedding(x[0], ids); }},
          {"embedding, ids on the device", op, {{13, 5}},
           [ids = c.ids](X x) { return embedding(x[0], ids_like(ids, x[0])); }, 1.0, kCuda},
          {"embedding (300,7)[4,257]: unused ids, long runs", op, {{300, 7}},
           [ids = c.big_ids](X x) { return embedding(x[0], ids); }, 1.0, kCuda},
      };
    case OpId::RmsNorm:
      return {
          {"rms_norm (3,7,13)", op, {{3, 7, 13}, {13}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }},
          // C = 1: dx is 0 up to eps, all cancellation; a relative error of it on the GPU would
          // measure only rounding noise, so C = 2 stands in there.
          {"rms_norm C=1 (7,1)", op, {{7, 1}, {1}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }, 1.0, kCpuModes},
          {"rms_norm C=2 (7,2)", op, {{7, 2}, {2}}, [](X x) { return rms_norm(x[0], x[1], 1e-6); }, 1.0, kCuda},
          {"rms_norm (5,1031)", op, {{5, 1031}, {1031}}, [](X x) { return rms_norm(x[0], x[1], 1e-5); }, 1.0, kCuda},
      };
    case OpId::Rope:
      return {
          {"rope (2,7,3,8)", op, {{2, 7, 3, 8}}, [](X x) { return rope(x[0], 10000.0); }},
          {"rope offset 5, base 100 (1,13,1,2)", op, {{1, 13, 1, 2}}, [](X x) { return rope(x[0], 100.0, 5); }},
          {"rope row positions {0, 9, 2} + offset 1 (3,5,2,4)", op, {{3, 5, 2, 4}},
           [](X x) { return rope(x[0], 100.0, 1, ids_like(Tensor::from_ints({0, 9, 2}, {3}), x[0])); }},
      };
    case OpId::Silu:
      return {{"silu (3,7)", op, {{3, 7}}, [](X x) { return silu(x[0]); }, 4.0}};
    case OpId::Swiglu:
      return {{"swiglu (13,7)", op, {{13, 7}, {13, 7}}, [](X x) { return swiglu(x[0], x[1]); }, 3.0}};
    case OpId::Sigmoid:
      return {{"sigmoid (3,7)", op, {{3, 7}}, [](X x) { return sigmoid(x[0]); }, 4.0}};
    case OpId::Softplus:
      return {{"softplus (3,7)", op, {{3, 7}}, [](X x) { return softplus(x[0]); }, 4.0}};
    case OpId::Softmax:
      return {
          {"softmax (7,13)", op, {{7, 13}}, [](X x) { return softmax(x[0]); }, 3.0},
          {"softmax C=1 (3,1)", op, {{3, 1}}, [](X x) { return softmax(x[0]); }},
          {"softmax (5,1031)", op, {{5, 1031}}, [](X x) { return softmax(x[0]); }, 3.0, kCuda},
      };
    case OpId::CrossEntropy:
      return {
          {"cross_entropy (7,13), one row ignored", op, {{7, 13}},
           [t = c.targets](X x) { return cross_entropy(x[0], t); }, 3.0},
          {"cross_entropy, targets on the device", op, {{7, 13}},
           [t = c.targets](X x) { return cross_entropy(x[0], ids_like(t, x[0])); }, 3.0, kCuda},
          {"cross_entropy all rows ignored", op, {{3, 13}},
           [t = c.all_ignored](X x) { return add(cross_entropy(x[0], t), sum(x[0])); }},
          {"cross_entropy (9,1031)", op, {{9, 1031}}, [t = c.big_targets](X x) { return cross_entropy(x[0], t); }, 3.0,
           kCuda},
      };
    case OpId::StopGradient:
      // the gradient of x * stop_gradient(x) is that of x * c with c = x frozen (the surrogate).
      return {{"stop_gradient x*sg(x)", op, {{3, 7}}, [](X x) { return mul(x[0], stop_gradient(x[0])); }, 1.0,
               kAllModes, [](X x, const std::vector<Tensor>& x0) { return mul(x[0], Var(x0[0])); }}};
    case OpId::Reshape:
      return {
          {"reshape (3,7,2)->(6,7)", op, {{3, 7, 2}}, [](X x) { return mul(reshape(x[0], {6, 7}), reshape(x[0], {6, 7})); }},
          {"split_heads / merge_heads", op, {{2, 3, 12}}, [](X x) { return merge_heads(rope(split_heads(x[0], 3), 10000.0)); }},
      };
    case OpId::Transpose:
      return {
          {"transpose (3,7,5) dims 0,2", op, {{3, 7, 5}}, [](X x) { return transpose(x[0], 0, 2); }},
          {"transpose (2,3,7,5) dims 1,2", op, {{2, 3, 7, 5}}, [](X x) { return transpose(x[0], 1, 2); }},
      };
    case OpId::Cast:
      return {
          // cast to the input's own dtype is the identity (a copy). Through float32 and back the
          // value is rounded, which finite differences would see as steps: the gradient must be
          // that of the identity (the rounding's derivative is taken as 1), checked against the
          // surrogate x. Through bfloat16 the gradient itself is stored in bfloat16 (2^-9
          // relative): that path is the Cuda rows' (and tests/test_cuda_train.cpp's).
          {"cast to its own dtype", op, {{3, 7}, {3, 7}}, [](X x) { return mul(cast(x[0], x[0].dtype()), x[1]); }, 1.0,
           kCpuModes},
          {"cast round trip through float32", op, {{3, 7}}, [](X x) { return cast(cast(x[0], DType::F32), x[0].dtype()); },
           1.0, kCpuModes, [](X x, const std::vector<Tensor>&) { return x[0]; }},
          // On the GPU inputs are bfloat16-valued, so rounding to bfloat16 is exact and every run
          // sees the same values; the gradient flows back through bfloat16 and float32.
          {"cast round trip through bfloat16", op, {{3, 7}, {3, 7}},
           [](X x) { return mul(cast(cast(x[0], DType::BF16), x[0].dtype()), x[1]); }, 1.0, kCuda},
          {"cast round trip through float32 (1031)", op, {{1031}},
           [](X x) { return cast(cast(x[0], DType::F32), x[0].dtype()); }, 1.0, kCuda},
      };
    case OpId::Attention:
      return {
          attention_row(1, 1, 1, 1, 4, 0),              // T = 1
          attention_row(2, 7, 2, 2, 3, 0),              // full causal, odd head dim
          attention_row(1, 7, 2, 1, 4, 1),              // w = 1: each query reads only itself
          attention_row(1, 7, 4, 2, 4, 3),              // GQA, w = 3 < T: rows t < 3 see fewer than w keys
          attention_row(1, 13, 2, 1, 4, 13),            // w = T
          attention_row(1, 7, 2, 2, 4, 33),             // w > T: same as full
          attention_row(1, 33, 3, 1, 2, 7),             // longer T, 3 query heads on one kv head
          attention_row(2, 113, 4, 2, 64, 17, kCuda),   // a realistic head dim, T = 113
          attention_row(1, 37, 2, 2, 129, 0, kCuda),    // D = 129: 5 entries on one lane, 4 on the others
          attention_row(1, 9, 1, 1, 256, 4, kCuda),     // D = 256: the largest supported
      };
    case OpId::SwitchAttention:
      return {
          switch_row(2, 7, 2, 1, 4, 3, SwitchMethod::OnePass),
          switch_row(1, 13, 4, 2, 3, 1, SwitchMethod::OnePass),   // w = 1
          switch_row(1, 7, 2, 2, 4, 13, SwitchMethod::OnePass),   // T < w: the branches coincide
          switch_row(1, 33, 2, 1, 2, 5, SwitchMethod::OnePass),
          switch_row(2, 113, 4, 2, 64, 17, SwitchMethod::OnePass, kCuda),
          switch_row(2, 7, 2, 1, 4, 3, SwitchMethod::TwoPassReference),
          switch_row(2, 113, 4, 2, 64, 17, SwitchMethod::TwoPassReference, kCuda),
          {"switch 1-pass, hard 0/1 gates", op, {{2, 7, 2, 4}, {2, 7, 1, 4}, {2, 7, 1, 4}, {2, 7}},
           [mask = c.mask](X x) { return switch_attention(x[0], x[1], x[2], 3, mul(x[3], constant_like(mask, x[3]))); },
           1.0, kCuda},
          {"switch branch_diff_sq * mean(out)", op, {{2, 7, 2, 4}, {2, 7, 1, 4}, {2, 7, 1, 4}, {2, 7}},
           [](X x) {
             Tensor diff;
             const Var out = switch_attention(x[0], x[1], x[2], 3, x[3], &diff);
             return mul(Var(diff.to(x[0].dtype())), mean(out));
           },
           1.0, kCuda},
      };
    case OpId::Leaf:
      // Ops composed: W is read twice (embedding and tied logits), so its gradient accumulates
      // on the device from two backward closures.
      return {{"chain: a tiny transformer layer + loss", op, {{13, 16}, {16}, {16, 16}, {8, 16}, {8, 16}, {16, 16}},
               [ids = c.chain_ids, targets = c.chain_targets](X x) {
                 const Var h0 = embedding(x[0], ids);  // (2, 9, 16)
                 const Var h = rms_norm(h0, x[1], 1e-6);
                 const Var q = rope(split_heads(matmul(h, x[2], false, true), 2), 10000.0);  // (2, 9, 2, 8)
                 const Var k = rope(split_heads(matmul(h, x[3], false, true), 1), 10000.0);  // (2, 9, 1, 8)
                 const Var v = split_heads(matmul(h, x[4], false, true), 1);
                 const Var r = add(h0, matmul(merge_heads(attention(q, k, v, 4)), x[5], false, true));
                 return cross_entropy(reshape(matmul(r, x[0], false, true), {18, 13}), targets);
               },
               0.5, kCuda}};
  }
  return {};
}
#pragma GCC diagnostic pop

}  // namespace

std::vector<OpCase> op_cases() {
  const Constants constants;
  std::vector<OpCase> all;
  for (int i = 0; i < kNumOps; ++i)
    for (OpCase& row : rows_of(static_cast<OpId>(i), constants)) all.push_back(std::move(row));
  for (OpCase& row : rows_of(OpId::Leaf, constants)) all.push_back(std::move(row));
  return all;
}

std::vector<OpCase> op_cases(OpMode mode) {
  std::vector<OpCase> rows;
  for (OpCase& row : op_cases())
    if (row.modes & mode) rows.push_back(std::move(row));
  return rows;
}

}  // namespace swiattn::testing
