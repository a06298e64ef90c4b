// bench/bench.h: what the `swiattn bench` subcommands share (bench/cli.cpp parses, bench/cases.cpp
// times). Each subcommand prints one JSON line per case on stdout:
//   {"kind": ..., "T": ..., "B": ..., "Hq": ..., "Hkv": ..., "D": ..., "w": ..., "r": ...,
//    "ms": <median>, "ms_min": ..., "reps": ..., "flops_needed": ..., "bytes_read": ...,
//    "tflops": ..., "gbps": ..., "impl": <which kernel ran>}
// Work counted on what the routes need: a full-attention row t reads t + 1 keys, a window row
// min(t + 1, w); 4 D flops per (query head, key) forward (q.k and p v, 2 flops per multiply-add).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace swiattn::bench {

struct Options {
  std::vector<int64_t> T{4096, 8192, 16384, 32768};  // prefill / training lengths
  std::vector<int64_t> cache{8192, 32768};           // decode: keys per sequence
  std::vector<double> r{0.0, 0.13, 0.5, 1.0};        // full-attention ratios
  int64_t B = 1, Hq = 16, Hkv = 8, D = 128, window = 1024;
  int64_t S = 16;               // decode: sequences
  int64_t ctas = 0;             // decode: the kernel's grid; 0 = its default (the resident CTAs)
  int warmup = 2, reps = 10;    // reps drop to 3 when one run takes over 200 ms
  uint64_t seed = 1;
  bool flush_l2 = true;         // flush L2 before each timed rep
  bool deterministic = false;   // train-attention: deterministic mode (tensor/cuda/device.h)
};

// `swiattn bench generate` (bench/generate.cpp): end-to-end batched generation, one JSON line per
// (model, context) with prefill and decode times, tokens/s and the measured full-attention ratio.
struct GenerateOptions {
  std::vector<std::string> models{"swiattn", "full"};  // "swiattn" (every layer switch) | "full"
  std::vector<int64_t> context{8192};                   // prompt tokens per sequence
  int64_t S = 16, new_tokens = 256;
  int64_t layers = 8, hidden = 2048, Hq = 16, Hkv = 8, D = 128, ffn = 5632, vocab = 32000, window = 1024;
  double r = 0.13;  // swiattn: the full-attention ratio the routers are calibrated to
  uint64_t seed = 1;
  std::string device = "cuda";  // "cpu" (float32) checks the harness on a machine without a GPU
};

// A device tensor of `shape` filled with N(0, 1) values rounded to `dtype`, built by tiling one
// random block generated on the host (the benchmarks need random data, not fresh data per byte).
Tensor random_device(const Shape& shape, DType dtype, uint64_t seed);

// Routes (n) with round(r n) ones at random positions (the seed's permutation), as float64 0/1.
std::vector<double> random_routes(int64_t n, double r, uint64_t seed);

// Median and minimum of a rep list.
double median(std::vector<double> ms);

// The three subcommands.
void bench_prefill(const Options& o);
void bench_train_attention(const Options& o);
void bench_decode(const Options& o);
void bench_generate(const GenerateOptions& o);

}  // namespace swiattn::bench
