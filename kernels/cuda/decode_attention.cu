// kernels/cuda/decode_attention.cu: one decode step of routed attention for a batch of
// sequences (decode_attention.h states the function and the layouts).
//
// Two kernels:
//   decode_split_kernel    work item (sequence, split, kv head): the keys of one split of the
//                          sequence's range, for all G = Hq / Hkv query heads of the kv head;
//                          leaves per query head a partial output o (D) and its log-sum-exp.
//   decode_combine_kernel  warp per (sequence, query head): merges the splits by their lse.
//
// The split kernel's threads (legend: N elements per 16-byte load, LPK = D / N lanes per key
// row, KPW = 32 / LPK keys per warp at a time, SLOTS = KPW * warps keys per CTA at a time):
//   lane = (slot in warp) * LPK + sub: `sub` owns the head-dim entries [sub * N, sub * N + N)
//   of every row it touches; a key's scores are sums over its LPK lanes (shuffles).
// Each key slot keeps an online softmax per query head (m, l, acc); at the end the slots of a
// warp merge by shuffles, the warps through shared memory. Scores are kept in log2 units (q is
// pre-scaled by log2(e) / sqrt(D)) so every exponential is one exp2f.
//
// The routes and lengths are read on the device: each CTA first scans the per-sequence split
// counts into a prefix in shared memory, then walks the work items of the whole batch (a
// persistent grid, item += gridDim.x), finding an item's sequence by binary search in that
// prefix. So sequences routed to the window get few items, and the launch needs no host-side
// routes.
#include "kernels/cuda/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cuda/common.cuh"

namespace swiattn::cuda {

constexpr int kDecodeWarps = 4;           // warps per CTA of the split kernel
// Default split size (keys): longer items cost less per key (each item pays a prologue and an
// epilogue with no loads in flight), but too few items leave multiprocessors idle when most
// sequences are short windows. Measured on an H100 (/work/notes/B2-perf.md, 16 sequences,
// w 1024): 256 keys best for 8K caches at r 0.13, 1024 for 32K caches. So: max_length / 32,
// clamped to [256, 1024], a multiple of 64.
inline int64_t default_keys_per_split(int64_t max_length) {
  const int64_t k = std::min<int64_t>(1024, std::max<int64_t>(256, max_length / 32));
  return k / 64 * 64;
}
constexpr int kDecodeUnroll = 2;          // keys per key slot per loop step (loads in flight)
constexpr int kDecodeMaxSequences = 1024; // S per launch (the item prefix lives in shared memory)

struct DecodeDims {
  int S, P, Hq, Hkv, window, keys_per_split, max_splits, max_length;
  float q_scale;  // log2(e) / sqrt(D): scores in log2 units
};

// The key range [lo, hi] of sequence `seq` and its number of splits (0 when len <= 0).
struct DecodeRange {
  int lo, hi, splits;
};
__device__ __forceinline__ DecodeRange decode_range(const DecodeDims& s, const int* lengths, const int* route,
                                                    int seq) {
  const int len = min(lengths[seq], s.max_length);
  if (len <= 0) return {0, -1, 0};
  const bool full = route[seq] != 0 || s.window <= 0;
  const int lo = full ? 0 : max(0, len - s.window);
  return {lo, len - 1, (len - lo + s.keys_per_split - 1) / s.keys_per_split};
}

// ---- 16-byte loads of a storage row, unpacked to float ----
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
template <class T> __device__ __forceinline__ uint4 load16(const T* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}

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

template <class T, int D, int G>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    decode_split_kernel(DecodeDims s, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        const int* __restrict__ lengths, const int* __restrict__ route, float* part_o,
                        float* part_lse) {
  constexpr int N = Pack<T>::N, LPK = D / N, KPW = 32 / LPK, SLOTS = KPW * kDecodeWarps;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane % LPK, slot = warp * KPW + lane / LPK;
  __shared__ float sh_m[kDecodeWarps][G], sh_l[kDecodeWarps][G];
  __shared__ float sh_acc[kDecodeWarps][G][D];
  const int64_t key_stride = int64_t(s.Hkv) * D;

  // first_item[i] = items of the sequences before i (items of i: splits(i) * Hkv), computed
  // once per CTA from the device lengths and routes: warp 0 scans 32 sequences at a time.
  __shared__ int64_t first_item[kDecodeMaxSequences + 1];
  if (warp == 0) {
    int64_t carry = 0;
    for (int i0 = 0; i0 < s.S; i0 += 32) {
      const int i = i0 + lane;
      int64_t x = i < s.S ? int64_t(decode_range(s, lengths, route, i).splits) * s.Hkv : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {  // inclusive scan over the warp
        const int64_t y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
      }
      if (i < s.S) first_item[i + 1] = carry + x;
      carry += __shfl_sync(0xffffffffu, x, 31);
    }
    if (lane == 0) first_item[0] = 0;
  }
  __syncthreads();
  const int64_t total_items = first_item[s.S];

  for (int64_t item = blockIdx.x; item < total_items; item += gridDim.x) {
    // Which sequence: the last i with first_item[i] <= item (binary search; empty sequences
    // have first_item[i] == first_item[i + 1] and are skipped by taking the last).
    int lo_i = 0, hi_i = s.S - 1;
    while (lo_i < hi_i) {
      const int mid = (lo_i + hi_i + 1) / 2;
      if (first_item[mid] <= item) lo_i = mid;
      else hi_i = mid - 1;
    }
    const int seq = lo_i;
    const DecodeRange r = decode_range(s, lengths, route, seq);
    const int64_t base = first_item[seq];
    // Split-major, kv head minor: the Hkv items of one split run side by side, so together they
    // read whole (Hkv, D) cache rows, contiguous memory, at about the same time.
    const int split = int((item - base) / s.Hkv), kvh = int((item - base) % s.Hkv);
    const int a = r.lo + split * s.keys_per_split, b = min(a + s.keys_per_split - 1, r.hi);  // keys [a, b]

    // This thread's slice of the G queries, pre-scaled.
    float qf[G][N];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      Pack<T>::unpack(load16(q + (int64_t(seq) * s.Hq + kvh * G + g) * D + sub * N), qf[g]);
#pragma unroll
      for (int e = 0; e < N; ++e) qf[g][e] *= s.q_scale;
    }
    float m[G], l[G], acc[G][N];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      m[g] = -INFINITY, l[g] = 0.0f;
#pragma unroll
      for (int e = 0; e < N; ++e) acc[g][e] = 0.0f;
    }

