// tensor/cuda/allocator.cu: the caching allocator of allocator.h.
#include "tensor/cuda/allocator.h"

#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/device.h"

namespace swiattn::cuda {

namespace {

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // bucket size -> free blocks
  AllocatorStats stats;
  bool poison = false;
};

// Never destroyed: tensors that die during static destruction still find it.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

void release_locked(Cache& c) {
  for (auto& [bucket, blocks] : c.free_blocks) {
    for (void* p : blocks) SWIATTN_CUDA_CHECK(cudaFree(p));
    c.stats.bytes_cached -= bucket * blocks.size();
  }
  c.free_blocks.clear();
}

}  // namespace

void* device_alloc(size_t bytes) {
  static const int devices = device_count();
  if (devices == 0)
    throw Error("tensor: cannot allocate " + std::to_string(bytes) + " bytes on cuda: " + device_description());
  if (bytes == 0) return nullptr;
  const size_t bucket = bucket_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  void* p = nullptr;
  auto it = c.free_blocks.find(bucket);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    c.stats.bytes_cached -= bucket;
    ++c.stats.reuses;
  } else {
    cudaError_t err = cudaMalloc(&p, bucket);
    if (err == cudaErrorMemoryAllocation) {  // give the cache back to the driver and try again
      cudaGetLastError();
      release_locked(c);
      err = cudaMalloc(&p, bucket);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error("tensor: cudaMalloc of " + std::to_string(bucket) + " bytes failed: " +
                  cudaGetErrorString(err) + " (" + std::to_string(c.stats.bytes_in_use) +
                  " bytes in use by tensors)");
    }
    ++c.stats.malloc_calls;
  }
  c.stats.bytes_in_use += bucket;
  if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use) c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
  if (c.poison) SWIATTN_CUDA_CHECK(cudaMemset(p, 0xFF, bucket));
  return p;
}

void device_free(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t bucket = bucket_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks[bucket].push_back(ptr);
  c.stats.bytes_in_use -= bucket;
  c.stats.bytes_cached += bucket;
}

void release_cached_blocks() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  release_locked(c);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void reset_peak_bytes_in_use() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
}

void set_poison_new_blocks(bool on) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.poison = on;
}

}  // namespace swiattn::cuda
