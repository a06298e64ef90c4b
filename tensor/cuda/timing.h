// tensor/cuda/timing.h: device-time measurement for the benchmarks (bench/): CUDA events
// around a region on the default stream, with an optional L2 flush before each repetition so
// that a rep does not read what the previous one left in the cache. The flush READS a buffer
// twice the L2 size, so the cache is left holding clean lines (a memset would leave dirty lines
// whose write-back the timed kernel would pay for).
#pragma once

#include <functional>
#include <vector>

#include "tensor/cuda/api.h"

namespace swiattn::cuda {

// Runs f `warmup` times untimed, then `reps` times, each between two events (after an L2 flush
// when flush_l2: a read of a buffer twice the L2 size, outside the timed region). Returns the
// milliseconds of each timed rep. Errors of f's kernels surface here (the events synchronise).
SWIATTN_CUDA_FUNCTION(std::vector<double> time_device_ms(const std::function<void()>& f,
                                                         int warmup, int reps, bool flush_l2))

// The device's L2 size in bytes and its multiprocessor count (for the benchmark's records).
SWIATTN_CUDA_FUNCTION(int64_t l2_cache_bytes())
SWIATTN_CUDA_FUNCTION(int multiprocessor_count())

}  // namespace swiattn::cuda
