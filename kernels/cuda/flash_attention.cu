// kernels/cuda/flash_attention.cu: the entry points of flash_attention.h, and the sm_80 kernel
// (mma.sync, ldmatrix, cp.async: any GPU from sm_80 on). On a compute capability 9.0 device with
// sm_90a code in the binary the entry points take the Hopper kernel of hopper_attention.cu
// instead (which_kernel below; flash_attention.h: FlashKernel); this one stays the fallback and
// the reference that kernel is tested against (tests/test_cuda_hopper.cpp).
//
// One kernel, three uses (Mode, flash_params.cuh):
//   Plain   out, lse of attention over each row's keys [lo(t), t]     (flash_attention_forward)
//   Switch  window keys first -> O_SWA; far keys [0, t - w] continue   (flash_switch_attention_forward)
//           the same online softmax -> O_FULL; out = g O_FULL + (1 - g) O_SWA
//   Routed  like Plain, but the CTA's query rows are gathered from a    (routed_attention_prefill)
//           list of positions (the full list, window 0, or the window list), outputs scattered back
//
// A CTA: kWarps warps, tile of kBM = 16 kWarps query rows of one (b, h); warp w owns rows
// 16w .. 16w + 15 (mma.cuh: lane holds rows g and g + 8 of them). Per key tile of kBN keys:
//   S = Q K^T (registers, f32)  ->  mask (boundary tiles only)  ->  m_new = max(m, c rowmax S)
//   P = 2^(c S - m_new), l = l 2^(m - m_new) + rowsum P, O = O 2^(m - m_new) + P V
// with c = log2(e) / sqrt(D): m is kept in log2 units, so one FFMA and one exp2 per score;
// lse = (m + log2 l) ln 2. K / V tiles: kStages shared-memory stages (default 2), the next
// tiles' cp.async in flight while the current one is used. Measured on the H100 (B=1, Hq 16,
// Hkv 8, D 128, T 32K, docs/perf.md): 8 warps x 2 stages 219 TFLOP/s full causal;
// 8 x 3: 219; 4 x 3: 202; 4 x 2: 204.
#include "kernels/cuda/flash_attention.h"

#include <cstdlib>
#include <string>

#include "tensor/cuda/common.cuh"
#include "kernels/cuda/flash_params.cuh"
#include "kernels/cuda/mma.cuh"

namespace swiattn::cuda {
namespace {

using namespace mma;

constexpr int kBN = 64;  // keys per tile

// kBN x D keys (or values) from row j0 of kv head hk into a swizzled stage; rows >= T are zeros.
template <int D, int kThreads>
__device__ __forceinline__ void load_kv_tile(bf16* dst, const bf16* src, int b, int hk, int j0, const FlashParams& p) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  for (int i = threadIdx.x; i < kBN * kChunks; i += kThreads) {
    const int r = i / kChunks, ch = i % kChunks, j = j0 + r;
    const bool valid = j < p.T;
    const bf16* g = valid ? src + ((int64_t(b) * p.T + j) * p.Hkv + hk) * D + ch * 8 : src;
    cp_async_16(smem_addr(dst + swizzle<D>(r, ch * 8)), g, valid);
  }
}

template <int D, int kWarps, int kStages, Mode kMode, class TO>
__global__ void __launch_bounds__(32 * kWarps) flash_forward_kernel(FlashParams p) {
  constexpr int kBM = 16 * kWarps, kThreads = 32 * kWarps;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // (kBM, D)
  bf16* sK = sQ + kBM * D;                        // kStages stages of (kBN, D)
  bf16* sV = sK + kStages * kBN * D;              // kStages stages of (kBN, D)
  __shared__ int sT[kBM];                         // each query row's position t (-1: padding)
  __shared__ int sFarMax;                         // Switch: the largest far key of any row

  // ---- which query rows: tiles in reverse order, so the longest key ranges start first ----
  const int h = blockIdx.x, b = blockIdx.z, hk = h / p.group;
  int window = p.window, n_rows = p.T, tile;
  const int* list = nullptr;
  if constexpr (kMode == Mode::Routed) {
    const int which = blockIdx.y < unsigned(p.tiles) ? 0 : 1;  // 0: full list, 1: window list
    tile = p.tiles - 1 - (int(blockIdx.y) - which * p.tiles);
    list = p.list[which] + int64_t(b) * p.T;
    n_rows = p.count[2 * b + which];
    window = which == 0 ? 0 : p.window;
  } else {
    tile = p.tiles - 1 - int(blockIdx.y);
  }
  const int row0 = tile * kBM;
  if (row0 >= n_rows) return;  // an empty slot of a short list
  const int rows_here = min(kBM, n_rows - row0);
  if (threadIdx.x == 0) sFarMax = -1;
  for (int r = threadIdx.x; r < kBM; r += kThreads)
    sT[r] = r < rows_here ? (list ? list[row0 + r] : row0 + r) : -1;
  __syncthreads();

  // ---- this lane's two rows (g and g + 8 of its warp's 16) and their key ranges ----
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  int t_row[2], lo[2], far_hi[2];
  float gate[2] = {0.0f, 0.0f};
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int t = sT[16 * warp + g + 8 * e];
    t_row[e] = t;
    lo[e] = t >= 0 ? window_first_key(t, window) : INT32_MAX;  // padding rows read no key
    far_hi[e] = -1;
    if constexpr (kMode == Mode::Switch) {
      if (t >= 0) {
        gate[e] = __bfloat162float(p.gate[int64_t(b) * p.T + t]);
        if (p.both || gate[e] != 0.0f) far_hi[e] = window_first_key(t, window) - 1;  // keys [0, t - w]
      }
      if (c == 0) atomicMax(&sFarMax, far_hi[e]);
    }
  }

