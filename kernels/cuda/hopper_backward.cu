// kernels/cuda/hopper_backward.cu: the sm_90a main kernel of the attention backward (H100 / H200):
// the products and sums of flash_backward.cu's kernel (the math: flash_backward.h) on wgmma, with
// K, V, Q and dO tiles brought in by TMA on mbarriers, a producer warpgroup and two consumer
// warpgroups. flash_backward.cu's driver runs the preprocessing (Deltas, weights, dgate) and the
// final dq += buffer around it, and its sm_80 kernel stays the fallback and the test reference.
// Instructions: kernels/cuda/hopper.cuh; the forward of the same design: hopper_attention.cu.
//
// A CTA takes 128 keys (j0 ..) of one (batch b, kv head) with three warpgroups (384 threads):
//   WG 0  producer    thread 0 issues every copy: K, V once (TMA), then per step Q and dO (64
//                     query rows of one query head, TMA) and the step's per-query numbers (one
//                     1.25 KB bulk copy of a block packed beforehand: lse and Delta of both
//                     branches, the gate), into one of kStages = 2 slots; the other threads leave. Keeps
//                     24 registers (setmaxnreg), so that the consumers can have 240.
//   WG 1  consumer 0  keys j0 .. j0 + 63     (dK, dV of its keys stay in registers)
//   WG 2  consumer 1  keys j0 + 64 .. j0 + 127
// The steps: every (query head of the group, 64-query tile) that can read these keys, in the
// sm_80 kernel's order. One step of a consumer (rows = its 64 keys, columns = the 64 queries):
//
//   wait step_full[slot]                                 Q, dO, per-query numbers landed
//   S^T  = K_mine Q^T,  dP^T = V_mine dO^T               (SS, K-major operands; 2 groups)
//   wait both; elementwise (masks, both branches):       P^T = sum_b w_b p_b,
//                                                         dS^T = sum_b p_b (w_b dP^T - Delta_b)
//   bar.sync ds_free          both consumers' products of the last step are done with sP, sDS
//   P^T -> sP, dS^T -> sDS (bf16, rows = keys, 128-byte swizzle); fence.proxy.async
//   bar.sync ds_ready         all 128 key rows of dS^T (and my P^T rows) are in shared memory
//   dV += P^T dO                                         (SS: P^T K-major, dO N-major)
//   dQ  = dS K                D 128: consumer cw takes dims 64 cw .. + 63 over all 128 keys;
//                             D 64: all dims over its own 64 keys (both add)
//                                                        (SS: dS^T and K both M / N-major)
//   dK += dS^T Q                                         (SS: dS^T K-major, Q N-major)
//   wait dV, dQ; dQ -> atomicAdd (16 bytes) into the float32 buffer (overlaps dK's products)
//   wait dK; arrive step_empty[slot] (every thread)     the producer may refill the slot
//
// P^T and dS^T go through shared memory, not registers, so that a consumer holds only its dK, dV
// (2 x D/2 floats per thread), S^T, dP^T (2 x 32) and dQ (32): at D 128 that fits in 240
// registers, where A operands in registers (16 + 16 more) made ptxas serialise the wgmma and
// spill. After the last step each consumer adds its dK (times the softmax scale) and dV into dk,
// dv once: this CTA owns those rows. dQ's partial sums come from every CTA whose keys a query
// reads: float atomics, as in the sm_80 kernel (deterministic mode takes the sm_80 kernel's
// fixed order instead).
//
// Barriers (each named for what it guards):
//   pipe.kv_full          K and V of the CTA's keys landed (1 arrival + 2 x 128 D 2 bytes)
//   pipe.step_full[s]     Q, dO and the per-query block of slot s landed (1 arrival + bytes)
//   pipe.step_empty[s]    both consumers are done with slot s (256 arrivals: every consumer thread)
//   ds_free 1, ds_ready 2 named barriers of the 256 consumer threads (above)
// The producer's waits trap after ~4 s (hopper.cuh: mbar_wait_or_trap): a pipeline bug shows as
// "unspecified launch failure", not a hang.
//
// Shared memory (1024-byte aligned; tiles as 64-column panels of 128-byte rows, 128-byte
// swizzled): K, V (D/64 panels x 128 keys) | Q, dO (kStages x D/64 panels x 64 queries) | P^T,
// dS^T (128 keys x 64 queries each) | per-query blocks (kStages x 5 x 64 floats).
// D 128: 163 KB; D 64: 99 KB. One CTA per SM.
#include <cuda.h>

