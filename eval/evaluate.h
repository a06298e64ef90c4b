// eval/evaluate.h: `swiattn eval` on one checkpoint (spec §8, §10; docs/eval.md describes every
// number). The pieces, each usable on its own (tests/test_eval.cpp checks them):
//   model_predictor        a Transformer as a Predictor (eval/metrics.h): argmax + routes
//   evaluate_held_out      per-token NLL and routes on held-out batches (the pass of train/held_out.h)
//   measure_decode         keys read per step by the real decode path (model/decode.h)
//   run_evaluation         everything, for one checkpoint, into results.json + figures + report.md
//
// Shape legend: R held-out rows (batches x batch size), T seq_len, L layers, W sliding_window.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval/metrics.h"
#include "model/transformer.h"

namespace swiattn {

// The `eval.*` knobs (`--set eval.key=value`). 0 / empty means "derived from the checkpoint".
struct EvalConfig {
  uint64_t seed = 20260324;              // synthetic examples (never the training seed's streams)
  int64_t batches = 8;                   // held-out batches (validation split, as train uses it)
  int64_t batch_size = 4;                // rows per held-out batch
  std::vector<int64_t> passkey_lengths;  // empty: {T/4, T/2, T}, those long enough for the needle
  std::vector<double> passkey_depths = {0.0, 0.25, 0.5, 0.75, 1.0};
  int64_t passkey_trials = 4;            // examples per (length, depth) cell and per distance
  std::vector<int64_t> passkey_distances; // empty: default_passkey_distances at T (eval/retrieval.h)
  int64_t mqar_length = 0;               // 0: T
  int64_t mqar_pairs = 0;                // 0: the checkpoint's data.mqar_pairs when it trained on MQAR rows,
                                         //    else as many as fill about half of mqar_length (1..16)
  int64_t mqar_trials = 8;               // MQAR examples
  int64_t decode_tokens = 0;             // 0: T; real-text tokens fed through the decode path
  int64_t threads = 0;                   // OpenMP threads; 0 = all cores
  std::string cache_dir;                 // "": the checkpoint's data.cache_dir
  std::string corpus;                    // "": the checkpoint's data.corpus (its validation split is read)
  std::string device = "cpu";            // "cpu" | "cuda"
  bool allow_nonfinite = false;          // --allow-nonfinite: load weights holding NaN or infinity (not an
                                         // eval.* key; the evaluation still refuses non-finite outputs)
};

// Applies "eval.key=value" (the value parsed as JSON when it parses, else taken as a string).
// Throws Error naming the key for an unknown key or a value of the wrong type or range.
void apply_eval_override(EvalConfig& config, const std::string& assignment);
nlohmann::json eval_config_to_json(const EvalConfig& config);

// Per layer and position: m_t^l of row `row` of a forward's routing ("full" layers 1, "swa" 0).
Routes routes_of(const Transformer& model, const std::vector<LayerRouting>& routing, int64_t row, int64_t T);

// The model as a Predictor: one forward of the whole token sequence (batch 1, no gradients).
Predictor model_predictor(const Transformer& model);

struct HeldOutResult {
  int64_t T = 0;
  std::vector<double> nll;     // (R * T) next-token NLL, row-major
  std::vector<Routes> routes;  // (R) routes (L, T) of each row
  double mean_loss() const;    // mean of nll
};
// Every (inputs, targets) batch (B, T) int32 through forward_with_routing, no gradients. Throws
// an Error when the logits or the router logits are not finite (a broken model).
HeldOutResult evaluate_held_out(const Transformer& model,
                                const std::vector<std::pair<Tensor, Tensor>>& batches);

struct DecodeMeasurement {
  std::vector<double> measured;        // (n) keys read per step, averaged over layers (DecodeStats)
  std::vector<double> formula;         // (n) spec §8 from the full forward's routes of the same tokens
  std::vector<double> full_attention;  // (n) t + 1: FullAttn on the same tokens
  int64_t route_mismatches = 0;        // (layer, position) pairs where decode and forward routed differently
  double bytes_per_token_key = 0.0;    // 2 * Hkv * D * bytes per element: bytes of one key + value
};
// Feeds `tokens` one per decode step through a Decoder (model/decode.h) on the model's device,
// counting keys read. On CUDA a route of the one-row step can differ from the full forward's
// where the router's probability sits at the threshold within rounding (route_mismatches says).
DecodeMeasurement measure_decode(const Transformer& model, const std::vector<int32_t>& tokens);

// Loads the checkpoint (DIR or DIR/checkpoint), evaluates it, writes OUT/results.json, the SVG
// figures and OUT/report.md. Progress lines go to `log`. Returns the results.
nlohmann::json run_evaluation(const std::string& checkpoint, const std::string& out_dir,
                              const EvalConfig& config, std::ostream& log);

// eval/report.cpp: the figures (SVG) and report.md of one results.json, into out_dir.
// Returns the file names written.
std::vector<std::string> write_report(const nlohmann::json& results, const std::string& out_dir);

// eval/table.cpp: `swiattn eval table`: the reproduction table of several evaluations.
// rows: (method name, its eval output dirs: one per training seed) in row order; one row must be
// named FullAttn. Refuses evaluations whose measured-number knobs differ (naming the knob).
std::string reproduction_table(const std::vector<std::pair<std::string, std::vector<std::string>>>& rows);

}  // namespace swiattn