  // ---- Q tile (gathered rows) and the first K / V tile ----
  const int t_first = sT[0], t_last = sT[rows_here - 1];  // positions ascend within a tile
  const int kb_begin = window_first_key(t_first, window) / kBN;
  const int n1 = t_last / kBN - kb_begin + 1;  // phase 1: the tiles of [lo(t_first), t_last]
  {
    constexpr int kChunks = D / 8;
    for (int i = threadIdx.x; i < kBM * kChunks; i += kThreads) {
      const int r = i / kChunks, ch = i % kChunks, t = sT[r];
      const bf16* src = t >= 0 ? p.q + ((int64_t(b) * p.T + t) * p.Hq + h) * D + ch * 8 : p.q;
      cp_async_16(smem_addr(sQ + swizzle<D>(r, ch * 8)), src, t >= 0);
    }
  }
  __syncthreads();  // sFarMax complete
  const int n2 = kMode == Mode::Switch && sFarMax >= 0 ? sFarMax / kBN + 1 : 0;  // phase 2: [0, far max]
  const int n_items = n1 + n2;
  auto key_start = [&](int it) { return it < n1 ? (kb_begin + it) * kBN : (it - n1) * kBN; };
  // the first kStages - 1 key tiles, one cp.async group each (Q rides with the first)
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n_items) {
      load_kv_tile<D, kThreads>(sK + st * kBN * D, p.k, b, hk, key_start(st), p);
      load_kv_tile<D, kThreads>(sV + st * kBN * D, p.v, b, hk, key_start(st), p);
    }
    cp_async_commit();
  }

  float o[D / 8][4] = {};            // O: rows g, g + 8; columns 8 nb + 2c, + 1
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this lane's partial row sums
  uint32_t qa[D / 16][4];            // Q as A fragments, loaded once

  for (int it = 0, stage = 0; it < n_items; ++it, stage = stage + 1 == kStages ? 0 : stage + 1) {
    const int ahead = it + kStages - 1;  // into the stage tile it - 1 used (freed by the last barrier)
    if (ahead < n_items) {
      const int to = stage == 0 ? kStages - 1 : stage - 1;
      load_kv_tile<D, kThreads>(sK + to * kBN * D, p.k, b, hk, key_start(ahead), p);
      load_kv_tile<D, kThreads>(sV + to * kBN * D, p.v, b, hk, key_start(ahead), p);
    }
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // this tile (and Q) landed, for this thread's copies ...
    __syncthreads();     // ... and for everyone's
    if (it == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qa[kk], smem_addr(sQ + swizzle<D>(16 * warp + (lane & 15), kk * 16 + (lane >> 4) * 8)));
    }

    const int j0 = key_start(it);
    const bool far = it >= n1;  // phase 2: legal keys [0, far_hi]; phase 1: [lo, t]
    const int lo0 = far ? 0 : lo[0], lo1 = far ? 0 : lo[1];
    const int hi0 = far ? far_hi[0] : t_row[0], hi1 = far ? far_hi[1] : t_row[1];
    const bool none = j0 + kBN - 1 < min(lo0, lo1) || j0 > max(hi0, hi1);
    const bool whole = lo0 <= j0 && lo1 <= j0 && j0 + kBN - 1 <= min(hi0, hi1);
    if (!__all_sync(0xffffffffu, none)) {  // this warp has keys here
      const bf16* k_tile = sK + stage * kBN * D;
      const bf16* v_tile = sV + stage * kBN * D;
      // S = Q K^T: 16 x kBN per warp
      float s[kBN / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < kBN / 16; ++np) {
          uint32_t kb[4];  // keys 16np + 0-7 | 8-15, dims 16kk + 0-7 | 8-15
          const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
          ldmatrix_x4(kb, smem_addr(k_tile + swizzle<D>(key, kk * 16 + ((lane >> 3) & 1) * 8)));
          mma_bf16_16816(s[2 * np], qa[kk], kb[0], kb[1]);
          mma_bf16_16816(s[2 * np + 1], qa[kk], kb[2], kb[3]);
        }
      }
      // mask, only where some key of the tile is out of some row's range (a warp-uniform branch)
      if (!__all_sync(0xffffffffu, whole)) {
#pragma unroll
        for (int nb = 0; nb < kBN / 8; ++nb)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int j = j0 + nb * 8 + 2 * c + (e & 1);
            const int lo_e = e < 2 ? lo0 : lo1, hi_e = e < 2 ? hi0 : hi1;
            if (j < lo_e || j > hi_e) s[nb][e] = -INFINITY;
          }
      }
      // online softmax, rows e = 0 (g) and 1 (g + 8); m in scaled log2 units, the scale folded
      // into the exponent: p = 2^(s scale - m)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float mx = -INFINITY;
