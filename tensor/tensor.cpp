#include "tensor/tensor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/copy.h"
#include "tensor/random.h"

namespace swiattn {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::BF16: return "bfloat16";
    case DType::I32: return "int32";
  }
  return "?";
}

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

// ---------------------------------------------------------------------------------------------
// bfloat16 conversion (round to nearest, ties to even)

float bf16_to_float(bfloat16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;  // bf16 is the upper half of a float32: exact
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

bfloat16 bf16_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x0040u)};  // NaN: stays a (quiet) NaN
  // Add half an ulp of bf16, minus one unless the kept part is odd: a tie then rounds to even.
  // Overflow carries into the exponent, up to infinity, as rounding should.
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}

bfloat16 bf16_from_double(double d) {
  // double -> float32 rounded to odd, then float32 -> bf16 to nearest even: the same as one
  // rounding of d, since float32 keeps 16 more bits than bf16 (round-to-odd keeps a tie a tie
  // only when it was one). Plain double -> float -> bf16 could round twice.
  if (std::isnan(d)) return bf16_from_float(static_cast<float>(d));
  float f = static_cast<float>(d);  // to nearest
  if (std::isinf(f) && !std::isinf(d)) f = std::copysign(std::numeric_limits<float>::max(), f);
  if (static_cast<double>(f) != d) {
    if (std::abs(static_cast<double>(f)) > std::abs(d)) f = std::nextafter(f, 0.0f);  // toward zero
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    u |= 1u;  // inexact: make it odd
    std::memcpy(&f, &u, sizeof f);
  }
  return bf16_from_float(f);
}

std::string shape_str(const Shape& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ")";
  return s.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))  // a shape read from outside must never wrap around
      throw Error("tensor: shape " + shape_str(shape) + " has more than 2^63 - 1 elements");
  return n;
}

// ---------------------------------------------------------------------------------------------
// Storage

namespace {
// The CPU's count (CUDA's is the allocator's): storage may be made and freed on any thread.
std::atomic<int64_t> g_host_bytes_in_use{0};
std::atomic<int64_t> g_host_peak_bytes{0};

void host_bytes_changed(int64_t delta) {
  const int64_t now = g_host_bytes_in_use.fetch_add(delta) + delta;
  int64_t peak = g_host_peak_bytes.load();
  while (now > peak && !g_host_peak_bytes.compare_exchange_weak(peak, now)) {
  }
}

size_t host_block_bytes(size_t bytes) { return ((bytes + 63) / 64) * 64; }
}  // namespace

TensorMemory tensor_memory(Device device) {
  if (device == Device::CUDA) {
#ifdef SWIATTN_HAVE_CUDA
    const cuda::AllocatorStats s = cuda::allocator_stats();
    return {static_cast<int64_t>(s.bytes_in_use), static_cast<int64_t>(s.peak_bytes_in_use)};
#else
    return {};
#endif
  }
  return {g_host_bytes_in_use.load(), g_host_peak_bytes.load()};
}

void reset_tensor_memory_peak(Device device) {
  if (device == Device::CUDA) {
#ifdef SWIATTN_HAVE_CUDA
    cuda::reset_peak_bytes_in_use();
#endif
    return;
  }
  g_host_peak_bytes.store(g_host_bytes_in_use.load());
}

Storage::Storage(size_t bytes_, Device device_) : bytes(bytes_), device(device_) {
  if (device == Device::CUDA) {
#ifdef SWIATTN_HAVE_CUDA
    data = cuda::device_alloc(bytes);  // the caching allocator; throws a clear Error without a GPU
    return;
#else
    throw Error("tensor: cannot allocate " + std::to_string(bytes) +
                " bytes on cuda: the CUDA backend is not compiled in (SWIATTN_CUDA=OFF)");
#endif
  }
  // 64-byte alignment suits AVX-512 loads; aligned_alloc needs a size that is a multiple of it.
  const size_t rounded = host_block_bytes(bytes);
  data = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  if (rounded && !data) throw Error("tensor: out of memory allocating " + std::to_string(bytes) + " bytes");
  host_bytes_changed(static_cast<int64_t>(rounded));
}

Storage::~Storage() {
  if (device == Device::CUDA)
    cuda::device_free(data, bytes);  // back to its free list; never throws
  else {
    std::free(data);
    host_bytes_changed(-static_cast<int64_t>(host_block_bytes(bytes)));
  }
}

