// kernels/cuda/hopper_attention.cu: the sm_90a attention forward (H100 / H200) behind the entry
// points of flash_attention.h: wgmma tensor-core products, Q / K / V tiles brought in by TMA on
// mbarriers, a producer warpgroup and two consumer warpgroups. The three uses (Mode: Plain,
// Switch, Routed; flash_params.cuh) are template parameters of one kernel; the sm_80 kernel of
// flash_attention.cu computes the same and stays the fallback and the test reference.
// Instructions: kernels/cuda/hopper.cuh. Layout, masks, log2-unit softmax as in flash_attention.cu.
//
// A CTA takes 128 query rows of one (b, h) with three warpgroups (384 threads):
//   WG 0  producer     one thread issues the TMA copies: Q once, then per key tile K and V
//                      (128 keys each, kStages = 2 slots each); the other 127 threads leave.
//                      Keeps 40 registers (setmaxnreg), so that the consumers can have 232.
//   WG 1  consumer 0   query rows 0-63:   S = Q K^T, softmax, O += P V; O stays in registers
//   WG 2  consumer 1   query rows 64-127: the same
//
// The key tiles a CTA visits (KeyTiles): phase 1, the tiles of [lo(t_first), t_last] that hold a
// legal key of some row; phase 2 (Switch only), the tiles of [0, the largest far key t - w].
// Producer and consumers walk the same sequence, numbered it = 0 .. n-1; tile it sits in slot
// it % kStages. The consumers take turns at the tensor cores (ping-pong), one turn per tile and
// one more; turn it of a consumer:
//
//   wait k_full[it], v_full[it-1]                       TMA bytes of K_it and V_it-1 landed
//   bar.sync turn[me]                                   my turn to issue
//   issue  S = Q K_it^T                  (group 1)      64 x 128, K-major operands in shared memory
//   issue  O += P V_it-1                 (group 2)      P from registers, V transposed (N-major)
//   bar.arrive turn[other]                              the other consumer issues behind me
//   wgmma_wait<1>: S ready;  arrive k_empty[it]
//   mask, row max m', P = 2^(c S - m') in S's registers, row sums      (overlaps group 2 and the
//   wgmma_wait<0>: O complete through tile it-1;  arrive v_empty[it-1]  other consumer's GEMMs)
//   O *= 2^(m - m'), l = l 2^(m - m') + row sums, P -> bf16 A fragments
//
// (turn 0 issues only S of tile 0; turn n only O += P V of tile n-1). On one SM:
//
//   tensor cores  | S_j PV_j-1 (WG1) | S_j PV_j-1 (WG2) | S_j+1 PV_j (WG1) | S_j+1 PV_j (WG2) |
//   consumer 0      issue ..... softmax S_j ........... issue ..... softmax S_j+1 ......
//   consumer 1                    issue ..... softmax S_j ........... issue ....
//
// so each consumer's softmax runs while the tensor cores do the other's products.
//
// Barriers (every one named for what it guards):
//   pipe.q_full        Q tile landed (TMA, 1 arrival + bytes; a Routed CTA gathers its rows itself)
//   pipe.k_full[s]     K tile of slot s landed: producer -> consumers (1 arrival + 128 D 2 bytes)
//   pipe.v_full[s]     V tile of slot s landed (same)
//   pipe.k_empty[s]    both consumers have read K of slot s: consumers -> producer (8 arrivals,
//                      one per consumer warp)
//   pipe.v_empty[s]    both consumers have read V of slot s (8 arrivals)
//   turn 1, 2          named barriers (256 threads): consumer 0 / 1 may issue its products
//   q_ready 3, 4       named barriers (128 threads): a consumer's gathered Q rows are in place
// A producer wait on an empty slot that lasts ~4 s stops the kernel (hopper.cuh:
// mbar_wait_or_trap), so a pipeline bug shows as an error ("unspecified launch failure"), not a
// hang, unless it strikes after the producer's last load.
//
// Shared memory, 1024-byte aligned; every tile as 64-column panels of 128-byte rows, 128-byte
// swizzled (hopper.cuh): Q (D/64, 128 rows, 64) | K (kStages, D/64, 128 keys, 64) | V (same);
// D 128: 32 + 64 + 64 = 160 KB, D 64: 80 KB. One CTA per SM (384 threads; 232 / 40 registers).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdint>
#include <string>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/device.h"
#include "kernels/cuda/flash_params.cuh"
#include "kernels/cuda/hopper.cuh"
#include "kernels/cuda/mma.cuh"

