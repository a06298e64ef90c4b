// kernels/cuda/flash_backward.cu: attention backward on tensor cores (see flash_backward.h for
// the math). Legend: B batch, T time, Hq / Hkv query / kv heads, D head dim, Br queries per
// tile, Bc keys per CTA.
//
// Tensor-core conventions (mma.sync m16n8k16, bf16 in, fp32 accumulate; mma.cuh): for warp lane
// l, g = l / 4 and c = l % 4; an accumulator fragment holds rows g and g + 8, columns 2c, 2c + 1
// of a 16 x 8 tile; an accumulator pair of n-blocks (2i, 2i + 1) is, repacked to bf16, the A
// fragment of k-block i of the next product (FlashAttention-2's register reuse).
//
// The main kernel, CTA = (batch b, kv head, keys j0 .. j0 + 127), 8 warps, warp w owning keys
// j0 + 16w .. j0 + 16w + 15. For each query head of the group and each 64-query tile t0 that can
// read these keys (t0 from the diagonal's tile to the last query whose window reaches them):
//   S^T  = K Q^T            (keys x queries, per warp 16 x 64)
//   dP^T = V dO^T
//   P^T  = sum_b w_b p_b,  dS^T = sum_b p_b (w_b dP^T - Delta_b)      (elementwise, masked)
//   dV  += P^T dO,  dK += dS^T Q                                       (registers, whole run)
//   dS^T -> shared memory;  dQ_tile = dS K (8 warps: 4 query slices x 2 halves of D)
//                                       -> atomicAdd (16 bytes) into a float32 buffer
// Deterministic mode (device.h): the atomics add in whatever order the CTAs reach a query tile.
// Instead, the grid has S "splits" per (batch, kv head); split s walks the key tiles s, s + S,
// ... one after the other, adding its dQ partial sums with plain read-modify-writes into its own
// float32 buffer (no other CTA writes it); the dq kernel then sums the S buffers in order s = 0,
// 1, ... (FlashAttention-2's deterministic scheme). Same products, S x the buffer memory; S is
// chosen to fill the GPU (ceil(SMs / (B Hkv))), at most kMaxSplits.
// Once dK, dV are updated, Q and dO of this step are dead: the next step's copies (cp.async)
// are issued then and run under the dQ products and atomics (single buffer, no extra memory).
// Why atomics for dQ (and not a second pass over query tiles): a separate dQ pass recomputes
// S and dP (2 more of the 5 matrix products, +40% FLOPs); the fp32 buffer costs 3 passes over
// B T Hq D floats (zero, atomics, convert), small next to the products at T >= 4K.
// Shared memory: K, V (128 rows), Q, dO (64 rows), rows padded by 16 bytes (ldmatrix without
// bank conflicts), dS^T, and per-query lse / Delta / weights: 122 KB at D = 128, one CTA (8
// warps) per SM; the dK, dV accumulators take 128 of the 255 registers a thread has.
// Measured on an H100, and why it is not faster: docs/perf.md (the flash backward section).
#include "kernels/cuda/flash_backward.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "tensor/cuda/common.cuh"
#include "kernels/cuda/flash_backward_args.cuh"
#include "kernels/cuda/flash_params.cuh"
#include "tensor/cuda/device.h"
#include "kernels/cuda/mma.cuh"
#include "tensor/cuda/timing.h"

