// model/sampling.h: choosing the next token from logits (greedy, temperature, top-k, top-p), and
// text generation by repeated full forward passes (the reference the KV-cache decoder of
// model/decode.h is tested against).
//
// The distribution a token is drawn from (sampling_distribution), for logits l (V):
//   temperature 0    greedy: the argmax (the lowest index among equal maxima), no random draw
//   temperature T>0  p_i = exp((l_i - max l) / T) / Z, then
//     top-k K > 0    only the K largest logits keep their weight (ties broken by lower index)
//     top-p P < 1    of those, only the smallest set of most probable tokens whose probability
//                    sums to at least P (nucleus sampling; the most probable token always stays)
//   renormalised over what is kept. One uniform draw u picks the token by inverse CDF in index
//   order (with K = 0, P = 1 exactly the plain softmax sampling of earlier versions).
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "tensor/random.h"

namespace swiattn {

struct SamplingOptions {
  double temperature = 0.8;  // 0 = greedy (argmax); > 0 divides the logits
  int64_t top_k = 0;         // 0 = off; K >= 1 keeps the K most likely tokens (K >= V keeps all)
  double top_p = 1.0;        // 1 = off; (0, 1): nucleus sampling
};
// Throws an Error naming the option for a value outside its range (temperature < 0 or not
// finite, top_k < 0, top_p outside (0, 1]).
void check_sampling(const SamplingOptions& options);

// The probabilities (V) tokens are drawn from (the header); greedy gives a one-hot vector.
// Throws for empty logits or a NaN or an infinity among them.
std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& options);

// The next token from logits (V): greedy, or one uniform draw from rng by inverse CDF.
int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& options, Rng& rng);
// Temperature sampling alone (top-k and top-p off), temperature > 0.
int32_t sample_token(const std::vector<double>& logits, double temperature, Rng& rng);

// Per row of logits (N, V) on either device: the index of its maximum (the lowest among equal
// maxima). On CUDA the argmax runs on the device and only N ints come back. Throws for a row
// holding a NaN (on the CPU also for an infinity).
std::vector<int32_t> argmax_rows(const Tensor& logits);
// The next token of every row of logits (N, V) on either device, row 0 first: argmax_rows when
// greedy, else the rows come to the host and sample_token draws one token each.
std::vector<int32_t> sample_rows(const Tensor& logits, const SamplingOptions& options, Rng& rng);

// Appends new_tokens tokens to prompt (which must be non-empty). Each step runs the model on
// the last `context` tokens (at most max_position_embeddings) and samples the next one
// (temperature 0: greedy).
std::vector<int32_t> generate(const Transformer& model, std::vector<int32_t> prompt,
                              int64_t new_tokens, double temperature, int64_t context, Rng& rng);

}  // namespace swiattn