    const T* kp = k + int64_t(seq) * s.P * key_stride + int64_t(kvh) * D + sub * N;  // key 0, this slice
    const T* vp = v + int64_t(seq) * s.P * key_stride + int64_t(kvh) * D + sub * N;
    // U keys per slot per step (j = jb + slot + u SLOTS): all 2U loads are issued before the
    // first use, kept packed (4 registers each) and unpacked where they are used. The loop
    // bound is the same for the whole CTA, so the shuffles see every lane.
    for (int jb = a; jb <= b; jb += kDecodeUnroll * SLOTS) {
      uint4 kr[kDecodeUnroll], vr[kDecodeUnroll];
      bool has[kDecodeUnroll];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int j = jb + slot + u * SLOTS;
        has[u] = j <= b;
        kr[u] = has[u] ? load16(kp + j * key_stride) : make_uint4(0, 0, 0, 0);
        vr[u] = has[u] ? load16(vp + j * key_stride) : make_uint4(0, 0, 0, 0);
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
    }

    // Merge the KPW slots of the warp (lanes sub, sub + LPK, ... hold the same slice).
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
        for (int e = 0; e < N; ++e) sh_acc[warp][g][sub * N + e] = acc[g][e];
        if (lane == 0) sh_m[warp][g] = m[g], sh_l[warp][g] = l[g];
      }
    }
    __syncthreads();
    // Merge the warps: thread -> (g, d); the partial is o = acc / l and lse = m + log2 l.
    for (int idx = threadIdx.x; idx < G * D; idx += blockDim.x) {
      const int g = idx / D, d = idx % D;
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, sh_m[w][g]);
      const float base_m = mx == -INFINITY ? 0.0f : mx;
      float lsum = 0.0f, asum = 0.0f;