namespace swiattn::cuda {
namespace {

constexpr int kBr = 64, kBc = 128, kWarps = kBc / 16, kFlashThreads = 32 * kWarps;
// dQ = dS K: warp w takes queries 16 (w % kQTiles) .. + 15 and the w / kQTiles-th of kDSplit
// slices of D.
constexpr int kQTiles = kBr / 16, kDSplit = kWarps / kQTiles;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxSplits = 16;  // deterministic mode: float32 dq buffers per (batch, kv head), at most

// Shared-memory layout of the main kernel (elements of bf16 unless named).
template <int D>
struct FlashSmem {
  static constexpr int kRow = D + 8;      // padded row of K, V, Q, dO (bf16)
  static constexpr int kRowS = kBr + 8;   // padded row of dS^T
  static constexpr int kK = 0, kV = kK + kBc * kRow, kQ = kV + kBc * kRow, kDO = kQ + kBr * kRow;
  static constexpr int kDS = kDO + kBr * kRow, kEnd = kDS + kBc * kRowS;
  static constexpr int kFloats = 6 * kBr;  // lse_a, lse_b (times log2 e), Delta_a, Delta_b, w_a, w_b
  static constexpr size_t bytes = size_t(kEnd) * 2 + kFloats * 4;
};

// rows [r0, r0 + n) of a (.., stride) bf16 matrix -> shared rows of `D` (+ padding), by 16-byte
// cp.async; rows past `valid` are zero-filled (a zero query or key adds nothing and no NaN).
template <int D>
__device__ __forceinline__ void load_rows(bf16* smem, const bf16* base, int64_t row_stride, int64_t r0, int n,
                                          int64_t valid) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  for (int i = threadIdx.x; i < n * kChunks; i += kFlashThreads) {
    const int r = i / kChunks, ch = i % kChunks;
    const bool in = r0 + r < valid;
    mma::cp_async_16(mma::smem_addr(smem + r * FlashSmem<D>::kRow + ch * 8),
                     in ? base + (r0 + r) * row_stride + ch * 8 : base, in);
  }
}

// Positions of a lane's elements in a score tile: queries t0 + 8 nb + 2c (+1), keys j (+8).
struct TileRows {
  int t0, j, T, window_a, window_b, c;
};

// The elementwise step between the products, on one warp's 16 keys x 64 queries:
//   s  <- P^T  = sum_b w_b p_b,   dp <- dS^T = sum_b p_b (w_b dP^T - Delta_b),
// with p_b = exp(score - lse_b) on branch b's keys (kMasked: tested per element: j <= t < T,
// and j > t - W_b for a windowed branch) and 0 elsewhere. The per-query numbers come from
// shared memory (sRow: lse_a, lse_b (times log2 e), Delta_a, Delta_b, w_a, w_b; Br each).
template <bool kMasked, bool kTwo>
__device__ __forceinline__ void softmax_gradient(float (&s)[kBr / 8][4], float (&dp)[kBr / 8][4], const float* sRow,
                                                 const TileRows& r, bool b_live, float scale_log2) {
#pragma unroll
  for (int nb = 0; nb < kBr / 8; ++nb) {
    const int tq = 8 * nb + 2 * r.c;  // this lane's two queries t0 + tq, t0 + tq + 1
    const float2 lse_a = *reinterpret_cast<const float2*>(sRow + tq);
    const float2 del_a = *reinterpret_cast<const float2*>(sRow + 2 * kBr + tq);
    const float2 w_a = *reinterpret_cast<const float2*>(sRow + 4 * kBr + tq);
    float2 lse_b{}, del_b{}, w_b{};
    if (kTwo && b_live) {
      lse_b = *reinterpret_cast<const float2*>(sRow + kBr + tq);
      del_b = *reinterpret_cast<const float2*>(sRow + 3 * kBr + tq);
      w_b = *reinterpret_cast<const float2*>(sRow + 5 * kBr + tq);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool odd = e & 1;
      bool in_a = true, in_b = true;
      if (kMasked) {
        const int t = r.t0 + tq + odd, j = r.j + 8 * (e >> 1);
        const bool causal = t < r.T && j <= t;
        in_a = causal && (r.window_a == 0 || j > t - r.window_a);
        in_b = causal && (r.window_b == 0 || j > t - r.window_b);
      }
      const float pa = in_a ? exp2f(fmaf(s[nb][e], scale_log2, -(odd ? lse_a.y : lse_a.x))) : 0.0f;
      const float wa = odd ? w_a.y : w_a.x;
      float pmix = wa * pa, ds = pa * fmaf(wa, dp[nb][e], -(odd ? del_a.y : del_a.x));
      if (kTwo && b_live) {
        const float pb = in_b ? exp2f(fmaf(s[nb][e], scale_log2, -(odd ? lse_b.y : lse_b.x))) : 0.0f;
        const float wb = odd ? w_b.y : w_b.x;
        pmix = fmaf(wb, pb, pmix);
        ds = fmaf(pb, fmaf(wb, dp[nb][e], -(odd ? del_b.y : del_b.x)), ds);
      }
      s[nb][e] = pmix;
      dp[nb][e] = ds;
    }
  }
}

// kFixedOrder: deterministic mode (the header): this CTA walks several key tiles, with plain adds
// into its own dq buffer.
template <int D, bool kTwo, bool kFixedOrder>
__global__ void __launch_bounds__(kFlashThreads, 1) flash_backward_kernel(FlashBackwardArgs a) {
  using L = FlashSmem<D>;
  constexpr int kN = D / 8;  // n-blocks of 8 along D
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sm = reinterpret_cast<bf16*>(smem_raw);
  bf16 *sK = sm + L::kK, *sV = sm + L::kV, *sQ = sm + L::kQ, *sDO = sm + L::kDO, *sDS = sm + L::kDS;
  float* sRow = reinterpret_cast<float*>(smem_raw + size_t(L::kEnd) * 2);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int64_t kv_head = blockIdx.x % a.Hkv, b = blockIdx.x / a.Hkv, T = a.T;
  const int64_t q_stride = a.Hq * D, kv_stride = a.Hkv * D;  // between positions
  const int64_t key_tiles = (T + kBc - 1) / kBc;
  float* const dq_accum = a.dq_accum ? a.dq_accum + int64_t(blockIdx.y) * a.dq_split_stride : nullptr;

  // One key tile per CTA (gridDim.y = key tiles), or, in deterministic mode, the key tiles
  // blockIdx.y, blockIdx.y + gridDim.y, ... one after the other (the header).
  for (int64_t kt = blockIdx.y; kt < key_tiles; kt += gridDim.y) {
    const int64_t j0 = kt * kBc;
    mma::cp_async_wait<0>();
    __syncthreads();  // the previous key tile's last dQ products are done with sK and sDS

    // K, V tile, once.
    load_rows<D>(sK, a.k + b * T * kv_stride + kv_head * D, kv_stride, j0, kBc, T);
    load_rows<D>(sV, a.v + b * T * kv_stride + kv_head * D, kv_stride, j0, kBc, T);
    mma::cp_async_commit();

    // The queries that read these keys: t >= j0 (causal), and t <= j_last + W - 1 for a windowed
    // branch (a full branch reads them up to T - 1).
    const int64_t j_last = min(T - 1, j0 + kBc - 1);
    const int64_t reach_a = a.window_a > 0 ? min(T, j_last + a.window_a) : T;
    const int64_t reach_b = !kTwo ? 0 : a.window_b > 0 ? min(T, j_last + a.window_b) : T;
    const int64_t t_end = max(reach_a, reach_b), t_begin = (j0 / kBr) * kBr;
    const float scale_log2 = a.scale * kLog2e;

    float dk_acc[kN][4] = {}, dv_acc[kN][4] = {};  // keys j0 + 16 warp + (g, g + 8), dims of n-block
    const int64_t key_row0 = j0 + 16 * warp;       // this warp's first key

    // The (query head, query tile) pairs this CTA visits, in order: i = (h - first head) * tiles + tile.
    const int64_t tiles = (t_end - t_begin + kBr - 1) / kBr, steps = a.group * tiles;
    // Issues the copies of step i's Q, dO rows (cp.async) and per-query numbers (plain stores).
    const auto load_step = [&](int64_t i) {
      const int64_t h = kv_head * a.group + i / tiles, t0 = t_begin + (i % tiles) * kBr;
      load_rows<D>(sQ, a.q + b * T * q_stride + h * D, q_stride, t0, kBr, T);
      load_rows<D>(sDO, a.dout + b * T * q_stride + h * D, q_stride, t0, kBr, T);
      mma::cp_async_commit();
      if (threadIdx.x < kBr) {
        const int64_t t = t0 + threadIdx.x, row = (b * T + t) * a.Hq + h;
        const bool in = t < T;
        sRow[0 * kBr + threadIdx.x] = in ? a.lse_a[row] * kLog2e : 0.0f;
        sRow[1 * kBr + threadIdx.x] = in && kTwo ? a.lse_b[row] * kLog2e : 0.0f;
        sRow[2 * kBr + threadIdx.x] = in ? a.delta_a[row] : 0.0f;
        sRow[3 * kBr + threadIdx.x] = in && kTwo ? a.delta_b[row] : 0.0f;
        sRow[4 * kBr + threadIdx.x] = in ? a.weight_a[b * T + t] : 0.0f;
        sRow[5 * kBr + threadIdx.x] = in && kTwo ? a.weight_b[b * T + t] : 0.0f;
      }
    };
    if (steps > 0) load_step(0);

    for (int64_t step = 0; step < steps; ++step) {
      const int64_t h = kv_head * a.group + step / tiles, t0 = t_begin + (step % tiles) * kBr;
      {
        mma::cp_async_wait<0>();
        __syncthreads();  // step's Q, dO, sRow (and, first time, K, V) are in shared memory

        // ---- S^T = K Q^T and dP^T = V dO^T: this warp's 16 keys x 64 queries
        float s[kBr / 8][4] = {}, dp[kBr / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          uint32_t ka[4], va[4];
          const int ar = 16 * warp + (lane & 15), ac = 16 * kk + (lane >> 4) * 8;
          mma::ldmatrix_x4(ka, mma::smem_addr(sK + ar * L::kRow + ac));
          mma::ldmatrix_x4(va, mma::smem_addr(sV + ar * L::kRow + ac));
#pragma unroll
          for (int np = 0; np < kBr / 16; ++np) {  // two n-blocks (16 queries) per ldmatrix
            const int br = 16 * np + (lane & 7) + (lane >> 4) * 8, bc = 16 * kk + ((lane >> 3) & 1) * 8;
            uint32_t qb[4], ob[4];
            mma::ldmatrix_x4(qb, mma::smem_addr(sQ + br * L::kRow + bc));
            mma::ldmatrix_x4(ob, mma::smem_addr(sDO + br * L::kRow + bc));
            mma::mma_bf16_16816(s[2 * np], ka, qb[0], qb[1]);
            mma::mma_bf16_16816(s[2 * np + 1], ka, qb[2], qb[3]);
            mma::mma_bf16_16816(dp[2 * np], va, ob[0], ob[1]);
            mma::mma_bf16_16816(dp[2 * np + 1], va, ob[2], ob[3]);
          }
        }

        // ---- elementwise: s <- P^T (mixed), dp <- dS^T. Masks: j <= t < T for both branches,
        // j > t - W_b for a windowed one. A tile all left of branch b's window skips its exp.
        const bool b_live = kTwo && (a.window_b == 0 || j_last > t0 - a.window_b);
        // No element of the tile needs a mask when every query is past every key (t0 > j0), below
        // T, and each live windowed branch holds the whole tile (j0 + W > t0 + Br - 1): then the
        // per-element position tests are skipped (most tiles at long T).
        const bool inside_a = a.window_a == 0 || j0 + a.window_a > t0 + kBr - 1;
        const bool inside_b = !b_live || a.window_b == 0 || j0 + a.window_b > t0 + kBr - 1;
        const bool no_mask = t0 + 1 >= j0 + kBc && t0 + kBr <= T && inside_a && inside_b;
        const TileRows rows{int(t0), int(key_row0) + g, int(T), int(min(a.window_a, T)), int(min(a.window_b, T)), c};
        if (no_mask) softmax_gradient<false, kTwo>(s, dp, sRow, rows, b_live, scale_log2);
        else softmax_gradient<true, kTwo>(s, dp, sRow, rows, b_live, scale_log2);

        // ---- dV += P^T dO, dK += dS^T Q (k = the tile's 64 queries)
#pragma unroll
        for (int kq = 0; kq < kBr / 16; ++kq) {
          // P^T and dS^T of queries 16 kq .. 16 kq + 15 as A fragments (n-blocks 2 kq, 2 kq + 1)
          const uint32_t pa[4] = {mma::pack_bf16x2(s[2 * kq][0], s[2 * kq][1]),
                                  mma::pack_bf16x2(s[2 * kq][2], s[2 * kq][3]),
                                  mma::pack_bf16x2(s[2 * kq + 1][0], s[2 * kq + 1][1]),
                                  mma::pack_bf16x2(s[2 * kq + 1][2], s[2 * kq + 1][3])};
          const uint32_t da[4] = {mma::pack_bf16x2(dp[2 * kq][0], dp[2 * kq][1]),
                                  mma::pack_bf16x2(dp[2 * kq][2], dp[2 * kq][3]),
                                  mma::pack_bf16x2(dp[2 * kq + 1][0], dp[2 * kq + 1][1]),
                                  mma::pack_bf16x2(dp[2 * kq + 1][2], dp[2 * kq + 1][3])};
          const int br = 16 * kq + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
          for (int np = 0; np < D / 16; ++np) {
            const int bc = 16 * np + (lane >> 4) * 8;
            uint32_t ob[4], qb[4];
            mma::ldmatrix_x4_trans(ob, mma::smem_addr(sDO + br * L::kRow + bc));
            mma::ldmatrix_x4_trans(qb, mma::smem_addr(sQ + br * L::kRow + bc));
            mma::mma_bf16_16816(dv_acc[2 * np], pa, ob[0], ob[1]);
            mma::mma_bf16_16816(dv_acc[2 * np + 1], pa, ob[2], ob[3]);
            mma::mma_bf16_16816(dk_acc[2 * np], da, qb[0], qb[1]);
            mma::mma_bf16_16816(dk_acc[2 * np + 1], da, qb[2], qb[3]);
          }
          if (dq_accum) {  // dS^T rows (keys) of this warp -> shared, for dQ
            bf16* r0 = sDS + (16 * warp + g) * L::kRowS + 16 * kq + 2 * c;
            *reinterpret_cast<uint32_t*>(r0) = da[0];
            *reinterpret_cast<uint32_t*>(r0 + 8 * L::kRowS) = da[1];
            *reinterpret_cast<uint32_t*>(r0 + 8) = da[2];
            *reinterpret_cast<uint32_t*>(r0 + 8 * L::kRowS + 8) = da[3];
          }
        }

        // Every warp is done with sQ, sDO, sRow (and its dS^T is in shared memory): the next
        // step's copies start now and run under the dQ products and atomics.
        __syncthreads();
        if (step + 1 < steps) load_step(step + 1);

        // ---- dQ rows t0 + 16 qm .. += scale dS K (k = the CTA's keys), dims of slice dp0 ..,
        // fp32 atomics (deterministic mode: plain adds into this CTA's own buffer)
        if (dq_accum) {
          const int qm = warp % kQTiles, dp0 = (warp / kQTiles) * (D / kDSplit / 16);
          uint32_t dsa[kBc / 16][4];
#pragma unroll
          for (int kk = 0; kk < kBc / 16; ++kk)  // A = dS (queries x keys), stored transposed
            mma::ldmatrix_x4_trans(dsa[kk], mma::smem_addr(sDS + (16 * kk + (lane & 7) + (lane >> 4) * 8) * L::kRowS +
                                                           16 * qm + ((lane >> 3) & 1) * 8));
          const int64_t t_row = t0 + 16 * qm + g;
          float* dq_row = dq_accum + ((b * T + t_row) * a.Hq + h) * D;
#pragma unroll
          for (int np = dp0; np < dp0 + D / kDSplit / 16; ++np) {
            float acc[2][4] = {};
#pragma unroll
            for (int kk = 0; kk < kBc / 16; ++kk) {
              uint32_t kb[4];
              const int kr = 16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8, kc = 16 * np + (lane >> 4) * 8;
              mma::ldmatrix_x4_trans(kb, mma::smem_addr(sK + kr * L::kRow + kc));
              mma::mma_bf16_16816(acc[0], dsa[kk], kb[0], kb[1]);
              mma::mma_bf16_16816(acc[1], dsa[kk], kb[2], kb[3]);
            }
#pragma unroll
            for (int half = 0; half < 2; ++half)
              atomic_add_fragment(dq_row + 16 * np + 8 * half, q_stride, c, acc[half][0] * a.scale,
                                  acc[half][1] * a.scale, acc[half][2] * a.scale, acc[half][3] * a.scale, t_row < T,
                                  t_row + 8 < T, kFixedOrder);
          }
        }
      }  // the next step's first barrier orders this dQ's reads of sDS before its rewrite
    }

    // ---- dk += scale dK, dv += dV: this CTA owns these rows (one rounding each)
#pragma unroll
    for (int nb = 0; nb < kN; ++nb)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t j = key_row0 + g + 8 * half;
        if (j >= T) continue;
        const int64_t at = (b * T + j) * kv_stride + kv_head * D + 8 * nb + 2 * c;
        if (a.dk) add_pair(a.dk + at, dk_acc[nb][2 * half] * a.scale, dk_acc[nb][2 * half + 1] * a.scale);
        if (a.dv) add_pair(a.dv + at, dv_acc[nb][2 * half], dv_acc[nb][2 * half + 1]);
      }
    if constexpr (!kFixedOrder) break;  // one key tile per CTA
  }  // key tiles
}

