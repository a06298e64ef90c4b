// tests/test_cuda_backward.cpp: the tensor-core attention backward, kernel by kernel, against the
// CPU float64 reference: the sm_80 main kernel of flash_backward.cu, the same in deterministic
// mode (its fixed-order dq), and the sm_90a kernel of hopper_backward.cu (where it can run; forced
// with cuda::set_flash_backward_kernel). Every variant runs the backward of the SAME device
// forward (the wired cuda::switch_attention_forward / attention_forward).
//
// Rule (docs/cuda.md, tests/test_cuda_flash_backward.cpp): err = ||x - x64|| / ||x64||, and a
// bfloat16 gradient passes when err <= 2 err_ctrl + 1e-2, err_ctrl the CPU float32 result rounded
// to bfloat16. The sm_90a kernel must also be no less accurate than the sm_80 one on the same
// inputs: err <= 1.5 err_sm80 + 1e-3.
// A bug confined to some tiles must not hide inside a whole-tensor norm, so the same rule is
// applied to parts of each gradient (with a floor: a part's norm counts as at least 0.1 of its
// share of the whole, so that near-zero parts compare absolute errors):
//   - per key tile of 128 keys (dk, dv), per query tile of 64 (dq), per 128 tokens (dgate);
//   - per distance band, with "banded" inputs: k_j = 4 e_band(j) and dout_t = e_band(t), one-hot
//     over the D columns (band = position / ceil(T / D)). Then column d of dv_j sums P_tj over
//     the queries t of band d, and column d of dq_t sums dS_tj over the keys j of band d: every
//     (tile, band) pair is one query-key distance, and the parts are the distance bins of 128
//     (negative distances: future keys, whose truth is 0).
// Each check prints one line "BACKWARD-CHECK problem | kernel | gradient | ... | ok/FAIL" with the
// worst part, the worst element (b, t, h, d) and the first element whose error exceeds 4 x the
// control's there plus 1e-2 of the gradient's rms; "BACKWARD-START" names a run before it starts
// (a hang or crash is then placed); SWIATTN_TEST_SKIP_HOPPER_BACKWARD=1 leaves the sm_90a kernel out
// (the GPU script sets it after a hang). scripts/gpu/training-check.sh tabulates the lines.
// Sizes: the reproduction's layer (B 16, T 2048, Hq 4, Hkv 2, D 64, w 128), random and banded;
// sharply peaked attention (q scaled by 8); T 1, 3, 113, 1031; w 1, w >= T; GQA 16/8, 8/8, 4/2;
// D 64 and 128; hard and real gates; plain attention full, windowed and gated (1 - g).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/switch_attention.h"
#include "kernels/cuda/attention.h"
#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_backward.h"
#include "kernels/cuda/switch_attention.h"
#include "tensor/random.h"
#include "tests/cuda_test_util.h"

