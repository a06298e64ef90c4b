// tensor/tensor.h: the n-dimensional array every other layer is built on.
//
// Conventions (stated once, used everywhere):
//   - Storage is contiguous and row-major: the last dimension varies fastest.
//   - Views (reshape, slicing along the first dimension) share storage with their source;
//     writing through a view writes the source. clone() makes an independent copy.
//   - dtype: float32 and float64 compute on the CPU; bfloat16 is a storage type: the CPU only
//     converts it (to(DType), round to nearest even) and the CUDA backend computes on it in
//     float32; int32 holds token ids and other indices.
//   - device: a tensor lives on the CPU or on the CUDA device (docs/cuda.md). to(Device),
//     to_device() and to_host() copy between them; without the CUDA backend compiled in, or
//     without a GPU, asking for a CUDA tensor throws Error.
//   - Every shape / dtype / device mismatch throws swiattn::Error whose message names the op and
//     both shapes, e.g. "matmul: inner dimensions differ: a (2, 3) vs b (4, 5)".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace swiattn {

// The one exception type of the project. what() is a single line meant for the user.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A bad command line: main.cpp prints the message followed by the usage text, exit status 2.
struct UsageError : Error {
  using Error::Error;
};

enum class DType : uint8_t { F32, F64, BF16, I32 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);

// bfloat16: the upper 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits). The host
// only stores and converts it; conversions round to nearest, ties to even, and keep NaN a NaN.
struct bfloat16 {
  uint16_t bits;
};
float bf16_to_float(bfloat16 x);      // exact
bfloat16 bf16_from_float(float x);    // round to nearest even
bfloat16 bf16_from_double(double x);  // one rounding (not double rounding through float32)

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "(2, 3, 4)"
int64_t shape_numel(const Shape& shape);

// A block of bytes on one device. Shared by every view of it. CUDA storage comes from the
// caching allocator of tensor/cuda/allocator.h and goes back to it when the last view dies.
struct Storage {
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
};

// Bytes held by tensors' storage on one device now, and the most held at once since the start
// (or the last reset_tensor_memory_peak). CUDA: the caching allocator's buckets
// (tensor/cuda/allocator.h), not the blocks it keeps cached; CPU: the aligned blocks.
struct TensorMemory {
  int64_t bytes_in_use = 0;
  int64_t peak_bytes_in_use = 0;
};
TensorMemory tensor_memory(Device device);
void reset_tensor_memory_peak(Device device);  // the peak becomes the bytes in use now

// Maps a C++ element type to its dtype; data<T>() checks it.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::BF16; };

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Construction. New tensors live on the CPU unless a device is given.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape);
  static Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }

  // Seeded random initialisation. Element i depends only on (seed, i): the same seed gives the
  // same tensor on every run and for every thread count.
  static Tensor randn(const Shape& shape, DType dtype, uint64_t seed, double mean = 0.0,
                      double stddev = 1.0);
  // Uniform in [low, high): high itself is never returned, in float32 too.
  static Tensor rand_uniform(const Shape& shape, DType dtype, uint64_t seed, double low = 0.0,
                             double high = 1.0);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::CPU; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  // Typed element pointer; throws if T does not match dtype() or the tensor is not on the CPU.
  template <class T> T* data() const {
    check_access(dtype_of<T>::value, "data");
    return static_cast<T*>(raw()) ;
  }
  void* raw() const;  // untyped pointer to the first element (any device)

  // Views: share storage.
  Tensor reshape(const Shape& shape) const;             // one entry may be -1
  Tensor slice(int64_t begin, int64_t end) const;       // rows [begin, end) of the first dim

  // Copies.
  Tensor clone() const;
  Tensor to(DType dtype) const;        // among float32, float64, bfloat16, on the tensor's device
  Tensor to(Device device) const;      // a copy on `device` (always a copy, like to(DType))
  Tensor to_device() const { return to(Device::CUDA); }  // host -> device
  Tensor to_host() const { return to(Device::CPU); }     // device -> host
  void copy_from(const Tensor& src);   // same shape and device, any float dtype
  void fill(double value);

  // Reading values back: for tests, logging and small tensors. On a CUDA tensor each call copies
  // to the host first (at() one element, to_vector() the whole tensor).
  double item() const;                                   // requires numel() == 1
  double at(int64_t flat_index) const;
  std::vector<double> to_vector() const;
  std::vector<int32_t> to_ints() const;

  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  void check_access(DType expected, const char* what) const;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // in elements, from the start of storage_
  Shape shape_;
  DType dtype_ = DType::F32;
};

// Argument checks shared by all ops. Each throws Error naming `op` and both shapes.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_float(const char* op, const Tensor& a);        // float32 or float64, on the CPU
// An op that runs on both devices: float32 or float64 on the CPU, float32 or bfloat16 on CUDA
// (float64 on CUDA throws "not supported on CUDA").
void check_float_any_device(const char* op, const Tensor& a);
void check_ndim(const char* op, const Tensor& a, int ndim, const char* expected_layout);
[[noreturn]] void shape_error(const char* op, const std::string& what, const Tensor& a,
                              const Tensor& b);

// Calls f(T{}) with T = float or double according to dtype; other dtypes throw naming `op`.
template <class F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  if (dtype == DType::F32) return f(float{});
  if (dtype == DType::F64) return f(double{});
  throw Error(std::string(op) + ": dtype " + dtype_name(dtype) +
              " is not supported on the CPU (float32 or float64 expected)");
}

}  // namespace swiattn
