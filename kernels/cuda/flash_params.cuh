// kernels/cuda/flash_params.cuh: what the two forward kernel families of flash_attention.h share
// (nvcc only): the three uses of one kernel (Mode) and the problem as the kernels read it
// (FlashParams). flash_attention.cu holds the sm_80 kernel (mma.sync, cp.async; any GPU from
// sm_80) and the entry points, hopper_attention.cu the sm_90a kernel (wgmma, TMA); both read the
// same FlashParams, so the entry points check their arguments once, for either kernel.
#pragma once

#include <cuda.h>  // CUtensorMap (a type only)
#include <cuda_bf16.h>

#include <string>

#include "kernels/cpu/window.h"

namespace swiattn::cuda {

enum class Mode {
  Plain,   // out, lse of attention over each row's keys [lo(t), t]      (flash_attention_forward)
  Switch,  // window keys first -> O_SWA; far keys [0, t - w] continue     (flash_switch_attention_forward)
           // the same online softmax -> O_FULL; out = g O_FULL + (1 - g) O_SWA
  Routed,  // like Plain, but the CTA's query rows are gathered from a     (routed_attention_prefill)
           // list of positions (the full list, window 0, or the window list), outputs scattered back
};

struct FlashParams {
  const __nv_bfloat16 *q, *k, *v;  // (B, T, Hq, D), (B, T, Hkv, D) x 2
  void* out;                       // (B, T, Hq, D), bf16 (or f32 in Plain mode)
  float* lse;                      // (B, T, Hq): Plain's lse (may be null), Switch's lse_full
  float *o_full, *o_swa;           // (B, T, Hq, D) float32, Switch
  float* lse_swa;                  // (B, T, Hq), Switch
  const __nv_bfloat16* gate;       // (B, T), Switch
  bool both;                       // Switch: compute O_FULL for gate-0 rows too
  const int* list[2];              // Routed: (B, T) positions of the full list [0] and window list [1]
  const int* count;                // Routed: (B, 2) lengths of the two lists
  int T, Hq, Hkv, group;
  int window;                      // 0: full causal
  int tiles;                       // query tiles per (b, h, list): ceil(T / rows per CTA), set by the launcher
  float scale_log2;                // log2(e) / sqrt(D)
};

// The first key of query t: window_first_key of kernels/cpu/window.h (window 0: full causal [0, t]).

// Two neighbouring output elements (columns 2c, 2c + 1 of an accumulator row), bf16 or f32.
template <class TO> __device__ __forceinline__ void store2(TO* p, float a, float b);
template <> __device__ __forceinline__ void store2<__nv_bfloat16>(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}
template <> __device__ __forceinline__ void store2<float>(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

// ---- the sm_90a kernel (hopper_attention.cu) ----
// Whether it can run here: device 0 has compute capability 9.0 and this binary holds sm_90a code
// for it (checked once, by running a probe kernel). `why` says which, in words.
bool hopper_forward_available(std::string* why = nullptr);
// Launches it for a validated problem (the entry points of flash_attention.cu): out float32 or
// bfloat16 in Plain mode (out_f32), bfloat16 otherwise. D is 64 or 128; B the batch.
void hopper_forward(Mode mode, FlashParams p, int B, int D, bool out_f32);
// The TMA map of x (B, T, H, D) bf16 as a 4-d tensor (D, H, T, B), innermost first; a box is 64
// columns of `rows` rows of one head (one 128-byte-swizzled panel); rows past T read as zeros.
// Throws Error naming `name` when the driver refuses it. (hopper_attention.cu; also used by the
// backward of hopper_backward.cu.)
CUtensorMap hopper_tensor_map(const __nv_bfloat16* x, int B, int T, int H, int D, int rows, const char* name);

}  // namespace swiattn::cuda
