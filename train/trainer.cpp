#include "train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/device.h"
#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "model/sampling.h"
#include "tensor/random.h"
#include "train/answer_nll.h"
#include "train/data_parallel.h"  // [data-parallel]
#include "train/optimizer.h"
#include "train/nonfinite.h"
#include "train/regularizer.h"
#include "train/run_checks.h"
#include "train/run_folder.h"
#include "train/train_state.h"

namespace swiattn {

double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches,
                     std::vector<double>* layer_ratios) {
  if (batches.empty()) throw Error("evaluate_loss: no batches");
  NoGradGuard no_grad;
  double total = 0.0;
  if (layer_ratios) layer_ratios->clear();
  for (const auto& [inputs, targets] : batches) {
    const ForwardResult f = model.forward_with_routing(inputs, false);
    total += next_token_loss(f.logits, targets).value().item();
    if (!layer_ratios) continue;
    layer_ratios->resize(f.routing.size(), 0.0);
    for (size_t l = 0; l < f.routing.size(); ++l) {
      const Tensor& m = f.routing[l].route;
      double routed = 0.0;
      for (double x : m.to_vector()) routed += x;  // one copy from the device, if there
      (*layer_ratios)[l] += routed / static_cast<double>(m.numel() * batches.size());
    }
  }
  return total / static_cast<double>(batches.size());
}

// "0.41 0.12 0.33": one full-attention ratio per switch layer.
static std::string ratios_str(const std::vector<double>& ratios) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  for (size_t i = 0; i < ratios.size(); ++i) s << (i ? " " : "") << ratios[i];
  return s.str();
}

static std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60) out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else out << s << "s";
  return out.str();
}

// "full full swa switch" (or "all full").
static std::string layer_types_str(const ModelConfig& m) {
  if (m.layer_types.empty()) return "all full";
  std::string s;
  for (const std::string& t : m.layer_types) s += (s.empty() ? "" : " ") + t;
  return s;
}

static std::vector<double> layer_field(const RegularizerResult& r, double LayerRoutingStats::*field) {
  std::vector<double> values;
  for (const LayerRoutingStats& l : r.layers) values.push_back(l.*field);
  return values;
}

// The wall-clock time now, ISO 8601 in UTC with milliseconds: "2026-12-01T09:14:44.123Z".
static std::string utc_now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms));
  return buf;
}

// One record of OUT/metrics.jsonl (docs/training.md): its kind ("progress", "validation",
// "skipped", "final") and the wall-clock time are on every line.
static void write_metrics_record(std::ostream& metrics, const char* kind, nlohmann::json record) {
  record["kind"] = kind;
  record["time"] = utc_now_iso();
  metrics << record.dump() << "\n" << std::flush;
}

std::vector<CurriculumStage> curriculum_stages(const TrainConfig& tc) {
  if (tc.curriculum.empty()) return {{tc.steps, tc.seq_len, tc.batch_size}};
  std::vector<CurriculumStage> stages = tc.curriculum;
  for (CurriculumStage& s : stages)
    if (s.batch_size == 0) s.batch_size = tc.batch_size;
  return stages;
}

size_t curriculum_stage_at(const std::vector<CurriculumStage>& stages, int64_t step) {
  int64_t end = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    end += stages[i].steps;
    if (step < end) return i;
  }
  return stages.size() - 1;  // step == train.steps (the end of the run): the last stage
}

// "answer NLL passkey 0.412 mqar 1.873" and {"passkey": 0.412, "mqar": 1.873}.
static void log_answer_nll(const std::map<std::string, double>& nll, std::ostream& log, nlohmann::json& line) {
  if (nll.empty()) return;
  log << " | answer NLL";
  for (const auto& [task, value] : nll) log << " " << task << " " << std::setprecision(3) << value;
  line["answer_nll"] = nll;
}

