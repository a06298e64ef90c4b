// kernels/decode_attention.cpp: the device choice of the decode step (kernels/decode_attention.h):
// kernels/cuda/decode_attention.h for CUDA tensors, kernels/cpu/decode_attention.h for CPU ones.
#include "kernels/decode_attention.h"

#include <vector>

#include "kernels/cpu/decode_attention.h"
#include "kernels/cuda/decode_attention.h"

namespace swiattn::kernels {

void kv_cache_append(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
                     const Tensor& v_cache) {
  if (on_cuda(k_cache)) return cuda::kv_cache_append(k, v, positions, k_cache, v_cache);
  const cpu::DecodeShape s{k_cache.dim(0), k_cache.dim(1), 0, k_cache.dim(2), k_cache.dim(3)};
  dispatch_float(k_cache.dtype(), "kv cache append_step", [&](auto zero) {
    using T = decltype(zero);
    cpu::kv_cache_append<T>(s, k.data<T>(), v.data<T>(), positions.data<int32_t>(), k_cache.data<T>(),
                            v_cache.data<T>());
  });
}

void decode_attention_forward(int64_t window, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                              const Tensor& lengths, const Tensor& route, const Tensor& out, int64_t max_length) {
  if (on_cuda(q))
    return cuda::decode_attention_forward(window, q, k_cache, v_cache, lengths, route, out, Tensor(), 0, max_length);
  const cpu::DecodeShape s{k_cache.dim(0), k_cache.dim(1), q.dim(1), k_cache.dim(2), k_cache.dim(3)};
  const std::vector<int32_t> length_ints = lengths.to_ints();
  const std::vector<int64_t> key_counts(length_ints.begin(), length_ints.end());
  const std::vector<int32_t> routes = route.to_ints();
  dispatch_float(q.dtype(), "kv cache attend_step", [&](auto zero) {
    using T = decltype(zero);
    cpu::decode_attention_forward<T>(s, window, q.data<T>(), k_cache.data<T>(), v_cache.data<T>(), key_counts, routes,
                                     out.data<T>(), nullptr);
  });
}

}  // namespace swiattn::kernels