// ---------------------------------------------------------------------------------------------
// Construction

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw Error("tensor: negative dimension in shape " + shape_str(shape));
  int64_t bytes;  // checked, never wrapped around; the message is built only when it is needed
  if (__builtin_mul_overflow(shape_numel(shape), static_cast<int64_t>(dtype_size(dtype)), &bytes))
    throw Error("tensor: the bytes of shape " + shape_str(shape) + " do not fit in 64 bits");
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(bytes), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device == Device::CUDA)
    cuda::fill(t, 0.0);
  else if (t.nbytes())
    std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw Error("tensor: from_vector got " + std::to_string(values.size()) +
                " values for shape " + shape_str(shape));
  Tensor t = empty(shape, dtype);
  dispatch_float(dtype, "from_vector", [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return t;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw Error("tensor: from_ints got " + std::to_string(values.size()) + " values for shape " +
                shape_str(shape));
  Tensor t = empty(shape, DType::I32);
  if (!values.empty()) std::memcpy(t.raw(), values.data(), values.size() * sizeof(int32_t));
  return t;
}

Tensor Tensor::randn(const Shape& shape, DType dtype, uint64_t seed, double mean, double stddev) {
  Tensor t = empty(shape, dtype);
  dispatch_float(dtype, "randn", [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(mean + stddev * normal_at(seed, i));
  });
  return t;
}

Tensor Tensor::rand_uniform(const Shape& shape, DType dtype, uint64_t seed, double low, double high) {
  Tensor t = empty(shape, dtype);
  dispatch_float(dtype, "rand_uniform", [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    const int64_t n = t.numel();
    const T top = std::nextafter(static_cast<T>(high), static_cast<T>(low));  // largest value < high
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)  // rounding to float32 could reach `high`: keep it excluded
      p[i] = std::min(static_cast<T>(low + (high - low) * uniform_at(seed, i)), top);
  });
  return t;
}

// ---------------------------------------------------------------------------------------------
// Access

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int j = i < 0 ? i + n : i;
  if (j < 0 || j >= n)
    throw Error("tensor: dimension " + std::to_string(i) + " out of range for shape " + shape_str(shape_));
  return shape_[j];
}

