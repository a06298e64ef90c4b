// eval/run_evaluation.cpp: `swiattn eval` on one checkpoint: load, run every metric, write
// results.json, the figures and report.md (docs/eval.md lists every key).
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <memory>
#include <ostream>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/read_file.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "eval/retrieval.h"
#include "kernels/cuda/decode_attention.h"  // decode_attention_supported
#include "tensor/cuda/device.h"
#include "train/checkpoint.h"
#include "model/memory_estimate.h"
#include "train/nonfinite.h"
#include "model/safetensors.h"
#include "tensor/random.h"
#include "model/route_count.h"

namespace swiattn {

namespace {

using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The commit evaluated: $SWIATTN_COMMIT, else `git rev-parse HEAD` in the working directory,
// else "unknown".
std::string current_commit() {
  if (const char* env = std::getenv("SWIATTN_COMMIT"); env && *env) return env;
  std::string out;
  if (FILE* p = popen("git rev-parse HEAD 2>/dev/null", "r")) {
    char buf[128];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "unknown";
}

// DIR itself when it holds model.safetensors, else DIR/checkpoint (a train output folder).
std::string resolve_checkpoint(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty()) throw Error("eval: --checkpoint DIR is required");
  if (!fs::exists(dir)) throw Error("eval: checkpoint " + dir + " does not exist");
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;
  if (fs::exists(fs::path(dir) / "checkpoint" / "model.safetensors")) return (fs::path(dir) / "checkpoint").string();
  throw Error("eval: no checkpoint in " + dir + " (expected " + dir + "/model.safetensors or " + dir +
              "/checkpoint/model.safetensors, as swiattn train writes)");
}

// exact / per-digit accuracy and answer NLL of a tally, with its counts.
json tally_json(const AnswerTally& t) {
  return {{"answers", t.answers}, {"exact_accuracy", t.exact_accuracy()}, {"per_digit_accuracy", t.token_accuracy()},
          {"answer_nll", t.mean_nll()}, {"scored_tokens", t.scored_tokens}};
}

json bucket_json(const std::vector<Bucket>& buckets, const char* count_name, const char* mean_name) {
  json a = json::array();
  for (const Bucket& b : buckets)
    a.push_back({{"begin", b.begin}, {"end", b.end}, {count_name, b.count}, {mean_name, b.mean()}});
  return a;
}

// Mean over a list of rows of per-position values.
std::vector<double> mean_rows(const std::vector<std::vector<double>>& rows) {
  std::vector<double> m(rows.front().size(), 0.0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) m[i] += r[i] / static_cast<double>(rows.size());
  return m;
}

// Creates the folder and writes (then removes) a file in it, so an --out that cannot be written
// fails before the evaluation instead of after it.
void require_writable_folder(const std::string& out_dir) {
  const std::string probe = (std::filesystem::path(out_dir) / ".swiattn-write-test").string();
  try {
    make_directories(out_dir);
    write_file_atomically(probe, "");
    remove_file(probe);
  } catch (const Error& e) {
    throw Error("eval: --out " + out_dir + " cannot be written: " + e.what());
  }
}

double sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

json run_evaluation(const std::string& checkpoint_arg, const std::string& out_dir, const EvalConfig& ec,
                    std::ostream& log) {
  const auto start = std::chrono::steady_clock::now();
  if (out_dir.empty()) throw Error("eval: --out DIR is required");
  const std::string dir = resolve_checkpoint(checkpoint_arg);
  require_writable_folder(out_dir);  // now, not after the whole evaluation
  const CheckpointConfigs configs = read_checkpoint_configs(dir);  // config.json against run_config.json
  const Config& run = configs.run;
  const ModelConfig& mc = configs.model;
  if (ec.threads > 0) omp_set_num_threads(static_cast<int>(ec.threads));
  const Device device = ec.device == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA) cuda::require_cuda_device("eval.device \"cuda\"");  // before loading anything big
  // float64 checkpoints evaluate in float64 on the CPU; CUDA computes in float32.
  const DType dtype = run.train.dtype == "float64" && device == Device::CPU ? DType::F64 : DType::F32;
  auto load = [&] {
    auto m = std::make_unique<Transformer>(mc, dtype, 0);
    load_model_weights(dir, *m, nullptr, nullptr, ec.allow_nonfinite);
    return m;
  };
  require_memory_fits(estimate_memory(mc, dtype, false, ec.batch_size, run.train.seq_len, "eval.batch_size x train.seq_len"),
                      device, "eval");
  std::unique_ptr<Transformer> model = load();
  const std::string broken = ec.allow_nonfinite ? first_nonfinite_state(model->parameters(), nullptr) : "";
  if (!broken.empty()) log << "  warning: non-finite values in " << broken << " (loaded with --allow-nonfinite)\n";
  if (device == Device::CUDA) model->to(Device::CUDA);