#include <cstdint>
#include <string>

#include "tensor/cuda/common.cuh"
#include "kernels/cuda/flash_backward_args.cuh"
#include "kernels/cuda/flash_params.cuh"
#include "kernels/cuda/hopper.cuh"
#include "kernels/cuda/mma.cuh"

namespace swiattn::cuda {
namespace {

constexpr int kBM = 64;           // queries per step
constexpr int kBN = 128;          // keys per CTA: two consumers x 64
constexpr int kStages = 2;        // slots for Q, dO and the per-query numbers
constexpr int kCtaThreads = 384;  // producer + 2 consumers
constexpr int kRowFloats = 5 * kBM;  // lse_a, lse_b (times log2 e), Delta_a, Delta_b, w_a (w_b = 1 - w_a)
[[maybe_unused]] constexpr int kConsumerThreads = 256;
[[maybe_unused]] constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;  // 128 x 24 + 256 x 240 <= 64K
[[maybe_unused]] constexpr int kDsFreeBarrier = 1, kDsReadyBarrier = 2;
[[maybe_unused]] constexpr float kLog2e = 1.4426950408889634f;

template <int D>
struct Layout {                               // byte offsets in the aligned dynamic shared memory
  static constexpr int kKVPanel = kBN * 128;  // one 64-column panel of the K or V tile
  static constexpr int kQPanel = kBM * 128;   // one panel of a Q or dO tile
  static constexpr int kKVBytes = kBN * D * 2, kQBytes = kBM * D * 2;
  static constexpr int kK = 0, kV = kKVBytes, kQ = 2 * kKVBytes, kDO = kQ + kStages * kQBytes;
  static constexpr int kP = kDO + kStages * kQBytes, kDS = kP + kBN * kBM * 2, kRows = kDS + kBN * kBM * 2;
  static constexpr int kBytes = kRows + kStages * kRowFloats * 4;
};

struct Pipeline {  // the mbarriers of the header
  uint64_t kv_full;
  uint64_t step_full[kStages], step_empty[kStages];
};

struct HopperBackwardParams {
  CUtensorMap q, dout, k, v;  // TMA maps: (B, T, H, D) as 4-d (D, H, T, B); boxes of 64 (q, dout) or 128 rows
  FlashBackwardArgs a;
  const float* rows;  // (B, Hq, query tiles, 5, 64): each step's per-query numbers, packed (pack_rows_kernel)
  int query_tiles;    // ceil(T / 64)
};

// The steps a CTA of key tile j0 walks (the sm_80 kernel's): queries t >= j0 (causal), up to the
// last query whose window reaches the tile (every query for a full branch); i = head * tiles + tile.
// (32-bit: the launcher checks T < 2^30.)
struct Steps {
  int t_begin, tiles, count;
  __device__ Steps(const FlashBackwardArgs& a, int j0, bool two) {
    const int T = int(a.T), j_last = min(T - 1, j0 + kBN - 1);
    const int reach_a = a.window_a > 0 ? int(min(int64_t(T), j_last + a.window_a)) : T;
    const int reach_b = !two ? 0 : a.window_b > 0 ? int(min(int64_t(T), j_last + a.window_b)) : T;
    t_begin = (j0 / kBM) * kBM;
    tiles = (max(reach_a, reach_b) - t_begin + kBM - 1) / kBM;
    count = int(a.group) * tiles;
  }
  __device__ int head(const FlashBackwardArgs& a, int kv_head, int i) const { return kv_head * int(a.group) + i / tiles; }
  __device__ int t0(int i) const { return t_begin + (i % tiles) * kBM; }
};

// Packs the per-query numbers the main kernel reads, per (b, h, 64-query tile): lse_a, lse_b (times
// log2 e), Delta_a, Delta_b, w_a, 64 each (zeros for t >= T and for an absent branch b). The
// branch weights of the switch are w_a = gate, w_b = 1 - gate (flash_backward.cu's preprocessing),
// so w_b is not stored: the kernel takes 1 - w_a.
__global__ void pack_rows_kernel(FlashBackwardArgs a, int query_tiles, float* rows) {
  const int64_t n = a.Hq * query_tiles * kBM;  // (Hq, tiles, 64) per batch row b = blockIdx.y
  const int64_t b = blockIdx.y;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t h = i / (int64_t(query_tiles) * kBM), tile = (i / kBM) % query_tiles, q = i % kBM;
    const int64_t t = tile * kBM + q, row = (b * a.T + t) * a.Hq + h;
    const bool in = t < a.T, two = a.lse_b != nullptr;
    float* r = rows + ((b * a.Hq + h) * query_tiles + tile) * kRowFloats;
    r[0 * kBM + q] = in ? a.lse_a[row] * kLog2e : 0.0f;
    r[1 * kBM + q] = in && two ? a.lse_b[row] * kLog2e : 0.0f;
    r[2 * kBM + q] = in ? a.delta_a[row] : 0.0f;
    r[3 * kBM + q] = in && two ? a.delta_b[row] : 0.0f;
    r[4 * kBM + q] = in ? a.weight_a[b * a.T + t] : 0.0f;
  }
}

#ifdef SWIATTN_SM90A  // (device code; built for sm_90a only)

// ---- the producer (thread 0): K, V once; then per step Q, dO and the per-query block ----
template <int D, bool kTwo>
__device__ void produce(const HopperBackwardParams& hp, unsigned char* smem, float* sRows, Pipeline& pipe, int kv_head,
                        int b, int j0) {
  using L = Layout<D>;
  const FlashBackwardArgs& a = hp.a;
  const Steps steps(a, j0, kTwo);
  const int count = steps.count, tiles = steps.tiles, group = int(a.group);
  sm90::prefetch_tensor_map(&hp.q);
  sm90::prefetch_tensor_map(&hp.dout);
  sm90::mbar_arrive_expect_tx(&pipe.kv_full, 2 * L::kKVBytes);
#pragma unroll
  for (int panel = 0; panel < D / 64; ++panel) {
    sm90::tma_load_4d(smem + L::kK + panel * L::kKVPanel, &hp.k, &pipe.kv_full, 64 * panel, kv_head, j0, b);
    sm90::tma_load_4d(smem + L::kV + panel * L::kKVPanel, &hp.v, &pipe.kv_full, 64 * panel, kv_head, j0, b);
  }
  for (int i = 0; i < count; ++i) {
    const int slot = i % kStages;
    sm90::mbar_wait_or_trap(&pipe.step_empty[slot], ((i / kStages) & 1) ^ 1);
    const int h = kv_head * group + i / tiles, tile = steps.t_begin / kBM + i % tiles;
    sm90::mbar_arrive_expect_tx(&pipe.step_full[slot], 2 * L::kQBytes + kRowFloats * 4);
#pragma unroll
    for (int panel = 0; panel < D / 64; ++panel) {
      sm90::tma_load_4d(smem + L::kQ + slot * L::kQBytes + panel * L::kQPanel, &hp.q, &pipe.step_full[slot],
                        64 * panel, h, tile * kBM, b);
      sm90::tma_load_4d(smem + L::kDO + slot * L::kQBytes + panel * L::kQPanel, &hp.dout, &pipe.step_full[slot],
                        64 * panel, h, tile * kBM, b);
    }
    sm90::bulk_load(sRows + slot * kRowFloats, hp.rows + ((int64_t(b) * a.Hq + h) * hp.query_tiles + tile) * kRowFloats,
                    kRowFloats * 4, &pipe.step_full[slot]);
  }
}

// The elementwise step on one consumer's 64 keys x 64 queries (accumulator layout, hopper.cuh:
// s[4i + 2e + p] is key row 16 warp + g + 8e, query 8i + 2c + p):
//   s <- P^T = sum_b w_b p_b,   dp <- dS^T = sum_b p_b (w_b dP^T - Delta_b),
// p_b = exp(score - lse_b) on branch b's keys (kMasked: tested per element: j <= t < T, and
// j > t - W_b for a windowed branch), 0 elsewhere. As the sm_80 kernel's softmax_gradient.
struct TileRows {
  int t0, j, T, window_a, window_b, c;  // j: this lane's key of e = 0
};
template <bool kMasked, bool kTwo>
__device__ __forceinline__ void softmax_gradient(float (&s)[32], float (&dp)[32], const float* rows,
                                                 const TileRows& r, bool b_live, float scale_log2) {
#pragma unroll
  for (int i = 0; i < kBM / 8; ++i) {
    const int tq = 8 * i + 2 * r.c;  // this lane's two queries t0 + tq, t0 + tq + 1
    const float2 lse_a = *reinterpret_cast<const float2*>(rows + tq);
    const float2 del_a = *reinterpret_cast<const float2*>(rows + 2 * kBM + tq);
    const float2 w_a = *reinterpret_cast<const float2*>(rows + 4 * kBM + tq);
    float2 lse_b{}, del_b{};  // (w_b = 1 - w_a: the switch's two branches share the gate)
    if (kTwo && b_live) {
      lse_b = *reinterpret_cast<const float2*>(rows + kBM + tq);
      del_b = *reinterpret_cast<const float2*>(rows + 3 * kBM + tq);
    }
#pragma unroll
    for (int q = 0; q < 4; ++q) {  // q = 2e + p
      const int idx = 4 * i + q;
      const bool odd = q & 1;
      bool in_a = true, in_b = true;
      if (kMasked) {
        const int t = r.t0 + tq + odd, j = r.j + 8 * (q >> 1);
        const bool causal = t < r.T && j <= t;
        in_a = causal && (r.window_a == 0 || j > t - r.window_a);
        in_b = causal && (r.window_b == 0 || j > t - r.window_b);
      }
      const float pa = in_a ? exp2f(fmaf(s[idx], scale_log2, -(odd ? lse_a.y : lse_a.x))) : 0.0f;
      const float wa = odd ? w_a.y : w_a.x;
      float pmix = wa * pa, ds = pa * fmaf(wa, dp[idx], -(odd ? del_a.y : del_a.x));
      if (kTwo && b_live) {
        const float pb = in_b ? exp2f(fmaf(s[idx], scale_log2, -(odd ? lse_b.y : lse_b.x))) : 0.0f;
        const float wb = 1.0f - wa;
        pmix = fmaf(wb, pb, pmix);
        ds = fmaf(pb, fmaf(wb, dp[idx], -(odd ? del_b.y : del_b.x)), ds);
      }
      s[idx] = pmix;
      dp[idx] = ds;
    }
    // keeps the next columns' loads from being hoisted above this point (all 8 columns' numbers
    // at once would need 96 registers at D 128: spills)
    asm volatile("" ::: "memory");
  }
}

// ---- a consumer warpgroup: 64 keys (the steps of the header) ----
template <int D, bool kTwo>
__device__ void consume(const FlashBackwardArgs& a, unsigned char* smem, const float* sRows, Pipeline& pipe,
                        int consumer, int kv_head, int b, int j0) {
  using L = Layout<D>;
  const int tid = threadIdx.x - 128 * (consumer + 1), warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3;
  const int T = int(a.T), jw = j0 + 64 * consumer;  // this consumer's first key
  const Steps steps(a, j0, kTwo);
  const float scale_log2 = a.scale * kLog2e;
  const int window_a = int(min(a.window_a, a.T)), window_b = int(min(a.window_b, a.T));
  // dQ = dS K in two halves: D 128: consumer cw takes dims 64 cw .. + 63 over all 128 keys; D 64:
  // all 64 dims over its own 64 keys (both add). Issued whether or not dq is wanted: a wgmma
  // under a thread-dependent branch is serialised by ptxas (C7520).
  constexpr int kDqSteps = D == 128 ? kBN / 16 : kBN / 32;
  const int dq_first_step = D == 128 ? 0 : kDqSteps * consumer, dq_panel = D == 128 ? consumer : 0;

  const uint32_t smem_base = sm90::smem_u32(smem);
  const uint32_t my_rows = consumer * 64 * 128;  // my 64 key rows of a 128-row tile (bytes)

  float dk[D / 2], dv[D / 2];  // keys 16 warp + g + 8e of mine, dims 8i + 2c + p: index 4i + 2e + p
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dk[i] = dv[i] = 0.0f;

  sm90::mbar_wait(&pipe.kv_full, 0);
  for (int i = 0; i < steps.count; ++i) {
    const int slot = i % kStages;
    const int h = steps.head(a, kv_head, i), t0 = steps.t0(i);
    // The tiles' addresses, recomputed each step from an opaque copy of the base: otherwise the
    // compiler hoists the loop-invariant wgmma descriptors of K, V, sP, sDS out of the loop and
    // keeps them in ~60 registers (spills at D 128).
    uint32_t base;
    asm volatile("mov.b32 %0, %1;\n" : "=r"(base) : "r"(smem_base));
    const uint32_t k_tile = base + L::kK, v_tile = base + L::kV, p_tile = base + L::kP, ds_tile = base + L::kDS;
    const uint32_t q_tile = base + L::kQ + slot * L::kQBytes, do_tile = base + L::kDO + slot * L::kQBytes;
    const float* rows = sRows + slot * kRowFloats;
    sm90::mbar_wait(&pipe.step_full[slot], (i / kStages) & 1);

    // ---- S^T = K_mine Q^T, dP^T = V_mine dO^T: D / 16 k-steps, K-major operands
    float s[32], dp[32];  // S^T then P^T; dP^T then dS^T (64 keys x 64 queries)
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t at = (kk / 4) * L::kKVPanel + my_rows + (kk % 4) * 32;
      const uint64_t bq = sm90::desc_sw128(q_tile + (kk / 4) * L::kQPanel + (kk % 4) * 32, 16);
      if (kk == 0) sm90::wgmma_m64n64k16_ss<false, 0, 0>(s, sm90::desc_sw128(k_tile + at, 16), bq);
      else sm90::wgmma_m64n64k16_ss<true, 0, 0>(s, sm90::desc_sw128(k_tile + at, 16), bq);
    }
    sm90::wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t at = (kk / 4) * L::kKVPanel + my_rows + (kk % 4) * 32;
      const uint64_t bo = sm90::desc_sw128(do_tile + (kk / 4) * L::kQPanel + (kk % 4) * 32, 16);
      if (kk == 0) sm90::wgmma_m64n64k16_ss<false, 0, 0>(dp, sm90::desc_sw128(v_tile + at, 16), bo);
      else sm90::wgmma_m64n64k16_ss<true, 0, 0>(dp, sm90::desc_sw128(v_tile + at, 16), bo);
    }
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::fence_operands(s);
    sm90::fence_operands(dp);

