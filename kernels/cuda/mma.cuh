// kernels/cuda/mma.cuh: bfloat16 tensor-core tiles for the flash attention kernels (nvcc only,
// sm_80 and later; these are the Ampere-style warp-level instructions, which Hopper runs too).
//
// The one matrix instruction used: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32,
//   D (16 x 8, f32) = A (16 x 16, bf16, row-major) * B (16 x 8, bf16, "col": stored as B^T rows)
//                     + C (16 x 8, f32),
// issued by one warp. Each operand is spread over the 32 lanes in registers. With
//   g = lane / 4 (the "group", 0..7) and c = lane % 4 (the thread in the group, 0..3):
//
//   A (4 x bf16x2 per lane):   a[0] = A[g    ][2c, 2c+1]     a[1] = A[g + 8][2c, 2c+1]
//                              a[2] = A[g    ][2c+8, 2c+9]   a[3] = A[g + 8][2c+8, 2c+9]
//   B (2 x bf16x2 per lane):   b[0] = B[2c, 2c+1][g]         b[1] = B[2c+8, 2c+9][g]
//   C, D (4 x f32 per lane):   d[0], d[1] = D[g][2c, 2c+1]   d[2], d[3] = D[g + 8][2c, 2c+1]
//
// (the low half of a bf16x2 register is the lower column / row index). So a lane owns rows g
// and g + 8 of every 16-row tile, and of each row the column pairs 2c, 2c+1 of every 8 columns;
// the 4 lanes of a group together hold whole rows (a row reduction is a shuffle over lane bits
// 0 and 1).
//
// An accumulator tile D of two neighbouring 8-column blocks is exactly the A operand layout for
// the next product (FlashAttention's trick: P = softmax(S) goes from the S accumulators straight
// into P V without shared memory): a = {pack(d0[0], d0[1]), pack(d0[2], d0[3]),
// pack(d1[0], d1[1]), pack(d1[2], d1[3])} for the blocks d0 (columns 0-7) and d1 (8-15).
//
// ldmatrix.x4 loads four 8 x 8 bf16 matrices from shared memory: lanes 8i .. 8i+7 give the
// addresses of the 8 rows (16 bytes each) of matrix i, and register i of each lane receives
// matrix i's row g, columns 2c, 2c+1 -- the A / B fragment layout above. With .trans the lane
// receives the transposed matrix: rows 2c, 2c+1 of column g (for V, stored key-major, as the
// B operand of P V, whose "rows" are keys).
//
// cp.async copies 16 bytes global -> shared without passing through registers; a thread's
// copies are grouped by commit, and wait<n> blocks until at most n of its groups are still in
// flight. A __syncthreads after the wait makes every thread's copies visible to all.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace swiattn::cuda::mma {

// d += a b on one 16 x 8 x 16 tile (the layouts above).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The 32-bit shared-memory address of a pointer into shared memory (what ldmatrix and cp.async
// take).
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8 x 8 matrices; this lane gives the address of one row (see the header).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// The same, each matrix transposed on the way (V as the B operand of P V).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16 bytes global -> shared. With valid == false nothing is read and the 16 bytes are zeroed
// (src-size 0: rows past the end of a sequence become zeros, never garbage or NaN).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Wait until at most n of this thread's committed groups are still in flight.
template <int n>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

// Two floats -> one bf16x2 register (lo in the low half), each rounded to nearest even.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

// Shared-memory tiles of bf16 rows of kCols elements (kCols a multiple of 64: 128 or 256-byte
// rows), stored with an XOR swizzle: the 16-byte chunk ch of row r sits at chunk ch ^ (r % 8).
// Without it the 8 row addresses of one ldmatrix (same column, rows 128 or 256 bytes apart)
// would all fall in the same 4 banks: an 8-way conflict. With it they cover all 32 banks.
template <int kCols>
__device__ __forceinline__ int swizzle(int row, int col) {  // element offset of (row, col)
  static_assert(kCols % 64 == 0, "rows of 64 or more bf16 (8 chunks) for the swizzle");
  const int chunk = (col >> 3) ^ (row & 7);
  return row * kCols + (chunk << 3) + (col & 7);
}

}  // namespace swiattn::cuda::mma
