// kernels/cuda/decode_attention.cu: one decode step of routed attention for a batch of
// sequences (decode_attention.h states the function and the layouts), and the cache append.
//
// The work. Each (sequence, kv head) has a key range [lo, hi] (its route picks FA or the window,
// decode_range below). A range is cut into TILES of KEYS keys: 4 KB of K and 4 KB of V
// (bf16 D 128: 16 keys). All tiles of the batch, in the order (sequence, kv head, tile), form
// one list of `total` tiles; with `grid` CTAs, CTA c owns the contiguous chunk
//   [c * total / grid, (c + 1) * total / grid)
// ("stream-K"): every CTA streams the same bytes, whatever the routes. A chunk may start or end
// inside a range, and span several ranges; the part of one range inside one chunk is a PIECE.
//
// The schedule of one CTA (4 warps, every thread both copies and computes):
//
//   prologue   warp 0 scans the per-sequence tile counts (from the device lengths and routes)
//              into a prefix in shared memory; tiles 0 .. kStages-2 of the chunk are issued
//   loop       for each tile t of the chunk:
//                issue tile t + kStages - 1   cp.async global -> stage (t + kStages - 1) % kStages
//                                             (K and V rows, and the G queries when that tile
//                                             starts a piece)
//                wait until tile t landed     cp.async.wait_group kStages - 1, barrier
//                compute tile t               online softmax of the G queries over its keys
//                piece ends here?             merge the warps, write the result (below)
//                barrier                      stage t % kStages may be overwritten next
//
// So kStages - 1 tiles (24 KB) are in flight per CTA while one is computed, across piece
// boundaries too: a short window range does not drain the pipeline.
//
// Results. A piece that is its whole range writes out and lse directly. Otherwise it writes a
// partial (o, lse) per query head into slot (range + c) of a scratch buffer (unique: along the
// list, range and CTA indices only grow), then bumps the range's counter; the CTA that brings
// the counter to the number of pieces merges every piece by its log-sum-exp, writes out and lse
// and resets the counter to 0 for the next launch. No second kernel, nothing read by the host.
//
// The arithmetic of a tile (legend: N elements per 16-byte chunk, LPK = D / N lanes per key
// row, KPW = 32 / LPK keys per warp at a time, SLOTS = KPW * warps keys per CTA at a time):
//   lane = (slot in warp) * LPK + sub: `sub` owns the head-dim entries [sub * N, sub * N + N)
//   of every row it reads; a key's scores are sums over its LPK lanes (shuffles). Each key slot
//   keeps an online softmax per query head (m, l, acc); at a piece's end the slots of a warp
//   merge by shuffles, the warps through shared memory. Scores are kept in log2 units (q is
//   pre-scaled by log2(e) / sqrt(D)) so every exponential is one exp2f. (The same arithmetic as
//   the register-load kernel this replaced; only the data movement and the schedule changed.)
#include "kernels/cuda/decode_attention.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <mutex>
#include <string>

#include "tensor/cuda/common.cuh"
#include "kernels/cpu/window.h"
#include "kernels/cuda/mma.cuh"

