// tests/cuda_test_util.h: what every GPU test file shares (tests/test_cuda_*.cpp).
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/device.h"

namespace swiattn::testing {

// Without a device, says so in one line ("SKIPPED (no CUDA device): what [why]") and returns
// true: the caller returns, and doctest counts the case as passed. CI has no GPU.
inline bool skip_without_device(const std::string& what) {
  if (cuda::device_count() > 0) return false;
  const std::string line = "SKIPPED (no CUDA device): " + what + " [" + cuda::device_description() + "]";
  MESSAGE(line);
  return true;
}

// For the life of the object: fresh allocator blocks are poisoned (NaN), so an output element a
// kernel forgets to write fails the test, and every launch is followed by a synchronisation, so
// a fault names its kernel (docs/cuda.md).
struct StrictDevice {
  StrictDevice() {
    cuda::set_poison_new_blocks(true);
    cuda::set_debug_sync(true);
  }
  ~StrictDevice() {
    cuda::set_poison_new_blocks(false);
    cuda::set_debug_sync(false);
  }
};

}  // namespace swiattn::testing