    // ---- elementwise: s <- P^T, dp <- dS^T (masks only where some element needs one)
    const int jw_last = min(T - 1, jw + 63);
    const bool b_live = kTwo && (window_b == 0 || jw_last > t0 - window_b);
    const bool inside_a = window_a == 0 || jw + window_a > t0 + kBM - 1;
    const bool inside_b = !b_live || window_b == 0 || jw + window_b > t0 + kBM - 1;
    const bool no_mask = t0 >= jw + 63 && t0 + kBM <= T && inside_a && inside_b;
    const TileRows r{t0, jw + 16 * warp + g, T, window_a, window_b, c};
    if (no_mask) softmax_gradient<false, kTwo>(s, dp, rows, r, b_live, scale_log2);
    else softmax_gradient<true, kTwo>(s, dp, rows, r, b_live, scale_log2);

    // ---- P^T -> sP, dS^T -> sDS (rows 64 consumer + 16 warp + g + 8e; chunk i ^ (row % 8))
    sm90::named_barrier_sync(kDsFreeBarrier, 256);  // the last step's products are done with sP, sDS
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int row = 64 * consumer + 16 * warp + g + 8 * e;
#pragma unroll
      for (int i8 = 0; i8 < kBM / 8; ++i8) {
        const int at = row * 128 + ((i8 ^ (row & 7)) << 4) + 4 * c;
        *reinterpret_cast<uint32_t*>(smem + L::kP + at) = mma::pack_bf16x2(s[4 * i8 + 2 * e], s[4 * i8 + 2 * e + 1]);
        *reinterpret_cast<uint32_t*>(smem + L::kDS + at) = mma::pack_bf16x2(dp[4 * i8 + 2 * e], dp[4 * i8 + 2 * e + 1]);
      }
    }
    sm90::fence_proxy_async();                        // the stores become visible to wgmma ...
    sm90::named_barrier_sync(kDsReadyBarrier, 256);  // ... once every consumer thread has made them

    // ---- dV += P^T dO, dQ = dS K, dK += dS^T Q (k-steps of 16 queries, or 16 keys for dQ)
    float dq[32];
    sm90::fence_operands(dv);
    sm90::fence_operands(dk);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBM / 16; ++kk) {
      const uint64_t ap = sm90::desc_sw128(p_tile + my_rows + kk * 32, 16);
      const uint64_t bo = sm90::desc_sw128(do_tile + kk * 2048, L::kQPanel);
      if constexpr (D == 128) sm90::wgmma_m64n128k16_ss<true, 0, 1>(dv, ap, bo);
      else sm90::wgmma_m64n64k16_ss<true, 0, 1>(dv, ap, bo);
    }
    sm90::wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < kDqSteps; ++kk) {
      const int key_step = dq_first_step + kk;
      const uint64_t ad = sm90::desc_sw128(ds_tile + key_step * 2048, kBM * 128);
      const uint64_t bk = sm90::desc_sw128(k_tile + dq_panel * L::kKVPanel + key_step * 2048, L::kKVPanel);
      if (kk == 0) sm90::wgmma_m64n64k16_ss<false, 1, 1>(dq, ad, bk);
      else sm90::wgmma_m64n64k16_ss<true, 1, 1>(dq, ad, bk);
    }
    sm90::wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < kBM / 16; ++kk) {
      const uint64_t ad = sm90::desc_sw128(ds_tile + my_rows + kk * 32, 16);
      const uint64_t bq = sm90::desc_sw128(q_tile + kk * 2048, L::kQPanel);
      if constexpr (D == 128) sm90::wgmma_m64n128k16_ss<true, 0, 1>(dk, ad, bq);
      else sm90::wgmma_m64n64k16_ss<true, 0, 1>(dk, ad, bq);
    }
    sm90::wgmma_commit();

    // ---- dq buffer += scale dQ (queries t0 + 16 warp + g + 8e, dims 64 dq_panel + 8i + 2c + p),
    // while dK's products run
    sm90::wgmma_wait<1>();  // dV and dQ complete
    sm90::fence_operands(dq);
    if (a.dq_accum) {
      const int t_row = t0 + 16 * warp + g;
      float* dq_row = a.dq_accum + ((int64_t(b) * T + t_row) * a.Hq + h) * D + 64 * dq_panel;
#pragma unroll
      for (int i8 = 0; i8 < 8; ++i8)
        atomic_add_fragment(dq_row + 8 * i8, a.Hq * D, c, dq[4 * i8] * a.scale, dq[4 * i8 + 1] * a.scale,
                            dq[4 * i8 + 2] * a.scale, dq[4 * i8 + 3] * a.scale, t_row < T, t_row + 8 < T, false);
    }
    sm90::wgmma_wait<0>();
    sm90::fence_operands(dk);
    sm90::fence_operands(dv);
    // Every thread arrives itself: its own plain shared loads of the slot's numbers (the
    // elementwise step) are then ordered before the producer's refill of the slot by the
    // mbarrier's release / acquire. (One arrival per warp after __syncwarp is not enough for
    // compute-sanitizer racecheck: it reported a WAR on sRows, 2026-12-01.)
    sm90::mbar_arrive(&pipe.step_empty[slot]);  // Q, dO and the numbers of the slot are read
  }

  // ---- dk += scale dK, dv += dV: this CTA owns these rows (one rounding each)
  const int64_t kv_stride = a.Hkv * D;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int j = jw + 16 * warp + g + 8 * e;
    if (j >= T) continue;
    const int64_t at = (int64_t(b) * T + j) * kv_stride + kv_head * D + 2 * c;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      if (a.dk) add_pair(a.dk + at + 8 * i, dk[4 * i + 2 * e] * a.scale, dk[4 * i + 2 * e + 1] * a.scale);
      if (a.dv) add_pair(a.dv + at + 8 * i, dv[4 * i + 2 * e], dv[4 * i + 2 * e + 1]);
    }
  }
}