namespace swiattn::cuda {

constexpr int kDecodeWarps = 4;                    // warps per CTA
constexpr int kDecodeThreads = kDecodeWarps * 32;
constexpr int kDecodeStages = 4;                   // tiles in shared memory (kStages - 1 in flight)
constexpr int kKeyTileBytes = 4096;                // bytes of K (and of V) per tile
constexpr int kDecodeUnroll = 2;                   // keys per key slot per tile
constexpr int kDecodeMaxSequences = 1024;          // S per launch (the tile prefix is in shared memory)

// Sizes of one instantiation (see the header comment).
template <class T, int D, int G> struct DecodeLayout {
  static constexpr int N = 16 / int(sizeof(T));
  static constexpr int LPK = D / N, KPW = 32 / LPK, SLOTS = KPW * kDecodeWarps;
  static constexpr int KEYS = kKeyTileBytes / (D * int(sizeof(T)));  // keys per tile
  static constexpr int TILE_CHUNKS = KEYS * LPK;                     // 16-byte chunks of K per tile
  static constexpr int Q_CHUNKS = G * LPK;                           // 16-byte chunks of G queries
  static constexpr int STAGE_BYTES = 2 * kKeyTileBytes + G * D * int(sizeof(T));  // K | V | q
  static constexpr int SCRATCH_FLOATS = kDecodeWarps * G * (D + 2);               // acc, m, l per warp
  static constexpr int SMEM_BYTES = kDecodeStages * STAGE_BYTES + SCRATCH_FLOATS * 4 + (kDecodeMaxSequences + 1) * 4;
  static_assert(LPK >= 1 && LPK <= 32 && 32 % LPK == 0, "a key row is 1 to 32 lanes");
  static_assert(KEYS == SLOTS * kDecodeUnroll, "one loop step per tile");
};

struct DecodeDims {
  int S, P, Hq, Hkv, window, max_length;
  float q_scale;  // log2(e) / sqrt(D): scores in log2 units
};

// The key range [lo, hi] of sequence `seq` (hi < lo when len <= 0): cpu::decode_first_key
// (kernels/cpu/decode_attention.h) on the device, by the shared rule of kernels/cpu/window.h.
struct DecodeRange {
  int lo, hi;
};
__device__ __forceinline__ DecodeRange decode_range(const DecodeDims& s, const int* lengths, const int* route,
                                                    int seq) {
  const int len = min(__ldg(lengths + seq), s.max_length);
  if (len <= 0) return {0, -1};
  const bool full = __ldg(route + seq) != 0;
  return {full ? 0 : window_first_key(len - 1, s.window), len - 1};
}

// Where the list walk is: tile `tile` of the range (seq, kvh), which has `tiles` tiles.
struct TileCursor {
  int seq, kvh, tile, tiles, lo, hi;
};

// ---- 16-byte rows of storage, unpacked to float ----
template <class T> struct Pack;
template <> struct Pack<float> {
  static constexpr int N = 4;
  __device__ static void unpack(uint4 u, float (&x)[N]) {
    x[0] = __uint_as_float(u.x), x[1] = __uint_as_float(u.y), x[2] = __uint_as_float(u.z), x[3] = __uint_as_float(u.w);
  }
};
template <> struct Pack<bf16> {
  static constexpr int N = 8;
  __device__ static void unpack(uint4 u, float (&x)[N]) {
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // a bfloat16 is the high half of a float32
      x[2 * i] = __uint_as_float(w[i] << 16);
      x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

// Merges the online-softmax state (m2, l2, acc2) into (m, l, acc).
template <int N>
__device__ __forceinline__ void merge_state(float& m, float& l, float (&acc)[N], float m2, float l2,
                                            const float (&acc2)[N]) {
  const float mx = fmaxf(m, m2);
  const float base = mx == -INFINITY ? 0.0f : mx;  // both empty: keep zeros, avoid inf - inf
  const float a = exp2f(m - base), b = exp2f(m2 - base);
  l = l * a + l2 * b;
#pragma unroll
  for (int e = 0; e < N; ++e) acc[e] = acc[e] * a + acc2[e] * b;
  m = mx;
}

// The CTA whose chunk holds tile t: the largest c < grid with c * total / grid <= t.
__device__ __forceinline__ int64_t tile_owner(int64_t t, int64_t total, int64_t grid) {
  int64_t c = t * grid / total;  // never above the owner
  while (c + 1 < grid && (c + 1) * total / grid <= t) ++c;
  return c;
}

template <class T, int D, int G>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_attention_kernel(DecodeDims s, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                            const int* __restrict__ lengths, const int* __restrict__ route, T* out, float* lse,
                            float* part_o, float* part_lse, int* counters) {
  using L = DecodeLayout<T, D, G>;
  constexpr int N = L::N, LPK = L::LPK, KPW = L::KPW, SLOTS = L::SLOTS, KEYS = L::KEYS;
  extern __shared__ __align__(16) unsigned char smem[];
  float* sh_acc = reinterpret_cast<float*>(smem + kDecodeStages * L::STAGE_BYTES);  // (warps, G, D)
  float* sh_m = sh_acc + kDecodeWarps * G * D;                                      // (warps, G)
  float* sh_l = sh_m + kDecodeWarps * G;                                            // (warps, G)
  int* prefix = reinterpret_cast<int*>(sh_l + kDecodeWarps * G);  // (S + 1): tiles per kv head before s
  __shared__ int sh_last;  // this CTA finished a range's last piece
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane % LPK, slot = warp * KPW + lane / LPK;
  const int64_t key_stride = int64_t(s.Hkv) * D;
  const auto range_tiles = [&](const DecodeRange& r) { return r.hi < r.lo ? 0 : (r.hi - r.lo + KEYS) / KEYS; };

  // ---- prologue: the tile prefix, warp 0 scanning 32 sequences at a time ----
  if (warp == 0) {
    int carry = 0;
    for (int i0 = 0; i0 < s.S; i0 += 32) {
      const int i = i0 + lane;
      int x = i < s.S ? range_tiles(decode_range(s, lengths, route, i)) : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {  // inclusive scan over the warp
        const int y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
      }
      if (i < s.S) prefix[i + 1] = carry + x;
      carry += __shfl_sync(0xffffffffu, x, 31);
    }
    if (lane == 0) prefix[0] = 0;
  }
  __syncthreads();
  // Sequences with no keys (len <= 0) have no tiles: out = 0, lse = -inf, written by CTA s % grid.
  for (int seq = blockIdx.x; seq < s.S; seq += gridDim.x)
    if (prefix[seq + 1] == prefix[seq])
      for (int i = threadIdx.x; i < s.Hq * D; i += kDecodeThreads) {
        out[int64_t(seq) * s.Hq * D + i] = from_float<T>(0.0f);
        if (lse && i % D == 0) lse[int64_t(seq) * s.Hq + i / D] = -INFINITY;
      }
  const int64_t total = int64_t(prefix[s.S]) * s.Hkv;
  const int64_t grid = total < int64_t(gridDim.x) ? total : int64_t(gridDim.x);  // each CTA below owns >= 1 tile
  if (blockIdx.x >= grid) return;
  const int64_t begin = blockIdx.x * total / grid, end = (blockIdx.x + 1) * total / grid;

  // The cursor of list tile t (binary search in the prefix; empty sequences are skipped by
  // taking the last sequence whose first tile is <= t).
  const auto cursor_at = [&](int64_t t) {
    int a = 0, b = s.S - 1;
    while (a < b) {
      const int mid = (a + b + 1) / 2;
      if (int64_t(prefix[mid]) * s.Hkv <= t) a = mid;
      else b = mid - 1;
    }
    const DecodeRange r = decode_range(s, lengths, route, a);
    const int tiles = prefix[a + 1] - prefix[a];
    const int64_t in_seq = t - int64_t(prefix[a]) * s.Hkv;
    return TileCursor{a, int(in_seq / tiles), int(in_seq % tiles), tiles, r.lo, r.hi};
  };
  const auto advance = [&](TileCursor& c) {
    if (++c.tile < c.tiles) return;
    c.tile = 0;
    if (++c.kvh < s.Hkv) return;
    c.kvh = 0;
    do ++c.seq;
    while (c.seq < s.S && prefix[c.seq + 1] == prefix[c.seq]);
    if (c.seq < s.S) {
      const DecodeRange r = decode_range(s, lengths, route, c.seq);  // (L1: the prologue read it)
      c.tiles = prefix[c.seq + 1] - prefix[c.seq], c.lo = r.lo, c.hi = r.hi;
    }
  };
  const auto stage_k = [&](int st) { return reinterpret_cast<T*>(smem + st * L::STAGE_BYTES); };
  const auto stage_v = [&](int st) { return reinterpret_cast<T*>(smem + st * L::STAGE_BYTES + kKeyTileBytes); };
  const auto stage_q = [&](int st) { return reinterpret_cast<T*>(smem + st * L::STAGE_BYTES + 2 * kKeyTileBytes); };

  // Issues the copies of the tile at cursor c into stage st; the queries too when it starts a piece.
  const auto issue = [&](const TileCursor& c, int st, bool starts_piece) {
    const int first_key = c.lo + c.tile * KEYS;
    const T* kp = k + (int64_t(c.seq) * s.P + first_key) * key_stride + int64_t(c.kvh) * D;
    const T* vp = v + (int64_t(c.seq) * s.P + first_key) * key_stride + int64_t(c.kvh) * D;
    for (int ch = threadIdx.x; ch < L::TILE_CHUNKS; ch += kDecodeThreads) {
      const int key = ch / LPK, part = ch % LPK;
      const bool valid = first_key + key <= c.hi;  // rows past the range: zeros, never read from memory
      const int64_t off = valid ? int64_t(key) * key_stride + part * N : 0;
      mma::cp_async_16(mma::smem_addr(stage_k(st) + key * D + part * N), kp + off, valid);
      mma::cp_async_16(mma::smem_addr(stage_v(st) + key * D + part * N), vp + off, valid);
    }
    if (starts_piece)
      for (int ch = threadIdx.x; ch < L::Q_CHUNKS; ch += kDecodeThreads)
        mma::cp_async_16(mma::smem_addr(stage_q(st) + ch * N),
                         q + (int64_t(c.seq) * s.Hq + c.kvh * G) * D + ch * N, true);
  };

  // This thread's state: the G queries' slice, pre-scaled; an online softmax per query head.
  float qf[G][N], m[G], l[G], acc[G][N];
  TileCursor producer = cursor_at(begin), consumer = producer;
  int64_t next_issue = begin;
  for (int st = 0; st < kDecodeStages - 1; ++st) {  // prologue: one commit group per stage
    if (next_issue < end) {
      issue(producer, st, next_issue == begin || producer.tile == 0);
      advance(producer);
      ++next_issue;
    }
    mma::cp_async_commit();
  }

  for (int64_t t = begin; t < end; ++t) {
    if (next_issue < end) {
      issue(producer, int((next_issue - begin) % kDecodeStages), producer.tile == 0);
      advance(producer);
      ++next_issue;
    }
    mma::cp_async_commit();
    mma::cp_async_wait<kDecodeStages - 1>();  // tile t's group (and every older one) landed
    __syncthreads();
    const int st = int((t - begin) % kDecodeStages);
    const bool starts_piece = t == begin || consumer.tile == 0;
    const bool ends_piece = t == end - 1 || consumer.tile == consumer.tiles - 1;
    if (starts_piece) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        Pack<T>::unpack(*reinterpret_cast<const uint4*>(stage_q(st) + g * D + sub * N), qf[g]);
#pragma unroll
        for (int e = 0; e < N; ++e) qf[g][e] *= s.q_scale;
        m[g] = -INFINITY, l[g] = 0.0f;
#pragma unroll
        for (int e = 0; e < N; ++e) acc[g][e] = 0.0f;
      }
    }

    // ---- the tile: U keys per slot (key slot + u * SLOTS of the tile) ----
    const int first_key = consumer.lo + consumer.tile * KEYS;
    uint4 kr[kDecodeUnroll], vr[kDecodeUnroll];
    bool has[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int key = slot + u * SLOTS;
      has[u] = first_key + key <= consumer.hi;
      kr[u] = *reinterpret_cast<const uint4*>(stage_k(st) + key * D + sub * N);
      vr[u] = *reinterpret_cast<const uint4*>(stage_v(st) + key * D + sub * N);
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float sc[kDecodeUnroll];  // scores of the U keys, log2 units
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        float kf[N];
        Pack<T>::unpack(kr[u], kf);
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < N; ++e) dot += qf[g][e] * kf[e];
#pragma unroll
        for (int o = LPK / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);  // over the row's lanes
        sc[u] = has[u] ? dot : -INFINITY;
        mx = fmaxf(mx, sc[u]);
      }
      const float base_m = mx == -INFINITY ? 0.0f : mx;
      const float c = exp2f(m[g] - base_m);  // rescale of the old state (0 when it was empty)
      l[g] *= c;
#pragma unroll
      for (int e = 0; e < N; ++e) acc[g][e] *= c;
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const float p = exp2f(sc[u] - base_m);  // 0 for a missing key
        float vf[N];
        Pack<T>::unpack(vr[u], vf);
        l[g] += p;
#pragma unroll
        for (int e = 0; e < N; ++e) acc[g][e] += p * vf[e];
      }
      m[g] = mx;
    }

    if (ends_piece) {  // the same for every thread of the CTA: the barriers below are uniform
      // Merge the KPW slots of the warp (lanes sub, sub + LPK, ... hold the same slice) ...
#pragma unroll
      for (int g = 0; g < G; ++g) {
#pragma unroll
        for (int o = LPK; o < 32; o <<= 1) {
          float acc2[N];
#pragma unroll
          for (int e = 0; e < N; ++e) acc2[e] = __shfl_xor_sync(0xffffffffu, acc[g][e], o);
          const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o), l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
          merge_state(m[g], l[g], acc[g], m2, l2, acc2);
        }
        if (lane < LPK) {
#pragma unroll
          for (int e = 0; e < N; ++e) sh_acc[(warp * G + g) * D + sub * N + e] = acc[g][e];
          if (lane == 0) sh_m[warp * G + g] = m[g], sh_l[warp * G + g] = l[g];
        }
      }
      __syncthreads();
      // ... then the warps: thread -> (g, d); the piece's o = acc / l and lse = m + log2 l.
      const int64_t range = int64_t(consumer.seq) * s.Hkv + consumer.kvh;
      const int64_t range_first = int64_t(prefix[consumer.seq]) * s.Hkv + int64_t(consumer.kvh) * consumer.tiles;
      const int64_t first_cta = tile_owner(range_first, total, grid);
      const int64_t last_cta = tile_owner(range_first + consumer.tiles - 1, total, grid);
      const bool whole = first_cta == last_cta;  // the range lies in this chunk alone
      const int64_t head0 = int64_t(consumer.seq) * s.Hq + consumer.kvh * G;  // row of query head g = head0 + g
      for (int idx = threadIdx.x; idx < G * D; idx += kDecodeThreads) {
        const int g = idx / D, d = idx % D;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, sh_m[w * G + g]);
        const float base_m = mx == -INFINITY ? 0.0f : mx;
        float lsum = 0.0f, asum = 0.0f;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) {
          const float c = exp2f(sh_m[w * G + g] - base_m);
          lsum += sh_l[w * G + g] * c;
          asum += sh_acc[(w * G + g) * D + d] * c;
        }
        const float o = lsum > 0.0f ? asum / lsum : 0.0f, piece_lse = lsum > 0.0f ? mx + log2f(lsum) : -INFINITY;
        if (whole) {
          out[(head0 + g) * D + d] = from_float<T>(o);
          if (lse && d == 0) lse[head0 + g] = piece_lse * 0.69314718055994531f;
        } else {
          const int64_t row = (range + blockIdx.x) * G + g;  // slot range + c: unique per piece
          part_o[row * D + d] = o;
          if (d == 0) part_lse[row] = piece_lse;
        }
      }
      if (!whole) {
        __threadfence();  // this thread's partial is visible device-wide before the count
        __syncthreads();
        if (threadIdx.x == 0) sh_last = atomicAdd(counters + range, 1) + 1 == int(last_cta - first_cta + 1);
        __syncthreads();
        if (sh_last) {  // every other piece is written: merge them all by their lse
          __threadfence();
          for (int idx = threadIdx.x; idx < G * D; idx += kDecodeThreads) {
            const int g = idx / D, d = idx % D;
            float mx = -INFINITY;
            for (int64_t c = first_cta; c <= last_cta; ++c) mx = fmaxf(mx, __ldcg(part_lse + (range + c) * G + g));
            const float base_m = mx == -INFINITY ? 0.0f : mx;
            float total_w = 0.0f, o = 0.0f;
            for (int64_t c = first_cta; c <= last_cta; ++c) {
              const int64_t row = (range + c) * G + g;
              const float w = exp2f(__ldcg(part_lse + row) - base_m);
              total_w += w;
              o += w * __ldcg(part_o + row * D + d);
            }
            out[(head0 + g) * D + d] = from_float<T>(total_w > 0.0f ? o / total_w : 0.0f);
            if (lse && d == 0) lse[head0 + g] = total_w > 0.0f ? (mx + log2f(total_w)) * 0.69314718055994531f : -INFINITY;
          }
          if (threadIdx.x == 0) counters[range] = 0;  // ready for the next launch
        }
      }
    }
    __syncthreads();  // stage st (and the merge scratch) may be overwritten from here on
    advance(consumer);
  }
  mma::cp_async_wait<0>();  // nothing in flight when the CTA exits (the trailing groups are empty)
}

