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

namespace {

// train.deterministic and train.float32_attention: the GPU kernel modes of one run
// (tensor/cuda/device.h), restored when the run ends.
struct CudaModeScope {
  bool deterministic = cuda::deterministic(), float32_in_bf16 = cuda::float32_attention_in_bf16();
  CudaModeScope(Device device, const TrainConfig& tc) {
    cuda::set_deterministic(device == Device::CUDA && tc.deterministic);
    cuda::set_float32_attention_in_bf16(device == Device::CUDA && tc.float32_attention == "bfloat16");
  }
  ~CudaModeScope() {
    cuda::set_deterministic(deterministic);
    cuda::set_float32_attention_in_bf16(float32_in_bf16);
  }
};

// What one optimizer step leaves for logging (the device values are read only when logged).
struct StepOutcome {
  bool skipped = false;  // a non-finite batch skipped (train.on_nonfinite "skip")
  double lr = 0.0;
  int64_t seq_len = 0;
  Tensor grad_norm, loss;  // () on the model's device
  RegularizerResult reg;
};

// One training run as named steps; run_training below calls them in order. The members are the
// run's state: its data, model, optimizer, TrainingState and the open metrics.jsonl.
class TrainingRun {
 public:
  TrainingRun(const Config& config, const std::string& out_dir, std::ostream& log, DataParallel& dp)
      : config_(config), tc_(config.train), out_dir_(out_dir), out_(out_dir), log_(log), dp_(dp),
        dtype_(tc_.dtype == "float64" ? DType::F64 : DType::F32),  // "bfloat16": float32 masters
        device_(tc_.device == "cuda" ? Device::CUDA : Device::CPU) {}

  void load_data();
  void build_model();
  void restore(const TrainingState& resumed);  // --resume
  void start_from_checkpoint();                // train.init_from (continual pretraining)
  void open_run_folder(bool overwrite, bool resume);
  void log_header() const;
  void validate(int64_t step, bool initial);
  void train();
  TrainSummary finish();

 private:
  StepOutcome train_step();
  void log_progress(StepOutcome& s);
  void enter_stage(size_t stage);
  const std::vector<std::pair<Tensor, Tensor>>& val_batches();
  std::unique_ptr<BatchLoader> make_loader(size_t stage) const;
  std::string resume_dir() const { return (out_ / "checkpoint").string(); }