void* Tensor::raw() const {
  if (!storage_) throw Error("tensor: access to an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * dtype_size(dtype_);
}

void Tensor::check_access(DType expected, const char* what) const {
  if (!storage_) throw Error(std::string("tensor: ") + what + " of an undefined tensor");
  if (dtype_ != expected)
    throw Error(std::string("tensor: ") + what + " as " + dtype_name(expected) + " of a " +
                dtype_name(dtype_) + " tensor of shape " + shape_str(shape_));
  if (device() != Device::CPU)
    throw Error(std::string("tensor: ") + what + " on the host of a " + device_name(device()) +
                " tensor of shape " + shape_str(shape_));
}

// ---------------------------------------------------------------------------------------------
// Views

Tensor Tensor::reshape(const Shape& shape) const {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0)
        throw Error("reshape: more than one -1 in " + shape_str(shape) + " for a tensor of shape " + shape_str(shape_));
      infer = static_cast<int>(i);
    } else if (out[i] < 0) {
      throw Error("reshape: negative dimension in " + shape_str(shape) + " for a tensor of shape " + shape_str(shape_));
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known != 0)
      throw Error("reshape: cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
    out[infer] = numel() / known;
  }
  if (shape_numel(out) != numel())
    throw Error("reshape: cannot reshape " + shape_str(shape_) + " (" + std::to_string(numel()) +
                " elements) to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = out;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  if (ndim() == 0) throw Error("slice: cannot slice a scalar");
  if (begin < 0 || end < begin || end > shape_[0])
    throw Error("slice: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") out of range for shape " + shape_str(shape_));
  Tensor t = *this;
  const int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.offset_ = offset_ + static_cast<size_t>(begin * row);
  t.shape_[0] = end - begin;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Copies and values

Tensor Tensor::clone() const { return to(device()); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  if (device == Device::CPU && this->device() == Device::CPU) {
    if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  } else {
    cuda::copy_bytes(t.raw(), device, raw(), this->device(), nbytes());
  }
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  check_same_shape("copy_from", *this, src);
  check_same_device("copy_from", *this, src);
  if (device() == Device::CUDA) {
    if (dtype_ == src.dtype_)
      cuda::copy_bytes(raw(), Device::CUDA, src.raw(), Device::CUDA, nbytes());
    else
      cuda::convert(src, *this);
    return;
  }
  if (dtype_ == src.dtype_) {
    if (nbytes()) std::memmove(raw(), src.raw(), nbytes());
    return;
  }
  if (dtype_ == DType::BF16) {  // float32 / float64 -> bfloat16, one rounding
    bfloat16* d = data<bfloat16>();
    dispatch_float(src.dtype_, "copy_from", [&](auto zs) {
      using S = decltype(zs);
      const S* s = src.data<S>();
      for (int64_t i = 0, n = numel(); i < n; ++i) {
        if constexpr (std::is_same_v<S, float>) d[i] = bf16_from_float(s[i]);
        else d[i] = bf16_from_double(s[i]);
      }
    });
    return;
  }
  if (src.dtype_ == DType::BF16) {  // bfloat16 -> float32 / float64, exact
    const bfloat16* s = src.data<bfloat16>();
    dispatch_float(dtype_, "copy_from", [&](auto zd) {
      using D = decltype(zd);
      D* d = data<D>();
      for (int64_t i = 0, n = numel(); i < n; ++i) d[i] = static_cast<D>(bf16_to_float(s[i]));
    });
    return;
  }
  dispatch_float(dtype_, "copy_from", [&](auto zd) {
    using D = decltype(zd);
    dispatch_float(src.dtype_, "copy_from", [&](auto zs) {
      using S = decltype(zs);
      D* d = data<D>();
      const S* s = src.data<S>();
      for (int64_t i = 0, n = numel(); i < n; ++i) d[i] = static_cast<D>(s[i]);
    });
  });
}

void Tensor::fill(double value) {
  if (device() == Device::CUDA) return cuda::fill(*this, value);
  if (dtype_ == DType::BF16) {
    const bfloat16 b = bf16_from_double(value);
    bfloat16* p = data<bfloat16>();
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = b;
    return;
  }
  if (dtype_ == DType::I32) {
    int32_t* p = data<int32_t>();
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = static_cast<int32_t>(value);
    return;
  }
  dispatch_float(dtype_, "fill", [&](auto zero) {
    using T = decltype(zero);
    T* p = data<T>();
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = static_cast<T>(value);
  });
}

double Tensor::at(int64_t i) const {
  if (i < 0 || i >= numel())
    throw Error("tensor: index " + std::to_string(i) + " out of range for shape " + shape_str(shape_));
  if (device() == Device::CUDA) {  // copy the one element to the host
    Tensor one = empty({}, dtype_);
    cuda::copy_bytes(one.raw(), Device::CPU, static_cast<const char*>(raw()) + i * dtype_size(dtype_),
                     Device::CUDA, dtype_size(dtype_));
    return one.at(0);
  }
  if (dtype_ == DType::I32) return data<int32_t>()[i];
  if (dtype_ == DType::BF16) return bf16_to_float(data<bfloat16>()[i]);
  return dispatch_float(dtype_, "at", [&](auto zero) -> double {
    using T = decltype(zero);
    return static_cast<double>(data<T>()[i]);
  });
}

double Tensor::item() const {
  if (numel() != 1)
    throw Error("tensor: item() of a tensor with " + std::to_string(numel()) + " elements, shape " +
                shape_str(shape_));
  return at(0);
}

std::vector<double> Tensor::to_vector() const {
  if (device() == Device::CUDA) return to_host().to_vector();
  std::vector<double> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = at(i);
  return v;
}

std::vector<int32_t> Tensor::to_ints() const {
  if (device() == Device::CUDA) return to_host().to_ints();
  const int32_t* p = data<int32_t>();
  return std::vector<int32_t>(p, p + numel());
}

// ---------------------------------------------------------------------------------------------
// Argument checks

void shape_error(const char* op, const std::string& what, const Tensor& a, const Tensor& b) {
  throw Error(std::string(op) + ": " + what + ": " + shape_str(a.shape()) + " " +
              dtype_name(a.dtype()) + " vs " + shape_str(b.shape()) + " " + dtype_name(b.dtype()));
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) shape_error(op, "shapes differ", a, b);
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) shape_error(op, "dtypes differ", a, b);
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    throw Error(std::string(op) + ": devices differ: " + shape_str(a.shape()) + " on " +
                device_name(a.device()) + " vs " + shape_str(b.shape()) + " on " + device_name(b.device()));
}

void check_float(const char* op, const Tensor& a) {
  if (!a.defined()) throw Error(std::string(op) + ": undefined tensor argument");
  if (a.dtype() != DType::F32 && a.dtype() != DType::F64)
    throw Error(std::string(op) + ": expected float32 or float64, got " + dtype_name(a.dtype()) +
                " tensor of shape " + shape_str(a.shape()));
  if (a.device() != Device::CPU)
    throw Error(std::string(op) + ": not implemented on " + device_name(a.device()) +
                " (shape " + shape_str(a.shape()) + ")");
}

void check_float_any_device(const char* op, const Tensor& a) {
  if (a.device() == Device::CPU) return check_float(op, a);
  if (!a.defined()) throw Error(std::string(op) + ": undefined tensor argument");
  if (a.dtype() == DType::F64)
    throw Error(std::string(op) + ": float64 is not supported on CUDA (float32 or bfloat16), tensor of shape " +
                shape_str(a.shape()));
  if (a.dtype() != DType::F32 && a.dtype() != DType::BF16)
    throw Error(std::string(op) + ": expected float32 or bfloat16 on cuda, got " + dtype_name(a.dtype()) +
                " tensor of shape " + shape_str(a.shape()));
}

void check_ndim(const char* op, const Tensor& a, int ndim, const char* expected_layout) {
  if (a.ndim() != ndim)
    throw Error(std::string(op) + ": expected a " + std::to_string(ndim) + "-d tensor " +
                expected_layout + ", got shape " + shape_str(a.shape()));
}

}  // namespace swiattn
