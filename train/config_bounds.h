// train/config_bounds.h: the limits of the run configuration that protect the program rather than
// the experiment: every size a kernel or loader takes as a 32-bit int, the products that must fit
// in 64 bits (tokens per step, tokens per run), the OpenMP thread count, and a vocabulary that the
// tokenizer can decode. validate_config (train/config.h) calls it after its own checks.
#pragma once

#include "train/config.h"

namespace swiattn {

// The most OpenMP threads train.threads (and eval.threads) may ask for: far above any machine's
// cores, far below the count at which the OpenMP runtime aborts.
constexpr int64_t kMaxThreads = 1024;

// Throws an Error naming the first key out of bounds ("train.batch_size: must be in [1,
// 2147483647], got 4294967297").
void validate_config_bounds(const Config& config);

}  // namespace swiattn