// ---- the cache append ----

template <class T>
__global__ void kv_cache_append_kernel(int64_t S, int64_t P, int64_t row, const T* k, const T* v,
                                       const int* positions, T* k_cache, T* v_cache) {
  SWIATTN_GRID_STRIDE_LOOP(i, S * row) {
    const int64_t n = i / row, e = i % row;
    const int p = positions[n];
    if (p < 0 || p >= P) continue;  // the caller's contract; never write outside the cache
    k_cache[(n * P + p) * row + e] = k[i];
    v_cache[(n * P + p) * row + e] = v[i];
  }
}

// ---------------------------------------------------------------------------------------------

namespace {

void check_decode_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                         const Tensor& route, const Tensor& out, const Tensor& lse) {
  const auto fail = [](const std::string& why) { throw Error("decode_attention: " + why); };
  for (const Tensor* t : {&q, &k, &v, &lengths, &route, &out})
    if (!t->defined() || t->device() != Device::CUDA)
      fail("every tensor must be a defined CUDA tensor (got " + (t->defined() ? shape_str(t->shape()) + " on cpu" : std::string("an undefined one")) + ")");
  if (lse.defined() && (lse.device() != Device::CUDA || lse.dtype() != DType::F32))
    fail("lse must be a float32 CUDA tensor");
  if (q.ndim() != 3 || k.ndim() != 4 || v.shape() != k.shape())
    fail("q must be (S, Hq, D) and k, v (S, P, Hkv, D), got q " + shape_str(q.shape()) + ", k " +
         shape_str(k.shape()) + ", v " + shape_str(v.shape()));
  const int64_t S = q.dim(0), Hq = q.dim(1), D = q.dim(2), Hkv = k.dim(2);
  if (k.dim(0) != S || k.dim(3) != D)
    fail("q " + shape_str(q.shape()) + " and the cache " + shape_str(k.shape()) + " disagree on S or D");
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype())
    fail(std::string("q, k and v must share a dtype (") + dtype_name(q.dtype()) + ", " + dtype_name(k.dtype()) + ", " +
         dtype_name(v.dtype()) + ")");
  if (Hkv <= 0 || Hq % Hkv != 0)
    fail("Hq (" + std::to_string(Hq) + ") must be a multiple of Hkv (" + std::to_string(Hkv) + ")");
  if (lengths.dtype() != DType::I32 || route.dtype() != DType::I32 || lengths.shape() != Shape{S} ||
      route.shape() != Shape{S})
    fail("lengths and route must be int32 (S) = (" + std::to_string(S) + "), got " + shape_str(lengths.shape()) +
         " " + dtype_name(lengths.dtype()) + " and " + shape_str(route.shape()) + " " + dtype_name(route.dtype()));
  if (out.dtype() != q.dtype()) fail(std::string("out must have q's dtype, got ") + dtype_name(out.dtype()));
  if (out.shape() != q.shape()) fail("out must be " + shape_str(q.shape()) + ", got " + shape_str(out.shape()));
  if (lse.defined() && lse.shape() != Shape{S, Hq})
    fail("lse must be (S, Hq) = " + shape_str(Shape{S, Hq}) + ", got " + shape_str(lse.shape()));
  if (S > kDecodeMaxSequences)
    fail(std::to_string(S) + " sequences in one launch is not implemented (at most " +
         std::to_string(kDecodeMaxSequences) + ")");
  if (D != 64 && D != 128) fail("head dim " + std::to_string(D) + " is not implemented (64 or 128)");
  const int64_t G = Hq / Hkv;
  if (G != 1 && G != 2 && G != 4 && G != 8)
    fail("Hq / Hkv = " + std::to_string(G) + " is not implemented (1, 2, 4 or 8)");
  for (const Tensor* t : {&q, &k, &v})
    if (reinterpret_cast<uintptr_t>(t->raw()) % 16 != 0) fail("q, k and v must be 16-byte aligned (a view at an odd offset?)");
  if (S * k.dim(1) * Hkv * D >= (int64_t(1) << 40) || k.dim(1) >= (int64_t(1) << 30))
    fail("the cache is too large for this kernel");
}

