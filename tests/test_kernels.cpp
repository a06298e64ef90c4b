// tests/test_kernels.cpp: the CPU kernels against their plain definitions, and the mechanics of
// the autograd engine (op gradients themselves are checked in tests/test_gradcheck.cpp).
//
// Tolerances. gemm: an element of A B is a sum of K products, so its rounding error is bounded
// by about K eps sum_k |a_ik b_kj|; the checks scale the tolerance by that sum (plus |C0| when
// accumulating): 1e-12 of it in float64, 1e-5 in float32. Small-integer inputs make every
// product and partial sum exact, so there gemm must equal gemm_reference bit for bit, whatever
// its summation order. attention (flash-attention's rule): the float64 kernel must match the
// float64 reference to 1e-12; the float32 kernel's error against the float64 reference must be
// at most twice the float32 reference's own error (the "control") plus 1e-6.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "autograd/ops.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/reduce.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

// n standard-normal values of type T, a pure function of the seed.
template <class T> std::vector<T> random_values(int64_t n, uint64_t seed) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(normal_at(seed, i));
  return v;
}

// n integers in [-4, 4], as T.
template <class T> std::vector<T> small_integers(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(static_cast<int>(rng.below(9)) - 4);
  return v;
}

template <class T> const char* type_name() { return sizeof(T) == 4 ? "float32" : "float64"; }

// ---------------------------------------------------------------------------------------------
// gemm

TEST_CASE("kernels: gemm_reference computes a product written out by hand") {
  // A = [[1, 2, 3], [4, 5, 6]] (2, 3); B = [[7, 8], [9, 10], [11, 12]] (3, 2); A B = [[58, 64], [139, 154]].
  const std::vector<double> A{1, 2, 3, 4, 5, 6}, At{1, 4, 2, 5, 3, 6};
  const std::vector<double> B{7, 8, 9, 10, 11, 12}, Bt{7, 9, 11, 8, 10, 12};
  const std::vector<double> want{58, 64, 139, 154};
  std::vector<double> C(4);
  cpu::gemm_reference<double>(false, false, 2, 2, 3, A.data(), B.data(), C.data(), false);
  CHECK(C == want);
  cpu::gemm_reference<double>(true, false, 2, 2, 3, At.data(), B.data(), C.data(), false);
  CHECK(C == want);
  cpu::gemm_reference<double>(false, true, 2, 2, 3, A.data(), Bt.data(), C.data(), false);
  CHECK(C == want);
  cpu::gemm_reference<double>(true, true, 2, 2, 3, At.data(), Bt.data(), C.data(), true);
  CHECK(C == std::vector<double>{116, 128, 278, 308});  // accumulated onto the previous C
}

template <class T>
void check_gemm_against_reference(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool accumulate,
                                  double rel_tol, uint64_t seed) {
  const std::vector<T> A = random_values<T>(M * K, seed), B = random_values<T>(K * N, seed + 1);
  const std::vector<T> C0 = random_values<T>(M * N, seed + 2);
  std::vector<T> fast = C0, reference = C0;
  cpu::gemm<T>(ta, tb, M, N, K, A.data(), B.data(), fast.data(), accumulate);
  cpu::gemm_reference<T>(ta, tb, M, N, K, A.data(), B.data(), reference.data(), accumulate);
  int64_t bad = 0;
  double worst = 0.0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double magnitude = accumulate ? std::abs(double(C0[i * N + j])) : 0.0;
      for (int64_t k = 0; k < K; ++k)
        magnitude += std::abs(double(ta ? A[k * M + i] : A[i * K + k]) * double(tb ? B[j * K + k] : B[k * N + j]));
      const double err = std::abs(double(fast[i * N + j]) - double(reference[i * N + j]));
      worst = std::max(worst, err / magnitude);
      bad += !(err <= rel_tol * magnitude);  // NaN counts as bad
    }
  INFO(type_name<T>(), " M=", M, " N=", N, " K=", K, " transpose_a=", ta, " transpose_b=", tb,
       " accumulate=", accumulate, " worst relative error ", worst);
  CHECK(bad == 0);
}