namespace swiattn {
namespace {

using testing::skip_without_device;
using testing::StrictDevice;

enum class Gate { None, HardLow, Real };
struct Problem {
  int64_t B, T, Hq, Hkv, D, window;
  bool switch_op;
  Gate gate = Gate::Real;
  double q_scale = 1.0;
  bool banded = false;
  bool complement = false;  // plain attention: the branch gets (1 - gate) dout
  std::string name() const {
    std::string n = std::string(switch_op ? "switch" : "attention") + " B" + std::to_string(B) + " T" +
                    std::to_string(T) + " H" + std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" +
                    std::to_string(D) + " w" + std::to_string(window);
    n += gate == Gate::None ? "" : gate == Gate::HardLow ? " hard" : complement ? " real(1-g)" : " real";
    if (q_scale != 1.0) n += " q*" + std::to_string(int(q_scale));
    if (banded) n += " banded";
    return n;
  }
  cpu::AttentionShape shape() const { return {B, T, Hq, Hkv, D}; }
};

// ---- inputs (float64 values that are bfloat16 numbers) ----
std::vector<double> bf16_round(std::vector<double> x) {
  for (double& e : x) e = bf16_to_float(bf16_from_double(e));
  return x;
}
std::vector<double> normal(int64_t n, uint64_t seed, double scale) {
  Rng rng(seed);
  std::vector<double> x(static_cast<size_t>(n));
  for (double& e : x) e = scale * rng.normal();
  return bf16_round(x);
}
// one-hot rows: row (b, t, h) = amplitude * e_{t / band}
std::vector<double> one_hot_bands(const Problem& p, int64_t heads, double amplitude) {
  const int64_t band = (p.T + p.D - 1) / p.D;
  std::vector<double> x(size_t(p.B * p.T * heads * p.D), 0.0);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t h = 0; h < heads; ++h) x[size_t(((b * p.T + t) * heads + h) * p.D + t / band)] = amplitude;
  return x;
}

struct Inputs {
  std::vector<double> q, k, v, dout, gate;
};
Inputs make_inputs(const Problem& p, uint64_t seed) {
  Inputs in;
  in.q = normal(p.B * p.T * p.Hq * p.D, seed, p.q_scale);
  in.v = normal(p.B * p.T * p.Hkv * p.D, seed + 2, 1.0);
  if (p.banded) {
    in.k = one_hot_bands(p, p.Hkv, 4.0);
    in.dout = one_hot_bands(p, p.Hq, 1.0);
  } else {
    in.k = normal(p.B * p.T * p.Hkv * p.D, seed + 1, 1.0);
    in.dout = normal(p.B * p.T * p.Hq * p.D, seed + 3, 1.0);
  }
  Rng rng(seed + 4);
  in.gate.resize(size_t(p.B * p.T));
  for (double& g : in.gate) g = p.gate == Gate::HardLow ? double(rng.uniform() < 0.13) : p.gate == Gate::Real ? rng.uniform() : 1.0;
  in.gate = bf16_round(in.gate);
  return in;
}

struct Grads {
  std::vector<double> dq, dk, dv, dgate;
};

// ---- the CPU reference in T (double: the truth; float: the control) ----
template <class T>
Grads cpu_grads(const Problem& p, const Inputs& in) {
  const cpu::AttentionShape s = p.shape();
  auto cast = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  const std::vector<T> q = cast(in.q), k = cast(in.k), v = cast(in.v), gate = cast(in.gate);
  const size_t nq = in.q.size(), nk = in.k.size(), rows = size_t(p.B * p.T * p.Hq);
  std::vector<T> dq(nq), dk(nk), dv(nk), dgate(in.gate.size());
  if (p.switch_op) {
    std::vector<T> out(nq), of(nq), os(nq), lf(rows), ls(rows), dout = cast(in.dout);
    cpu::switch_attention_forward<T>(s, p.window, q.data(), k.data(), v.data(), gate.data(), true, out.data(),
                                     of.data(), os.data(), lf.data(), ls.data());
    cpu::switch_attention_backward<T>(s, p.window, q.data(), k.data(), v.data(), gate.data(), of.data(), os.data(),
                                      lf.data(), ls.data(), dout.data(), dq.data(), dk.data(), dv.data(),
                                      dgate.data());
  } else {  // the branch's output gradient is w_t dout_t (w = 1, gate or 1 - gate)
    std::vector<double> wd = in.dout;
    if (p.gate != Gate::None)
      for (size_t i = 0; i < wd.size(); ++i) {
        const double g = in.gate[i / size_t(p.Hq * p.D)];
        wd[i] *= p.complement ? 1.0 - g : g;
      }
    std::vector<T> out(nq), lse(rows), dout = cast(wd);
    cpu::attention_forward<T>(s, p.window, q.data(), k.data(), v.data(), out.data(), lse.data());
    cpu::attention_backward<T>(s, p.window, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                               dq.data(), dk.data(), dv.data());
  }
  auto back = [](const std::vector<T>& x) { return std::vector<double>(x.begin(), x.end()); };
  return {back(dq), back(dk), back(dv), p.switch_op ? back(dgate) : std::vector<double>()};
}

// ---- the device: one forward, then the backward with the current kernel choice ----
struct DeviceRun {
  Tensor q, k, v, dout, gate, out, o_full, o_swa, lse_full, lse_swa;
};
DeviceRun device_forward(const Problem& p, const Inputs& in) {
  const cpu::AttentionShape s = p.shape();
  auto dev = [](const std::vector<double>& x, const Shape& shape) {
    return Tensor::from_vector(x, shape, DType::F64).to(DType::BF16).to(Device::CUDA);
  };
  DeviceRun d;
  d.q = dev(in.q, {p.B, p.T, p.Hq, p.D});
  d.k = dev(in.k, {p.B, p.T, p.Hkv, p.D});
  d.v = dev(in.v, {p.B, p.T, p.Hkv, p.D});
  d.dout = dev(in.dout, {p.B, p.T, p.Hq, p.D});
  d.gate = dev(in.gate, {p.B, p.T});
  const Shape rows{p.B, p.T, p.Hq};
  if (p.switch_op) {
    d.out = Tensor::empty(d.q.shape(), DType::BF16, Device::CUDA);
    d.o_full = Tensor::empty(d.q.shape(), DType::F32, Device::CUDA);
    d.o_swa = Tensor::empty(d.q.shape(), DType::F32, Device::CUDA);
    d.lse_full = Tensor::empty(rows, DType::F32, Device::CUDA);
    d.lse_swa = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::switch_attention_forward(s, p.window, d.q, d.k, d.v, d.gate, true, d.out, d.o_full, d.o_swa, d.lse_full,
                                   d.lse_swa);
  } else {
    d.out = Tensor::empty(d.q.shape(), p.complement ? DType::F32 : DType::BF16, Device::CUDA);
    d.lse_full = Tensor::empty(rows, DType::F32, Device::CUDA);
    cuda::attention_forward(s, p.window, d.q, d.k, d.v, d.out, d.lse_full);
  }
  return d;
}
Grads device_backward(const Problem& p, const DeviceRun& d) {
  const cpu::AttentionShape s = p.shape();
  REQUIRE(cuda::flash_backward_supported(s, d.q, d.k, d.v, d.dout));
  Tensor dq = Tensor::zeros(d.q.shape(), DType::BF16, Device::CUDA), dk = Tensor::zeros(d.k.shape(), DType::BF16, Device::CUDA);
  Tensor dv = Tensor::zeros(d.v.shape(), DType::BF16, Device::CUDA), dgate = Tensor::zeros(d.gate.shape(), DType::BF16, Device::CUDA);
  if (p.switch_op)
    cuda::switch_attention_backward(s, p.window, d.q, d.k, d.v, d.gate, d.o_full, d.o_swa, d.lse_full, d.lse_swa,
                                    d.dout, dq, dk, dv, dgate);
  else
    cuda::attention_backward(s, p.window, d.q, d.k, d.v, d.out, d.lse_full, d.dout,
                             p.gate == Gate::None ? Tensor() : d.gate, p.complement, dq, dk, dv);
  cuda::synchronize();
  return {dq.to_vector(), dk.to_vector(), dv.to_vector(), p.switch_op ? dgate.to_vector() : std::vector<double>()};
}

// ---- errors ----
struct Parts {  // a partition of a gradient's elements: part[i] for element i (-1: in none)
  std::vector<int> of;
  std::vector<std::string> names;
  std::string kind;
};
// (rows, heads, D) layout (b, t, h, d): parts by t / tile
Parts tile_parts(int64_t B, int64_t T, int64_t H, int64_t D, int64_t tile, const char* what) {
  Parts p;
  p.kind = what;
  const int64_t tiles = (T + tile - 1) / tile;
  for (int64_t i = 0; i < tiles; ++i) p.names.push_back(std::string(what) + " " + std::to_string(i));
  p.of.resize(size_t(B * T * H * D));
  for (int64_t e = 0; e < B * T * H * D; ++e) p.of[size_t(e)] = int((e / (H * D)) % T / tile);
  return p;
}
// banded inputs: the distance bins (of 128) between rows' tiles and column bands.
//   rows are keys (dv: distance = band centre - tile centre) or queries (dq: tile centre - band centre)
Parts distance_parts(const Problem& p, int64_t H, int64_t tile, bool rows_are_keys) {
  Parts parts;
  parts.kind = "distance";
  const int64_t band = (p.T + p.D - 1) / p.D;
  std::map<int64_t, int> bin_index;
  std::vector<int64_t> bins;
  auto bin_of = [&](int64_t row, int64_t d) {
    const double tile_centre = double(row / tile) * tile + tile / 2.0, band_centre = double(d) * band + band / 2.0;
    const double dist = rows_are_keys ? band_centre - tile_centre : tile_centre - band_centre;
    return int64_t(std::floor(dist / 128.0));
  };
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t d = 0; d < p.D; ++d) bins.push_back(bin_of(t, d));
  std::sort(bins.begin(), bins.end());
  bins.erase(std::unique(bins.begin(), bins.end()), bins.end());
  for (size_t i = 0; i < bins.size(); ++i) {
    bin_index[bins[i]] = int(i);
    parts.names.push_back("distance [" + std::to_string(128 * bins[i]) + ", " + std::to_string(128 * bins[i] + 128) + ")");
  }
  parts.of.resize(size_t(p.B * p.T * H * p.D));
  for (int64_t e = 0; e < int64_t(parts.of.size()); ++e) {
    const int64_t d = e % p.D, t = (e / (H * p.D)) % p.T;
    parts.of[size_t(e)] = bin_index[bin_of(t, d)];
  }
  return parts;
}

