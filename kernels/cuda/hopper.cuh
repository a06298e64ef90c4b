// kernels/cuda/hopper.cuh: the Hopper (sm_90a) instructions of kernels/cuda/hopper_attention.cu,
// as small inline-PTX functions (nvcc only). Only code compiled for sm_90a may call them (wgmma
// and setmaxnreg exist only there): callers guard with SWIATTN_SM90A (defined below).
//
// mbarrier: a 64-bit object in shared memory with an arrival count and a transaction (byte)
//   count. A phase completes when `count` arrivals have come AND the expected bytes have landed;
//   then the next phase starts. A waiter names the parity (0 / 1) of the phase it waits for:
//   wait(bar, parity) returns once that phase is complete. A fresh barrier is in phase 0, and
//   waiting for parity 1 returns at once (the "previous" phase counts as complete): that is how
//   a producer passes its first wait on an empty slot.
// TMA (cp.async.bulk.tensor): one thread asks the copy engine for a whole box of a tensor,
//   described by a CUtensorMap built on the host; the bytes land in shared memory (swizzled as
//   the map says), out-of-bounds elements are written as zeros, and the box's byte count is
//   credited to an mbarrier (whose phase the issuing thread armed with expect_tx).
// 128-byte swizzle: rows of 128 bytes; the 16-byte chunk c of row r sits at chunk c ^ (r % 8)
//   (the address bits [4, 7) XOR bits [7, 10)). TMA writes it, wgmma reads it; tiles start on a
//   1024-byte boundary so that the pattern is the same whichever proxy computes it.
// wgmma (warpgroup MMA): four warps (a warpgroup, 128 threads) issue one asynchronous
//   D (64 x N, f32) += A (64 x 16, bf16) * B (16 x N, bf16). B, and A when it is not in
//   registers, are read from shared memory through 64-bit descriptors (desc_*). The f32
//   accumulator is spread over the warpgroup like mma.sync's (mma.cuh), per warp w, lane
//   (g = lane / 4, c = lane % 4):
//     d[4i + 2e + p] = D[16w + g + 8e][8i + 2c + p]      (e, p in {0, 1}; i < N / 8)
//   and an A operand in registers (four bf16x2) has the m16n8k16 A layout of mma.cuh, so the
//   S accumulator columns 16kk .. 16kk + 15 are already the A fragment of P's k-step kk:
//     a[q] = pack(s[8kk + 2q], s[8kk + 2q + 1])   (q < 4).
//   Order: wgmma_fence() before the first wgmma that touches registers the thread wrote;
//   wgmma_commit() closes a group; wgmma_wait<n>() returns when at most n groups are pending.
//   fence_operands(x) tells the compiler that x changes at that point, so no read or write of
//   an accumulator moves across an issue or a wait.
// Named barriers (bar.sync / bar.arrive id, n): n threads meet at barrier id; arrive does not
//   wait. Barrier 0 is __syncthreads.
// setmaxnreg: a warpgroup gives registers back (dec) or takes more (inc) from the CTA's pool.
#pragma once

#include <cuda.h>  // CUtensorMap (a type only: the driver library is not linked, see hopper_attention.cu)
#include <cuda_bf16.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SWIATTN_SM90A 1
#endif

namespace swiattn::cuda::sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#ifdef SWIATTN_SM90A

// ---- mbarrier ----
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
// After the inits, before any other thread or the copy engine uses the barriers.
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
// One arrival, and `bytes` more expected before this phase can complete.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
// Returns once the phase of this parity is complete (acquire: its TMA bytes are visible).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  const uint32_t a = smem_u32(bar);
  while (!mbar_try_wait(a, parity)) {
  }
}
// The producer's wait: the same, but a wait of 2^33 cycles (~4 s) is a deadlock and stops the
// kernel (trap), so the host sees an error ("unspecified launch failure") instead of a hang. Only
// the producer has it: a trap in a consumer's code, or any function call (printf) in the kernel,
// makes ptxas serialise the wgmma (warnings C7510 / C7512) and spill. The producer is at most
// kStages tiles ahead, so a consumer that hangs stalls it within a few tiles.
__device__ __forceinline__ void mbar_wait_or_trap(uint64_t* bar, uint32_t parity) {
  const uint32_t a = smem_u32(bar);
  if (mbar_try_wait(a, parity)) return;
  const long long start = clock64();
  while (!mbar_try_wait(a, parity))
    if (clock64() - start > (1ll << 33)) __trap();
}