#pragma unroll
        for (int nb = 0; nb < kBN / 8; ++nb) mx = fmaxf(mx, fmaxf(s[nb][2 * e], s[nb][2 * e + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        mx = fmaxf(m[e], mx * p.scale_log2);
        const float m_use = mx == -INFINITY ? 0.0f : mx;  // a row with no key yet: all p = 0
        const float alpha = exp2f(m[e] - m_use);
        m[e] = mx;
        float sum = 0.0f;
#pragma unroll
        for (int nb = 0; nb < kBN / 8; ++nb) {
          s[nb][2 * e] = exp2f(fmaf(s[nb][2 * e], p.scale_log2, -m_use));
          s[nb][2 * e + 1] = exp2f(fmaf(s[nb][2 * e + 1], p.scale_log2, -m_use));
          sum += s[nb][2 * e] + s[nb][2 * e + 1];
        }
        l[e] = l[e] * alpha + sum;
#pragma unroll
        for (int nb = 0; nb < D / 8; ++nb) {
          o[nb][2 * e] *= alpha;
          o[nb][2 * e + 1] *= alpha;
        }
      }
      // O += P V: P's accumulators are already A fragments (mma.cuh)
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vb[4];  // keys 16kk + 0-7 | 8-15 for dims 16dp + 0-7, then for 8-15
          const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
          ldmatrix_x4_trans(vb, smem_addr(v_tile + swizzle<D>(key, dp * 16 + (lane >> 4) * 8)));
          mma_bf16_16816(o[2 * dp], pa, vb[0], vb[1]);
          mma_bf16_16816(o[2 * dp + 1], pa, vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // everyone is done with this stage before it is refilled

    // ---- results: O_SWA after phase 1 (Switch), the final O after the last tile ----
    const bool last = it == n_items - 1;
    if (!(last || (kMode == Mode::Switch && it == n1 - 1))) continue;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float lt = l[e];
      lt += __shfl_xor_sync(0xffffffffu, lt, 1);
      lt += __shfl_xor_sync(0xffffffffu, lt, 2);
      const int t = t_row[e];
      if (t < 0) continue;
      const float inv = 1.0f / lt, lse = (m[e] + log2f(lt)) * 0.69314718055994531f;
      const int64_t row = (int64_t(b) * p.T + t) * p.Hq + h;
      if constexpr (kMode == Mode::Switch) {
        if (it == n1 - 1) {  // O_SWA (the window keys only)
#pragma unroll
          for (int nb = 0; nb < D / 8; ++nb)
            store2(p.o_swa + row * D + nb * 8 + 2 * c, o[nb][2 * e] * inv, o[nb][2 * e + 1] * inv);
          if (c == 0) p.lse_swa[row] = lse;
        }
        if (last) {  // O_FULL, and Eq. 6 with the O_SWA this thread wrote itself
          const float gt = gate[e];
#pragma unroll
          for (int nb = 0; nb < D / 8; ++nb) {
            const int64_t i = row * D + nb * 8 + 2 * c;
            const float f0 = o[nb][2 * e] * inv, f1 = o[nb][2 * e + 1] * inv;
            const float2 sw = *reinterpret_cast<const float2*>(p.o_swa + i);
            store2(p.o_full + i, f0, f1);
            store2(static_cast<bf16*>(p.out) + i, gt * f0 + (1.0f - gt) * sw.x, gt * f1 + (1.0f - gt) * sw.y);
          }
          if (c == 0) p.lse[row] = lse;
        }
      } else {
#pragma unroll
        for (int nb = 0; nb < D / 8; ++nb)
          store2(static_cast<TO*>(p.out) + row * D + nb * 8 + 2 * c, o[nb][2 * e] * inv, o[nb][2 * e + 1] * inv);
        if (kMode == Mode::Plain && p.lse && c == 0) p.lse[row] = lse;
      }
    }
  }
}