namespace swiattn::cuda {
namespace {

constexpr int kBM = 128;          // query rows per CTA: two consumers x 64
constexpr int kBN = 128;          // keys per tile
constexpr int kStages = 2;        // slots for K tiles, and for V tiles
constexpr int kCtaThreads = 384;  // producer + 2 consumers
[[maybe_unused]] constexpr int kConsumerWarps = 8;
[[maybe_unused]] constexpr int kProducerRegisters = 40, kConsumerRegisters = 232;  // 128 x 40 + 256 x 232 <= 64K
[[maybe_unused]] constexpr int kTurnBarrier = 1;    // + consumer index
[[maybe_unused]] constexpr int kQReadyBarrier = 3;  // + consumer index

template <int D>
struct Layout {                               // byte offsets in the aligned dynamic shared memory
  static constexpr int kQPanel = kBM * 128;   // one 64-column panel of the Q tile
  static constexpr int kKVPanel = kBN * 128;  // one panel of a K or V tile
  static constexpr int kQBytes = kBM * D * 2, kKVBytes = kBN * D * 2;
  static constexpr int kQ = 0, kK = kQBytes, kV = kK + kStages * kKVBytes, kBytes = kV + kStages * kKVBytes;
};

struct Pipeline {  // the mbarriers of the header
  uint64_t q_full;
  uint64_t k_full[kStages], v_full[kStages];
  uint64_t k_empty[kStages], v_empty[kStages];
};

struct HopperParams {
  CUtensorMap q, k, v;  // TMA maps: q (B, T, Hq, D), k, v (B, T, Hkv, D) as 4-d (D, H, T, B); box (64, 1, 128, 1)
  FlashParams f;
};

#ifdef SWIATTN_SM90A  // (device code; built for sm_90a only)

// The key tiles one CTA visits, in order (header). Producer and consumers each walk a copy.
struct KeyTiles {
  const int* t;  // the rows' positions, ascending (n of them)
  int n, window, last1, n2;  // rows; window (0: causal); last tile of phase 1; tiles in phase 2
  bool gaps;                 // phase 1 may skip tiles between the rows' ranges (skip_gap)
  int phase, kb;             // where the walk is: phase 1 or 2, key tile kb (keys 128 kb ..)

