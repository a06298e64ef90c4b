// kernels/cuda/flash_backward_args.cuh: what the two attention backward kernels share (nvcc
// only): the problem as their main kernels read it (FlashBackwardArgs, filled by
// flash_backward.cu's driver after its preprocessing kernel), the per-fragment dq add, and the
// sm_90a main kernel's launcher (hopper_backward.cu). The math is in flash_backward.h.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace swiattn::cuda {

// One or two branches (flash_backward.h). Pointers are null where not needed.
struct FlashBackwardArgs {
  const __nv_bfloat16 *q, *k, *v, *dout;  // (B, T, Hq, D), (B, T, Hkv, D) x2, (B, T, Hq, D)
  const float *lse_a, *lse_b;              // (B, T, Hq)
  const float *delta_a, *delta_b;          // (B, T, Hq): w_b dout . O_b
  const float *weight_a, *weight_b;        // (B, T)
  float* dq_accum;                         // (B, T, Hq, D) fp32, or null (no dq); deterministic: one per split
  int64_t dq_split_stride;                 // deterministic: elements between split buffers (else 0)
  __nv_bfloat16 *dk, *dv;                  // (B, T, Hkv, D), or null
  int64_t T, Hq, Hkv, group, window_a, window_b;
  float scale;
};

// p[0..3] += (x0, x1, x2, x3) in float32: the only writer (deterministic mode), 16-byte aligned.
__device__ __forceinline__ void plain_add4(float* p, float x0, float x1, float x2, float x3) {
  float4* v = reinterpret_cast<float4*>(p);
  float4 o = *v;
  o.x += x0, o.y += x1, o.z += x2, o.w += x3;
  *v = o;
}

// dq rows g and g + 8 of a 16-row tile, columns d0 + 2c, d0 + 2c + 1 (an accumulator fragment:
// x = row g, y = row g + 8) += the fragment, in float32. Lanes c and c ^ 1 swap halves so each
// adds 4 neighbouring floats of one row: one 16-byte atomic on sm_90 (half the instructions), or
// (plain: deterministic mode, this CTA owns the buffer) one 16-byte read-modify-write.
__device__ __forceinline__ void atomic_add_fragment(float* row_g, int64_t row_stride, int c, float x0, float x1,
                                                    float y0, float y1, bool row_g_in, bool row_g8_in, bool plain) {
  const bool even = (c & 1) == 0;
  // even lanes send their row g + 8 pair and keep row g; odd lanes the other way round
  const float s0 = even ? y0 : x0, s1 = even ? y1 : x1;
  const float r0 = __shfl_xor_sync(0xffffffffu, s0, 1), r1 = __shfl_xor_sync(0xffffffffu, s1, 1);
  if (plain) {
    if (even) {
      if (row_g_in) plain_add4(row_g + 2 * c, x0, x1, r0, r1);
    } else if (row_g8_in) {
      plain_add4(row_g + 8 * row_stride + 2 * (c - 1), r0, r1, y0, y1);
    }
    return;
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (even) {
    if (row_g_in) atomicAdd(reinterpret_cast<float4*>(row_g + 2 * c), make_float4(x0, x1, r0, r1));
  } else if (row_g8_in) {
    atomicAdd(reinterpret_cast<float4*>(row_g + 8 * row_stride + 2 * (c - 1)), make_float4(r0, r1, y0, y1));
  }
#else
  if (even) {
    if (row_g_in) atomicAdd(row_g + 2 * c, x0), atomicAdd(row_g + 2 * c + 1, x1), atomicAdd(row_g + 2 * c + 2, r0),
        atomicAdd(row_g + 2 * c + 3, r1);
  } else if (row_g8_in) {
    float* p = row_g + 8 * row_stride + 2 * (c - 1);
    atomicAdd(p, r0), atomicAdd(p + 1, r1), atomicAdd(p + 2, y0), atomicAdd(p + 3, y1);
  }
#endif
}

// p[0], p[1] += x0, x1 for a bfloat16 pair this thread owns (one rounding each).
__device__ __forceinline__ void add_pair(__nv_bfloat16* p, float x0, float x1) {
  __nv_bfloat162* v = reinterpret_cast<__nv_bfloat162*>(p);
  const float2 old = __bfloat1622float2(*v);
  *v = __floats2bfloat162_rn(old.x + x0, old.y + x1);
}

// The sm_90a main kernel (hopper_backward.cu): the same products and sums as flash_backward.cu's,
// for D 64 or 128, B batches, one branch or two (kTwo); dq through a float32 buffer with atomics
// (no fixed-order mode: deterministic mode takes the sm_80 kernel). Needs hopper_forward_available()
// (flash_params.cuh): compute capability 9.0 and sm_90a code in the binary.
void hopper_backward(const FlashBackwardArgs& args, int64_t B, int D, bool two);

}  // namespace swiattn::cuda