TEST_CASE("kernels: gemm matches gemm_reference for every transpose, accumulate and odd sizes") {
  const int64_t sizes[] = {1, 3, 7, 13, 33};
  uint64_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool accumulate : {false, true}) {
        for (int64_t M : sizes)
          for (int64_t N : sizes)
            for (int64_t K : sizes) {
              check_gemm_against_reference<double>(M, N, K, ta, tb, accumulate, 1e-12, seed);
              check_gemm_against_reference<float>(M, N, K, ta, tb, accumulate, 1e-5, seed);
              seed += 3;
            }
        check_gemm_against_reference<double>(65, 130, 97, ta, tb, accumulate, 1e-12, seed);
        check_gemm_against_reference<float>(65, 130, 97, ta, tb, accumulate, 1e-5, seed);
      }
}

TEST_CASE("kernels: gemm on small integers equals gemm_reference bit for bit") {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool accumulate : {false, true}) {
        const int64_t M = 65, N = 130, K = 97;
        const auto A = small_integers<float>(M * K, 1), B = small_integers<float>(K * N, 2);
        const auto C0 = small_integers<float>(M * N, 3);
        std::vector<float> fast = C0, reference = C0;
        cpu::gemm<float>(ta, tb, M, N, K, A.data(), B.data(), fast.data(), accumulate);
        cpu::gemm_reference<float>(ta, tb, M, N, K, A.data(), B.data(), reference.data(), accumulate);
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(accumulate);
        CHECK(fast == reference);
      }
}

// ---------------------------------------------------------------------------------------------
// attention

// log sum_j exp(q_t . k_j / sqrt(D)) over the keys j that query t of head h may read, computed
// here from the window rule (keys t - w + 1 .. t, none before 0; all of 0 .. t when w = 0).
double lse_by_hand(const cpu::AttentionShape& s, int64_t window, const std::vector<double>& q,
                   const std::vector<double>& k, int64_t b, int64_t t, int64_t h) {
  const int64_t g = h / (s.Hq / s.Hkv);
  const int64_t first = window == 0 ? 0 : std::max<int64_t>(0, t - window + 1);
  std::vector<double> scores;
  for (int64_t j = first; j <= t; ++j) {
    double dot = 0.0;
    for (int64_t d = 0; d < s.D; ++d)
      dot += q[((b * s.T + t) * s.Hq + h) * s.D + d] * k[((b * s.T + j) * s.Hkv + g) * s.D + d];
    scores.push_back(dot / std::sqrt(double(s.D)));
  }
  const double mx = *std::max_element(scores.begin(), scores.end());
  double total = 0.0;
  for (double x : scores) total += std::exp(x - mx);
  return mx + std::log(total);
}