struct Score {
  double ratio = 0.0;  // worst err / bound over the parts (> 1: failed)
  std::string where;
  int failed = 0, parts = 0;
};
// err / bound per part: bound = 2 ctrl + 1e-2 max(norm, 0.1 x the part's share of the whole norm)
// (an all-zero reference: 2 ctrl + 1e-2, absolute)
Score score_parts(const std::vector<double>& x, const std::vector<double>& truth, const std::vector<double>& ctrl,
                  const Parts& parts) {
  const size_t n_parts = parts.names.size();
  std::vector<double> e(n_parts), c(n_parts), nrm(n_parts), cnt(n_parts);
  double total = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    total += truth[i] * truth[i];
    const int k = parts.of[i];
    if (k < 0) continue;
    e[k] += (x[i] - truth[i]) * (x[i] - truth[i]);
    c[k] += (ctrl[i] - truth[i]) * (ctrl[i] - truth[i]);
    nrm[k] += truth[i] * truth[i];
    cnt[k] += 1;
  }
  Score s;
  for (size_t k = 0; k < n_parts; ++k) {
    if (cnt[k] == 0) continue;
    ++s.parts;
    const double floor = 0.1 * std::sqrt(total * cnt[k] / double(x.size()));
    // An all-zero reference (e.g. dq and dk at T = 1: one key, no score gradient) is compared in
    // absolute terms, as rel_error does for the whole tensor.
    const double scale = total > 0 ? std::max(std::sqrt(nrm[k]), floor) : 1.0;
    const double bound = 2 * std::sqrt(c[k]) + 1e-2 * scale + 1e-30;
    const double r = std::isfinite(e[k]) ? std::sqrt(e[k]) / bound : INFINITY;
    if (!(r <= 1.0)) ++s.failed;
    if (!(r <= s.ratio)) s.ratio = r, s.where = parts.names[k];
  }
  return s;
}