// The per-range piece counters: int32, zero between launches (the last piece of a range resets
// its counter), kept for the life of the process and grown when a launch needs more. A launch
// that faults leaves them undefined, but a CUDA fault leaves the context unusable anyway.
int* piece_counters(int64_t n) {
  static std::mutex mutex;
  static int* counters = nullptr;
  static int64_t capacity = 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (n > capacity) {
    if (counters) SWIATTN_CUDA_CHECK(cudaFree(counters));  // waits for the launches using it
    const int64_t grown = std::max<int64_t>(n, 2 * capacity);
    SWIATTN_CUDA_CHECK(cudaMalloc(&counters, size_t(grown) * sizeof(int)));
    SWIATTN_CUDA_CHECK(cudaMemset(counters, 0, size_t(grown) * sizeof(int)));
    capacity = grown;
  }
  return counters;
}

template <class T, int D, int G> struct DecodeKernel {
  using L = DecodeLayout<T, D, G>;
  // The persistent grid: every CTA that fits on the device at once (shared memory decides).
  static int resident_ctas() {
    static int count = 0;
    if (count == 0) {
      auto kernel = decode_attention_kernel<T, D, G>;
      SWIATTN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::SMEM_BYTES));
      int device = 0, sms = 0, per_sm = 0;
      SWIATTN_CUDA_CHECK(cudaGetDevice(&device));
      SWIATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
      SWIATTN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kDecodeThreads, L::SMEM_BYTES));
      count = sms * (per_sm > 0 ? per_sm : 1);
    }
    return count;
  }
  static void launch(const DecodeDims& dims, int64_t ctas, int64_t tile_bound, const Tensor& q, const Tensor& k,
                     const Tensor& v, const Tensor& lengths, const Tensor& route, const Tensor& out, const Tensor& lse) {
    const int64_t resident = resident_ctas();  // also sets the shared-memory attribute
    const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(ctas > 0 ? ctas : resident, std::max<int64_t>(1, tile_bound)));
    // Partials: one slot per (range, CTA) piece; range + c < ranges + grid.
    const int64_t ranges = int64_t(dims.S) * dims.Hkv, slots = ranges + grid;
    const Tensor part_o = Tensor::empty({slots, G, D}, DType::F32, Device::CUDA);
    const Tensor part_lse = Tensor::empty({slots, G}, DType::F32, Device::CUDA);
    decode_attention_kernel<T, D, G><<<unsigned(grid), kDecodeThreads, L::SMEM_BYTES>>>(
        dims, ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<int>(lengths), ptr<int>(route), ptr<T>(out), ptr<float>(lse),
        ptr<float>(part_o), ptr<float>(part_lse), piece_counters(ranges));
    SWIATTN_CUDA_CHECK_LAUNCH("decode_attention_kernel");
  }
};