TEST_CASE("kernels: attention_forward matches the reference for windows, GQA and odd T") {
  struct Heads { int64_t Hq, Hkv; };
  uint64_t seed = 500;
  int64_t cases = 0;
  for (int64_t T : {1, 7, 33, 100})
    for (Heads heads : {Heads{2, 2}, Heads{4, 2}, Heads{4, 1}})
      for (int64_t D : {5, 8})
        for (int64_t window : {int64_t(0), int64_t(1), int64_t(3), T, T + 5}) {
          const cpu::AttentionShape s{2, T, heads.Hq, heads.Hkv, D};
          const int64_t nq = s.B * T * s.Hq * D, nkv = s.B * T * s.Hkv * D, rows = s.B * T * s.Hq;
          const auto q = random_values<double>(nq, seed), k = random_values<double>(nkv, seed + 1);
          const auto v = random_values<double>(nkv, seed + 2);
          seed += 3;
          char label[128];
          std::snprintf(label, sizeof label, "T=%lld Hq=%lld Hkv=%lld D=%lld window=%lld", (long long)T,
                        (long long)s.Hq, (long long)s.Hkv, (long long)D, (long long)window);
          INFO(label);

          // float64: kernel against reference, and lse against the definition, row by row.
          std::vector<double> out(nq), lse(rows), ref(nq);
          cpu::attention_forward<double>(s, window, q.data(), k.data(), v.data(), out.data(), lse.data());
          cpu::attention_forward_reference<double>(s, window, q.data(), k.data(), v.data(), ref.data());
          double out_err = 0.0, lse_err = 0.0;
          for (int64_t i = 0; i < nq; ++i) out_err = std::max(out_err, std::abs(out[i] - ref[i]));
          for (int64_t b = 0; b < s.B; ++b)
            for (int64_t t = 0; t < T; ++t)
              for (int64_t h = 0; h < s.Hq; ++h)
                lse_err = std::max(lse_err, std::abs(lse[(b * T + t) * s.Hq + h] - lse_by_hand(s, window, q, k, b, t, h)));
          CHECK(out_err <= 1e-12);
          CHECK(lse_err <= 1e-12);

          // float32: on the float-rounded inputs, against the float64 reference on the same values.
          std::vector<float> q32(q.begin(), q.end()), k32(k.begin(), k.end()), v32(v.begin(), v.end());
          const std::vector<double> q_r(q32.begin(), q32.end()), k_r(k32.begin(), k32.end()), v_r(v32.begin(), v32.end());
          std::vector<double> truth(nq);
          cpu::attention_forward_reference<double>(s, window, q_r.data(), k_r.data(), v_r.data(), truth.data());
          std::vector<float> out32(nq), lse32(rows), ref32(nq);
          cpu::attention_forward<float>(s, window, q32.data(), k32.data(), v32.data(), out32.data(), lse32.data());
          cpu::attention_forward_reference<float>(s, window, q32.data(), k32.data(), v32.data(), ref32.data());
          double kernel_err = 0.0, control_err = 0.0;
          for (int64_t i = 0; i < nq; ++i) {
            kernel_err = std::max(kernel_err, std::abs(double(out32[i]) - truth[i]));
            control_err = std::max(control_err, std::abs(double(ref32[i]) - truth[i]));
          }
          CAPTURE(kernel_err);
          CAPTURE(control_err);
          CHECK(kernel_err <= 2.0 * control_err + 1e-6);
          CHECK(kernel_err <= 1e-5);
          double lse32_err = 0.0;
          for (int64_t b = 0; b < s.B; ++b)
            for (int64_t t = 0; t < T; ++t)
              for (int64_t h = 0; h < s.Hq; ++h)
                lse32_err = std::max(lse32_err, std::abs(double(lse32[(b * T + t) * s.Hq + h]) - lse_by_hand(s, window, q_r, k_r, b, t, h)));
          CHECK(lse32_err <= 1e-5);
          ++cases;
        }
  CHECK(cases == 4 * 3 * 2 * 5);
}

TEST_CASE("kernels: attention lse and output of one row worked out by hand") {
  // B = 1, T = 3, one head, D = 4, window 2: query t = 2 reads keys 1 and 2 only.
  // q_2 = (1, 0, 1, 0); k_0 = (9, 9, 9, 9) (outside the window: would dominate if read),
  // k_1 = (2, 0, 0, 0), k_2 = (2, 0, 2, 0); scores q . k / sqrt(4): s_1 = 1, s_2 = 2 (unequal,
  // so swapped weights would show). lse = log(e^1 + e^2); out = (e^1 v_1 + e^2 v_2) / (e^1 + e^2).
  const cpu::AttentionShape s{1, 3, 1, 1, 4};
  const std::vector<double> q{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0};
  const std::vector<double> k{9, 9, 9, 9, 2, 0, 0, 0, 2, 0, 2, 0};
  const std::vector<double> v{100, 100, 100, 100, 1, 0, 0, 0, 0, 0, 0, 3};
  std::vector<double> out(12), lse(3);
  cpu::attention_forward<double>(s, 2, q.data(), k.data(), v.data(), out.data(), lse.data());
  const double e1 = std::exp(1.0), e2 = std::exp(2.0);
  CHECK(lse[2] == doctest::Approx(std::log(e1 + e2)).epsilon(1e-14));
  CHECK(out[8] == doctest::Approx(e1 / (e1 + e2)).epsilon(1e-14));
  CHECK(std::abs(out[9]) <= 1e-15);
  CHECK(std::abs(out[10]) <= 1e-15);
  CHECK(out[11] == doctest::Approx(3.0 * e2 / (e1 + e2)).epsilon(1e-14));
  // Row 0 reads only itself: score 0, lse 0, out = v_0.
  CHECK(lse[0] == 0.0);
  CHECK(out[0] == 100.0);
}