  __device__ KeyTiles(const int* rows, int n_rows, int w, int far_max, bool may_have_gaps)
      : t(rows), n(n_rows), window(w), gaps(may_have_gaps) {
    last1 = t[n - 1] / kBN;
    n2 = far_max >= 0 ? far_max / kBN + 1 : 0;
    phase = 1;
    kb = window_first_key(t[0], w) / kBN;
  }
  __device__ bool valid() const { return phase == 1 || kb < n2; }
  __device__ int key0() const { return kb * kBN; }
  __device__ void next() {
    ++kb;
    if (phase == 2) return;
    if (kb > last1) {
      phase = 2;
      kb = 0;
    } else {
      skip_gap();
    }
  }
  // Phase 1 with a window: the first tile at or after kb holding a key of some row. Rows with
  // t >= 128 kb are the ones with keys there; the first of them has the lowest window start, so
  // that tile is the one of max(128 kb, its window start). Consecutive positions leave no gap
  // (so only gathered rows search: a binary search per tile is ~300 cycles of dependent shared
  // loads on the consumers' path, measured 2026-12-01); gathered window-list rows more than
  // w + 127 apart do.
  __device__ void skip_gap() {
    if (!gaps) return;
    const int j0 = kb * kBN;
    int lo = 0, hi = n - 1;  // t[n - 1] >= j0 since kb <= last1
    while (lo < hi) {
      const int mid = (lo + hi) >> 1;
      if (t[mid] >= j0) hi = mid;
      else lo = mid + 1;
    }
    kb = max(kb, window_first_key(t[lo], window) / kBN);
  }
};

__device__ __forceinline__ float fast_exp2(float x) {  // 2^x (MUFU; 2^-inf = 0)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---- the producer (one thread): Q, then K_0, K_1, V_0, K_2, V_1, ... (the order turns use them) ----
template <int D, Mode kMode>
__device__ void load_tiles(const HopperParams& hp, unsigned char* smem, Pipeline& pipe, KeyTiles tiles, int row0,
                           int h, int hk, int b) {
  using L = Layout<D>;
  sm90::prefetch_tensor_map(&hp.k);
  sm90::prefetch_tensor_map(&hp.v);
  if constexpr (kMode != Mode::Routed) {  // rows row0 .. row0 + 127 of head h (rows >= T land as zeros)
    sm90::mbar_arrive_expect_tx(&pipe.q_full, L::kQBytes);
#pragma unroll
    for (int panel = 0; panel < D / 64; ++panel)
      sm90::tma_load_4d(smem + L::kQ + panel * L::kQPanel, &hp.q, &pipe.q_full, 64 * panel, h, row0, b);
  }
  // Key tile `it` (keys key0 .. key0 + 127 of kv head hk) into its slot, once both consumers
  // have released the tile that used the slot before (it - kStages).
  auto load = [&](const CUtensorMap* map, int offset, uint64_t* full, uint64_t* empty, int it, int key0) {
    const int slot = it % kStages;
    sm90::mbar_wait_or_trap(&empty[slot], ((it / kStages) & 1) ^ 1);
    sm90::mbar_arrive_expect_tx(&full[slot], L::kKVBytes);
    unsigned char* dst = smem + offset + slot * L::kKVBytes;
#pragma unroll
    for (int panel = 0; panel < D / 64; ++panel)
      sm90::tma_load_4d(dst + panel * L::kKVPanel, map, &full[slot], 64 * panel, hk, key0, b);
  };
  int it = 0, prev_key0 = 0;
  for (; tiles.valid(); tiles.next(), ++it) {
    load(&hp.k, L::kK, pipe.k_full, pipe.k_empty, it, tiles.key0());
    if (it > 0) load(&hp.v, L::kV, pipe.v_full, pipe.v_empty, it - 1, prev_key0);
    prev_key0 = tiles.key0();
  }
  load(&hp.v, L::kV, pipe.v_full, pipe.v_empty, it - 1, prev_key0);
}

// ---- a consumer warpgroup: 64 query rows (the turns of the header) ----
template <int D, Mode kMode, class TO>
__device__ void attend_tiles(const FlashParams& p, unsigned char* smem, Pipeline& pipe, KeyTiles tiles,
                             const int* sT, const int* sFar, const float* sGate, int consumer, int h, int b) {
  using L = Layout<D>;
  const int tid = threadIdx.x - 128 * (consumer + 1), warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3;
  const int window = tiles.window;

  // this lane's two rows (g and g + 8 of its warp's 16) and their key ranges
  int t_row[2], lo[2], far_hi[2];
  float gate[2];
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int r = 64 * consumer + 16 * warp + g + 8 * e;
    t_row[e] = sT[r];
    lo[e] = t_row[e] >= 0 ? window_first_key(t_row[e], window) : INT32_MAX;  // padding rows read no key
    far_hi[e] = kMode == Mode::Switch ? sFar[r] : -1;                    // keys [0, t - w], or none
    gate[e] = kMode == Mode::Switch ? sGate[r] : 0.0f;
  }

  // ---- Q: this consumer's 64 rows ----
  const uint32_t q_rows = sm90::smem_u32(smem + L::kQ) + consumer * 64 * 128;
  if constexpr (kMode == Mode::Routed) {  // gathered rows: cp.async into the swizzled panels
    constexpr int kChunks = D / 8;        // 16-byte chunks per row
    for (int i = tid; i < 64 * kChunks; i += 128) {
      const int r = 64 * consumer + i / kChunks, ch = i % kChunks, t = sT[r];
      const bf16* src = t >= 0 ? p.q + ((int64_t(b) * p.T + t) * p.Hq + h) * D + ch * 8 : p.q;
      const uint32_t dst = sm90::smem_u32(smem + L::kQ) + (ch / 8) * L::kQPanel + r * 128 + ((ch % 8) ^ (r % 8)) * 16;
      mma::cp_async_16(dst, src, t >= 0);
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    sm90::fence_proxy_async();  // the rows become visible to wgmma ...
    sm90::named_barrier_sync(kQReadyBarrier + consumer, 128);  // ... everyone's
  } else {
    sm90::mbar_wait(&pipe.q_full, 0);
  }

  float s[kBN / 2];      // S = Q K^T: 64 x 128 over the warpgroup (layout: hopper.cuh), then P (f32)
  float o[D / 2];        // O: 64 x D
  uint32_t pa[kBN / 4];  // P as bf16 pairs: the A operand of O += P V
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m: log2 units; l: this lane's partial sums
  float m_new[2], alpha[2], rowsum[2];

  auto issue_s = [&](int slot) {  // S = Q K^T: D / 16 k-steps, K-major operands
    const uint32_t k_tile = sm90::smem_u32(smem + L::kK + slot * L::kKVBytes);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint64_t a = sm90::desc_sw128(q_rows + (kk / 4) * L::kQPanel + (kk % 4) * 32, 16);
      const uint64_t bk = sm90::desc_sw128(k_tile + (kk / 4) * L::kKVPanel + (kk % 4) * 32, 16);
      if (kk == 0) sm90::wgmma_m64n128k16_ss<false>(s, a, bk);
      else sm90::wgmma_m64n128k16_ss<true>(s, a, bk);
    }
    sm90::wgmma_commit();
  };
  auto issue_pv = [&](int slot) {  // O += P V: 128 / 16 k-steps over the keys, V N-major
    const uint32_t v_tile = sm90::smem_u32(smem + L::kV + slot * L::kKVBytes);
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint64_t bv = sm90::desc_sw128(v_tile + kk * 2048, L::kKVPanel);
      if constexpr (D == 128) sm90::wgmma_m64n128k16_rs(o, pa + 4 * kk, bv);
      else sm90::wgmma_m64n64k16_rs(o, pa + 4 * kk, bv);
    }
    sm90::wgmma_commit();
  };
  // Mask (boundary tiles only), row max, P = 2^(c S - m') in place, row sums: for key tile `j0`
  // of `phase` (1: keys [lo, t]; 2: far keys [0, t - w]). Touches neither O nor pa.
  auto softmax = [&](int phase, int j0) {
    const bool far = phase == 2;
    const int lo0 = far ? 0 : lo[0], lo1 = far ? 0 : lo[1];
    const int hi0 = far ? far_hi[0] : t_row[0], hi1 = far ? far_hi[1] : t_row[1];
    const bool whole = lo0 <= j0 && lo1 <= j0 && j0 + kBN - 1 <= min(hi0, hi1);
    if (!__all_sync(0xffffffffu, whole)) {
#pragma unroll
      for (int i = 0; i < kBN / 8; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) {  // q = 2e + p: row g + 8e, key j0 + 8i + 2c + p
          const int j = j0 + 8 * i + 2 * c + (q & 1);
          if (j < (q < 2 ? lo0 : lo1) || j > (q < 2 ? hi0 : hi1)) s[4 * i + q] = -INFINITY;
        }
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float mx = -INFINITY;
#pragma unroll
      for (int i = 0; i < kBN / 8; ++i) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * e], s[4 * i + 2 * e + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(m[e], mx * p.scale_log2);
      const float m_use = mx == -INFINITY ? 0.0f : mx;  // a row with no key yet: all p = 0
      alpha[e] = mx == m[e] ? 1.0f : fast_exp2(m[e] - m_use);
      m_new[e] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kBN / 8; ++i)
#pragma unroll
        for (int pp = 0; pp < 2; ++pp) {
          float& x = s[4 * i + 2 * e + pp];
          x = fast_exp2(fmaf(x, p.scale_log2, -m_use));
          sum += x;
        }
      rowsum[e] = sum;
    }
  };
  auto rescale = [&] {  // after O is complete through the previous tile
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      m[e] = m_new[e];
      l[e] = l[e] * alpha[e] + rowsum[e];
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[4 * i + 2 * e] *= alpha[e];
        o[4 * i + 2 * e + 1] *= alpha[e];
      }
    }
