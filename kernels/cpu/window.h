// kernels/cpu/window.h: the sliding-window rule, written once for host C++ and CUDA device code.
//
// A query at position t (0-based) under window w reads the keys [window_first_key(t, w), t]:
//   w >= 1 : [max(0, t - w + 1), t]   exactly w keys once t >= w - 1, the query's own included
//   w <= 0 : [0, t]                   full causal attention (0 is how callers say "no window")
// A switch layer splits full attention into the window part above and the far part
// [0, window_first_key(t, w) - 1] = [0, t - w], which is empty while t < w (window_has_far_keys).
// In decode, a sequence holding `length` keys (the new one included) asks at t = length - 1.
// Every CPU kernel, CUDA kernel, the decode path, the evaluation and the benchmarks call these;
// nothing else restates the rule. It lives beside the CPU reference kernels, which CUDA code
// already includes for its shapes (kernels/cuda/attention.cuh).
#pragma once

#if defined(__CUDACC__)
#define SWIATTN_HOST_DEVICE __host__ __device__
#else
#define SWIATTN_HOST_DEVICE
#endif

namespace swiattn {

// The first key query t reads (I: int or int64_t; t < 0, a padding row, gives 0).
template <class I>
SWIATTN_HOST_DEVICE constexpr I window_first_key(I t, I window) {
  return window > 0 && t >= window ? t - window + 1 : I(0);
}

// How many keys query t reads: t - window_first_key(t, w) + 1 (= min(t + 1, w) for w >= 1).
template <class I>
SWIATTN_HOST_DEVICE constexpr I window_key_count(I t, I window) {
  return t - window_first_key(t, window) + 1;
}

// Whether query t has keys outside its window (t >= w >= 1): the positions where the full
// and window branches differ, counted by the "t >= w" statistics.
template <class I>
SWIATTN_HOST_DEVICE constexpr bool window_has_far_keys(I t, I window) {
  return window_first_key(t, window) > 0;
}

// How many of T queries have keys outside their window (window_has_far_keys): T - w when
// T > w >= 1, else 0. The denominators of the "t >= w" statistics.
template <class I>
SWIATTN_HOST_DEVICE constexpr I window_far_queries(I T, I window) {
  return window > 0 && T > window ? T - window : I(0);
}

// The inverse, for a backward that walks keys: the last of T queries that reads key j
// (the largest t < T with window_first_key(t, w) <= j).
template <class I>
SWIATTN_HOST_DEVICE constexpr I window_last_query(I j, I window, I T) {
  return window > 0 && j + window - 1 < T - 1 ? j + window - 1 : T - 1;
}

}  // namespace swiattn
