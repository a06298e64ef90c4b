// tensor/cuda/allocator.h: device memory for Storage, through a small caching allocator.
//
// cudaMalloc and cudaFree are slow and cudaFree synchronises the device, while a training step
// allocates and frees the same sizes over and over. So a freed block is not given back to the
// driver: it goes to the free list of its size bucket, and the next request of that bucket
// reuses it. Buckets: requests up to 1 MiB round up to a power of two (at least 512 bytes),
// larger ones to a multiple of 2 MiB. Only plain cudaMalloc (never managed memory).
//
// Reuse is safe without events because all work runs on the default stream: a kernel that
// used a block is ordered before any later kernel that gets the block again.
// When cudaMalloc fails, the cache is released and the allocation tried once more.
#pragma once

#include <cstddef>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

struct AllocatorStats {
  size_t malloc_calls = 0;  // cudaMalloc calls that succeeded
  size_t reuses = 0;        // requests served from a free list
  size_t bytes_in_use = 0;  // bucket bytes handed out and not freed yet
  size_t bytes_cached = 0;  // bucket bytes waiting in free lists
  size_t peak_bytes_in_use = 0;  // the largest bytes_in_use since start (or reset_peak_bytes_in_use)
};

// The bucket a request of `bytes` is served from (0 for 0 bytes).
inline size_t bucket_size(size_t bytes) {
  constexpr size_t kSmall = size_t(1) << 20, kLargeStep = size_t(2) << 20;
  if (bytes == 0) return 0;
  if (bytes > kSmall) return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  size_t b = 512;
  while (b < bytes) b *= 2;
  return b;
}

// A block of at least `bytes` on device 0 (nullptr for 0 bytes). Throws Error when there is no
// device or it is out of memory (after releasing the cache).
SWIATTN_CUDA_FUNCTION(void* device_alloc(size_t bytes))
// Returns a block from device_alloc(bytes) to its free list. Never calls the driver.
SWIATTN_CUDA_FUNCTION(void device_free(void* ptr, size_t bytes))
// Gives every cached (free) block back to the driver with cudaFree.
SWIATTN_CUDA_FUNCTION(void release_cached_blocks())
SWIATTN_CUDA_FUNCTION(AllocatorStats allocator_stats())
// Sets peak_bytes_in_use to the current bytes_in_use (to measure the peak of one phase).
SWIATTN_CUDA_FUNCTION(void reset_peak_bytes_in_use())
// Tests: fill every block handed out with 0xFF bytes (NaN for float32, bfloat16 and float64,
// -1 for int32), so that an output element a kernel forgets to write cannot pass for correct.
SWIATTN_CUDA_FUNCTION(void set_poison_new_blocks(bool on))

}  // namespace swiattn::cuda