#endif  // SWIATTN_SM90A

template <int D, bool kTwo>
__global__ void __launch_bounds__(kCtaThreads, 1) hopper_backward_kernel(const __grid_constant__ HopperBackwardParams hp) {
#ifdef SWIATTN_SM90A
  using L = Layout<D>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (sm90::smem_u32(smem_raw) & 1023)) & 1023);  // 128-byte swizzle atoms
  float* sRows = reinterpret_cast<float*>(smem + L::kRows);
  __shared__ Pipeline pipe;
  const int64_t kv_head = blockIdx.x % hp.a.Hkv, b = blockIdx.x / hp.a.Hkv, j0 = int64_t(blockIdx.y) * kBN;
  if (threadIdx.x == 0) {
    sm90::mbar_init(&pipe.kv_full, 1);
    for (int st = 0; st < kStages; ++st) {
      sm90::mbar_init(&pipe.step_full[st], 1);
      sm90::mbar_init(&pipe.step_empty[st], kConsumerThreads);
    }
    sm90::fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x < 128) {  // the producer warpgroup
    sm90::registers_release<kProducerRegisters>();
    if (threadIdx.x == 0) produce<D, kTwo>(hp, smem, sRows, pipe, int(kv_head), int(b), int(j0));
    return;
  }
  sm90::registers_claim<kConsumerRegisters>();
  consume<D, kTwo>(hp.a, smem, sRows, pipe, int(threadIdx.x) / 128 - 1, int(kv_head), int(b), int(j0));