double rel_error(const std::vector<double>& x, const std::vector<double>& ref) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < x.size(); ++i) err += (x[i] - ref[i]) * (x[i] - ref[i]), norm += ref[i] * ref[i];
  if (!std::isfinite(err)) return INFINITY;
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}

std::string index_str(size_t i, const std::vector<int64_t>& dims) {
  std::vector<int64_t> at(dims.size());
  for (size_t k = dims.size(); k-- > 0;) at[k] = int64_t(i % size_t(dims[k])), i /= size_t(dims[k]);
  std::string s = "(";
  for (size_t k = 0; k < at.size(); ++k) s += (k ? "," : "") + std::to_string(at[k]);
  return s + ")";
}

// One gradient of one kernel: prints its line, returns whether it passes. err80 < 0: no sm80
// comparison. whole_ok, if given, receives the whole-tensor verdict alone.
bool check_gradient(const Problem& p, const std::string& kernel, const char* grad, const std::vector<double>& x,
                    const std::vector<double>& truth, const std::vector<double>& ctrl32, double err80,
                    const std::vector<int64_t>& dims, const std::vector<Parts>& parts, bool* whole_ok = nullptr) {
  const std::vector<double> ctrl = bf16_round(ctrl32);
  const double err = rel_error(x, truth), c = rel_error(ctrl, truth), bound = 2 * c + 1e-2;
  const double bound80 = err80 < 0 ? INFINITY : 1.5 * err80 + 1e-3;
  double rms = 0.0;
  for (double t : truth) rms += t * t;
  rms = std::sqrt(rms / double(std::max<size_t>(1, truth.size())));
  size_t worst = 0, first_bad = x.size(), bad = 0;
  double worst_abs = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(x[i] - truth[i]);
    if (!(d <= worst_abs)) worst_abs = d, worst = i;
    if (!(d <= 4 * std::fabs(ctrl[i] - truth[i]) + 1e-2 * rms)) {
      ++bad;
      if (first_bad == x.size()) first_bad = i;
    }
  }
  bool ok = err <= bound && err <= bound80;
  if (whole_ok) *whole_ok = ok;
  std::string part_text;
  for (const Parts& pt : parts) {
    const Score s = score_parts(x, truth, ctrl, pt);
    ok = ok && s.failed == 0;
    char buf[200];
    std::snprintf(buf, sizeof buf, " | %s: worst %.2f (%s), %d of %d failed", pt.kind.c_str(), s.ratio, s.where.c_str(),
                  s.failed, s.parts);
    part_text += buf;
  }
  char line[700];
  std::snprintf(line, sizeof line,
                "BACKWARD-CHECK %-46s | %-18s | %-5s | err %.2e ctrl %.2e bound %.2e sm80 %s%s | max abs %.2e at %s"
                " | off %zu%s%s | %s",
                p.name().c_str(), kernel.c_str(), grad, err, c, bound,
                err80 < 0 ? "-" : (std::to_string(err80).substr(0, 8)).c_str(), part_text.c_str(), worst_abs,
                index_str(worst, dims).c_str(), bad, first_bad < x.size() ? " first " : "",
                first_bad < x.size()
                    ? (index_str(first_bad, dims) + " got " + std::to_string(x[first_bad]) + " want " +
                       std::to_string(truth[first_bad]))
                          .c_str()
                    : "",
                ok ? "ok" : "FAIL");
  std::printf("%s\n", line);
  std::fflush(stdout);  // a later hang or crash must not swallow it
  return ok;
}