#pragma unroll
    for (int j = 0; j < kBN / 4; ++j) pa[j] = mma::pack_bf16x2(s[2 * j], s[2 * j + 1]);
  };
  // O / l of this lane's rows into dst (B, T, Hq, D), and the log-sum-exp into lse (when given);
  // inv and lse are kept for the caller.
  float inv[2], lse[2];
  auto store_rows = [&](auto* dst, float* lse_dst) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float lt = l[e];
      lt += __shfl_xor_sync(0xffffffffu, lt, 1);
      lt += __shfl_xor_sync(0xffffffffu, lt, 2);
      inv[e] = 1.0f / lt;
      lse[e] = (m[e] + log2f(lt)) * 0.69314718055994531f;
      if (t_row[e] < 0 || dst == nullptr) continue;
      const int64_t row = (int64_t(b) * p.T + t_row[e]) * p.Hq + h;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) store2(dst + row * D + 8 * i + 2 * c, o[4 * i + 2 * e] * inv[e], o[4 * i + 2 * e + 1] * inv[e]);
      if (lse_dst && c == 0) lse_dst[row] = lse[e];
    }
  };

  // Switch, rows with gate 0: out = O_SWA, written from the registers as O_SWA is (after
  // store_rows), so that the end need not read O_SWA back from memory for them. (The blend
  // g O_FULL + (1 - g) O_SWA gives the same bits for g = 0 and g = 1; only 0 < g < 1 reads back.)
  auto store_out_swa = [&] {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (t_row[e] < 0 || gate[e] != 0.0f) continue;
      const int64_t row = (int64_t(b) * p.T + t_row[e]) * p.Hq + h;
#pragma unroll
      for (int i = 0; i < D / 8; ++i)
        store2(static_cast<bf16*>(p.out) + row * D + 8 * i + 2 * c, o[4 * i + 2 * e] * inv[e], o[4 * i + 2 * e + 1] * inv[e]);
    }
  };

  const int my_turn = kTurnBarrier + consumer, other_turn = kTurnBarrier + 1 - consumer;
  if (consumer == 1) sm90::named_barrier_arrive(kTurnBarrier, 256);  // consumer 0 takes the first turn

  // ---- turn 0: S of tile 0 ----
  int it = 0, phase = tiles.phase;
  sm90::mbar_wait(&pipe.k_full[0], 0);
  sm90::named_barrier_sync(my_turn, 256);
  sm90::wgmma_fence();
  issue_s(0);
  sm90::named_barrier_arrive(other_turn, 256);
  sm90::wgmma_wait<0>();
  sm90::fence_operands(s);
  if (lane == 0) sm90::mbar_arrive(&pipe.k_empty[0]);
  softmax(phase, tiles.key0());
  rescale();

  // ---- turns 1 .. n-1: S of tile it, O += P V of tile it - 1 ----
  bool swa_written = false;
  for (tiles.next(); tiles.valid(); tiles.next()) {
    ++it;
    const int slot = it % kStages, prev = (it - 1) % kStages;
    sm90::mbar_wait(&pipe.k_full[slot], (it / kStages) & 1);
    sm90::mbar_wait(&pipe.v_full[prev], ((it - 1) / kStages) & 1);
    sm90::named_barrier_sync(my_turn, 256);
    sm90::fence_operands(o);
    sm90::fence_operands(pa);
    sm90::wgmma_fence();
    issue_s(slot);
    issue_pv(prev);
    sm90::named_barrier_arrive(other_turn, 256);
    sm90::wgmma_wait<1>();  // S done (O += P V may still run)
    sm90::fence_operands(s);
    if (lane == 0) sm90::mbar_arrive(&pipe.k_empty[slot]);
    softmax(tiles.phase, tiles.key0());
    sm90::wgmma_wait<0>();  // O complete through tile it - 1
    sm90::fence_operands(o);
    sm90::fence_operands(pa);
    if (lane == 0) sm90::mbar_arrive(&pipe.v_empty[prev]);
    if constexpr (kMode == Mode::Switch) {  // the first far tile: O, m, l are the window's (O_SWA)
      if (tiles.phase == 2 && phase == 1) {
        store_rows(p.o_swa, p.lse_swa);
        store_out_swa();
        swa_written = true;
      }
    }
    phase = tiles.phase;
    rescale();
  }

  // ---- turn n: O += P V of the last tile ----
  {
    const int slot = it % kStages;
    sm90::mbar_wait(&pipe.v_full[slot], (it / kStages) & 1);
    sm90::named_barrier_sync(my_turn, 256);
    sm90::fence_operands(o);
    sm90::fence_operands(pa);
    sm90::wgmma_fence();
    issue_pv(slot);
    if (consumer == 0) sm90::named_barrier_arrive(other_turn, 256);  // consumer 1's turn n is the last
    sm90::wgmma_wait<0>();
    sm90::fence_operands(o);
  }

  // ---- results ----
  if constexpr (kMode == Mode::Switch) {
    if (!swa_written) store_rows(p.o_swa, p.lse_swa);  // no far tile: O_FULL is O_SWA
    store_rows(static_cast<float*>(nullptr), nullptr);  // inv, lse of the final state
#pragma unroll
    for (int e = 0; e < 2; ++e) {  // O_FULL, and Eq. 6 (out of gate-0 rows is written already)
      if (t_row[e] < 0) continue;
      const int64_t row = (int64_t(b) * p.T + t_row[e]) * p.Hq + h;
      const bool full_only = !swa_written || gate[e] == 1.0f, blend = !full_only && gate[e] != 0.0f;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        const int64_t at = row * D + 8 * i + 2 * c;
        const float f0 = o[4 * i + 2 * e] * inv[e], f1 = o[4 * i + 2 * e + 1] * inv[e];
        store2(p.o_full + at, f0, f1);
        if (full_only) {
          store2(static_cast<bf16*>(p.out) + at, f0, f1);
        } else if (blend) {  // 0 < g < 1: the O_SWA this lane wrote itself
          const float2 sw = *reinterpret_cast<const float2*>(p.o_swa + at);
          store2(static_cast<bf16*>(p.out) + at, gate[e] * f0 + (1.0f - gate[e]) * sw.x,
                 gate[e] * f1 + (1.0f - gate[e]) * sw.y);
        }
      }
      if (c == 0) p.lse[row] = lse[e];
    }
  } else {
    store_rows(static_cast<TO*>(p.out), kMode == Mode::Plain ? p.lse : nullptr);
  }
}