// ---- the routing scan: positions with route != 0 -> full list, the others -> window list ----
__global__ void route_compact_kernel(int T, const bf16* route, int* list_full, int* list_window, int* count) {
  __shared__ int warp_total[32];
  __shared__ int base;  // full positions before this chunk
  const int b = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (threadIdx.x == 0) base = 0;
  __syncthreads();
  for (int start = 0; start < T; start += blockDim.x) {
    const int t = start + threadIdx.x;
    const bool full = t < T && __bfloat162float(route[int64_t(b) * T + t]) != 0.0f;
    const unsigned votes = __ballot_sync(0xffffffffu, full);
    if (lane == 0) warp_total[warp] = __popc(votes);
    __syncthreads();
    int before = base + __popc(votes & ((1u << lane) - 1u));  // full positions before t
    for (int w = 0; w < warp; ++w) before += warp_total[w];
    if (t < T) {
      if (full) list_full[int64_t(b) * T + before] = t;
      else list_window[int64_t(b) * T + (t - before)] = t;  // t - before: window positions before t
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int w = 0; w < warps; ++w) base += warp_total[w];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    count[2 * b] = base;
    count[2 * b + 1] = T - base;
  }
}

__global__ void count_soft_kernel(int64_t n, const bf16* gate, int* soft) {
  int mine = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(gate[i]);
    mine += g != 0.0f && g != 1.0f;
  }
  if (mine) atomicAdd(soft, mine);
}

// Query-tile size and pipeline depth: SWIATTN_FLASH_CONFIG = "<warps>x<stages>", one of 4x2,
// 8x2, 4x3, 8x3 (for measuring; the default is the fastest measured on the H100, docs/perf.md).
int flash_config() {
  static const int config = [] {
    const char* env = std::getenv("SWIATTN_FLASH_CONFIG");
    const std::string c = env ? env : "8x2";
    return c == "4x2" ? 42 : c == "4x3" ? 43 : c == "8x3" ? 83 : 82;
  }();
  return config;
}

// Which kernel family runs (flash_attention.h): the choice starts from SWIATTN_ATTENTION_KERNEL.
FlashKernel initial_choice() {
  const char* env = std::getenv("SWIATTN_ATTENTION_KERNEL");
  const std::string c = env ? env : "auto";
  if (c == "auto" || c.empty()) return FlashKernel::Auto;
  if (c == "sm80") return FlashKernel::Sm80;
  if (c == "hopper") return FlashKernel::Hopper;
  throw Error("SWIATTN_ATTENTION_KERNEL=" + c + ": expected auto, sm80 or hopper");
}
FlashKernel& choice() {
  static FlashKernel kernel = initial_choice();
  return kernel;
}
// true: the Hopper kernel takes this call; throws when it was asked for and cannot run.
bool which_kernel(const std::string& op) {
  if (choice() == FlashKernel::Sm80) return false;
  std::string why;
  const bool ok = hopper_forward_available(&why);
  if (choice() == FlashKernel::Hopper && !ok)
    throw Error(op + ": the Hopper kernel was asked for (SWIATTN_ATTENTION_KERNEL=hopper or set_flash_kernel) "
                "but cannot run: " + why);
  return ok;
}

