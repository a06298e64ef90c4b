// model/sampling.h: text generation by repeated full forward passes.
// (Decoding with the unified KV cache, spec §7, replaces this loop in the SwiAttn issue.)
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "tensor/random.h"

namespace swiattn {

// Samples from softmax(logits / temperature) with one uniform draw from rng.
int32_t sample_token(const std::vector<double>& logits, double temperature, Rng& rng);

// Appends new_tokens tokens to prompt (which must be non-empty). Each step runs the model on
// the last `context` tokens (at most max_position_embeddings) and samples the next one.
std::vector<int32_t> generate(const Transformer& model, std::vector<int32_t> prompt,
                              int64_t new_tokens, double temperature, int64_t context, Rng& rng);

}  // namespace swiattn