TrainSummary run_training(const Config& config, const std::string& out_dir, std::ostream& log, bool resume,
                          bool overwrite, DataParallel* data_parallel) {
  validate_config(config);
  DataParallel single_process;                                              // [data-parallel]
  DataParallel& dp = data_parallel ? *data_parallel : single_process;       // [data-parallel]
  dp.check_config(config);                                                  // [data-parallel]
  // The folder rules of train/run_folder.h, before anything is loaded; nothing is written to the
  // folder until the run starts (below, once data and model are ready). [data-parallel] rank 0
  // owns the folder: the other ranks would see its files appear.
  if (dp.is_rank0())
    check_run_folder(out_dir, resume ? RunStart::resume : overwrite ? RunStart::overwrite : RunStart::fresh);
  const TrainConfig& tc = config.train;
  if (tc.threads > 0) omp_set_num_threads(static_cast<int>(tc.threads));
  const DType dtype = tc.dtype == "float64" ? DType::F64 : DType::F32;  // "bfloat16": float32 masters
  const Device device = tc.device == "cuda" ? Device::CUDA : Device::CPU;
  // train.deterministic, train.float32_attention: GPU kernel modes for this run (tensor/cuda/device.h).
  struct CudaModeScope {
    bool deterministic = cuda::deterministic(), float32_in_bf16 = cuda::float32_attention_in_bf16();
    ~CudaModeScope() {
      cuda::set_deterministic(deterministic);
      cuda::set_float32_attention_in_bf16(float32_in_bf16);
    }
  } cuda_mode_scope;
  cuda::set_deterministic(device == Device::CUDA && tc.deterministic);
  cuda::set_float32_attention_in_bf16(device == Device::CUDA && tc.float32_attention == "bfloat16");
  const std::filesystem::path out(out_dir);
  const std::string resume_dir = (out / "checkpoint").string();
  TrainingState resumed;
  if (resume) {
    // The trainer state first: a finished run has nothing to do, and then changes nothing on disk.
    resumed = training_state_from_json(read_trainer_state(resume_dir), resume_dir + "/trainer_state.json");
    validate_training_state(resumed, config, resume_dir + "/trainer_state.json");
    if (resumed.step >= tc.steps) return finished_run_summary(resumed, out_dir, log);
  }
  require_training_memory(config, device, dtype);  // train/run_checks.cpp: refused before allocating

  if (device == Device::CUDA) cuda::require_cuda_device("train.device \"cuda\"");  // before the data is read
  // Data: a fetched corpus split by whole documents, or the user's own text or tokens (data/dataset.h).
  auto tokenizer = make_tokenizer(config.data.tokenizer, config.data.cache_dir);
  const TokenSplits splits = load_token_splits(config.data.corpus, config.data.cache_dir, config.data.val_fraction, *tokenizer);
  const std::vector<int32_t>& train_tokens = splits.train;
  const std::vector<int32_t>& val_tokens = splits.val;
  TrainSummary summary;
  summary.unigram_entropy = unigram_entropy(train_tokens, tokenizer->vocab_size());
  // The training mixture (data/README.md): synthetic retrieval rows use training-split filler.
  SyntheticMixture mixture;
  mixture.fraction = config.data.synthetic_fraction;
  mixture.passkey_weight = config.data.passkey_weight;
  mixture.mqar_weight = config.data.mqar_weight;
  mixture.mqar_pairs = config.data.mqar_pairs;
  mixture.min_needle_distance =
      config.data.min_needle_distance < 0 ? config.model.sliding_window : config.data.min_needle_distance;
  mixture.tokenizer = tokenizer.get();
  // The context curriculum (train.curriculum; without one, a single stage of train.seq_len). Each
  // stage has its own loader over the same token stream; the loaders share one counter-based Rng
  // (the counter carries over from stage to stage), so a resumed run reads the same rows.
  const std::vector<CurriculumStage> stages = curriculum_stages(tc);
  auto make_loader = [&](size_t stage) {
    return std::make_unique<BatchLoader>(train_tokens, static_cast<int>(stages[stage].batch_size),
                                         static_cast<int>(stages[stage].seq_len), derive_seed(tc.seed, 1), mixture,
                                         dp.row_shard());  // [data-parallel] this rank's rows
  };
  std::vector<std::vector<std::pair<Tensor, Tensor>>> stage_val_batches(stages.size());
  auto val_batches = [&](size_t stage) -> const std::vector<std::pair<Tensor, Tensor>>& {
    auto& batches = stage_val_batches[stage];
    if (batches.empty())
      batches = dp.local_rows(sequential_batches(val_tokens, static_cast<int>(stages[stage].batch_size),  // [data-parallel]
                                                 static_cast<int>(stages[stage].seq_len), static_cast<int>(tc.eval_batches)));
    return batches;
  };
  size_t stage = 0;
  std::unique_ptr<BatchLoader> loader = make_loader(stage);

  Transformer model(config.model, dtype, derive_seed(tc.seed, 0));
  model.to(device);  // before the optimizer: its moments are allocated where the parameters are
  if (tc.dtype == "bfloat16") model.set_compute_dtype(DType::BF16);  // mixed precision
  AdamWOptions adam;
  adam.beta1 = tc.beta1;
  adam.beta2 = tc.beta2;
  adam.eps = tc.adam_eps;
  adam.weight_decay = tc.weight_decay;
  AdamW optimizer(model.parameters(), adam);
  TrainingState state;
  state.gamma_base = config.reg.gamma_base;
  state.loader_rng_seed = loader->rng().seed;

  std::string init_note;
  if (resume) {
    // Resume (docs/reliability.md): weights, moments, step, data position, controller state.
    load_model_weights(resume_dir, model);
    load_optimizer_state(resume_dir, optimizer, model);
    state = resumed;
    check_resumed_state(state, optimizer, loader->rng().seed, resume_dir);  // train/run_checks.cpp
    stage = curriculum_stage_at(stages, state.step);
    if (stage != 0) loader = make_loader(stage);
    loader->rng().counter = state.loader_rng_counter;
    init_note = "  resumed from " + resume_dir + " at step " + std::to_string(state.step) + "\n" +
                extension_note(read_checkpoint_run_config(resume_dir), config, state.step);
  } else if (!tc.init_from.empty()) {
    // Continual pretraining (spec §6): same weights, new layer types; routers the checkpoint
    // lacks keep their initialisation (model.router_init).
    const LoadReport loaded = load_model_weights(tc.init_from, model, is_router_parameter);
    init_note = "  initialised from " + tc.init_from + ": " + std::to_string(loaded.loaded.size()) +
                " tensors loaded, " + std::to_string(loaded.initialised.size()) + " router tensors initialised (" +
                config.model.router_init + ")";
    const nlohmann::json prior = read_trainer_state(tc.init_from);
    if (prior.is_object() && prior.contains("final_val_loss") && prior["final_val_loss"].is_number())
      init_note += "; its validation loss " + std::to_string(prior["final_val_loss"].get<double>());
    init_note += "\n";
  }
  // The run starts: only now is the folder written (with overwrite, the old run is removed now).
  if (dp.is_rank0() && overwrite && !resume) clear_previous_run(out_dir);      // [data-parallel] rank 0 writes
  if (dp.is_rank0() && resume) truncate_metrics((out / "metrics.jsonl").string(), state.step);
  std::filesystem::create_directories(out);
  // [data-parallel] rank 0 alone writes the run's files; on other ranks `metrics` is never opened,
  // so what is streamed into it goes nowhere.
  std::ofstream metrics;
  if (dp.is_rank0()) {
    write_file_atomically((out / "config.json").string(), config_to_json(config).dump(2) + "\n");
    metrics.open(out / "metrics.jsonl", resume ? std::ios::app : std::ios::trunc);
    if (!metrics) throw Error("cannot write " + (out / "metrics.jsonl").string());
  }

  bool has_switch = false;
  for (int64_t l = 0; l < config.model.num_hidden_layers; ++l) has_switch = has_switch || config.model.layer_type(l) == "switch";
  const bool measure_branches = has_switch && config.reg.mode == "adaptive";

  log << "swiattn train: " << splits.description << "\n"
      << "  tokenizer " << tokenizer->name() << ": " << train_tokens.size() << " train / "
      << val_tokens.size() << " validation tokens; unigram entropy " << std::fixed
      << std::setprecision(3) << summary.unigram_entropy << " nats/token\n"
      << "  model: " << model.parameter_count() << " parameters, " << config.model.num_hidden_layers
      << " layers, d_model " << config.model.hidden_size << ", " << dtype_name(dtype) << ", "
      << omp_get_max_threads() << " threads\n"
      << "  device: " << device_name(device)
      << (model.compute_dtype() != dtype ? std::string(", mixed precision: ") + dtype_name(model.compute_dtype()) +
                                               " compute, " + dtype_name(dtype) + " master weights and moments"
                                         : std::string(", ") + dtype_name(dtype) + " compute")
      << (cuda::deterministic() ? ", deterministic (fixed-order sums)" : "")
      << (cuda::float32_attention_in_bf16() && tc.dtype == "float32" ? ", attention on bfloat16 tensor cores" : "")
      << "\n"
      << "  layer types: " << layer_types_str(config.model) << " (window " << config.model.sliding_window << ")\n"
      << "  training rows: " << loader->mixture_description() << "\n"
      << dp.description()  // [data-parallel]
      << init_note;
  if (tc.curriculum.empty()) {
    log << "  training: " << tc.steps << " steps of " << tc.batch_size << " x " << tc.seq_len << " tokens";
  } else {
    log << "  training: " << tc.steps << " steps in a curriculum of " << stages.size() << " stages:";
    for (const CurriculumStage& c : stages) log << " " << c.steps << " x (" << c.batch_size << " x " << c.seq_len << ")";
  }
  log << "; output in " << out_dir << "\n";
  if (config.reg.controller == "bias" && has_switch)
    log << "  target-ratio controller: router biases held at a full-attention ratio of " << std::setprecision(3)
        << config.reg.target_ratio << " (reg.controller_rate " << config.reg.controller_rate << ")\n";

  if (!resume) {
    state.initial_val_loss = state.last_val_loss = dp.evaluate_loss(model, val_batches(stage), &state.last_val_ratios);  // [data-parallel]
    log << "  step 0 validation loss " << std::setprecision(4) << state.initial_val_loss;
    if (has_switch) log << " | full-attention ratio per switch layer " << ratios_str(state.last_val_ratios);
    log << "\n" << std::flush;
    write_metrics_record(metrics, "validation", {{"step", 0}, {"val_loss", state.initial_val_loss},
                                                 {"val_seq_len", stages[stage].seq_len},
                                                 {"val_layer_fa_ratio", state.last_val_ratios}});
  }

  dp.check_same_start(config, model.parameters());  // [data-parallel] same configuration and weights everywhere
  if (device == Device::CUDA) cuda::reset_peak_bytes_in_use();  // the peak of the training steps
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const int64_t first_step = state.step;
  int64_t tokens_this_session = 0;  // for tokens/s (stages differ in tokens per step)
  AnswerNllMeter answer_nll(*tokenizer);
  Tensor inputs, targets;
  while (state.step < tc.steps) {
    const int64_t step = state.step;
    if (const size_t next = curriculum_stage_at(stages, step); next != stage) {  // the next curriculum stage
      const uint64_t counter = loader->rng().counter;
      stage = next;
      loader = make_loader(stage);
      loader->rng().counter = counter;
      log << "  curriculum stage " << stage + 1 << "/" << stages.size() << " from step " << step << ": "
          << stages[stage].batch_size << " x " << stages[stage].seq_len << " tokens per step\n" << std::flush;
    }
    const int64_t B = stages[stage].batch_size, T = stages[stage].seq_len;
    const double lr = learning_rate_at(step, tc.learning_rate, tc.min_learning_rate, tc.warmup_steps, tc.steps);
    loader->next(inputs, targets);
    state.loader_rng_counter = loader->rng().counter;
    optimizer.zero_grad();
    const ForwardResult forward = model.forward_with_routing(inputs, measure_branches);
    Tensor per_token_nll;
    Var loss = next_token_loss(forward.logits, targets, &per_token_nll);       // L_LM
    answer_nll.add(loader->last_rows(), targets, per_token_nll);
    // On CUDA the routing statistics are read back only when logged.
    const bool logging = (step + 1) % tc.log_interval == 0 || step + 1 == tc.steps;
    const bool read_stats = device == Device::CPU || logging;
    RegularizerResult reg = efficiency_regularizer(forward.routing, per_token_nll, config.reg,
                                                         state.gamma_base, config.model.sliding_window, read_stats);
    Var total = reg.loss.defined() ? add(loss, reg.loss) : loss;              // Eq. 9
    dp.backward(total, model.parameters());  // [data-parallel] then every grad is the mean over the ranks

    // Non-finite guard: never let a NaN or an infinity reach the weights. On CUDA this is the one
    // copy to the host of every step (a count per tensor; train/nonfinite.cpp). The weights the
    // previous optimizer step left are checked in the same pass; a bad one stops the run (every
    // rank holds the same weights, so every rank stops).
    const StepCheck check = check_step_finite(forward, total, model.parameters());
    if (!check.bad_weight.empty()) throw nonfinite_weights_error(check.bad_weight, step, out_dir);
    const std::string bad = dp.nonfinite_on_any_rank(check.bad_step);  // [data-parallel]
    if (!bad.empty()) {
      const std::string what = "non-finite value at step " + std::to_string(step + 1) + ", first in " + bad;
      if (tc.on_nonfinite == "stop")
        throw Error("train: " + what + "; stopped (train.on_nonfinite = stop), the last checkpoint is " +
                    (std::filesystem::exists(out / "checkpoint") ? resume_dir : std::string("none")));
      ++state.skipped_batches;
      log << "  skipped batch: " << what << " (" << state.skipped_batches << " skipped so far)\n" << std::flush;
      write_metrics_record(metrics, "skipped", {{"step", step + 1}, {"skipped", what}});
      if (state.skipped_batches > tc.max_skipped_batches)
        throw Error("train: " + std::to_string(state.skipped_batches) + " batches skipped for non-finite values, more than " +
                    "train.max_skipped_batches = " + std::to_string(tc.max_skipped_batches) + "; the last: " + what);
      ++state.step;  // the batch is consumed; the weights stay as they were
      continue;
    }
    const Tensor grad_norm_tensor = clip_grad_norm_on_device(model.parameters(), tc.grad_clip);  // () float64
    const Tensor loss_tensor = loss.value();  // () on the model's device; read when logged
    optimizer.step(lr);
    double controller_delta = 0.0;
    if (has_switch && config.reg.controller != "off")  // it scores tokens with the updated routers: check them first
      if (const std::string broken = first_nonfinite_state(model.parameters(), nullptr); !broken.empty())
        throw nonfinite_weights_error(broken, step + 1, out_dir);
    if (has_switch) controller_delta = dp.apply_ratio_controller(model, forward.routing, config.reg);  // [R] controller, [data-parallel]
    state.router_bias_shift += controller_delta;
    state.tokens_trained += B * T;
    tokens_this_session += B * T;
    state.step = step + 1;

    const int64_t done = state.step;
    if (logging) {
      const double grad_norm = grad_norm_tensor.item(), loss_value = dp.mean_over_ranks(loss_tensor.item());  // [data-parallel]
      dp.mean_over_ranks(reg);  // [data-parallel] the routing statistics of the whole batch
      const double secs = elapsed();
      const double tok_per_s = static_cast<double>(tokens_this_session) / std::max(secs, 1e-9);
      const double eta = secs / (done - first_step) * (tc.steps - done);
      log << "step " << std::setw(5) << done << "/" << tc.steps << " | loss " << std::setprecision(4)
          << loss_value << " | lr " << std::scientific << std::setprecision(2) << lr << std::fixed
          << " | grad norm " << std::setprecision(3) << grad_norm << " | " << std::setprecision(0)
          << tok_per_s << " tok/s | ETA " << format_duration(eta);
      nlohmann::json line{{"step", done}, {"loss", loss_value}, {"lr", lr}, {"grad_norm", grad_norm},
                          {"tokens_per_second", tok_per_s}, {"seconds", secs}, {"seq_len", T}};
      log_answer_nll(dp.answer_nll(answer_nll), log, line);  // [data-parallel] all ranks' rows
      if (device == Device::CUDA) {  // the caching allocator's peak of bytes held by tensors
        const size_t peak = cuda::allocator_stats().peak_bytes_in_use;
        summary.peak_device_bytes = static_cast<int64_t>(peak);
        log << " | peak GPU memory " << std::setprecision(1) << static_cast<double>(peak) / (1 << 20) << " MiB";
        line["peak_gpu_memory_bytes"] = peak;
      }
      if (has_switch) {
        log << "\n      FA ratio " << std::setprecision(3) << reg.ratio << " (t >= w: " << reg.effective_ratio
            << ") | reg " << std::scientific << std::setprecision(2)
            << (reg.loss.defined() ? reg.loss.value().item() : 0.0) << " | gamma_base " << state.gamma_base
            << std::fixed << " | per layer " << ratios_str(layer_field(reg, &LayerRoutingStats::ratio));
        if (config.reg.controller != "off")
          log << " | router bias shift " << std::showpos << std::setprecision(3) << state.router_bias_shift
              << std::noshowpos;
        line["fa_ratio"] = reg.ratio;
        line["fa_ratio_effective"] = reg.effective_ratio;
        line["regularizer"] = reg.loss.defined() ? reg.loss.value().item() : 0.0;
        line["gamma_base"] = state.gamma_base;
        line["router_bias_shift"] = state.router_bias_shift;
        line["layer_fa_ratio"] = layer_field(reg, &LayerRoutingStats::ratio);
        line["layer_fa_ratio_effective"] = layer_field(reg, &LayerRoutingStats::effective_ratio);
        line["layer_mean_gamma"] = layer_field(reg, &LayerRoutingStats::mean_gamma);
        line["layer_regularizer"] = layer_field(reg, &LayerRoutingStats::regularizer);
      }
      log << "\n" << std::flush;
      write_metrics_record(metrics, "progress", line);
    }
    if (done % tc.eval_interval == 0 || done == tc.steps) {
      state.last_val_loss = dp.evaluate_loss(model, val_batches(stage), &state.last_val_ratios);  // [data-parallel]
      log << "  step " << done << " validation loss " << std::setprecision(4) << state.last_val_loss
          << " (unigram entropy " << summary.unigram_entropy << ")";
      if (has_switch) log << " | full-attention ratio per switch layer " << ratios_str(state.last_val_ratios);
      log << "\n" << std::flush;
      write_metrics_record(metrics, "validation", {{"step", done}, {"val_loss", state.last_val_loss}, {"val_seq_len", T},
                                                   {"val_layer_fa_ratio", state.last_val_ratios}});
    }
    if (tc.checkpoint_interval > 0 && done % tc.checkpoint_interval == 0 && done < tc.steps) {
      dp.check_replicas(model.parameters(), optimizer, done);  // [data-parallel]
      if (dp.is_rank0()) save_training_checkpoint(out_dir, model, config, optimizer, state);  // [data-parallel]
    }
  }
  summary.seconds = elapsed();
  summary.initial_val_loss = state.initial_val_loss;
  summary.final_val_loss = state.last_val_loss;
  summary.final_layer_ratios = state.last_val_ratios;
  summary.tokens_trained = state.tokens_trained;
  summary.skipped_batches = state.skipped_batches;
  dp.check_replicas(model.parameters(), optimizer, state.step);  // [data-parallel]
  const std::string checkpoint_dir = dp.is_rank0() ? save_training_checkpoint(out_dir, model, config, optimizer, state)
                                                   : (out / "checkpoint").string();  // [data-parallel]

  log << "done: " << summary.tokens_trained << " tokens in " << format_duration(summary.seconds)
      << "; validation loss " << std::setprecision(4) << summary.initial_val_loss << " -> "
      << summary.final_val_loss << " nats/token, unigram entropy " << summary.unigram_entropy << "\n"
      << "checkpoint: " << checkpoint_dir << "\n";
  if (state.skipped_batches > 0) log << "skipped batches (non-finite): " << state.skipped_batches << "\n";
  if (has_switch)
    log << "full-attention ratio per switch layer (validation): " << ratios_str(state.last_val_ratios) << "\n";
  if (tc.sample_tokens > 0 && dp.is_rank0()) {  // [data-parallel] rank 0 samples
    model.to(Device::CPU);  // decoding (model/decode.cpp) runs on the CPU, in the master dtype
    Rng rng(derive_seed(tc.seed, 2));
    const std::vector<int32_t> prompt = tokenizer->encode(tc.sample_prompt);
    if (prompt.empty()) throw Error("train.sample_prompt: encodes to no tokens; give a non-empty prompt");
    const auto ids = generate(model, prompt, tc.sample_tokens, tc.sample_temperature, tc.seq_len, rng);
    summary.sample = tokenizer->decode(ids);
    log << "sample (temperature " << std::setprecision(2) << tc.sample_temperature << "):\n"
        << summary.sample << "\n";
  }
  write_metrics_record(metrics, "final",
                       {{"final_val_loss", summary.final_val_loss}, {"initial_val_loss", summary.initial_val_loss},
                        {"unigram_entropy", summary.unigram_entropy}, {"tokens", summary.tokens_trained},
                        {"seconds", summary.seconds}, {"peak_gpu_memory_bytes", summary.peak_device_bytes},
                        {"skipped_batches", summary.skipped_batches}});
  return summary;
}

}  // namespace swiattn
