// model/memory_estimate.h: how much memory a model will need, estimated from its configuration
// before anything is allocated, and the check that refuses what the device cannot hold.
//
// Without it, a configuration that passes validation but is absurd (num_hidden_layers = 1000000)
// would allocate layer by layer until the machine runs out of memory. The estimate (legend of
// model/transformer.h):
//   parameters P   = V C (x2 untied) + C + L (2 H D C + 2 Hkv D C + 3 F C + 2 C) + (C + 1) per switch layer
//   weights        = P x bytes of the master dtype
//   training state = 3 P x bytes (gradients, AdamW m and v), + 2 P for a bfloat16 copy of the weights
//   activations    training:  B T L (8 C + 6 H D + 4 Hkv D + 5 F) + 3 B T V  elements, kept for the backward
//                  inference: B T (8 C + 6 H D + 4 Hkv D + 5 F + 2 V) + 2 L B T Hkv D  (one layer live, the KV cache)
// It is an estimate of the tensors that stay alive, not of the allocator's peak; it is meant to
// catch configurations that are off by orders of magnitude, not to pack memory tightly.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"
#include "tensor/tensor.h"

namespace swiattn {

// The number of parameters the configuration gives (what Transformer::parameter_count() will
// return), computed without overflow: an Error names the keys when it does not fit in 64 bits.
int64_t estimate_parameter_count(const ModelConfig& config);

struct MemoryEstimate {
  int64_t parameters = 0;
  int64_t weight_bytes = 0;          // the parameters in the master dtype
  int64_t training_state_bytes = 0;  // gradients and optimizer moments (0 for inference)
  int64_t activation_bytes = 0;
  int64_t total_bytes() const;
  // The configuration key behind the largest term, with its value, for the message:
  // "model.num_hidden_layers = 1000000".
  std::string largest_cause;
};

// `batch` rows of `seq_len` tokens; `activation_keys` names them in messages ("train.batch_size x
// train.seq_len"). bf16_compute: mixed precision (a bfloat16 copy of the weights for the kernels).
MemoryEstimate estimate_memory(const ModelConfig& config, DType dtype, bool training, int64_t batch,
                               int64_t seq_len, const std::string& activation_keys, bool bf16_compute = false);

// Bytes of memory the device has: the CPU's physical memory (or the cgroup's limit when lower),
// a CUDA device's global memory. 0 when unknown (then nothing is refused).
int64_t device_memory_bytes(Device device);

// Throws an Error "<what>: ... needs about X (weights ..., ...), more than the Y of <device>;
// the largest part comes from <cause>" when estimate.total_bytes() exceeds device_memory_bytes.
void require_memory_fits(const MemoryEstimate& estimate, Device device, const std::string& what);

// "1.5 GiB", "312.0 MiB", "12 bytes".
std::string format_bytes(int64_t bytes);

}  // namespace swiattn