template <int D, int kWarps, int kStages, Mode kMode, class TO>
void launch(FlashParams p, int B) {
  constexpr int kBM = 16 * kWarps;
  const int smem = (kBM + 2 * kStages * kBN) * D * int(sizeof(bf16));
  auto kernel = flash_forward_kernel<D, kWarps, kStages, kMode, TO>;
  static const bool configured = [&] {
    SWIATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)configured;
  p.tiles = (p.T + kBM - 1) / kBM;
  const dim3 grid(p.Hq, kMode == Mode::Routed ? 2 * p.tiles : p.tiles, B);
  kernel<<<grid, 32 * kWarps, smem>>>(p);
  SWIATTN_CUDA_CHECK_LAUNCH("flash_attention_forward");
}

template <int D, Mode kMode, class TO>
void launch_config(FlashParams p, int B) {
  switch (flash_config()) {
    case 42: return launch<D, 4, 2, kMode, TO>(p, B);
    case 43: return launch<D, 4, 3, kMode, TO>(p, B);
    case 83: return launch<D, 8, 3, kMode, TO>(p, B);
    default: return launch<D, 8, 2, kMode, TO>(p, B);
  }
}
template <Mode kMode, class TO>
void launch_any(const cpu::AttentionShape& s, FlashParams p) {
  if (s.D == 64) return launch_config<64, kMode, TO>(p, int(s.B));
  return launch_config<128, kMode, TO>(p, int(s.B));
}

std::string shape_text(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

void require(bool ok, const std::string& op, const std::string& what) {
  if (!ok) throw Error(op + ": " + what);
}

void check_tensor(const std::string& op, const char* name, const Tensor& t, const Shape& shape, DType dtype) {
  require(t.defined(), op, std::string(name) + " is undefined");
  require(t.device() == Device::CUDA, op, std::string(name) + " " + shape_text(t) + " is not on cuda");
  require(t.shape() == shape, op, std::string(name) + " has shape " + shape_text(t) + ", expected " + shape_str(shape));
  require(t.dtype() == dtype, op, std::string(name) + " is " + dtype_name(t.dtype()) + ", expected " + dtype_name(dtype));
}

FlashParams common_params(const std::string& op, const cpu::AttentionShape& s, int64_t window, const Tensor& q,
                          const Tensor& k, const Tensor& v) {
  require(s.D == 64 || s.D == 128, op, "head dim " + std::to_string(s.D) + " is not supported (64 or 128)");
  require(s.Hkv > 0 && s.Hq % s.Hkv == 0, op,
          "query heads " + std::to_string(s.Hq) + " are not a multiple of kv heads " + std::to_string(s.Hkv));
  require(window >= 0, op, "window " + std::to_string(window) + " is negative");
  require(s.T < (int64_t(1) << 30), op, "sequence length " + std::to_string(s.T) + " is too long");
  check_tensor(op, "q", q, {s.B, s.T, s.Hq, s.D}, DType::BF16);
  check_tensor(op, "k", k, {s.B, s.T, s.Hkv, s.D}, DType::BF16);
  check_tensor(op, "v", v, {s.B, s.T, s.Hkv, s.D}, DType::BF16);
  FlashParams p{};
  p.q = ptr<bf16>(q);
  p.k = ptr<bf16>(k);
  p.v = ptr<bf16>(v);
  p.T = int(s.T);
  p.Hq = int(s.Hq);
  p.Hkv = int(s.Hkv);
  p.group = int(s.Hq / s.Hkv);
  p.window = window >= s.T ? 0 : int(window);  // a window of T or more keys is full attention
  p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(s.D)));
  return p;
}

}  // namespace

void flash_attention_forward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& out, const Tensor& lse) {
  const std::string op = "flash_attention_forward";
  FlashParams p = common_params(op, s, window, q, k, v);
  require(out.defined() && (out.dtype() == DType::BF16 || out.dtype() == DType::F32), op,
          "out must be bfloat16 or float32");
  check_tensor(op, "out", out, {s.B, s.T, s.Hq, s.D}, out.dtype());
  if (lse.defined()) check_tensor(op, "lse", lse, {s.B, s.T, s.Hq}, DType::F32);
  if (s.B * s.T * s.Hq == 0) return;
  p.out = out.raw();
  p.lse = ptr<float>(lse);
  if (which_kernel(op)) return hopper_forward(Mode::Plain, p, int(s.B), int(s.D), out.dtype() == DType::F32);
  if (out.dtype() == DType::BF16) launch_any<Mode::Plain, bf16>(s, p);
  else launch_any<Mode::Plain, float>(s, p);
}