// ---- TMA ----
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// The box at coordinates (c0, c1, c2, c3) (innermost first) of a 4-d map -> dst; its bytes are
// credited to bar.
__device__ __forceinline__ void tma_load_4d(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1,
                                            int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_u32(bar))
      : "memory");
}
// `bytes` (a multiple of 16; both addresses 16-byte aligned) of contiguous global memory -> dst,
// by the copy engine (cp.async.bulk, no tensor map); the bytes are credited to bar.
__device__ __forceinline__ void bulk_load(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_u32(dst)),
               "l"(reinterpret_cast<uint64_t>(src)), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}
// Shared memory written by ordinary stores (or cp.async) is seen by wgmma / TMA (the async
// proxy) only after this fence (then a barrier for the other threads' writes).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// ---- named barriers, registers ----
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
template <int kRegs> __device__ __forceinline__ void registers_release() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs> __device__ __forceinline__ void registers_claim() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// ---- wgmma ----
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
template <int N> __device__ __forceinline__ void fence_operands(float (&x)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(x[i])::"memory");
}
template <int N> __device__ __forceinline__ void fence_operands(uint32_t (&x)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(x[i])::"memory");
}

#endif  // SWIATTN_SM90A

// Descriptor of a 128-byte-swizzled operand in shared memory (PTX ISA, "matrix descriptor"):
// start address, leading and stride byte offsets, each >> 4; bits 62-63 = 1: 128-byte swizzle.
//   K-major (rows of 64 bf16 along K; Q as A, K as B of S = Q K^T): the 8-row groups are
//     1024 bytes apart (stride offset); the leading offset is unused (1 by convention). The
//     k-step kk of a 64-wide panel starts 32 kk bytes into it.
//   MN-major (V as B of O += P V, transposed: rows are keys = K, 64 d per 128-byte row): the
//     8-key groups are 1024 bytes apart (stride offset), the next 64 d (the next panel) `lbo`
//     bytes on (leading offset); the k-step kk (keys 16kk ..) starts 2048 kk bytes in.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t lbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | uint64_t((lbo & 0x3FFFF) >> 4) << 16 | uint64_t(1024 >> 4) << 32 |
         uint64_t(1) << 62;
}

#ifdef SWIATTN_SM90A

// The accumulator operand lists: "+f"(d[0]) ... in groups of 8.
#define SWIATTN_D8(i)                                                                                    \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define SWIATTN_D32 SWIATTN_D8(0), SWIATTN_D8(8), SWIATTN_D8(16), SWIATTN_D8(24)
#define SWIATTN_D64 SWIATTN_D32, SWIATTN_D8(32), SWIATTN_D8(40), SWIATTN_D8(48), SWIATTN_D8(56)
#define SWIATTN_R32                                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define SWIATTN_R64                                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "  \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d (64 x 128) (+)= A (64 x 16, shared) * B (16 x 128, shared); kAccumulate false overwrites d
// (the first k-step of S). kTransA / kTransB: 0 for a K-major operand (the forward's Q and K), 1
// for an MN-major one (the backward's dO and Q as B of dV += P^T dO, dK += dS^T Q).
template <bool kAccumulate, int kTransA = 0, int kTransB = 0>
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SWIATTN_R64 ", %64, %65, p, 1, 1, %67, %68;\n}\n"
      : SWIATTN_D64
      : "l"(a), "l"(b), "n"(int(kAccumulate)), "n"(kTransA), "n"(kTransB));
}
// d (64 x 64) (+)= A (64 x 16, shared) * B (16 x 64, shared) (the backward's products at D 64, and
// its S^T, dP^T and dQ): kTransA / kTransB as above (MN-major: dS^T and K as the operands of
// dQ = dS K, dO and Q as B of dV and dK).
template <bool kAccumulate, int kTransA, int kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " SWIATTN_R32 ", %32, %33, p, 1, 1, %35, %36;\n}\n"
      : SWIATTN_D32
      : "l"(a), "l"(b), "n"(int(kAccumulate)), "n"(kTransA), "n"(kTransB));
}
// d (64 x N) += A (64 x 16, registers) * B (16 x N, shared, MN-major: the transposed V tile).
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t* a, uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SWIATTN_R64
               ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
               : SWIATTN_D64
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t* a, uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " SWIATTN_R32
               ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
               : SWIATTN_D32
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
#undef SWIATTN_D8
#undef SWIATTN_D32
#undef SWIATTN_D64
#undef SWIATTN_R32
#undef SWIATTN_R64

#endif  // SWIATTN_SM90A

}  // namespace swiattn::cuda::sm90