#endif  // SWIATTN_SM90A

template <int D, Mode kMode, class TO>
__global__ void __launch_bounds__(kCtaThreads, 1) hopper_forward_kernel(const __grid_constant__ HopperParams hp) {
#ifdef SWIATTN_SM90A
  const FlashParams& p = hp.f;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (sm90::smem_u32(smem_raw) & 1023)) & 1023);  // 128-byte swizzle atoms
  __shared__ Pipeline pipe;
  __shared__ int sT[kBM];       // each row's position t (-1: padding), ascending
  __shared__ int sFar[kBM];     // Switch: the row's last far key t - w (< 0: none)
  __shared__ float sGate[kBM];  // Switch: the row's gate
  __shared__ int sFarMax;       // Switch: the largest far key of any row
  __shared__ int sMaxGap;       // Routed: the largest step between consecutive gathered rows

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
  if (row0 >= n_rows) return;  // an empty slot of a short list (the whole CTA leaves)
  const int rows_here = min(kBM, n_rows - row0);
  if (threadIdx.x == 0) sFarMax = -1, sMaxGap = 0;
  __syncthreads();
  if (threadIdx.x < kBM) {
    const int r = threadIdx.x;
    const int t = r < rows_here ? (list ? list[row0 + r] : row0 + r) : -1;
    sT[r] = t;
    if constexpr (kMode == Mode::Switch) {
      float gt = 0.0f;
      int far = -1;
      if (t >= 0) {
        gt = __bfloat162float(p.gate[int64_t(b) * p.T + t]);
        if (p.both || gt != 0.0f) far = window_first_key(t, window) - 1;  // keys [0, t - w]
      }
      sGate[r] = gt;
      sFar[r] = far;
      if (far >= 0) atomicMax(&sFarMax, far);
    }
    if (list && r > 0 && r < rows_here) atomicMax(&sMaxGap, t - list[row0 + r - 1]);
  }
  if (threadIdx.x == 0) {
    sm90::mbar_init(&pipe.q_full, 1);
    for (int st = 0; st < kStages; ++st) {
      sm90::mbar_init(&pipe.k_full[st], 1);
      sm90::mbar_init(&pipe.v_full[st], 1);
      sm90::mbar_init(&pipe.k_empty[st], kConsumerWarps);
      sm90::mbar_init(&pipe.v_empty[st], kConsumerWarps);
    }
    sm90::fence_barrier_init();
  }
  __syncthreads();

  // Tiles can be skipped only between gathered rows of a window list: a whole key tile between
  // two consecutive rows' ranges needs them w + 128 or more apart. Rows all closer than w (the
  // window list at r = 0 is consecutive) walk without the search (at T 32K, r 0 it was 9% of the
  // kernel's samples, ncu 2026-12-01); the bound w is on the safe side of w + 128.
  const bool may_have_gaps = list != nullptr && window > 0 && sMaxGap >= window;
  const KeyTiles tiles(sT, rows_here, window, kMode == Mode::Switch ? sFarMax : -1, may_have_gaps);
  if (threadIdx.x < 128) {  // the producer warpgroup
    sm90::registers_release<kProducerRegisters>();
    if (threadIdx.x == 0) load_tiles<D, kMode>(hp, smem, pipe, tiles, row0, h, hk, b);
    return;
  }
  sm90::registers_claim<kConsumerRegisters>();
  attend_tiles<D, kMode, TO>(p, smem, pipe, tiles, sT, sFar, sGate, int(threadIdx.x) / 128 - 1, h, b);
