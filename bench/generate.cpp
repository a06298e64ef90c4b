// bench/generate.cpp: `swiattn bench generate`: end-to-end batched generation on the GPU with the
// unified KV cache (model/decode.h), the same path as `swiattn generate --device cuda`. One JSON
// line per (model, context) case (bench/bench.h, GenerateOptions):
//
//   model   "swiattn": every layer "switch", the router biases calibrated so that a fraction r
//           of the tokens takes full attention (below); "full": every layer full attention, the
//           same sizes (FullAttn). Random weights (speed does not depend on them), float32
//           master weights, bfloat16 compute (mixed precision, the cast made once per decoder);
//           --device cpu runs float32 on the CPU (to check the harness at small sizes).
//   phases  prefill: S random prompts of `context` tokens through the forward (sequence mode);
//           decode: new_tokens greedy tokens per sequence (argmax on the device), i.e.
//           new_tokens - 1 decode steps, each step one token for all S sequences.
//   output  prefill_s, decode_s (wall clock, the device synchronised at both ends),
//           decode_tokens_per_s = S * (new_tokens - 1) / decode_s (the tokens the decode steps
//           produced; the first token of each sequence comes from the prefill's logits), and from
//           the decode steps' records
//           (spec §8) the full-attention ratio of the switch layers and the mean keys read per
//           token and layer. The per-step route records are on (one small copy per step).
//
// Calibration (swiattn only): the router logits s of one forward over a calibration prompt give,
// per layer, the (1 - r) quantile q; b_r -= q makes a fraction r of those tokens route to FA.
// Layer l's inputs depend on the layers below, so the pass runs twice. The ratio the decode
// steps then take is measured and printed (fa_ratio_decode), not assumed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "bench/bench.h"
#include "tensor/cuda/device.h"
#include "model/decode.h"
#include "tensor/random.h"
#include "model/route_count.h"

namespace swiattn::bench {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

ModelConfig generate_config(const GenerateOptions& o, const std::string& model, int64_t max_positions) {
  ModelConfig c;
  c.vocab_size = o.vocab;
  c.hidden_size = o.hidden;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = o.Hq;
  c.num_key_value_heads = o.Hkv;
  c.head_dim = o.D;
  c.intermediate_size = o.ffn;
  c.sliding_window = o.window;
  c.layer_types.assign(static_cast<size_t>(o.layers), model == "swiattn" ? "switch" : "full");
  c.max_position_embeddings = max_positions;
  c.validate();
  return c;
}

std::vector<int32_t> random_prompt(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& id : t) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return t;
}

// Moves every switch layer's router bias so that a fraction r of the calibration tokens route
// to full attention (the header).
void calibrate_routers(Transformer& model, double r, const std::vector<int32_t>& tokens) {
  const Device device = model.device();
  const int64_t T = static_cast<int64_t>(tokens.size());
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<LayerRouting> routing;
    {
      NoGradGuard no_grad;
      routing = model.forward_with_routing(Tensor::from_ints(tokens, {1, T}).to(device), false).routing;
    }
    for (const LayerRouting& lr : routing) {
      std::vector<double> s = lr.logit.value().to(DType::F32).to_host().to_vector();  // (T)
      std::sort(s.begin(), s.end());
      const int64_t index = std::clamp<int64_t>(static_cast<int64_t>((1.0 - r) * double(T)), 0, T - 1);
      const double q = r >= 1.0 ? s.front() - 1.0 : (r <= 0.0 ? s.back() + 1.0 : s[index]);
      for (const Var& p : model.parameters())
        if (p.name() == "layers." + std::to_string(lr.layer) + ".attn.router.bias") {
          Tensor bias = p.value();  // a handle: writes the parameter
          bias.copy_from(Tensor::from_vector({bias.to_vector().at(0) - q}, {1}, bias.dtype()).to(bias.device()));
        }
    }
  }
}

}  // namespace

