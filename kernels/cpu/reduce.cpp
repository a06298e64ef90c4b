#include "kernels/cpu/reduce.h"

#include <utility>
#include <vector>

namespace swiattn::cpu {

template <class T> double sum_all(int64_t n, const T* x) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 8)
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0.0;
    for (int64_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) acc += x[i];
    partial[c] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <class T> void add_constant(int64_t n, T g, T* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] += g;
}

template <class T>
void transpose_copy(const Shape& shape, int d0, int d1, const T* x, T* out, bool accumulate) {
  const int n = static_cast<int>(shape.size());
  Shape out_shape = shape;
  std::swap(out_shape[d0], out_shape[d1]);
  // Stride in `out` of each input dimension.
  std::vector<int64_t> out_stride(n), stride_of_out_dim(n);
  int64_t s = 1;
  for (int d = n; d-- > 0;) { stride_of_out_dim[d] = s; s *= out_shape[d]; }
  for (int d = 0; d < n; ++d) out_stride[d] = stride_of_out_dim[d == d0 ? d1 : d == d1 ? d0 : d];
  const int64_t total = shape_numel(shape);
  std::vector<int64_t> index(n, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < total; ++i) {
    out[o] = accumulate ? out[o] + x[i] : x[i];
    for (int d = n; d-- > 0;) {
      o += out_stride[d];
      if (++index[d] < shape[d]) break;
      o -= out_stride[d] * shape[d];
      index[d] = 0;
    }
  }
}

template double sum_all<float>(int64_t, const float*);
template double sum_all<double>(int64_t, const double*);
template void add_constant<float>(int64_t, float, float*);
template void add_constant<double>(int64_t, double, double*);
template void transpose_copy<float>(const Shape&, int, int, const float*, float*, bool);
template void transpose_copy<double>(const Shape&, int, int, const double*, double*, bool);

}  // namespace swiattn::cpu