template <class T, int D>
void launch_group(int64_t G, const DecodeDims& dims, int64_t ctas, int64_t tile_bound, const Tensor& q,
                  const Tensor& k, const Tensor& v, const Tensor& lengths, const Tensor& route, const Tensor& out,
                  const Tensor& lse) {
  switch (G) {
    case 1: return DecodeKernel<T, D, 1>::launch(dims, ctas, tile_bound, q, k, v, lengths, route, out, lse);
    case 2: return DecodeKernel<T, D, 2>::launch(dims, ctas, tile_bound, q, k, v, lengths, route, out, lse);
    case 4: return DecodeKernel<T, D, 4>::launch(dims, ctas, tile_bound, q, k, v, lengths, route, out, lse);
    default: return DecodeKernel<T, D, 8>::launch(dims, ctas, tile_bound, q, k, v, lengths, route, out, lse);
  }
}

}  // namespace

void decode_attention_forward(int64_t window, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const Tensor& lengths, const Tensor& route, const Tensor& out, const Tensor& lse,
                              int64_t ctas, int64_t max_length) {
  check_decode_inputs(q, k_cache, v_cache, lengths, route, out, lse);
  const int64_t S = q.dim(0), Hq = q.dim(1), D = q.dim(2), P = k_cache.dim(1), Hkv = k_cache.dim(2);
  if (S == 0 || Hq == 0) return;
  if (ctas < 0 || max_length < 0 || window < 0)
    throw Error("decode_attention: window, ctas and max_length must be >= 0");
  const int64_t bound = std::max<int64_t>(1, max_length == 0 ? P : std::min(max_length, P));
  const int64_t key_tile = kKeyTileBytes / (D * int64_t(dtype_size(q.dtype())));
  const int64_t tile_bound = S * Hkv * ((bound + key_tile - 1) / key_tile);  // tiles if every range were full
  if (tile_bound >= (int64_t(1) << 31)) throw Error("decode_attention: too many key tiles for one launch");
  const DecodeDims dims{int(S), int(P), int(Hq), int(Hkv), int(std::min<int64_t>(window, 1 << 30)), int(bound),
                        static_cast<float>(1.4426950408889634 / std::sqrt(double(D)))};
  const int64_t G = Hq / Hkv;
  dispatch(q.dtype(), "decode_attention", [&](auto zq) {
    using T = decltype(zq);
    if (D == 64) launch_group<T, 64>(G, dims, ctas, tile_bound, q, k_cache, v_cache, lengths, route, out, lse);
    else launch_group<T, 128>(G, dims, ctas, tile_bound, q, k_cache, v_cache, lengths, route, out, lse);
  });
}