// Runs the float64 kernel and returns out.
std::vector<double> attention_out(const cpu::AttentionShape& s, int64_t window, const std::vector<double>& q,
                                  const std::vector<double>& k, const std::vector<double>& v) {
  std::vector<double> out(q.size()), lse(static_cast<size_t>(s.B * s.T * s.Hq));
  cpu::attention_forward<double>(s, window, q.data(), k.data(), v.data(), out.data(), lse.data());
  return out;
}

TEST_CASE("kernels: attention reads exactly the window's keys (by perturbing one key at a time)") {
  // For every query t and key position j: add 1 to every component of v_j (or change k_j) and
  // see whether out_t moves. It must move exactly when j is one of the w most recent positions
  // t - w + 1 .. t (all of 0 .. t for w = 0), and stay bit-identical otherwise (future keys too).
  const int64_t T = 12;
  const cpu::AttentionShape s{1, T, 4, 2, 4};
  const auto q = random_values<double>(T * 4 * 4, 1), k = random_values<double>(T * 2 * 4, 2);
  const auto v = random_values<double>(T * 2 * 4, 3);
  const int64_t row = s.Hq * s.D;     // elements of one position in q / out
  const int64_t kv_row = s.Hkv * s.D;  // elements of one position in k / v
  for (int64_t w : {0, 1, 4, 12}) {
    const std::vector<double> base = attention_out(s, w, q, k, v);
    int64_t wrong = 0, checked_inside_early = 0;
    for (int64_t j = 0; j < T; ++j) {
      std::vector<double> v2 = v, k2 = k;
      for (int64_t e = 0; e < kv_row; ++e) {
        v2[j * kv_row + e] += 1.0;
        k2[j * kv_row + e] = -k2[j * kv_row + e] + 0.5;
      }
      const std::vector<double> with_v = attention_out(s, w, q, k, v2);
      const std::vector<double> with_k = attention_out(s, w, q, k2, v);
      for (int64_t t = 0; t < T; ++t) {
        const bool inside = j <= t && (w == 0 || j >= t - w + 1);
        const bool v_moved = std::memcmp(&base[t * row], &with_v[t * row], row * sizeof(double)) != 0;
        const bool k_moved = std::memcmp(&base[t * row], &with_k[t * row], row * sizeof(double)) != 0;
        if (inside) {
          // Every head of position t: out_t moves by p_j (1, ..., 1) with p_j > 0.
          double min_shift = 1e300;
          for (int64_t e = 0; e < row; ++e) min_shift = std::min(min_shift, with_v[t * row + e] - base[t * row + e]);
          if (!(min_shift > 1e-12)) {
            ++wrong;
            MESSAGE("w=", w, " t=", t, ": changing v at key ", j, " inside the window did not move every output");
          }
          if (t < w) ++checked_inside_early;
        } else if (v_moved || k_moved) {
          ++wrong;
          MESSAGE("w=", w, " t=", t, ": changing key position ", j, " outside the window moved the output");
        }
      }
    }
    CAPTURE(w);
    CHECK(wrong == 0);
    if (w > 1) CHECK(checked_inside_early > 0);  // the rows t < w were exercised
  }
}

// ---------------------------------------------------------------------------------------------
// reductions and layout