#pragma unroll
      for (int w = 0; w < kDecodeWarps; ++w) {
        const float c = exp2f(sh_m[w][g] - base_m);
        lsum += sh_l[w][g] * c;
        asum += sh_acc[w][g][d] * c;
      }
      const int64_t row = (int64_t(seq) * s.Hq + kvh * G + g) * s.max_splits + split;  // (S, Hq, splits)
      part_o[row * D + d] = lsum > 0.0f ? asum / lsum : 0.0f;
      if (d == 0) part_lse[row] = lsum > 0.0f ? mx + log2f(lsum) : -INFINITY;
    }
    __syncthreads();  // the shared slots are reused by the next item
  }
}

// Warp per (sequence, query head): out = sum_i 2^(lse_i - M) o_i / sum_i 2^(lse_i - M).
template <int D, class TO>
__global__ void decode_combine_kernel(DecodeDims s, const int* __restrict__ lengths, const int* __restrict__ route,
                                      const float* __restrict__ part_o, const float* __restrict__ part_lse, TO* out,
                                      float* lse) {
  constexpr int PER_LANE = D / 32;
  const int64_t row = int64_t(blockIdx.x) * kDecodeWarps + (threadIdx.x >> 5);  // seq * Hq + h
  if (row >= int64_t(s.S) * s.Hq) return;
  const int lane = threadIdx.x & 31;
  const int n = decode_range(s, lengths, route, int(row / s.Hq)).splits;
  const float* pl = part_lse + row * s.max_splits;
  const float* po = part_o + row * s.max_splits * D;
  float mx = -INFINITY;
  for (int i = lane; i < n; i += 32) mx = fmaxf(mx, pl[i]);
  mx = warp_max(mx);
  const float base_m = mx == -INFINITY ? 0.0f : mx;
  float total = 0.0f, o[PER_LANE] = {};
  for (int i = 0; i < n; ++i) {
    const float w = exp2f(pl[i] - base_m);
    total += w;
#pragma unroll
    for (int e = 0; e < PER_LANE; ++e) o[e] += w * po[int64_t(i) * D + lane + 32 * e];
  }
#pragma unroll
  for (int e = 0; e < PER_LANE; ++e) out[row * D + lane + 32 * e] = from_float<TO>(total > 0.0f ? o[e] / total : 0.0f);
  if (lse && lane == 0) lse[row] = total > 0.0f ? (mx + log2f(total)) * 0.69314718055994531f : -INFINITY;
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
  if (out.dtype() != DType::F32 && out.dtype() != q.dtype())
    fail(std::string("out must be float32 or q's dtype, got ") + dtype_name(out.dtype()));
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
  if (S * k.dim(1) * Hkv * D >= (int64_t(1) << 40) || S >= (int64_t(1) << 31))
    fail("the cache is too large for this kernel");
}

// CTAs of the persistent split kernel: enough to fill every multiprocessor.
template <class T, int D, int G> int resident_ctas() {
  static int count = 0;  // per kernel instance
  auto kernel = decode_split_kernel<T, D, G>;
  if (count == 0) {
    int device = 0, sms = 0, per_sm = 0;
    SWIATTN_CUDA_CHECK(cudaGetDevice(&device));
    SWIATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    SWIATTN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kDecodeWarps * 32, 0));
    count = sms * (per_sm > 0 ? per_sm : 1);
  }
  return count;
}

template <class T, int D, int G>
void launch_split(const DecodeDims& dims, int64_t item_bound, const Tensor& q, const Tensor& k, const Tensor& v,
                  const Tensor& lengths, const Tensor& route, float* part_o, float* part_lse) {
  const int64_t grid = std::min<int64_t>(item_bound, resident_ctas<T, D, G>());
  decode_split_kernel<T, D, G><<<unsigned(grid), kDecodeWarps * 32>>>(dims, ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<int>(lengths),
                                                ptr<int>(route), part_o, part_lse);
  SWIATTN_CUDA_CHECK_LAUNCH("decode_split_kernel");
}