#endif
}

template <int D, bool kTwo>
void launch(const HopperBackwardParams& hp, int64_t B) {
  using L = Layout<D>;
  static_assert(L::kKVPanel * (D / 64) == L::kKVBytes && L::kQPanel * (D / 64) == L::kQBytes && L::kQ % 1024 == 0 &&
                    L::kDO % 1024 == 0 && L::kP % 1024 == 0 && L::kDS % 1024 == 0 && L::kQBytes % 1024 == 0 &&
                    L::kRows % 16 == 0,
                "tiles are whole 128-byte-row panels on 1024-byte boundaries (the swizzle atoms)");
  constexpr int smem = L::kBytes + 1024;  // + room to align the start to 1024 bytes
  auto kernel = hopper_backward_kernel<D, kTwo>;
  static const bool configured = [&] {
    SWIATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)configured;
  const dim3 grid(unsigned(B * hp.a.Hkv), unsigned((hp.a.T + kBN - 1) / kBN));  // key tile 0 (longest) first
  kernel<<<grid, kCtaThreads, smem>>>(hp);
  SWIATTN_CUDA_CHECK_LAUNCH("hopper_backward");
}

}  // namespace

void hopper_backward(const FlashBackwardArgs& args, int64_t B, int D, bool two) {
  if (!hopper_forward_available())
    throw Error("attention backward: the Hopper kernel cannot run here (" + [] {
      std::string why;
      hopper_forward_available(&why);
      return why;
    }() + ")");
  if (args.T >= (int64_t(1) << 30) || B * args.Hq >= (int64_t(1) << 31))
    throw Error("attention backward: the Hopper kernel takes T < 2^30 and B Hq < 2^31");
  HopperBackwardParams hp;
  const int Bi = int(B), Ti = int(args.T), Hq = int(args.Hq), Hkv = int(args.Hkv);
  hp.q = hopper_tensor_map(args.q, Bi, Ti, Hq, D, kBM, "q");
  hp.dout = hopper_tensor_map(args.dout, Bi, Ti, Hq, D, kBM, "dout");
  hp.k = hopper_tensor_map(args.k, Bi, Ti, Hkv, D, kBN, "k");
  hp.v = hopper_tensor_map(args.v, Bi, Ti, Hkv, D, kBN, "v");
  hp.a = args;
  // The per-query numbers, packed per (b, h, query tile) for one bulk copy per step.
  hp.query_tiles = (Ti + kBM - 1) / kBM;
  const Tensor rows = Tensor::empty({B * Hq * hp.query_tiles * kRowFloats}, DType::F32, Device::CUDA);
  hp.rows = ptr<float>(rows);
  pack_rows_kernel<<<dim3(grid_for(int64_t(Hq) * hp.query_tiles * kBM), unsigned(B)), kThreads>>>(
      args, hp.query_tiles, const_cast<float*>(hp.rows));
  SWIATTN_CUDA_CHECK_LAUNCH("hopper_backward_pack_rows");
  if (D == 64) two ? launch<64, true>(hp, B) : launch<64, false>(hp, B);
  else two ? launch<128, true>(hp, B) : launch<128, false>(hp, B);
}

}  // namespace swiattn::cuda