TEST_CASE("kernels: sum_all is exact on integers and independent of the thread count") {
  const int saved_threads = omp_get_max_threads();
  const int64_t n = (1 << 20) + 13;  // 257 chunks of 4096: the parallel path
  std::vector<float> ints(n);
  double exact = 0.0;  // sum of (i mod 7) - 3, all partial sums exact in double
  for (int64_t i = 0; i < n; ++i) exact += (ints[i] = static_cast<float>(i % 7 - 3));
  const std::vector<double> x = random_values<double>(n, 31);
  long double careful = 0.0L, magnitude = 0.0L;
  for (double value : x) careful += value, magnitude += std::abs(value);

  std::vector<double> int_sums, sums;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    int_sums.push_back(cpu::sum_all<float>(n, ints.data()));
    sums.push_back(cpu::sum_all<double>(n, x.data()));
  }
  omp_set_num_threads(saved_threads);
  for (double total : int_sums) CHECK(total == exact);
  CHECK(std::memcmp(&sums[0], &sums[1], sizeof(double)) == 0);
  CHECK(std::memcmp(&sums[0], &sums[2], sizeof(double)) == 0);
  CHECK(std::abs(sums[0] - double(careful)) <= 1e-12 * double(magnitude));
  // Sizes at and around the chunk boundary, and n = 0.
  for (int64_t m : {0, 1, 4095, 4096, 4097}) {
    double want = 0.0;
    for (int64_t i = 0; i < m; ++i) want += ints[i];
    CHECK(cpu::sum_all<float>(m, ints.data()) == want);
  }
}

// The transpose by definition: out[..., i_d1, ..., i_d0, ...] = x[..., i_d0, ..., i_d1, ...].
template <class T>
std::vector<T> transpose_by_index(const Shape& shape, int d0, int d1, const std::vector<T>& x) {
  Shape out_shape = shape;
  std::swap(out_shape[d0], out_shape[d1]);
  std::vector<T> out(x.size());
  const int n = static_cast<int>(shape.size());
  std::vector<int64_t> index(n);
  for (int64_t flat = 0; flat < static_cast<int64_t>(x.size()); ++flat) {
    int64_t rest = flat;  // unravel flat into index (row-major)
    for (int d = n - 1; d >= 0; --d) {
      index[d] = rest % shape[d];
      rest /= shape[d];
    }
    std::swap(index[d0], index[d1]);
    int64_t o = 0;  // ravel the swapped index in out_shape
    for (int d = 0; d < n; ++d) o = o * out_shape[d] + index[d];
    out[o] = x[flat];
  }
  return out;
}

TEST_CASE("kernels: transpose_copy matches the index-by-index definition") {
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{7, 1, 3}, Shape{13}, Shape{3, 7}}) {
    const int n = static_cast<int>(shape.size());
    const auto x = random_values<double>(shape_numel(shape), 17);
    for (int d0 = 0; d0 < n; ++d0)
      for (int d1 = 0; d1 < n; ++d1) {
        CAPTURE(shape_str(shape));
        CAPTURE(d0);
        CAPTURE(d1);
        const std::vector<double> want = transpose_by_index(shape, d0, d1, x);
        std::vector<double> out(x.size(), -7.0);
        cpu::transpose_copy<double>(shape, d0, d1, x.data(), out.data(), false);
        CHECK(out == want);
        // accumulate: out += transposed x, onto an existing out.
        const auto start = random_values<double>(shape_numel(shape), 18);
        std::vector<double> acc = start;
        cpu::transpose_copy<double>(shape, d0, d1, x.data(), acc.data(), true);
        int64_t bad = 0;
        for (size_t i = 0; i < acc.size(); ++i) bad += acc[i] != start[i] + want[i];
        CHECK(bad == 0);
      }
  }
  // float32 instantiation.
  const auto x32 = random_values<float>(2 * 3 * 4, 19);
  std::vector<float> out32(x32.size());
  cpu::transpose_copy<float>({2, 3, 4}, 0, 2, x32.data(), out32.data(), false);
  CHECK(out32 == transpose_by_index<float>({2, 3, 4}, 0, 2, x32));
}