#endif
}

// Whether the code this device runs was compiled for sm_90a (the kernel's body is empty otherwise).
__global__ void hopper_probe_kernel(int* has_sm90a) {
#ifdef SWIATTN_SM90A
  *has_sm90a = 1;
#else
  *has_sm90a = 0;
#endif
}

// ---- host side ----

// cuTensorMapEncodeTiled, found through the runtime: the binary does not link the driver library
// (libcuda), so that it still starts where there is no driver (CI).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    SWIATTN_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr)
      throw Error("hopper attention: the driver has no cuTensorMapEncodeTiled (a CUDA 12 driver or newer is needed)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

template <int D, Mode kMode, class TO>
void launch(const HopperParams& hp, int B) {
  using L = Layout<D>;
  static_assert(L::kQ == 0 && L::kQPanel * (D / 64) == L::kQBytes && L::kKVPanel * (D / 64) == L::kKVBytes &&
                    L::kK % 1024 == 0 && L::kKVBytes % 1024 == 0,
                "tiles are whole 128-byte-row panels on 1024-byte boundaries (the swizzle atoms)");
  constexpr int smem = L::kBytes + 1024;  // + room to align the start to 1024 bytes
  auto kernel = hopper_forward_kernel<D, kMode, TO>;
  static const bool configured = [&] {
    SWIATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)configured;
  const dim3 grid(hp.f.Hq, kMode == Mode::Routed ? 2 * hp.f.tiles : hp.f.tiles, B);
  kernel<<<grid, kCtaThreads, smem>>>(hp);
  SWIATTN_CUDA_CHECK_LAUNCH("hopper_forward");
}

template <Mode kMode, class TO>
void launch_d(const HopperParams& hp, int B, int D) {
  if (D == 64) return launch<64, kMode, TO>(hp, B);
  return launch<128, kMode, TO>(hp, B);
}

}  // namespace

