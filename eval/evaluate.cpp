// eval/evaluate.cpp: see eval/evaluate.h. The eval.* knobs, the model as a Predictor, the held-out
// pass and the decode measurement; eval/run_evaluation.cpp assembles results.json from them.
#include "eval/evaluate.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "model/decode.h"
#include "io/json_reader.h"
#include "model/kv_cache.h"
#include "train/held_out.h"
#include "train/nonfinite.h"
#include "tensor/checked_math.h"
#include "train/config_bounds.h"

namespace swiattn {

namespace {

using json = nlohmann::json;

// ---- eval.* overrides ----

// An integer in [min, max] (64-bit, checked before anything narrows it: tensor/checked_math.h).
int64_t as_int(const json& v, const std::string& key, int64_t min, int64_t max = kMaxSize) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
    throw Error("--set " + key + ": must be an integer, got " + v.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 80));
  const int64_t x = v.get<int64_t>();
  require_size("--set " + key, x, min, max);
  return x;
}

}  // namespace

void apply_eval_override(EvalConfig& c, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) throw Error("--set " + assignment + ": expected eval.key=value");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  if (key.rfind("eval.", 0) != 0)
    throw Error("--set " + key + ": swiattn eval takes eval.* keys only (the model and data come from the checkpoint)");
  // JSON through the one strict parser (bounded depth, no duplicate keys); other text is a string.
  const json v = json::accept(text) ? parse_json_strict(text, "--set " + key + ": ") : json(json::value_t::discarded);
  const bool parsed = !v.is_discarded();
  auto str = [&]() { return parsed && v.is_string() ? v.get<std::string>() : text; };
  const std::string k = key.substr(5);
  if (k == "seed") c.seed = static_cast<uint64_t>(as_int(parsed ? v : json(text), key, 0, INT64_MAX));
  else if (k == "batches") c.batches = as_int(parsed ? v : json(text), key, 1);
  else if (k == "batch_size") c.batch_size = as_int(parsed ? v : json(text), key, 1);
  else if (k == "passkey_trials") c.passkey_trials = as_int(parsed ? v : json(text), key, 1);
  else if (k == "mqar_length") c.mqar_length = as_int(parsed ? v : json(text), key, 0);
  else if (k == "mqar_pairs") c.mqar_pairs = as_int(parsed ? v : json(text), key, 0);
  else if (k == "mqar_trials") c.mqar_trials = as_int(parsed ? v : json(text), key, 1);
  else if (k == "decode_tokens") c.decode_tokens = as_int(parsed ? v : json(text), key, 0);
  else if (k == "threads") c.threads = as_int(parsed ? v : json(text), key, 0, kMaxThreads);
  else if (k == "cache_dir") c.cache_dir = str();
  else if (k == "corpus") c.corpus = str();
  else if (k == "device") {
    c.device = str();
    if (c.device != "cpu" && c.device != "cuda") throw Error("--set eval.device: \"cpu\" or \"cuda\", got \"" + c.device + "\"");
  } else if (k == "passkey_lengths") {
    if (!parsed || !v.is_array() || v.empty()) throw Error("--set " + key + ": expected a non-empty array of integers, e.g. [128,256]");
    c.passkey_lengths.clear();
    for (const json& x : v) c.passkey_lengths.push_back(as_int(x, key, 1));
  } else if (k == "passkey_distances") {
    if (!parsed || !v.is_array() || v.empty()) throw Error("--set " + key + ": expected a non-empty array of integers, e.g. [32,600]");
    c.passkey_distances.clear();
    for (const json& x : v) c.passkey_distances.push_back(as_int(x, key, 1));
  } else if (k == "passkey_depths") {
    if (!parsed || !v.is_array() || v.empty()) throw Error("--set " + key + ": expected a non-empty array of numbers in [0, 1]");
    c.passkey_depths.clear();
    for (const json& x : v) {
      if (!x.is_number() || x.get<double>() < 0.0 || x.get<double>() > 1.0)
        throw Error("--set " + key + ": every depth must be a number in [0, 1], got " + x.dump());
      c.passkey_depths.push_back(x.get<double>());
    }
  } else {
    throw Error("--set " + key + ": unknown key; eval keys are seed, batches, batch_size, passkey_lengths, "
                "passkey_depths, passkey_distances, passkey_trials, mqar_length, mqar_pairs, mqar_trials, decode_tokens, threads, "
                "cache_dir, corpus, device");
  }
}

json eval_config_to_json(const EvalConfig& c) {
  return json{{"seed", c.seed}, {"batches", c.batches}, {"batch_size", c.batch_size},
              {"passkey_lengths", c.passkey_lengths}, {"passkey_depths", c.passkey_depths},
              {"passkey_trials", c.passkey_trials}, {"passkey_distances", c.passkey_distances},
              {"mqar_length", c.mqar_length},
              {"mqar_pairs", c.mqar_pairs}, {"mqar_trials", c.mqar_trials},
              {"decode_tokens", c.decode_tokens}, {"threads", c.threads}, {"cache_dir", c.cache_dir}, {"corpus", c.corpus},
              {"device", c.device}};
}

// ---- running the model ----