struct KernelChoice {  // backward kernel and deterministic mode for the life of the object
  cuda::FlashKernel before = cuda::flash_backward_kernel();
  bool det_before = cuda::deterministic();
  KernelChoice(cuda::FlashKernel k, bool det) {
    cuda::set_flash_backward_kernel(k);
    cuda::set_deterministic(det);
  }
  ~KernelChoice() {
    cuda::set_flash_backward_kernel(before);
    cuda::set_deterministic(det_before);
  }
};

void run_problem(const Problem& p, uint64_t seed) {
  const Inputs in = make_inputs(p, seed);
  const Grads truth = cpu_grads<double>(p, in), ctrl = cpu_grads<float>(p, in);
  const DeviceRun d = device_forward(p, in);
  const std::vector<int64_t> qdims{p.B, p.T, p.Hq, p.D}, kdims{p.B, p.T, p.Hkv, p.D}, gdims{p.B, p.T};
  // the parts of each gradient
  std::vector<Parts> dq_parts{tile_parts(p.B, p.T, p.Hq, p.D, 64, "query tile")};
  std::vector<Parts> dk_parts{tile_parts(p.B, p.T, p.Hkv, p.D, 128, "key tile")};
  std::vector<Parts> dv_parts = dk_parts;
  const std::vector<Parts> dgate_parts{tile_parts(p.B, p.T, 1, 1, 128, "token tile")};
  if (p.banded) {
    dq_parts.push_back(distance_parts(p, p.Hq, 64, false));
    dv_parts.push_back(distance_parts(p, p.Hkv, 128, true));
  }
  struct Variant {
    std::string name;
    cuda::FlashKernel kernel;
    bool deterministic;
  };
  std::vector<Variant> variants = {{"sm80", cuda::FlashKernel::Sm80, false},
                                   {"sm80 deterministic", cuda::FlashKernel::Sm80, true}};
  const char* skip = std::getenv("SWIATTN_TEST_SKIP_HOPPER_BACKWARD");  // set by the GPU script after a hang
  if (skip && *skip && std::string(skip) != "0")
    std::printf("BACKWARD-SKIP %s | hopper | SKIPPED (SWIATTN_TEST_SKIP_HOPPER_BACKWARD is set)\n", p.name().c_str());
  else if (cuda::hopper_kernel_available()) variants.push_back({"hopper", cuda::FlashKernel::Hopper, false});
  else
    std::printf("BACKWARD-SKIP %s | hopper | SKIPPED (no Hopper kernel here: %s)\n", p.name().c_str(),
                cuda::hopper_kernel_status().c_str());
  Grads sm80;
  for (const Variant& v : variants) {
    std::printf("BACKWARD-START %s | %s\n", p.name().c_str(), v.name.c_str());
    std::fflush(stdout);
    Grads g;
    {
      KernelChoice use(v.kernel, v.deterministic);
      REQUIRE(cuda::flash_backward_kernel_in_use() == (v.kernel == cuda::FlashKernel::Hopper ? "hopper" : "sm80"));
      g = device_backward(p, d);
    }
    const bool vs80 = v.kernel == cuda::FlashKernel::Hopper;
    if (v.name == "sm80") sm80 = g;
    INFO(p.name(), " | ", v.name, " (the BACKWARD-CHECK lines on stdout say where)");
    CHECK(check_gradient(p, v.name, "dq", g.dq, truth.dq, ctrl.dq, vs80 ? rel_error(sm80.dq, truth.dq) : -1, qdims,
                         dq_parts));
    CHECK(check_gradient(p, v.name, "dk", g.dk, truth.dk, ctrl.dk, vs80 ? rel_error(sm80.dk, truth.dk) : -1, kdims,
                         dk_parts));
    CHECK(check_gradient(p, v.name, "dv", g.dv, truth.dv, ctrl.dv, vs80 ? rel_error(sm80.dv, truth.dv) : -1, kdims,
                         dv_parts));
    if (p.switch_op)
      CHECK(check_gradient(p, v.name, "dgate", g.dgate, truth.dgate, ctrl.dgate,
                           vs80 ? rel_error(sm80.dgate, truth.dgate) : -1, gdims, dgate_parts));
  }
}

}  // namespace