// The TMA map of x (flash_params.cuh).
CUtensorMap hopper_tensor_map(const bf16* x, int B, int T, int H, int D, int rows, const char* name) {
  CUtensorMap map;
  const cuuint64_t dims[4] = {cuuint64_t(D), cuuint64_t(H), cuuint64_t(T), cuuint64_t(B)};
  const cuuint64_t strides[3] = {cuuint64_t(D) * 2, cuuint64_t(H) * D * 2, cuuint64_t(T) * H * D * 2};  // bytes
  const cuuint32_t box[4] = {64, 1, cuuint32_t(rows), 1};
  const cuuint32_t steps[4] = {1, 1, 1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<bf16*>(x), dims,
                                          strides, box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error(std::string("hopper attention: cuTensorMapEncodeTiled refused ") + name + " (B " + std::to_string(B) +
                ", T " + std::to_string(T) + ", H " + std::to_string(H) + ", D " + std::to_string(D) + "): error " +
                std::to_string(int(r)));
  return map;
}

bool hopper_forward_available(std::string* why) {
  struct State {
    bool ok;
    std::string why;
  };
  static const State state = []() -> State {
    if (device_count() == 0) return {false, "no CUDA device"};
    cudaDeviceProp prop{};
    SWIATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const std::string dev = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
    if (prop.major != 9 || prop.minor != 0) return {false, dev + " is not a compute capability 9.0 device"};
    int* flag = nullptr;
    SWIATTN_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
    hopper_probe_kernel<<<1, 1>>>(flag);
    const cudaError_t launched = cudaGetLastError();
    int has = 0;
    if (launched == cudaSuccess) SWIATTN_CUDA_CHECK(cudaMemcpy(&has, flag, sizeof(int), cudaMemcpyDeviceToHost));
    SWIATTN_CUDA_CHECK(cudaFree(flag));
    if (launched != cudaSuccess) return {false, dev + ": the probe kernel did not launch (" + cudaGetErrorString(launched) + ")"};
    if (!has) return {false, dev + ": this binary has no sm_90a code (build with 90a in CMAKE_CUDA_ARCHITECTURES)"};
    return {true, "sm_90a kernel on " + dev};
  }();
  if (why) *why = state.why;
  return state.ok;
}

void hopper_forward(Mode mode, FlashParams p, int B, int D, bool out_f32) {
  p.tiles = (p.T + kBM - 1) / kBM;
  const int64_t grid_y = mode == Mode::Routed ? 2 * int64_t(p.tiles) : p.tiles;
  if (grid_y > 65535)
    throw Error("hopper attention: T " + std::to_string(p.T) + " needs " + std::to_string(grid_y) +
                " query-tile blocks, over the grid limit of 65535");
  HopperParams hp;
  hp.q = hopper_tensor_map(p.q, B, p.T, p.Hq, D, kBM, "q");
  hp.k = hopper_tensor_map(p.k, B, p.T, p.Hkv, D, kBN, "k");
  hp.v = hopper_tensor_map(p.v, B, p.T, p.Hkv, D, kBN, "v");
  hp.f = p;
  switch (mode) {
    case Mode::Plain:
      if (out_f32) return launch_d<Mode::Plain, float>(hp, B, D);
      return launch_d<Mode::Plain, bf16>(hp, B, D);
    case Mode::Switch: return launch_d<Mode::Switch, bf16>(hp, B, D);
    case Mode::Routed: return launch_d<Mode::Routed, bf16>(hp, B, D);
  }
}

}  // namespace swiattn::cuda