Routes routes_of(const Transformer& model, const std::vector<LayerRouting>& routing, int64_t row, int64_t T) {
  const ModelConfig& c = model.config();
  Routes routes(static_cast<size_t>(c.num_hidden_layers));
  size_t next_switch = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto& layer = routes[static_cast<size_t>(l)];
    const LayerType type = c.layer_type(l);
    if (type != LayerType::Switch) {
      layer.assign(static_cast<size_t>(T), type == LayerType::Full ? 1 : 0);  // static layers: FA or SWA always
      continue;
    }
    if (next_switch >= routing.size() || routing[next_switch].layer != l)
      throw Error("routes_of: no routing recorded for switch layer " + std::to_string(l));
    const Tensor& m = routing[next_switch++].route;  // (B, T)
    const std::vector<double> values = m.slice(row, row + 1).to_vector();
    if (static_cast<int64_t>(values.size()) != T) throw Error("routes_of: route length differs from T");
    for (double v : values) layer.push_back(v > 0.5 ? 1 : 0);
  }
  return routes;
}

Predictor model_predictor(const Transformer& model) {
  return [&model](const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions) {
    NoGradGuard no_grad;
    const int64_t n = static_cast<int64_t>(tokens.size());
    Tensor ids = Tensor::from_ints(tokens, {1, n});
    if (model.device() != Device::CPU) ids = ids.to(model.device());
    const ForwardResult f = model.forward_with_routing(ids, false);
    const int64_t V = model.config().vocab_size;
    const Tensor logits = f.logits.value().reshape({n, V});  // (T, V)
    Prediction p;
    for (int64_t t : positions) {
      if (t < 0 || t >= n) throw Error("model_predictor: position " + std::to_string(t) + " outside the sequence");
      Tensor row = logits.slice(t, t + 1);
      if (row.dtype() == DType::BF16) row = row.to(DType::F32);
      const std::vector<double> v = row.to_vector();
      int32_t best = 0;
      for (int32_t i = 1; i < static_cast<int32_t>(v.size()); ++i)
        if (v[static_cast<size_t>(i)] > v[static_cast<size_t>(best)]) best = i;
      p.argmax.push_back(best);
      // -log softmax(v)[next token] = logsumexp(v) - v[next], in double.
      double lse = 0.0;
      for (double x : v) lse += std::exp(x - v[static_cast<size_t>(best)]);
      lse = v[static_cast<size_t>(best)] + std::log(lse);
      p.nll.push_back(t + 1 < n ? lse - v[static_cast<size_t>(tokens[static_cast<size_t>(t + 1)])]
                                : std::numeric_limits<double>::quiet_NaN());
    }
    p.routes = routes_of(model, f.routing, 0, n);
    return p;
  };
}

double HeldOutResult::mean_loss() const {
  if (nll.empty()) throw Error("HeldOutResult: no tokens");
  double s = 0.0;
  for (double x : nll) s += x;
  return s / static_cast<double>(nll.size());
}

HeldOutResult evaluate_held_out(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches) {
  if (batches.empty()) throw Error("evaluate_held_out: no batches");
  HeldOutResult r;
  // The training's validation pass (train/held_out.h), keeping each token's loss and route.
  evaluate_loss(model, batches, nullptr, [&](const HeldOutBatch& batch) {
    const ForwardResult& f = batch.forward;
    const int64_t B = f.logits.value().dim(0), T = f.logits.value().dim(1);
    r.T = T;
    // A broken model must not produce normal-looking numbers: logits (and with them every loss)
    // and router logits (with them every route and efficiency figure) must be finite.
    if (!all_finite(f.logits.value()))
      throw Error("eval: the model's logits hold NaN or infinity on held-out text: its weights are broken; nothing is reported");
    for (const LayerRouting& routing : f.routing)
      if (!all_finite(routing.logit.value()))
        throw Error("eval: the router logits of layer " + std::to_string(routing.layer) +
                    " hold NaN or infinity on held-out text: its weights are broken; nothing is reported");
    const std::vector<double> nll = batch.per_token.to_vector();  // (B * T)
    r.nll.insert(r.nll.end(), nll.begin(), nll.end());
    for (int64_t b = 0; b < B; ++b) r.routes.push_back(routes_of(model, f.routing, b, T));
  });
  return r;
}

DecodeMeasurement measure_decode(const Transformer& model, const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw Error("measure_decode: no tokens");
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(tokens.size()), W = c.sliding_window;
  DecodeMeasurement d;
  // The real decode path, on the model's device: one token per step through the unified KV
  // cache (model/decode.h), counting the keys each step's attention read.
  Decoder decoder(model, 1, n);
  DecodeStats stats;
  for (int32_t token : tokens) decoder.step({token}, &stats);
  for (size_t i = 0; i < stats.tokens.size(); ++i) d.measured.push_back(stats.keys_read_tokens(i));
  d.bytes_per_token_key = 2.0 * static_cast<double>(stats.kv_heads * stats.head_dim * stats.bytes_per_element);
  // The spec §8 formula from the routes of one full forward over the same tokens.
  NoGradGuard no_grad;
  Tensor ids = Tensor::from_ints(tokens, {1, n});
  if (model.device() != Device::CPU) ids = ids.to(model.device());
  const ForwardResult f = model.forward_with_routing(ids, false);
  const Routes routes = routes_of(model, f.routing, 0, n);
  d.formula = decode_keys_read_formula(routes, W);
  for (int64_t t = 0; t < n; ++t) {
    d.full_attention.push_back(static_cast<double>(t + 1));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
      d.route_mismatches += stats.tokens[static_cast<size_t>(t)].full_attention[static_cast<size_t>(l)] !=
                            routes[static_cast<size_t>(l)][static_cast<size_t>(t)];
  }
  return d;
}

}  // namespace swiattn