  const Config& config_;
  const TrainConfig& tc_;
  const std::string out_dir_;
  const std::filesystem::path out_;
  std::ostream& log_;
  DataParallel& dp_;
  const DType dtype_;
  const Device device_;
  // data
  std::unique_ptr<Tokenizer> tokenizer_;
  TokenSplits splits_;
  SyntheticMixture mixture_;
  std::vector<CurriculumStage> stages_;
  size_t stage_ = 0;
  std::unique_ptr<BatchLoader> loader_;
  std::vector<std::vector<std::pair<Tensor, Tensor>>> stage_val_batches_;
  // model and optimizer
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<AdamW> optimizer_;
  bool has_switch_ = false, measure_branches_ = false;
  // the run
  TrainingState state_;
  TrainSummary summary_;
  std::string init_note_;
  std::ofstream metrics_;
  std::unique_ptr<AnswerNllMeter> answer_nll_;
  std::chrono::steady_clock::time_point start_;
  int64_t first_step_ = 0, tokens_this_session_ = 0;  // for tokens/s (stages differ in tokens per step)
  Tensor inputs_, targets_;

  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
};

// Data: a fetched corpus split by whole documents, or the user's own text or tokens
// (data/dataset.h); the training mixture (data/README.md: synthetic retrieval rows use
// training-split filler) and the context curriculum (train.curriculum; without one, a single
// stage of train.seq_len). Each stage has its own loader over the same token stream; the loaders
// share one counter-based Rng (the counter carries over from stage to stage), so a resumed run
// reads the same rows.
void TrainingRun::load_data() {
  tokenizer_ = make_tokenizer(config_.data.tokenizer, config_.data.cache_dir);
  splits_ = load_token_splits(config_.data.corpus, config_.data.cache_dir, config_.data.val_fraction, *tokenizer_);
  summary_.unigram_entropy = unigram_entropy(splits_.train, tokenizer_->vocab_size());
  mixture_.fraction = config_.data.synthetic_fraction;
  mixture_.passkey_weight = config_.data.passkey_weight;
  mixture_.mqar_weight = config_.data.mqar_weight;
  mixture_.mqar_pairs = config_.data.mqar_pairs;
  mixture_.min_needle_distance =
      config_.data.min_needle_distance < 0 ? config_.model.sliding_window : config_.data.min_needle_distance;
  mixture_.tokenizer = tokenizer_.get();
  stages_ = curriculum_stages(tc_);
  stage_val_batches_.resize(stages_.size());
  loader_ = make_loader(stage_);
  answer_nll_ = std::make_unique<AnswerNllMeter>(*tokenizer_);
}

std::unique_ptr<BatchLoader> TrainingRun::make_loader(size_t stage) const {
  return std::make_unique<BatchLoader>(splits_.train, static_cast<int>(stages_[stage].batch_size),
                                       static_cast<int>(stages_[stage].seq_len), derive_seed(tc_.seed, 1), mixture_,
                                       dp_.row_shard());  // [data-parallel] this rank's rows
}

// The validation batches of the current stage's shape, made once per stage.
const std::vector<std::pair<Tensor, Tensor>>& TrainingRun::val_batches() {
  auto& batches = stage_val_batches_[stage_];
  if (batches.empty())
    batches = dp_.local_rows(sequential_batches(splits_.val, static_cast<int>(stages_[stage_].batch_size),  // [data-parallel]
                                                static_cast<int>(stages_[stage_].seq_len), static_cast<int>(tc_.eval_batches)));
  return batches;
}

// The model on its device (before the optimizer: its moments are allocated where the parameters
// are), mixed precision for train.dtype "bfloat16", and AdamW.
void TrainingRun::build_model() {
  model_ = std::make_unique<Transformer>(config_.model, dtype_, derive_seed(tc_.seed, 0));
  model_->to(device_);
  if (tc_.dtype == "bfloat16") model_->set_compute_dtype(DType::BF16);
  AdamWOptions adam;
  adam.beta1 = tc_.beta1;
  adam.beta2 = tc_.beta2;
  adam.eps = tc_.adam_eps;
  adam.weight_decay = tc_.weight_decay;
  optimizer_ = std::make_unique<AdamW>(model_->parameters(), adam);
  state_.gamma_base = config_.reg.gamma_base;
  state_.loader_rng_seed = loader_->rng().seed;
  for (int64_t l = 0; l < config_.model.num_hidden_layers; ++l)
    has_switch_ = has_switch_ || config_.model.layer_type(l) == LayerType::Switch;
  measure_branches_ = has_switch_ && config_.reg.mode == "adaptive";
}

// Resume (docs/reliability.md): weights, moments, step, data position, controller state.
void TrainingRun::restore(const TrainingState& resumed) {
  load_model_weights(resume_dir(), *model_);
  load_optimizer_state(resume_dir(), *optimizer_, *model_);
  state_ = resumed;
  check_resumed_state(state_, *optimizer_, loader_->rng().seed, resume_dir());  // train/run_checks.cpp
  stage_ = curriculum_stage_at(stages_, state_.step);
  if (stage_ != 0) loader_ = make_loader(stage_);
  loader_->rng().counter = state_.loader_rng_counter;
  init_note_ = "  resumed from " + resume_dir() + " at step " + std::to_string(state_.step) + "\n" +
               extension_note(read_checkpoint_run_config(resume_dir()), config_, state_.step);
}

// Continual pretraining (spec §6): same weights, new layer types; routers the checkpoint lacks
// keep their initialisation (model.router_init).
void TrainingRun::start_from_checkpoint() {
  const LoadReport loaded = load_model_weights(tc_.init_from, *model_, is_router_parameter);
  init_note_ = "  initialised from " + tc_.init_from + ": " + std::to_string(loaded.loaded.size()) +
               " tensors loaded, " + std::to_string(loaded.initialised.size()) + " router tensors initialised (" +
               config_.model.router_init + ")";
  const nlohmann::json prior = read_trainer_state(tc_.init_from);
  if (prior.is_object() && prior.contains("final_val_loss") && prior["final_val_loss"].is_number())
    init_note_ += "; its validation loss " + std::to_string(prior["final_val_loss"].get<double>());
  init_note_ += "\n";
}

// The run starts: only now is the folder written (with overwrite, the old run is removed now).
// [data-parallel] rank 0 alone writes the run's files; on other ranks `metrics_` is never opened,
// so what is streamed into it goes nowhere.
void TrainingRun::open_run_folder(bool overwrite, bool resume) {
  if (dp_.is_rank0() && overwrite && !resume) clear_previous_run(out_dir_);
  if (dp_.is_rank0() && resume) truncate_metrics((out_ / "metrics.jsonl").string(), state_.step);
  std::filesystem::create_directories(out_);
  if (dp_.is_rank0()) {
    write_file_atomically((out_ / "config.json").string(), config_to_json(config_).dump(2) + "\n");
    metrics_.open(out_ / "metrics.jsonl", resume ? std::ios::app : std::ios::trunc);
    if (!metrics_) throw Error("cannot write " + (out_ / "metrics.jsonl").string());
  }
}

void TrainingRun::log_header() const {
  const Transformer& model = *model_;
  log_ << "swiattn train: " << splits_.description << "\n"
       << "  tokenizer " << tokenizer_->name() << ": " << splits_.train.size() << " train / "
       << splits_.val.size() << " validation tokens; unigram entropy " << std::fixed
       << std::setprecision(3) << summary_.unigram_entropy << " nats/token\n"
       << "  model: " << model.parameter_count() << " parameters, " << config_.model.num_hidden_layers
       << " layers, d_model " << config_.model.hidden_size << ", " << dtype_name(dtype_) << ", "
       << omp_get_max_threads() << " threads\n"
       << "  device: " << device_name(device_)
       << (model.compute_dtype() != dtype_ ? std::string(", mixed precision: ") + dtype_name(model.compute_dtype()) +
                                                 " compute, " + dtype_name(dtype_) + " master weights and moments"
                                           : std::string(", ") + dtype_name(dtype_) + " compute")
       << (cuda::deterministic() ? ", deterministic (fixed-order sums)" : "")
       << (cuda::float32_attention_in_bf16() && tc_.dtype == "float32" ? ", attention on bfloat16 tensor cores" : "")
       << "\n"
       << "  layer types: " << layer_types_str(config_.model) << " (window " << config_.model.sliding_window << ")\n"
       << "  training rows: " << loader_->mixture_description() << "\n"
       << dp_.description()  // [data-parallel]
       << init_note_;
  if (tc_.curriculum.empty()) {
    log_ << "  training: " << tc_.steps << " steps of " << tc_.batch_size << " x " << tc_.seq_len << " tokens";
  } else {
    log_ << "  training: " << tc_.steps << " steps in a curriculum of " << stages_.size() << " stages:";
    for (const CurriculumStage& c : stages_) log_ << " " << c.steps << " x (" << c.batch_size << " x " << c.seq_len << ")";
  }
  log_ << "; output in " << out_dir_ << "\n";
  if (config_.reg.controller == "bias" && has_switch_)
    log_ << "  target-ratio controller: router biases held at a full-attention ratio of " << std::setprecision(3)
         << config_.reg.target_ratio << " (reg.controller_rate " << config_.reg.controller_rate << ")\n";
}

// The validation loss (and full-attention ratios) at `step`: logged and recorded.
void TrainingRun::validate(int64_t step, bool initial) {
  state_.last_val_loss = dp_.evaluate_loss(*model_, val_batches(), &state_.last_val_ratios);  // [data-parallel]
  if (initial) {
    state_.initial_val_loss = state_.last_val_loss;
    log_ << "  step 0 validation loss " << std::setprecision(4) << state_.initial_val_loss;
  } else {
    log_ << "  step " << step << " validation loss " << std::setprecision(4) << state_.last_val_loss
         << " (unigram entropy " << summary_.unigram_entropy << ")";
  }
  if (has_switch_) log_ << " | full-attention ratio per switch layer " << ratios_str(state_.last_val_ratios);
  log_ << "\n" << std::flush;
  write_metrics_record(metrics_, "validation", {{"step", step}, {"val_loss", state_.last_val_loss},
                                                {"val_seq_len", stages_[stage_].seq_len},
                                                {"val_layer_fa_ratio", state_.last_val_ratios}});
}

// The next curriculum stage: its own loader, the row counter carried over.
void TrainingRun::enter_stage(size_t stage) {
  const uint64_t counter = loader_->rng().counter;
  stage_ = stage;
  loader_ = make_loader(stage_);
  loader_->rng().counter = counter;
  log_ << "  curriculum stage " << stage_ + 1 << "/" << stages_.size() << " from step " << state_.step << ": "
       << stages_[stage_].batch_size << " x " << stages_[stage_].seq_len << " tokens per step\n" << std::flush;
}

// One optimizer step (trainer.h): batch, forward, L_LM + the regulariser (Eq. 9), backward, the
// non-finite guard, clipping, AdamW, the controller.
StepOutcome TrainingRun::train_step() {
  Transformer& model = *model_;
  const int64_t step = state_.step;
  StepOutcome s;
  const int64_t B = stages_[stage_].batch_size, T = stages_[stage_].seq_len;
  s.seq_len = T;
  s.lr = learning_rate_at(step, tc_.learning_rate, tc_.min_learning_rate, tc_.warmup_steps, tc_.steps);
  loader_->next(inputs_, targets_);
  state_.loader_rng_counter = loader_->rng().counter;
  optimizer_->zero_grad();
  const ForwardResult forward = model.forward_with_routing(inputs_, measure_branches_);
  Tensor per_token_nll;
  Var loss = next_token_loss(forward.logits, targets_, &per_token_nll);       // L_LM
  answer_nll_->add(loader_->last_rows(), targets_, per_token_nll);
  // On CUDA the routing statistics are read back only when logged.
  const bool logging = (step + 1) % tc_.log_interval == 0 || step + 1 == tc_.steps;
  const bool read_stats = device_ == Device::CPU || logging;
  s.reg = efficiency_regularizer(forward.routing, per_token_nll, config_.reg, state_.gamma_base,
                                 config_.model.sliding_window, read_stats);
  Var total = s.reg.loss.defined() ? add(loss, s.reg.loss) : loss;              // Eq. 9
  dp_.backward(total, model.parameters());  // [data-parallel] then every grad is the mean over the ranks

  // Non-finite guard: never let a NaN or an infinity reach the weights. On CUDA this is the one
  // copy to the host of every step (a count per tensor; train/nonfinite.cpp). The weights the
  // previous optimizer step left are checked in the same pass; a bad one stops the run (every
  // rank holds the same weights, so every rank stops).
  const StepCheck check = check_step_finite(forward, total, model.parameters());
  if (!check.bad_weight.empty()) throw nonfinite_weights_error(check.bad_weight, step, out_dir_);
  const std::string bad = dp_.nonfinite_on_any_rank(check.bad_step);  // [data-parallel]
  if (!bad.empty()) {
    const std::string what = "non-finite value at step " + std::to_string(step + 1) + ", first in " + bad;
    if (tc_.on_nonfinite == "stop")
      throw Error("train: " + what + "; stopped (train.on_nonfinite = stop), the last checkpoint is " +
                  (std::filesystem::exists(out_ / "checkpoint") ? resume_dir() : std::string("none")));
    ++state_.skipped_batches;
    log_ << "  skipped batch: " << what << " (" << state_.skipped_batches << " skipped so far)\n" << std::flush;
    write_metrics_record(metrics_, "skipped", {{"step", step + 1}, {"skipped", what}});
    if (state_.skipped_batches > tc_.max_skipped_batches)
      throw Error("train: " + std::to_string(state_.skipped_batches) + " batches skipped for non-finite values, more than " +
                  "train.max_skipped_batches = " + std::to_string(tc_.max_skipped_batches) + "; the last: " + what);
    ++state_.step;  // the batch is consumed; the weights stay as they were
    s.skipped = true;
    return s;
  }
  s.grad_norm = clip_grad_norm_on_device(model.parameters(), tc_.grad_clip);  // () float64
  s.loss = loss.value();  // () on the model's device; read when logged
  optimizer_->step(s.lr);
  double controller_delta = 0.0;
  if (has_switch_ && config_.reg.controller != "off")  // it scores tokens with the updated routers: check them first
    if (const std::string broken = first_nonfinite_state(model.parameters(), nullptr); !broken.empty())
      throw nonfinite_weights_error(broken, step + 1, out_dir_);
  if (has_switch_) controller_delta = dp_.apply_ratio_controller(model, forward.routing, config_.reg);  // [R] controller, [data-parallel]
  state_.router_bias_shift += controller_delta;
  state_.tokens_trained += B * T;
  tokens_this_session_ += B * T;
  state_.step = step + 1;
  return s;
}

// The progress line of a logged step, and its metrics.jsonl record.
void TrainingRun::log_progress(StepOutcome& s) {
  const int64_t done = state_.step;
  RegularizerResult& reg = s.reg;
  const double grad_norm = s.grad_norm.item(), loss_value = dp_.mean_over_ranks(s.loss.item());  // [data-parallel]
  dp_.mean_over_ranks(reg);  // [data-parallel] the routing statistics of the whole batch
  const double secs = elapsed();
  const double tok_per_s = static_cast<double>(tokens_this_session_) / std::max(secs, 1e-9);
  const double eta = secs / (done - first_step_) * (tc_.steps - done);
  log_ << "step " << std::setw(5) << done << "/" << tc_.steps << " | loss " << std::setprecision(4)
       << loss_value << " | lr " << std::scientific << std::setprecision(2) << s.lr << std::fixed
       << " | grad norm " << std::setprecision(3) << grad_norm << " | " << std::setprecision(0)
       << tok_per_s << " tok/s | ETA " << format_duration(eta);
  nlohmann::json line{{"step", done}, {"loss", loss_value}, {"lr", s.lr}, {"grad_norm", grad_norm},
                      {"tokens_per_second", tok_per_s}, {"seconds", secs}, {"seq_len", s.seq_len}};
  log_answer_nll(dp_.answer_nll(*answer_nll_), log_, line);  // [data-parallel] all ranks' rows
  {  // the most bytes held by tensors at once since the training steps began
    const int64_t peak = tensor_memory(device_).peak_bytes_in_use;
    summary_.peak_device_bytes = peak;
    log_ << (device_ == Device::CUDA ? " | peak GPU memory " : " | peak tensor memory ") << std::setprecision(1)
         << static_cast<double>(peak) / (1 << 20) << " MiB";
    line["peak_tensor_memory_bytes"] = peak;
    if (device_ == Device::CUDA) line["peak_gpu_memory_bytes"] = peak;
  }
  if (has_switch_) {
    log_ << "\n      FA ratio " << std::setprecision(3) << reg.ratio << " (t >= w: " << reg.effective_ratio
         << ") | reg " << std::scientific << std::setprecision(2)
         << (reg.loss.defined() ? reg.loss.value().item() : 0.0) << " | gamma_base " << state_.gamma_base
         << std::fixed << " | per layer " << ratios_str(layer_field(reg, &LayerRoutingStats::ratio));
    if (config_.reg.controller != "off")
      log_ << " | router bias shift " << std::showpos << std::setprecision(3) << state_.router_bias_shift
           << std::noshowpos;
    line["fa_ratio"] = reg.ratio;
    line["fa_ratio_effective"] = reg.effective_ratio;
    line["regularizer"] = reg.loss.defined() ? reg.loss.value().item() : 0.0;
    line["gamma_base"] = state_.gamma_base;
    line["router_bias_shift"] = state_.router_bias_shift;
    line["layer_fa_ratio"] = layer_field(reg, &LayerRoutingStats::ratio);
    line["layer_fa_ratio_effective"] = layer_field(reg, &LayerRoutingStats::effective_ratio);
    line["layer_mean_gamma"] = layer_field(reg, &LayerRoutingStats::mean_gamma);
    line["layer_regularizer"] = layer_field(reg, &LayerRoutingStats::regularizer);
  }
  log_ << "\n" << std::flush;
  write_metrics_record(metrics_, "progress", line);
}

// The loop: a step, then what is due after it (progress line, validation, checkpoint).
void TrainingRun::train() {
  dp_.check_same_start(config_, model_->parameters());  // [data-parallel] same configuration and weights everywhere
  reset_tensor_memory_peak(device_);  // the peak of the training steps
  start_ = std::chrono::steady_clock::now();
  first_step_ = state_.step;
  while (state_.step < tc_.steps) {
    if (const size_t next = curriculum_stage_at(stages_, state_.step); next != stage_) enter_stage(next);
    StepOutcome s = train_step();
    if (s.skipped) continue;
    const int64_t done = state_.step;
    if (done % tc_.log_interval == 0 || done == tc_.steps) log_progress(s);
    if (done % tc_.eval_interval == 0 || done == tc_.steps) validate(done, /*initial=*/false);
    if (tc_.checkpoint_interval > 0 && done % tc_.checkpoint_interval == 0 && done < tc_.steps) {
      dp_.check_replicas(model_->parameters(), *optimizer_, done);  // [data-parallel]
      if (dp_.is_rank0()) save_training_checkpoint(out_dir_, *model_, config_, *optimizer_, state_);  // [data-parallel]
    }
  }
}

// The final checkpoint, the summary lines, the sample and the final record.
TrainSummary TrainingRun::finish() {
  summary_.seconds = elapsed();
  fill_summary_from_state(summary_, state_);
  dp_.check_replicas(model_->parameters(), *optimizer_, state_.step);  // [data-parallel]
  const std::string checkpoint_dir = dp_.is_rank0() ? save_training_checkpoint(out_dir_, *model_, config_, *optimizer_, state_)
                                                    : resume_dir();  // [data-parallel]
  log_ << "done: " << summary_.tokens_trained << " tokens in " << format_duration(summary_.seconds)
       << "; validation loss " << std::setprecision(4) << summary_.initial_val_loss << " -> "
       << summary_.final_val_loss << " nats/token, unigram entropy " << summary_.unigram_entropy << "\n"
       << "checkpoint: " << checkpoint_dir << "\n";
  if (state_.skipped_batches > 0) log_ << "skipped batches (non-finite): " << state_.skipped_batches << "\n";
  if (has_switch_)
    log_ << "full-attention ratio per switch layer (validation): " << ratios_str(state_.last_val_ratios) << "\n";
  if (tc_.sample_tokens > 0 && dp_.is_rank0()) {  // [data-parallel] rank 0 samples
    model_->to(Device::CPU);  // decoding (model/decode.cpp) runs on the CPU, in the master dtype
    Rng rng(derive_seed(tc_.seed, 2));
    const std::vector<int32_t> prompt = tokenizer_->encode(tc_.sample_prompt);
    if (prompt.empty()) throw Error("train.sample_prompt: encodes to no tokens; give a non-empty prompt");
    const auto ids = generate(*model_, prompt, tc_.sample_tokens, tc_.sample_temperature, tc_.seq_len, rng);
    summary_.sample = tokenizer_->decode(ids);
    log_ << "sample (temperature " << std::setprecision(2) << tc_.sample_temperature << "):\n"
         << summary_.sample << "\n";
  }
  write_metrics_record(metrics_, "final",
                       {{"final_val_loss", summary_.final_val_loss}, {"initial_val_loss", summary_.initial_val_loss},
                        {"unigram_entropy", summary_.unigram_entropy}, {"tokens", summary_.tokens_trained},
                        {"seconds", summary_.seconds}, {"peak_tensor_memory_bytes", summary_.peak_device_bytes},
                        {"peak_gpu_memory_bytes", device_ == Device::CUDA ? summary_.peak_device_bytes : 0},
                        {"skipped_batches", summary_.skipped_batches}});
  return summary_;
}

}  // namespace