void routed_attention_prefill(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& route, const Tensor& out) {
  const std::string op = "routed_attention_prefill";
  FlashParams p = common_params(op, s, window, q, k, v);
  check_tensor(op, "route", route, {s.B, s.T}, DType::BF16);
  check_tensor(op, "out", out, {s.B, s.T, s.Hq, s.D}, DType::BF16);
  if (s.B * s.T * s.Hq == 0) return;
  if (p.window == 0) return flash_attention_forward(s, 0, q, k, v, out, Tensor());  // both branches are full
  const Tensor lists = Tensor::empty({2, s.B, s.T}, DType::I32, Device::CUDA);
  const Tensor counts = Tensor::empty({s.B, 2}, DType::I32, Device::CUDA);
  int* list_full = ptr<int>(lists);
  int* list_window = list_full + s.B * s.T;
  route_compact_kernel<<<unsigned(s.B), 1024>>>(int(s.T), ptr<bf16>(route), list_full, list_window, ptr<int>(counts));
  SWIATTN_CUDA_CHECK_LAUNCH("route_compact");
  p.out = out.raw();
  p.list[0] = list_full;
  p.list[1] = list_window;
  p.count = ptr<int>(counts);
  if (which_kernel(op)) return hopper_forward(Mode::Routed, p, int(s.B), int(s.D), false);
  launch_any<Mode::Routed, bf16>(s, p);
}

void set_flash_kernel(FlashKernel kernel) { choice() = kernel; }
FlashKernel flash_kernel() { return choice(); }
std::string flash_kernel_in_use() {
  if (choice() == FlashKernel::Sm80) return "sm80";
  return hopper_forward_available() ? "hopper" : choice() == FlashKernel::Hopper ? "hopper (unavailable)" : "sm80";
}
bool hopper_kernel_available() { return hopper_forward_available(); }
std::string hopper_kernel_status() {
  std::string why;
  hopper_forward_available(&why);
  return why;
}

bool is_hard_route(const Tensor& gate) {
  require(gate.defined() && gate.device() == Device::CUDA && gate.dtype() == DType::BF16, "is_hard_route",
          "gate must be a bfloat16 tensor on cuda");
  if (gate.numel() == 0) return true;
  const Tensor soft = Tensor::zeros({1}, DType::I32, Device::CUDA);
  count_soft_kernel<<<grid_for(gate.numel()), kThreads>>>(gate.numel(), ptr<bf16>(gate), ptr<int>(soft));
  SWIATTN_CUDA_CHECK_LAUNCH("count_soft");
  return soft.to_ints()[0] == 0;
}

void flash_switch_attention_forward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& gate, bool both_branches, const Tensor& out,
                                    const Tensor& o_full, const Tensor& o_swa, const Tensor& lse_full,
                                    const Tensor& lse_swa) {
  const std::string op = "flash_switch_attention_forward";
  FlashParams p = common_params(op, s, window, q, k, v);
  check_tensor(op, "gate", gate, {s.B, s.T}, DType::BF16);
  check_tensor(op, "out", out, {s.B, s.T, s.Hq, s.D}, DType::BF16);
  check_tensor(op, "o_full", o_full, {s.B, s.T, s.Hq, s.D}, DType::F32);
  check_tensor(op, "o_swa", o_swa, {s.B, s.T, s.Hq, s.D}, DType::F32);
  check_tensor(op, "lse_full", lse_full, {s.B, s.T, s.Hq}, DType::F32);
  check_tensor(op, "lse_swa", lse_swa, {s.B, s.T, s.Hq}, DType::F32);
  if (s.B * s.T * s.Hq == 0) return;
  p.out = out.raw();
  p.lse = ptr<float>(lse_full);
  p.o_full = ptr<float>(o_full);
  p.o_swa = ptr<float>(o_swa);
  p.lse_swa = ptr<float>(lse_swa);
  p.gate = ptr<bf16>(gate);
  p.both = both_branches;
  if (which_kernel(op)) return hopper_forward(Mode::Switch, p, int(s.B), int(s.D), false);
  launch_any<Mode::Switch, bf16>(s, p);
}

}  // namespace swiattn::cuda