// The checker itself, on the CPU (runs everywhere): the control rounded to bfloat16 passes; the
// same with dv wrong by 20% in the farthest distance bin only passes the whole-tensor rule but
// fails the per-distance one, and the same in one key tile fails the per-tile one.
TEST_CASE("cuda backward: the per-part checks catch an error confined to far keys (CPU)") {
  const Problem p{1, 1024, 2, 1, 64, 128, true, Gate::Real, 1.0, true};
  const Inputs in = make_inputs(p, 7);
  const Grads truth = cpu_grads<double>(p, in), ctrl = cpu_grads<float>(p, in);
  const std::vector<int64_t> kdims{p.B, p.T, p.Hkv, p.D};
  const std::vector<Parts> parts{tile_parts(p.B, p.T, p.Hkv, p.D, 128, "key tile"), distance_parts(p, p.Hkv, 128, true)};
  bool whole = false;
  CHECK(check_gradient(p, "checker: control", "dv", bf16_round(ctrl.dv), truth.dv, ctrl.dv, -1, kdims, parts, &whole));
  CHECK(whole);
  // the farthest bin: key tile 0 against the last query bands
  std::vector<double> far = bf16_round(ctrl.dv);
  const Parts& bins = parts[1];
  const int last = int(bins.names.size()) - 1;
  for (size_t i = 0; i < far.size(); ++i)
    if (bins.of[i] == last) far[i] *= 1.2;
  CHECK_FALSE(check_gradient(p, "checker: far bin", "dv", far, truth.dv, ctrl.dv, -1, kdims, parts, &whole));
  CHECK(whole);  // what a whole-tensor norm alone would have said
  const Score s = score_parts(far, truth.dv, bf16_round(ctrl.dv), bins);
  CHECK(s.where == bins.names[size_t(last)]);
  // one key tile (the last: keys 896 ..) wrong by 20%
  std::vector<double> tile = bf16_round(ctrl.dv);
  for (size_t i = 0; i < tile.size(); ++i)
    if (parts[0].of[i] == 7) tile[i] *= 1.2;
  CHECK_FALSE(check_gradient(p, "checker: one tile", "dv", tile, truth.dv, ctrl.dv, -1, kdims, parts, &whole));
  CHECK(score_parts(tile, truth.dv, bf16_round(ctrl.dv), parts[0]).where == "key tile 7");
}