TrainSummary run_training(const Config& config, const std::string& out_dir, std::ostream& log, bool resume,
                          bool overwrite, DataParallel* data_parallel) {
  validate_config(config);
  DataParallel single_process;                                              // [data-parallel]
  DataParallel& dp = data_parallel ? *data_parallel : single_process;       // [data-parallel]
  dp.check_config(config);                                                  // [data-parallel]
  // The folder rules of train/run_folder.h, before anything is loaded; nothing is written to the
  // folder until the run starts (once data and model are ready). [data-parallel] rank 0 owns the
  // folder: the other ranks would see its files appear.
  if (dp.is_rank0())
    check_run_folder(out_dir, resume ? RunStart::resume : overwrite ? RunStart::overwrite : RunStart::fresh);
  const TrainConfig& tc = config.train;
  if (tc.threads > 0) omp_set_num_threads(static_cast<int>(tc.threads));
  const Device device = tc.device == "cuda" ? Device::CUDA : Device::CPU;
  const CudaModeScope cuda_modes(device, tc);
  TrainingState resumed;
  if (resume) {
    // The trainer state first: a finished run has nothing to do, and then changes nothing on disk.
    const std::string dir = (std::filesystem::path(out_dir) / "checkpoint").string();
    resumed = training_state_from_json(read_trainer_state(dir), dir + "/trainer_state.json");
    validate_training_state(resumed, config, dir + "/trainer_state.json");
    if (resumed.step >= tc.steps) return finished_run_summary(resumed, out_dir, log);
  }
  require_training_memory(config, device, tc.dtype == "float64" ? DType::F64 : DType::F32);  // before allocating
  if (device == Device::CUDA) cuda::require_cuda_device("train.device \"cuda\"");  // before the data is read

  TrainingRun run(config, out_dir, log, dp);
  run.load_data();
  run.build_model();
  if (resume) run.restore(resumed);
  else if (!tc.init_from.empty()) run.start_from_checkpoint();
  run.open_run_folder(overwrite, resume);
  run.log_header();
  if (!resume) run.validate(0, /*initial=*/true);
  run.train();
  return run.finish();
}

}  // namespace swiattn