// Preprocessing, a block per token (b, t): for each head h, Delta_b = w_b dout . O_b; the
// weights w_a, w_b of the token; dgate += sum_h dout . (O_a - O_b) (switch: a = FULL, b = SWA).
template <class TO>
__global__ void flash_backward_prepare_kernel(int64_t Hq, int64_t D, const bf16* dout, const TO* o_a, const TO* o_b,
                                              const bf16* gate, bool complement, bool two, float* delta_a,
                                              float* delta_b, float* weight_a, float* weight_b, bf16* dgate) {
  const int64_t bt = blockIdx.x;
  const float gt = gate ? to_float(gate[bt]) : 1.0f;
  // one branch: w = 1, gate or 1 - gate; two: FULL gets gate, SWA 1 - gate
  const float wa = two ? gt : (gate && complement ? 1.0f - gt : gt), wb = 1.0f - gt;
  float diff = 0.0f;
  for (int64_t h = threadIdx.x >> 5; h < Hq; h += blockDim.x >> 5) {
    const int64_t row = bt * Hq + h;
    float da = 0.0f, db = 0.0f;
    for (int64_t d = threadIdx.x & 31; d < D; d += 32) {
      const float go = to_float(dout[row * D + d]);
      da += go * to_float(o_a[row * D + d]);
      if (two) db += go * to_float(o_b[row * D + d]);
    }
    da = warp_sum(da);
    db = warp_sum(db);
    if ((threadIdx.x & 31) == 0) {
      delta_a[row] = wa * da;
      if (two) delta_b[row] = wb * db;
    }
    diff += da - db;  // every lane holds the warp's sums; lane 0's count below
  }
  if (!dgate) {
    if (threadIdx.x == 0) weight_a[bt] = wa, weight_b[bt] = wb;
    return;
  }
  diff = block_sum((threadIdx.x & 31) == 0 ? diff : 0.0f);
  if (threadIdx.x == 0) {
    weight_a[bt] = wa;
    weight_b[bt] = wb;
    add_to(dgate, bt, diff);
  }
}