void kv_cache_append(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
                     const Tensor& v_cache) {
  for (const Tensor* t : {&k, &v, &positions, &k_cache, &v_cache})
    if (!t->defined() || t->device() != Device::CUDA) throw Error("kv_cache_append: every tensor must be on the device");
  if (k.ndim() != 3 || v.shape() != k.shape() || k_cache.ndim() != 4 || v_cache.shape() != k_cache.shape() ||
      k_cache.dim(0) != k.dim(0) || k_cache.dim(2) != k.dim(1) || k_cache.dim(3) != k.dim(2) ||
      positions.dtype() != DType::I32 || positions.shape() != Shape{k.dim(0)})
    throw Error("kv_cache_append: k, v (S, Hkv, D), caches (S, P, Hkv, D) and positions int32 (S) expected, got k " +
                shape_str(k.shape()) + ", cache " + shape_str(k_cache.shape()) + ", positions " +
                shape_str(positions.shape()));
  if (k.dtype() != k_cache.dtype() || v.dtype() != k.dtype() || v_cache.dtype() != k.dtype())
    throw Error("kv_cache_append: k, v and the caches must share a dtype");
  const int64_t S = k.dim(0), row = k.dim(1) * k.dim(2);
  if (S * row == 0) return;
  dispatch(k.dtype(), "kv_cache_append", [&](auto zero) {
    using T = decltype(zero);
    kv_cache_append_kernel<<<grid_for(S * row), kThreads>>>(S, k_cache.dim(1), row, ptr<T>(k), ptr<T>(v),
                                                             ptr<int>(positions), ptr<T>(k_cache), ptr<T>(v_cache));
    SWIATTN_CUDA_CHECK_LAUNCH("kv_cache_append");
  });
}

}  // namespace swiattn::cuda