template <class T, int D>
void launch_split_group(int64_t G, const DecodeDims& dims, int64_t item_bound, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& lengths, const Tensor& route, float* po, float* pl) {
  switch (G) {
    case 1: return launch_split<T, D, 1>(dims, item_bound, q, k, v, lengths, route, po, pl);
    case 2: return launch_split<T, D, 2>(dims, item_bound, q, k, v, lengths, route, po, pl);
    case 4: return launch_split<T, D, 4>(dims, item_bound, q, k, v, lengths, route, po, pl);
    default: return launch_split<T, D, 8>(dims, item_bound, q, k, v, lengths, route, po, pl);
  }
}

}  // namespace

void decode_attention_forward(int64_t window, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const Tensor& lengths, const Tensor& route, const Tensor& out, const Tensor& lse,
                              int64_t keys_per_split, int64_t max_length) {
  check_decode_inputs(q, k_cache, v_cache, lengths, route, out, lse);
  const int64_t S = q.dim(0), Hq = q.dim(1), D = q.dim(2), P = k_cache.dim(1), Hkv = k_cache.dim(2);
  if (S == 0 || Hq == 0) return;
  if (keys_per_split < 0 || max_length < 0 || window < 0)
    throw Error("decode_attention: window, keys_per_split and max_length must be >= 0");
  const int64_t bound = std::max<int64_t>(1, max_length == 0 ? P : std::min(max_length, P));
  if (keys_per_split == 0) keys_per_split = default_keys_per_split(bound);
  const int64_t max_splits = (bound + keys_per_split - 1) / keys_per_split;
  DecodeDims dims{int(S), int(P), int(Hq), int(Hkv), int(std::min<int64_t>(window, 1 << 30)),
                  int(std::min(keys_per_split, bound)), int(max_splits), int(bound),
                  static_cast<float>(1.4426950408889634 / std::sqrt(double(D)))};
  dims.max_splits = (dims.max_length + dims.keys_per_split - 1) / dims.keys_per_split;
  // Partial results (S, Hq, max_splits, D) and (S, Hq, max_splits), float32.
  const Tensor part_o = Tensor::empty({S, Hq, dims.max_splits, D}, DType::F32, Device::CUDA);
  const Tensor part_lse = Tensor::empty({S, Hq, dims.max_splits}, DType::F32, Device::CUDA);
  const int64_t item_bound = S * Hkv * dims.max_splits, G = Hq / Hkv;
  dispatch(q.dtype(), "decode_attention", [&](auto zq) {
    using T = decltype(zq);
    if (D == 64)
      launch_split_group<T, 64>(G, dims, item_bound, q, k_cache, v_cache, lengths, route, ptr<float>(part_o),
                                ptr<float>(part_lse));
    else
      launch_split_group<T, 128>(G, dims, item_bound, q, k_cache, v_cache, lengths, route, ptr<float>(part_o),
                                 ptr<float>(part_lse));
    const auto combine = [&](auto zo) {
      using TO = decltype(zo);
      const unsigned blocks = unsigned((S * Hq + kDecodeWarps - 1) / kDecodeWarps);
      if (D == 64)
        decode_combine_kernel<64, TO><<<blocks, kDecodeWarps * 32>>>(dims, ptr<int>(lengths), ptr<int>(route),
                                                                     ptr<float>(part_o), ptr<float>(part_lse),
                                                                     ptr<TO>(out), ptr<float>(lse));
      else
        decode_combine_kernel<128, TO><<<blocks, kDecodeWarps * 32>>>(dims, ptr<int>(lengths), ptr<int>(route),
                                                                      ptr<float>(part_o), ptr<float>(part_lse),
                                                                      ptr<TO>(out), ptr<float>(lse));
      SWIATTN_CUDA_CHECK_LAUNCH("decode_combine_kernel");
    };
    if (out.dtype() == DType::F32) return combine(float{});
    if (out.dtype() == q.dtype()) return combine(T{});
    throw Error(std::string("decode_attention: output dtype ") + dtype_name(out.dtype()) + " for " +
                dtype_name(q.dtype()) + " inputs");
  });
}

}  // namespace swiattn::cuda