// grad += the sum of the splits' buffers, in the order s = 0, 1, ... (one split without
// deterministic mode), one rounding to bfloat16.
__global__ void add_accum_kernel(int64_t n, const float* acc, int splits, bf16* grad) {
  SWIATTN_GRID_STRIDE_LOOP(i, n) {
    float sum = acc[i];
    for (int s = 1; s < splits; ++s) sum += acc[int64_t(s) * n + i];
    grad[i] = from_float<bf16>(to_float(grad[i]) + sum);
  }
}

bool aligned16(const Tensor& t) { return !t.defined() || reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; }

// ---- which main kernel (flash_backward.h) ----
// Auto takes the sm_90a kernel wherever it can run, as the forward's Auto does: it passed
// tests/test_cuda_backward.cpp and the training tests on an H200 with compute-sanitizer racecheck
// clean (2026-12-01, docs/perf.md). false would make it opt-in again.
constexpr bool kHopperBackwardByDefault = true;

FlashKernel initial_backward_choice() {
  const char* env = std::getenv("SWIATTN_ATTENTION_BACKWARD");
  const std::string c = env ? env : "auto";
  if (c == "auto" || c.empty()) return FlashKernel::Auto;
  if (c == "sm80") return FlashKernel::Sm80;
  if (c == "hopper") return FlashKernel::Hopper;
  throw Error("SWIATTN_ATTENTION_BACKWARD=" + c + ": expected auto, sm80 or hopper");
}
FlashKernel& backward_choice() {
  static FlashKernel kernel = initial_backward_choice();
  return kernel;
}
// true: the sm_90a main kernel takes this call; throws when it was asked for and cannot run.
bool use_hopper(const std::string& op) {
  if (deterministic() || backward_choice() == FlashKernel::Sm80) return false;
  if (backward_choice() == FlashKernel::Auto && !kHopperBackwardByDefault) return false;
  std::string why;
  const bool ok = hopper_forward_available(&why);
  if (backward_choice() == FlashKernel::Hopper && !ok)
    throw Error(op + ": the Hopper backward was asked for (SWIATTN_ATTENTION_BACKWARD=hopper or "
                "set_flash_backward_kernel) but cannot run: " + why);
  return ok;
}