  const int64_t T = run.train.seq_len, W = mc.sliding_window, L = mc.num_hidden_layers;
  const int64_t H = mc.num_attention_heads, D = mc.head_dim;
  const std::string cache_dir = ec.cache_dir.empty() ? run.data.cache_dir : ec.cache_dir;
  const std::string corpus_name = ec.corpus.empty() ? run.data.corpus : ec.corpus;
  const auto tokenizer = make_tokenizer(run.data.tokenizer, cache_dir);
  // The validation split of what the checkpoint trained on: a fetched corpus or the user's own
  // text or tokens (data/dataset.h), split by the same rule as in training.
  TokenSplits splits;
  try {
    splits = load_token_splits(corpus_name, cache_dir, run.data.val_fraction, *tokenizer);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + (ec.corpus.empty() ? " (the checkpoint's data.corpus; --set eval.corpus=PATH reads it elsewhere)" : ""));
  }
  const std::vector<int32_t>& val_tokens = splits.val;
  log << "swiattn eval: " << dir << "\n  " << L << " layers (";
  for (int64_t l = 0; l < L; ++l) log << (l ? " " : "") << layer_type_name(mc.layer_type(l));
  log << "), T " << T << ", window " << W << ", " << dtype_name(dtype) << " on " << device_name(device) << ", "
      << omp_get_max_threads() << " threads\n  held-out text: " << val_tokens.size() << " tokens ("
      << corpus_name << " validation split, " << tokenizer->name() << " tokenizer)\n" << std::flush;

  json r;
  r["checkpoint"] = dir;
  r["commit"] = current_commit();
  r["device"] = device_name(device);
  r["dtype"] = dtype_name(dtype);
  r["seed"] = ec.seed;
  r["eval_config"] = eval_config_to_json(ec);
  if (ec.allow_nonfinite) r["allow_nonfinite"] = true;
  if (!broken.empty()) r["nonfinite_weights"] = broken;
  r["model_config"] = model_config_to_hf_json(mc, dtype);
  r["run_config"] = config_to_json(run);
  r["seq_len"] = T;
  r["window"] = W;
  r["parameters"] = model->parameter_count();
  json types = json::array();
  for (int64_t l = 0; l < L; ++l) types.push_back(layer_type_name(mc.layer_type(l)));
  r["layer_types"] = types;
  if (const json prior = read_trainer_state(dir); prior.is_object()) r["trainer_state"] = prior;

  // ---- held-out perplexity, routing, prefill FLOPs (the validation split, as train uses it) ----
  auto t0 = std::chrono::steady_clock::now();
  const auto batches = sequential_batches(val_tokens, static_cast<int>(ec.batch_size), static_cast<int>(T),
                                          static_cast<int>(ec.batches));
  const HeldOutResult held = evaluate_held_out(*model, batches);
  const double loss = held.mean_loss();
  const auto window_buckets = bucket_by_position(held.nll, T, window_edges(T, W));
  const auto fine_buckets = bucket_by_position(held.nll, T, power_of_two_edges(T));
  r["held_out"] = {{"tokens", held.nll.size()}, {"rows", held.routes.size()}, {"loss", loss},
                   {"perplexity", std::exp(loss)}, {"loss_inside_window", window_buckets.front().mean()},
                   {"loss_beyond_window", window_buckets.size() > 1 ? window_buckets.back().mean() : kNaN},
                   {"buckets", bucket_json(fine_buckets, "tokens", "loss")}};
  log << "  held-out loss " << std::fixed << std::setprecision(4) << loss << " (t < W " << window_buckets.front().mean()
      << ", t >= W " << (window_buckets.size() > 1 ? window_buckets.back().mean() : kNaN) << ") over "
      << held.nll.size() << " tokens (" << std::setprecision(1) << seconds_since(t0) << " s)\n" << std::flush;