TEST_CASE("kernels: broadcast plans: result shape, strides and errors") {
  struct Case { Shape a, b, out; std::vector<int64_t> a_stride, b_stride; bool same; };
  const std::vector<Case> cases = {
      {{3, 7, 5}, {3, 7, 5}, {3, 7, 5}, {35, 5, 1}, {35, 5, 1}, true},
      {{3, 7, 5}, {5}, {3, 7, 5}, {35, 5, 1}, {0, 0, 1}, false},
      {{3, 7, 5}, {3, 7, 1}, {3, 7, 5}, {35, 5, 1}, {7, 1, 0}, false},
      {{7}, {}, {7}, {1}, {0}, false},
      {{}, {}, {}, {}, {}, true},
      {{3, 1, 5}, {4, 1}, {3, 4, 5}, {5, 0, 1}, {0, 1, 0}, false},
      {{1, 5}, {7, 1}, {7, 5}, {0, 1}, {1, 0}, false},
  };
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    const cpu::BroadcastPlan plan = cpu::plan_broadcast("add", c.a, c.b);
    CHECK(plan.out == c.out);
    CHECK(plan.a_stride == c.a_stride);
    CHECK(plan.b_stride == c.b_stride);
    CHECK(plan.same_shape == c.same);
  }
  // The plan drives binary_forward: (3, 1, 5) - (4, 1) against the broadcast written out.
  const auto a = random_values<double>(15, 41), b = random_values<double>(4, 42);
  const cpu::BroadcastPlan plan = cpu::plan_broadcast("sub", {3, 1, 5}, {4, 1});
  std::vector<double> out(60);
  cpu::binary_forward<double>(cpu::BinaryKind::Sub, plan, a.data(), b.data(), out.data());
  int64_t bad = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 5; ++l) bad += out[(i * 4 + j) * 5 + l] != a[i * 5 + l] - b[j];
  CHECK(bad == 0);

  for (const auto& [a_shape, b_shape] : std::vector<std::pair<Shape, Shape>>{
           {{2, 3}, {4, 3}}, {{3, 7, 5}, {7, 4}}, {{5}, {6}}, {{2, 1, 3}, {2, 2}}}) {
    std::string message = "<no exception thrown>";
    try {
      cpu::plan_broadcast("mul", a_shape, b_shape);
    } catch (const Error& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(message.find("mul") != std::string::npos);
    CHECK(message.find(shape_str(a_shape)) != std::string::npos);
    CHECK(message.find(shape_str(b_shape)) != std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// autograd mechanics

Var parameter(const std::vector<double>& values) {
  return Var(Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::F64), true);
}

TEST_CASE("autograd: a Var used twice receives the sum of both gradients") {
  const std::vector<double> xv{0.5, -1.0, 2.0}, cv{3.0, 4.0, -5.0};
  const Var x = parameter(xv);
  const Var c(Tensor::from_vector(cv, {3}, DType::F64));  // a constant
  // L = sum(2 x + c * x)  =>  dL/dx = 2 + c
  Var L = sum(add(scale(x, 2.0), mul(c, x)));
  L.backward();
  REQUIRE(x.grad().defined());
  for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 2.0 + cv[i]);
  CHECK_FALSE(c.grad().defined());  // constants get no gradient

  // X used as both operands of a product: L = sum(X X) = 1^T X X 1, so
  // dL/dX[a][b] = (sum of row b of X) + (sum of column a of X).
  const std::vector<double> m{1, 2, -1, 0.5, 3, 2, -2, 1, 4};
  const Var X(Tensor::from_vector(m, {3, 3}, DType::F64), true);
  sum(matmul(X, X)).backward();
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      const double row_b = m[b * 3] + m[b * 3 + 1] + m[b * 3 + 2];
      const double col_a = m[a] + m[3 + a] + m[6 + a];
      CHECK(X.grad().at(a * 3 + b) == doctest::Approx(row_b + col_a).epsilon(1e-14));
    }
}

TEST_CASE("autograd: gradients accumulate across backward() calls until zero_grad") {
  const std::vector<double> xv{0.5, -1.0, 2.0};
  SUBCASE("the loss is an op applied directly to the leaf") {
    const Var x = parameter(xv);
    const Var L = sum(x);  // dL/dx = 1
    L.backward();
    L.backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 2.0);
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    L.backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 1.0);
  }
  SUBCASE("the graph has an intermediate node") {
    const Var x = parameter(xv);
    const Var L = sum(scale(x, 3.0));  // dL/dx = 3 per call
    L.backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 3.0);
    L.backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 6.0);
    x.zero_grad();
    L.backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 3.0);
  }
  SUBCASE("a fresh graph per step (the training loop) after zero_grad") {
    const Var x = parameter(xv);
    sum(scale(x, 3.0)).backward();
    sum(scale(x, 3.0)).backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 6.0);
    x.zero_grad();
    sum(scale(x, 3.0)).backward();
    for (int i = 0; i < 3; ++i) CHECK(x.grad().at(i) == 3.0);
  }
}