// Deterministic mode: splits (CTAs) per (batch, kv head), enough to fill the GPU, at most
// kMaxSplits and the number of key tiles (the header). Fixed for a given problem and GPU.
int dq_splits(int64_t B, int64_t Hkv, int64_t T) {
  const int64_t sms = std::max(1, multiprocessor_count()), key_tiles = (T + kBc - 1) / kBc;
  const int64_t want = (sms + B * Hkv - 1) / (B * Hkv);
  return int(std::max<int64_t>(1, std::min<int64_t>({want, int64_t(kMaxSplits), key_tiles})));
}

template <int D, bool kTwo, bool kFixedOrder>
void launch_kernel(const FlashBackwardArgs& args, const dim3& grid) {
  const size_t bytes = FlashSmem<D>::bytes;
  static bool configured = false;  // raise the dynamic shared-memory limit once per instantiation
  if (!configured) {
    SWIATTN_CUDA_CHECK(cudaFuncSetAttribute(flash_backward_kernel<D, kTwo, kFixedOrder>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    configured = true;
  }
  flash_backward_kernel<D, kTwo, kFixedOrder><<<grid, kFlashThreads, bytes>>>(args);
  SWIATTN_CUDA_CHECK_LAUNCH("flash_backward");
}

template <int D, bool kTwo>
void launch_main(const FlashBackwardArgs& args, int64_t B, int splits) {
  // key tile 0 (longest) first; deterministic: `splits` CTAs walk the key tiles
  const dim3 grid(unsigned(B * args.Hkv), unsigned(splits > 0 ? splits : (args.T + kBc - 1) / kBc));
  if (splits > 0) launch_kernel<D, kTwo, true>(args, grid);
  else launch_kernel<D, kTwo, false>(args, grid);
}

// The shared driver: prepare, zero the dq buffer, main kernel, dq += buffer.
template <class TO>
void run_flash_backward(const char* op, const cpu::AttentionShape& s, int64_t window_a, int64_t window_b, bool two,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o_a, const Tensor& o_b,
                        const Tensor& lse_a, const Tensor& lse_b, const Tensor& dout, const Tensor& gate,
                        bool complement, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dgate) {
  for (const Tensor* t : {&dq, &dk, &dv, &dgate})
    if (t->defined() && t->dtype() != DType::BF16)
      throw Error(std::string(op) + ": the flash backward writes bfloat16 gradients, got " + dtype_name(t->dtype()));
  if (!flash_backward_supported(s, q, k, v, dout))
    throw Error(std::string(op) + ": the flash backward needs bfloat16, D in {64, 128}, Hq % Hkv == 0 (got D = " +
                std::to_string(s.D) + ", Hq = " + std::to_string(s.Hq) + ", Hkv = " + std::to_string(s.Hkv) + ")");
  if (s.B * s.T == 0) return;
  if (s.T >= (int64_t(1) << 30))
    throw Error(std::string(op) + ": the flash backward takes T < 2^30, got T = " + std::to_string(s.T));
  const int64_t rows = s.B * s.T * s.Hq;
  const Tensor delta = Tensor::empty({2, rows}, DType::F32, Device::CUDA);
  const Tensor weight = Tensor::empty({2, s.B * s.T}, DType::F32, Device::CUDA);
  float* delta_p = ptr<float>(delta);
  float* weight_p = ptr<float>(weight);
  flash_backward_prepare_kernel<TO><<<unsigned(s.B * s.T), 128>>>(
      s.Hq, s.D, ptr<bf16>(dout), ptr<TO>(o_a), ptr<TO>(o_b), ptr<bf16>(gate), complement, two, delta_p,
      delta_p + rows, weight_p, weight_p + s.B * s.T, ptr<bf16>(dgate));
  SWIATTN_CUDA_CHECK_LAUNCH("flash_backward_prepare");
  if (!dq.defined() && !dk.defined() && !dv.defined()) return;

  // Deterministic mode: one dq buffer per split, plain adds, summed in order (the header).
  const bool fixed_order = deterministic() && dq.defined();
  const int splits = fixed_order ? dq_splits(s.B, s.Hkv, s.T) : 0;
  const int buffers = std::max(1, splits);
  Tensor dq_accum;
  if (dq.defined()) {
    dq_accum = Tensor::empty({buffers * rows * s.D}, DType::F32, Device::CUDA);
    SWIATTN_CUDA_CHECK(cudaMemsetAsync(dq_accum.raw(), 0, size_t(buffers * rows * s.D) * sizeof(float)));
  }
  FlashBackwardArgs args{ptr<bf16>(q),    ptr<bf16>(k),          ptr<bf16>(v),      ptr<bf16>(dout),
                         ptr<float>(lse_a), two ? ptr<float>(lse_b) : nullptr,   delta_p,
                         two ? delta_p + rows : nullptr,          weight_p,
                         two ? weight_p + s.B * s.T : nullptr,    ptr<float>(dq_accum),
                         fixed_order ? rows * s.D : 0,
                         ptr<bf16>(dk),   ptr<bf16>(dv),         s.T,               s.Hq,
                         s.Hkv,           s.group(),             window_a,          window_b,
                         static_cast<float>(1.0 / std::sqrt(double(s.D)))};
  if (use_hopper(op)) hopper_backward(args, s.B, int(s.D), two);
  else if (s.D == 64) two ? launch_main<64, true>(args, s.B, splits) : launch_main<64, false>(args, s.B, splits);
  else two ? launch_main<128, true>(args, s.B, splits) : launch_main<128, false>(args, s.B, splits);
  if (dq.defined()) {
    add_accum_kernel<<<grid_for(rows * s.D), kThreads>>>(rows * s.D, ptr<float>(dq_accum), buffers, ptr<bf16>(dq));
    SWIATTN_CUDA_CHECK_LAUNCH("flash_backward_dq");
  }
}

}  // namespace

void set_flash_backward_kernel(FlashKernel kernel) { backward_choice() = kernel; }
FlashKernel flash_backward_kernel() { return backward_choice(); }
std::string flash_backward_kernel_in_use() {
  if (deterministic() || backward_choice() == FlashKernel::Sm80) return "sm80";
  if (backward_choice() == FlashKernel::Auto && !kHopperBackwardByDefault) return "sm80";
  return hopper_forward_available() ? "hopper" : backward_choice() == FlashKernel::Hopper ? "hopper (unavailable)" : "sm80";
}

bool flash_backward_supported(const cpu::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& dout) {
  return q.dtype() == DType::BF16 && (s.D == 64 || s.D == 128) && s.Hkv > 0 && s.Hq % s.Hkv == 0 &&
         aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout);
}