  // Routing on real text: FA ratio per layer (Fig. 5), per position bucket, raw and t >= W.
  std::vector<RouteCount> layer_counts(static_cast<size_t>(L));
  std::vector<RouteCount> position_counts(static_cast<size_t>(T));  // over rows and layers
  for (const Routes& routes : held.routes)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t t = 0; t < T; ++t) {
        const double m = routes[static_cast<size_t>(l)][static_cast<size_t>(t)];
        layer_counts[static_cast<size_t>(l)].add(m, t, W);
        position_counts[static_cast<size_t>(t)].add(m);
      }
  std::vector<double> per_layer, per_layer_beyond, fa_by_position;
  for (const RouteCount& c : layer_counts) per_layer.push_back(c.ratio()), per_layer_beyond.push_back(c.far_ratio());
  for (const RouteCount& c : position_counts) fa_by_position.push_back(c.ratio());
  const auto fa_buckets = bucket_by_position(fa_by_position, T, power_of_two_edges(T));
  double ratio = 0.0, ratio_beyond = 0.0;
  for (int64_t l = 0; l < L; ++l) {
    ratio += per_layer[static_cast<size_t>(l)] / static_cast<double>(L);
    ratio_beyond += per_layer_beyond[static_cast<size_t>(l)] / static_cast<double>(L);
  }
  r["routing"] = {{"fa_ratio", ratio}, {"fa_ratio_beyond_window", ratio_beyond}, {"per_layer", per_layer},
                  {"per_layer_beyond_window", per_layer_beyond},
                  {"by_position", bucket_json(fa_buckets, "positions", "fa_ratio")}};
  log << "  full-attention ratio " << std::setprecision(3) << ratio << " (t >= W: " << ratio_beyond << "); per layer";
  for (double x : per_layer) log << " " << x;
  log << "\n" << std::flush;

  // Prefill attention FLOPs (spec §8) from the actual routes, mean over the held-out rows.
  std::vector<std::vector<double>> flops_rows;
  for (const Routes& routes : held.routes) flops_rows.push_back(prefill_attention_flops(routes, W, H, D));
  const std::vector<double> flops = mean_rows(flops_rows), dense = dense_attention_flops(T, L, H, D);
  const double linear = 2.0 * static_cast<double>(model->parameter_count()) * static_cast<double>(T);
  r["efficiency"]["prefill"] = {{"attention_flops_total", sum(flops)},
                                {"full_attention_flops_total", sum(dense)},
                                {"relative_to_full_attention", sum(flops) / sum(dense)},
                                {"linear_flops_total", linear},
                                {"model_flops_total", sum(flops) + linear},
                                {"per_position", flops},
                                {"full_attention_per_position", dense}};

  // ---- decode: keys read per step through the real decode path (on the model's device), vs the formula ----
  t0 = std::chrono::steady_clock::now();
  {
    const int64_t n = std::min<int64_t>(ec.decode_tokens > 0 ? ec.decode_tokens : T, static_cast<int64_t>(val_tokens.size()));
    const std::vector<int32_t> prompt(val_tokens.begin(), val_tokens.begin() + n);
    // The CUDA decode kernel covers head dims 64 and 128 (kernels/cuda/decode_attention.h); for
    // other shapes the keys read are counted on the CPU path, which computes the same routes.
    const int64_t group = mc.num_attention_heads / mc.num_key_value_heads;
    const bool on_device = device != Device::CUDA || cuda::decode_attention_supported(D, group);
    std::unique_ptr<Transformer> cpu_model;
    if (!on_device) {
      log << "  decode: counted on the cpu (the CUDA decode kernel supports head_dim 64 and 128 and groups 1, 2, 4, 8; "
          << "this model: head_dim " << D << ", group " << group << ")\n";
      cpu_model = load();
    }
    const DecodeMeasurement d = measure_decode(on_device ? *model : *cpu_model, prompt);
    const double measured = sum(d.measured) / static_cast<double>(n), formula = sum(d.formula) / static_cast<double>(n);
    const double full = sum(d.full_attention) / static_cast<double>(n);
    double max_diff = 0.0;
    for (int64_t t = 0; t < n; ++t)
      max_diff = std::max(max_diff, std::abs(d.measured[static_cast<size_t>(t)] - d.formula[static_cast<size_t>(t)]));
    r["efficiency"]["decode"] = {{"tokens", n},
                                 {"device", device_name(on_device ? device : Device::CPU)},
                                 {"mean_keys_read_measured", measured},
                                 {"mean_keys_read_formula", formula},
                                 {"mean_keys_read_full_attention", full},
                                 {"relative_to_full_attention", measured / full},
                                 {"max_abs_measured_minus_formula", max_diff},
                                 {"route_mismatches", d.route_mismatches},
                                 {"bytes_per_key", d.bytes_per_token_key},
                                 {"mean_bytes_read_per_layer", measured * d.bytes_per_token_key},
                                 {"keys_read_measured", d.measured},
                                 {"keys_read_formula", d.formula},
                                 {"keys_read_full_attention", d.full_attention}};
    log << "  decode: " << n << " steps, mean keys read per layer " << std::setprecision(2) << measured
        << " measured, " << formula << " by the spec §8 formula (max |diff| " << max_diff << ", "
        << d.route_mismatches << " route mismatches), FullAttn " << full << " (" << std::setprecision(1)
        << seconds_since(t0) << " s)\n" << std::flush;
  }

  // ---- passkey grid (validation filler, eval seed) ----
  t0 = std::chrono::steady_clock::now();
  const Predictor predict = model_predictor(*model);
  PasskeySettings ps;
  ps.depths = ec.passkey_depths;
  ps.trials = ec.passkey_trials;
  ps.window = W;
  ps.seed = derive_seed(ec.seed, 1);
  json skipped = json::array();
  if (!ec.passkey_lengths.empty()) {
    ps.lengths = ec.passkey_lengths;
  } else {
    // A length is used when every key fits (BPE keys differ in token count: passkey_min_length).
    const int64_t min_length = passkey_min_length(*tokenizer);
    for (int64_t len : {T / 4, T / 2, T}) {
      if (len >= min_length) {
        if (ps.lengths.empty() || ps.lengths.back() != len) ps.lengths.push_back(len);
      } else {
        skipped.push_back(len);
        log << "  passkey length " << len << " skipped: shorter than the " << min_length
            << " tokens a passkey example needs with the " << tokenizer->name() << " tokenizer\n";
      }
    }
    if (ps.lengths.empty()) throw Error("eval: no passkey length fits the needle at T = " + std::to_string(T) + " (set eval.passkey_lengths)");
  }
  for (int64_t len : ps.lengths)
    if (len > mc.max_position_embeddings)
      throw Error("eval: passkey length " + std::to_string(len) + " exceeds max_position_embeddings " +
                  std::to_string(mc.max_position_embeddings));
  const PasskeyResult pk = evaluate_passkey(predict, *tokenizer, val_tokens, ps, &log);
  json cells = json::array();
  for (const PasskeyCell& c : pk.cells) {
    const double inside = static_cast<double>(c.trials - c.beyond_trials), beyond = static_cast<double>(c.beyond_trials);
    cells.push_back({{"length", c.length}, {"depth", c.depth}, {"trials", c.trials}, {"correct", c.correct},
                     {"accuracy", c.accuracy()}, {"mean_distance", c.mean_distance},
                     {"beyond_trials", c.beyond_trials}, {"beyond_correct", c.beyond_correct},
                     {"answer_fa_ratio", (c.answer_fa_inside_sum + c.answer_fa_beyond_sum) / static_cast<double>(c.trials)},
                     {"answer_fa_ratio_inside", inside > 0 ? c.answer_fa_inside_sum / inside : kNaN},
                     {"answer_fa_ratio_beyond", beyond > 0 ? c.answer_fa_beyond_sum / beyond : kNaN},
                     {"fa_ratio_all_positions", c.all_fa_sum / static_cast<double>(c.trials)},
                     {"per_digit_accuracy", c.tally.token_accuracy()}, {"answer_nll", c.tally.mean_nll()}});
  }
  r["passkey"] = {{"lengths", ps.lengths}, {"lengths_skipped", skipped}, {"depths", ps.depths},
                  {"trials_per_cell", ps.trials}, {"trials", pk.trials}, {"correct", pk.correct},
                  {"accuracy", pk.accuracy()}, {"beyond_window_trials", pk.beyond_trials},
                  {"beyond_window_accuracy", pk.beyond_accuracy()}, {"inside_window_accuracy", pk.inside_accuracy()},
                  {"answer_fa_ratio_inside", pk.answer_fa_inside}, {"answer_fa_ratio_beyond", pk.answer_fa_beyond},
                  {"inside_window", tally_json(pk.inside)}, {"beyond_window", tally_json(pk.beyond)},
                  {"cells", cells}};
  log << "  passkey accuracy " << std::setprecision(3) << pk.accuracy() << " (beyond the window "
      << pk.beyond_accuracy() << " of " << pk.beyond_trials << "; inside " << pk.inside_accuracy() << ") ("
      << std::setprecision(1) << seconds_since(t0) << " s)\n" << std::flush;

  // ---- passkey at controlled distances, at the trained length T (the headline numbers, Fig. 6) ----
  t0 = std::chrono::steady_clock::now();
  PasskeyDistanceSettings pd;
  pd.length = T;
  pd.distances = ec.passkey_distances.empty() ? default_passkey_distances(*tokenizer, T, W) : ec.passkey_distances;
  pd.trials = ec.passkey_trials;
  pd.window = W;
  pd.seed = derive_seed(ec.seed, 3);
  if (pd.distances.empty())
    throw Error("eval: no passkey distance fits at T = " + std::to_string(T) + " (set eval.passkey_distances)");
  const PasskeyDistanceResult pdr = evaluate_passkey_by_distance(predict, *tokenizer, val_tokens, pd, &log);
  json distance_rows = json::array();
  for (const PasskeyDistanceRow& row : pdr.rows)
    distance_rows.push_back({{"distance", row.distance}, {"beyond_window", row.beyond}, {"trials", row.tally.answers},
                             {"exact_accuracy", row.tally.exact_accuracy()},
                             {"per_digit_accuracy", row.tally.token_accuracy()}, {"answer_nll", row.tally.mean_nll()},
                             {"answer_fa_ratio", row.answer_fa}, {"answer_fa_ratio_per_layer", row.answer_fa_per_layer},
                             {"fa_ratio_all_positions", row.all_fa}});
  r["passkey_by_distance"] = {{"length", T}, {"distances", pd.distances}, {"trials_per_distance", pd.trials},
                              {"inside_window", tally_json(pdr.inside)}, {"beyond_window", tally_json(pdr.beyond)},
                              {"answer_fa_ratio_inside_per_layer", pdr.answer_fa_inside_per_layer},
                              {"answer_fa_ratio_beyond_per_layer", pdr.answer_fa_beyond_per_layer},
                              {"fa_ratio_all_positions_inside", pdr.all_fa_inside},
                              {"fa_ratio_all_positions_beyond", pdr.all_fa_beyond},
                              {"rows", distance_rows}};

  // ---- MQAR ----
  MqarSettings ms;
  ms.length = ec.mqar_length > 0 ? ec.mqar_length : T;
  ms.trials = ec.mqar_trials;
  ms.window = W;
  ms.seed = derive_seed(ec.seed, 2);
  ms.distance_edges = power_of_two_edges(ms.length);
  ms.pairs = ec.mqar_pairs;
  if (ms.pairs == 0 && run.data.synthetic_fraction > 0 && run.data.mqar_weight > 0) {
    ms.pairs = run.data.mqar_pairs;  // what the checkpoint was trained on
  } else if (ms.pairs == 0) {  // as many pairs as fill about half the example (pair + query ~ 2 queries)
    const int64_t per_pair = 2 * static_cast<int64_t>(tokenizer->encode(" The code for apple is 1234").size()) + 1;
    ms.pairs = std::clamp<int64_t>(ms.length / 2 / per_pair, 1, 16);
  }
  if (ms.length > mc.max_position_embeddings)
    throw Error("eval: eval.mqar_length " + std::to_string(ms.length) + " exceeds max_position_embeddings");
  const MqarResult mq = evaluate_mqar(predict, *tokenizer, val_tokens, ms, &log);
  json by_distance = bucket_json(mq.by_distance, "answers", "accuracy");
  r["mqar"] = {{"length", ms.length}, {"pairs", ms.pairs}, {"trials", ms.trials}, {"answers", mq.correct.size()},
               {"accuracy", mq.accuracy()}, {"beyond_window_accuracy", mq.beyond_accuracy(W)},
               {"pairs_source", ec.mqar_pairs > 0 ? "eval.mqar_pairs"
                                : run.data.synthetic_fraction > 0 && run.data.mqar_weight > 0 ? "data.mqar_pairs of the checkpoint's run"
                                                                                              : "half the example"},
               {"all", tally_json(mq.all)}, {"inside_window", tally_json(mq.inside)},
               {"beyond_window", tally_json(mq.beyond)}, {"by_distance", by_distance}};

  r["wall_seconds"] = seconds_since(start);
  std::filesystem::create_directories(out_dir);
  write_file_atomically((std::filesystem::path(out_dir) / "results.json").string(), r.dump(2) + "\n");
  const std::vector<std::string> files = write_report(r, out_dir);
  log << "  wrote " << out_dir << "/results.json";
  for (const std::string& f : files) log << ", " << f;
  log << " (" << std::setprecision(1) << seconds_since(start) << " s in all)\n" << std::flush;
  if (!broken.empty())  // --allow-nonfinite: the numbers are written, and the exit status says what they are worth
    throw Error("eval: results written to " + out_dir + ", but computed with non-finite values in " + broken +
                " (loaded with --allow-nonfinite)");
  return r;
}

}  // namespace swiattn