void bench_generate(const GenerateOptions& o) {
  const int64_t longest_context = *std::max_element(o.context.begin(), o.context.end());
  for (const std::string& kind : o.models) {
    const ModelConfig config = generate_config(o, kind, longest_context + o.new_tokens);
    auto t0 = std::chrono::steady_clock::now();
    Transformer model(config, DType::F32, o.seed);
    if (o.device == "cuda") {
      model.to(Device::CUDA);
      model.set_compute_dtype(DType::BF16);
    }
    if (kind == "swiattn") calibrate_routers(model, o.r, random_prompt(std::min<int64_t>(4096, longest_context), o.vocab, o.seed + 1));
    std::fprintf(stderr, "bench generate: %s model, %lld parameters, built and calibrated in %.1f s\n", kind.c_str(),
                 (long long)model.parameter_count(), seconds_since(t0));
    for (int64_t context : o.context) {
      std::vector<std::vector<int32_t>> prompts;
      for (int64_t s = 0; s < o.S; ++s) prompts.push_back(random_prompt(context, o.vocab, o.seed + 100 + s));
      SamplingOptions greedy;
      greedy.temperature = 0;
      Rng rng(o.seed);
      DecodeStats stats;
      Decoder decoder(model, o.S, context + o.new_tokens - 1);  // the cache, and the weights' bf16 casts
      if (o.device == "cuda") cuda::synchronize();
      t0 = std::chrono::steady_clock::now();
      Tensor logits = decoder.prefill(prompts);  // no stats for the prompt tokens
      std::vector<int32_t> next = sample_rows(logits, greedy, rng);  // waits for the prefill
      const double prefill_s = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      for (int64_t n = 1; n < o.new_tokens; ++n) {
        logits = decoder.step(next, &stats);
        next = sample_rows(logits, greedy, rng);
      }
      if (o.device == "cuda") cuda::synchronize();
      const double decode_s = seconds_since(t0);
      RouteCount switch_routes;  // over the switch layers of every decoded token
      for (const DecodedToken& token : stats.tokens)
        for (int64_t l = 0; l < config.num_hidden_layers; ++l)
          if (config.layer_type(l) == LayerType::Switch) switch_routes.add(token.full_attention[l]);
      const double kv_gb = static_cast<double>(decoder.cache().bytes()) / 1e9;
      std::printf(
          "{\"kind\": \"generate\", \"impl\": \"swiattn\", \"device\": \"%s\", \"model\": \"%s\", \"S\": %lld, \"context\": %lld, "
          "\"new_tokens\": %lld, \"layers\": %lld, \"hidden\": %lld, \"Hq\": %lld, \"Hkv\": %lld, \"D\": %lld, "
          "\"ffn\": %lld, \"vocab\": %lld, \"w\": %lld, \"r_target\": %g, \"parameters\": %lld, "
          "\"prefill_s\": %.4f, \"decode_s\": %.4f, \"decode_tokens_per_s\": %.1f, \"ms_per_step\": %.4f, "
          "\"fa_ratio_decode\": %.4f, \"keys_read_per_token_layer\": %.1f, \"kv_cache_gb\": %.3f}\n",
          o.device.c_str(), kind.c_str(), (long long)o.S, (long long)context, (long long)o.new_tokens, (long long)o.layers,
          (long long)o.hidden, (long long)o.Hq, (long long)o.Hkv, (long long)o.D, (long long)o.ffn, (long long)o.vocab,
          (long long)o.window, kind == "swiattn" ? o.r : 1.0, (long long)model.parameter_count(), prefill_s, decode_s,
          double(o.S * (o.new_tokens - 1)) / decode_s, 1e3 * decode_s / double(std::max<int64_t>(1, o.new_tokens - 1)),
          switch_routes.ratio(1.0), stats.mean_keys_read_tokens(), kv_gb);
      std::fflush(stdout);
    }
  }
}

}  // namespace swiattn::bench