void flash_attention_backward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                              const Tensor& gate, bool complement, const Tensor& dq, const Tensor& dk,
                              const Tensor& dv) {
  if (out.dtype() == DType::F32)
    run_flash_backward<float>("attention", s, window, 0, false, q, k, v, out, Tensor(), lse, Tensor(), dout, gate,
                              complement, dq, dk, dv, Tensor());
  else if (out.dtype() == DType::BF16)
    run_flash_backward<bf16>("attention", s, window, 0, false, q, k, v, out, Tensor(), lse, Tensor(), dout, gate,
                             complement, dq, dk, dv, Tensor());
  else
    throw Error(std::string("attention: output dtype ") + dtype_name(out.dtype()) + " for the flash backward");
}

void flash_switch_attention_backward(const cpu::AttentionShape& s, int64_t window, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& gate, const Tensor& o_full, const Tensor& o_swa,
                                     const Tensor& lse_full, const Tensor& lse_swa, const Tensor& dout,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dgate) {
  // branch a = FULL (keys [0, t], weight gate), branch b = SWA (the window, weight 1 - gate)
  run_flash_backward<float>("switch_attention", s, 0, window, true, q, k, v, o_full, o_swa, lse_full, lse_swa, dout,
                            gate, false, dq, dk, dv, dgate);
}

}  // namespace swiattn::cuda