TEST_CASE("autograd: NoGradGuard builds no graph and restores the mode") {
  const Var x = parameter({1.0, -2.0});
  CHECK(grad_enabled());
  Var y;
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    {
      NoGradGuard nested;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restores "disabled", not "enabled"
    y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.node()->inputs.empty());
    CHECK_FALSE(static_cast<bool>(y.node()->backward));
    CHECK(y.value().to_vector() == std::vector<double>{1.0, 4.0});  // the value is still computed
  }
  CHECK(grad_enabled());
  CHECK_THROWS_AS(sum(y).backward(), Error);  // y is a constant: nothing to differentiate
  const Var z = mul(x, x);
  CHECK(z.requires_grad());
  CHECK(z.node()->inputs.size() == 2);
  sum(z).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2.0, -4.0});
}

TEST_CASE("autograd: the graph holds what the backward reads, not every value") {
  // L = sum(0.5 cast64(cast32(r + r))), r = rope(x): rope, add, cast, scale and sum differentiate
  // without reading a value, so once the forward's handles are gone the graph keeps none of the
  // four intermediates (1 MiB each); a graph that owned its values would keep them all.
  const Var x(Tensor::randn({2, 128, 4, 128}, DType::F64, 5), true);
  const int64_t value_bytes = x.value().numel() * 8;
  auto build = [&](std::vector<Var>* kept) {
    std::vector<Var> v{rope(x, 10000.0)};
    v.push_back(add(v.back(), v.back()));
    v.push_back(cast(v.back(), DType::F32));
    v.push_back(cast(v.back(), DType::F64));
    const Var L = sum(scale(v.back(), 0.5));
    if (kept) *kept = v;
    return L;
  };
  const int64_t before = tensor_memory(Device::CPU).bytes_in_use;
  Var L = build(nullptr);
  CHECK(tensor_memory(Device::CPU).bytes_in_use - before < value_bytes / 8);  // nodes and the scalar
  L.backward();
  const std::vector<double> dx = x.grad().to_vector();
  x.zero_grad();
  L = Var();

  std::vector<Var> kept;  // the same graph with every intermediate held by a handle
  L = build(&kept);
  CHECK(tensor_memory(Device::CPU).bytes_in_use - before >= 3 * value_bytes);  // the count sees them
  L.backward();
  CHECK(x.grad().to_vector() == dx);  // the same gradient, bit for bit
  // mul's backward reads both operands: the graph keeps them after the handles go.
  kept.clear();
  L = Var();
  x.zero_grad();
  const int64_t before_mul = tensor_memory(Device::CPU).bytes_in_use;
  L = sum(mul(scale(x, 2.0), scale(x, 3.0)));
  CHECK(tensor_memory(Device::CPU).bytes_in_use - before_mul >= 2 * value_bytes);
}

TEST_CASE("autograd: set_value replaces the value every handle sees, keeps the shape") {
  const Var p(Tensor::from_vector({1.0, 2.0}, {2}, DType::F64), true, "w");
  const Var handle = p;
  p.grad_buffer().fill(3.0);
  p.set_value(Tensor::from_vector({5.0, 6.0}, {2}, DType::F64));
  CHECK(handle.value().to_vector() == std::vector<double>{5.0, 6.0});
  CHECK_FALSE(handle.grad().defined());  // the gradient went with the old value
  CHECK(testing::contains(testing::error_of([&] { p.set_value(Tensor::zeros({3}, DType::F64)); }),
                          "w of shape (2) cannot take a value of shape (3)"));
}