TEST_CASE("cuda backward: sanitizer sizes (sm80, deterministic, hopper)") {
  if (skip_without_device("attention backward kernels, small sizes")) return;
  StrictDevice strict;
  run_problem({2, 3, 4, 2, 64, 1, true, Gate::Real}, 11);
  run_problem({1, 200, 4, 2, 128, 64, true, Gate::HardLow}, 12);
  run_problem({2, 130, 4, 4, 64, 0, false, Gate::None}, 13);
}

TEST_CASE("cuda backward: the reproduction's layer (B 16, T 2048, Hq 4, Hkv 2, D 64, w 128)") {
  if (skip_without_device("attention backward kernels, the reproduction's layer")) return;
  StrictDevice strict;
  run_problem({16, 2048, 4, 2, 64, 128, true, Gate::HardLow}, 21);
  run_problem({16, 2048, 4, 2, 64, 128, true, Gate::HardLow, 1.0, true}, 22);  // banded: per distance
}

TEST_CASE("cuda backward: peaked attention, odd sizes, windows, GQA, D 64 and 128") {
  if (skip_without_device("attention backward kernels, shapes")) return;
  StrictDevice strict;
  const std::vector<Problem> problems = {
      {2, 1031, 4, 2, 128, 64, true, Gate::Real, 8.0},          // sharply peaked
      {2, 1031, 4, 2, 64, 300, true, Gate::Real, 8.0, true},    // peaked and banded
      {2, 1, 16, 8, 128, 64, true, Gate::Real},                 // T 1
      {2, 113, 16, 8, 64, 1, true, Gate::HardLow},              // w 1
      {2, 113, 8, 8, 128, 500, true, Gate::Real},               // w >= T
      {1, 1031, 4, 2, 128, 0, false, Gate::None},               // full causal
      {2, 1031, 16, 8, 64, 100, false, Gate::None},             // windowed
      {2, 500, 4, 4, 128, 0, false, Gate::Real, 1.0, false, true},  // (1 - g) dout
      {1, 2048, 4, 2, 128, 128, true, Gate::HardLow, 1.0, true},    // D 128 banded
  };
  uint64_t seed = 100;
  for (const Problem& p : problems) run_problem(p, seed += 10);
}

}  // namespace swiattn