TEST_CASE("autograd: backward rejects a non-scalar output and a graph with nothing to train") {
  const Var x = parameter({1.0, 2.0, 3.0});
  std::string message = "<no exception thrown>";
  try {
    scale(x, 2.0).backward();
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("backward") != std::string::npos);
  CHECK(message.find("(3)") != std::string::npos);
  CHECK_FALSE(x.grad().defined());  // nothing ran

  const Var constant(Tensor::from_vector({1.0, 2.0}, {2}, DType::F64));  // requires_grad false
  CHECK_THROWS_AS(sum(scale(constant, 2.0)).backward(), Error);
  CHECK_THROWS_AS(Var().backward(), Error);
}

TEST_CASE("autograd: GraphAfterBackward::Release drops intermediate gradients and closures, same leaf gradients") {
  const std::vector<double> xv{-1.5, -0.2, 0.0, 0.7, 2.5};
  // L = sum(silu(h) * h), h = 2x: h has two consumers, so its gradient is complete only after
  // both ran; the released run must give the kept run's bits.
  auto run = [&](GraphAfterBackward after, Var* h_out, Var* loss_out, int* leaves) {
    const Var x = parameter(xv);
    const Var h = scale(x, 2.0);
    const Var L = sum(mul(silu(h), h));
    L.backward([&](const Node&) { ++*leaves; }, after);
    *h_out = h;
    *loss_out = L;
    return x.grad().to_vector();
  };
  Var h_keep, L_keep, h_rel, L_rel;
  int leaves_keep = 0, leaves_rel = 0;
  const std::vector<double> keep = run(GraphAfterBackward::Keep, &h_keep, &L_keep, &leaves_keep);
  const std::vector<double> released = run(GraphAfterBackward::Release, &h_rel, &L_rel, &leaves_rel);
  CHECK(keep == released);
  CHECK(leaves_keep == 1);
  CHECK(leaves_rel == 1);
  CHECK(h_keep.grad().defined());                 // Keep: intermediate gradients stay readable
  CHECK_FALSE(h_rel.grad().defined());            // Release: dropped once h's backward ran
  CHECK_FALSE(static_cast<bool>(h_rel.node()->backward));
  CHECK(h_rel.value().numel() == 5);              // values stay
  L_keep.backward();                              // a kept graph runs again
  std::string message = "<no exception thrown>";
  try {
    L_rel.backward();
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("GraphAfterBackward::Release") != std::string::npos);
}

TEST_CASE("autograd: diamond graphs get the analytic gradient") {
  const std::vector<double> xv{-1.5, -0.2, 0.0, 0.7, 2.5};
  auto sigmoid_of = [](double t) { return 1.0 / (1.0 + std::exp(-t)); };

  // x feeds two branches that rejoin: L = sum(sigmoid(x) * 3x).
  // dL/dx = 3 (s'(x) x + s(x)) with s' = s (1 - s).
  const Var x = parameter(xv);
  sum(mul(sigmoid(x), scale(x, 3.0))).backward();
  for (size_t i = 0; i < xv.size(); ++i) {
    const double s = sigmoid_of(xv[i]);
    CHECK(x.grad().at(i) == doctest::Approx(3.0 * (s * (1 - s) * xv[i] + s)).epsilon(1e-13));
  }

  // A shared intermediate: h = 2x, L = sum(silu(h) * h). h's backward must run once, after both
  // consumers have added into its gradient: dL/dx = 2 (silu'(h) h + silu(h)),
  // silu'(h) = s(h) + h s(h) (1 - s(h)).
  const Var x2 = parameter(xv);
  const Var h = scale(x2, 2.0);
  sum(mul(silu(h), h)).backward();
  for (size_t i = 0; i < xv.size(); ++i) {
    const double hv = 2.0 * xv[i], s = sigmoid_of(hv);
    const double dsilu = s + hv * s * (1 - s);
    CHECK(x2.grad().at(i) == doctest::Approx(2.0 * (dsilu * hv + hv * s)).epsilon(1e-13));
    CHECK(h.grad().at(i) == doctest::Approx(dsilu * hv + hv * s).epsilon(1e-13));
  }
}

}  // namespace
}  // namespace swiattn
