// train/data_parallel.cpp: see data_parallel.h.
#include "train/data_parallel.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/random.h"
#include "train/gradient_reducer.h"
#include "train/held_out.h"

namespace swiattn {

namespace {

// A 64-bit hash of a tensor's bytes (read on the host), chained onto h.
uint64_t hash_tensor(const Tensor& t, uint64_t h) {
  const Tensor host = t.device() == Device::CPU ? t : t.to_host();
  const unsigned char* p = static_cast<const unsigned char*>(host.raw());
  const size_t n = host.nbytes();
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, p + i, std::min<size_t>(8, n - i));
    h = mix64(h ^ (word + 0x9e3779b97f4a7c15ull * (i + 1)));
  }
  return mix64(h ^ n);
}

uint64_t hash_string(const std::string& s, uint64_t h) {
  for (size_t i = 0; i < s.size(); ++i) h = mix64(h ^ (static_cast<uint64_t>(static_cast<unsigned char>(s[i])) << 8 | i));
  return mix64(h ^ s.size());
}

// The ranks whose 64-bit value differs from rank 0's, as "1, 3" ("" when none): every rank
// sends its value in two exact 32-bit halves.
std::string ranks_differing_from_rank0(Communicator& comm, uint64_t value) {
  const std::vector<double> all =
      all_gather_values(comm, {static_cast<double>(value >> 32), static_cast<double>(value & 0xffffffffu)});
  std::string ranks;
  for (int r = 1; r < comm.world_size(); ++r)
    if (all[2 * r] != all[0] || all[2 * r + 1] != all[1]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  return ranks;
}

// The tasks of synthetic rows (data/loader.h BatchRow::source) that have answers.
const char* const kAnswerTasks[] = {"mqar", "passkey"};

}  // namespace

DataParallel::DataParallel() = default;
DataParallel::DataParallel(std::unique_ptr<Communicator> comm, DataParallelOptions options)
    : comm_(std::move(comm)), options_(options) {
  if (!comm_) throw Error("DataParallel: no communicator");
  if (options_.bucket_bytes == 0) throw Error("DataParallel: bucket_bytes must be > 0");
}
DataParallel::~DataParallel() = default;

int DataParallel::rank() const { return comm_ ? comm_->rank() : 0; }
int DataParallel::world_size() const { return comm_ ? comm_->world_size() : 1; }

void DataParallel::check_config(const Config& config) const {
  if (!active()) return;
  const TrainConfig& tc = config.train;
  const std::string wanted = comm_->device() == Device::CUDA ? "cuda" : "cpu";
  if (tc.device != wanted)
    throw Error("data parallel: train.device is \"" + tc.device + "\" but the ranks communicate through " +
                comm_->description() + ", which needs train.device \"" + wanted + "\" (--device " + wanted + ")");
  const std::vector<CurriculumStage> stages = curriculum_stages(tc);
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].batch_size % world_size() != 0)
      throw Error("data parallel: " +
                  (tc.curriculum.empty() ? std::string("train.batch_size")
                                         : "train.curriculum[" + std::to_string(i) + "].batch_size") +
                  " = " + std::to_string(stages[i].batch_size) + " does not split over " + std::to_string(world_size()) +
                  " ranks: the batch size is the global batch, a multiple of the number of ranks");
}

std::string DataParallel::description() const {
  if (!active()) return "";
  std::ostringstream s;
  s << "  data parallel: " << world_size() << " rank" << (world_size() > 1 ? "s" : "") << " through "
    << comm_->description() << "; each computes 1/" << world_size()
    << " of the rows of every batch; gradients averaged in buckets of <= " << (options_.bucket_bytes >> 20) << " MiB "
    << (options_.overlap ? "during the backward" : "after the backward") << "; rank 0 writes the run's files\n";
  return s.str();
}

void DataParallel::check_same_start(const Config& config, const std::vector<Var>& params) const {
  if (!active()) return;
  const std::string config_ranks = ranks_differing_from_rank0(*comm_, hash_string(config_to_json(config).dump(), 1));
  if (!config_ranks.empty())
    throw Error("data parallel: rank(s) " + config_ranks + " run a configuration different from rank 0's "
                "(every rank must get the same --config, --set and --init-from)");
  uint64_t h = 2;
  for (const Var& p : params) h = hash_tensor(p.value(), h);
  const std::string weight_ranks = ranks_differing_from_rank0(*comm_, h);
  if (!weight_ranks.empty())
    throw Error("data parallel: rank(s) " + weight_ranks + " start from weights different from rank 0's");
}

void DataParallel::check_replicas(const std::vector<Var>& params, const AdamW& optimizer, int64_t step) const {
  if (!active()) return;
  uint64_t h = 3;
  for (size_t i = 0; i < params.size(); ++i) {
    h = hash_tensor(params[i].value(), h);
    h = hash_tensor(optimizer.first_moments()[i], h);
    h = hash_tensor(optimizer.second_moments()[i], h);
  }
  const std::string ranks = ranks_differing_from_rank0(*comm_, h);
  if (!ranks.empty())
    throw Error("data parallel: after step " + std::to_string(step) + " the weights or AdamW moments of rank(s) " +
                ranks + " differ from rank 0's; stopped before saving a checkpoint (this is a bug: the ranks "
                "must take identical steps)");
}

std::vector<std::pair<Tensor, Tensor>> DataParallel::local_rows(
    const std::vector<std::pair<Tensor, Tensor>>& batches) const {
  if (!active()) return batches;
  std::vector<std::pair<Tensor, Tensor>> local;
  for (const auto& [inputs, targets] : batches) {
    const auto [begin, end] = row_shard().rows(inputs.dim(0));
    local.emplace_back(inputs.slice(begin, end), targets.slice(begin, end));
  }
  return local;
}

double DataParallel::evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches,
                                   std::vector<double>* layer_ratios) const {
  const double loss = swiattn::evaluate_loss(model, batches, layer_ratios);
  if (!active()) return loss;
  std::vector<double> values{loss};
  if (layer_ratios) values.insert(values.end(), layer_ratios->begin(), layer_ratios->end());
  values = all_reduce_values(*comm_, values, CollectiveOp::mean);  // equal rows per rank
  if (layer_ratios) layer_ratios->assign(values.begin() + 1, values.end());
  return values[0];
}

void DataParallel::backward(const Var& loss, const std::vector<Var>& params) {
  if (!active()) {
    loss.backward(nullptr, GraphAfterBackward::Release);  // the step's graph is not used again
    return;
  }
  if (!reducer_) reducer_ = std::make_unique<GradientReducer>(*comm_, params, options_.bucket_bytes, options_.overlap);
  if (!reducer_->same_params(params)) throw Error("data parallel: the list of parameters changed between steps");
  reducer_->backward(loss);
}

std::string DataParallel::nonfinite_on_any_rank(const std::string& local) const {
  if (!active()) return local;
  const std::vector<double> bad = all_gather_values(*comm_, {local.empty() ? 0.0 : 1.0});
  if (!local.empty()) return world_size() > 1 ? local + " (rank " + std::to_string(rank()) + ")" : local;
  for (int r = 0; r < world_size(); ++r)
    if (bad[r] != 0.0) return "rank " + std::to_string(r) + "'s step (its log names the tensor)";
  return "";
}

double DataParallel::apply_ratio_controller(const Transformer& model, const std::vector<LayerRouting>& routing,
                                            const RegularizerConfig& config) const {
  if (!active()) return swiattn::apply_ratio_controller(model, routing, config);
  if (config.controller != "bias" || routing.empty()) return 0.0;  // the same on every rank
  // Every rank's logits (the same count on each): the quantile of the whole batch's tokens. The
  // order differs from one process's, the sorted list does not.
  const std::vector<double> logits = all_gather_values(*comm_, controller_router_logits(model, routing));
  const double delta =
      ratio_controller_shift(logits, config.target_ratio, model.config().router_threshold, config.controller_rate);
  shift_router_biases(model, delta);
  return delta;
}

double DataParallel::mean_over_ranks(double value) const {
  if (!active()) return value;
  return all_reduce_values(*comm_, {value}, CollectiveOp::mean)[0];
}

void DataParallel::mean_over_ranks(RegularizerResult& reg) const {
  if (!active()) return;
  // Every rank has the same number of tokens, so the mean of the ranks' means is the batch's.
  std::vector<double> v{reg.ratio, reg.effective_ratio, reg.loss.defined() ? reg.loss.value().item() : 0.0};
  for (const LayerRoutingStats& l : reg.layers) v.insert(v.end(), {l.ratio, l.effective_ratio, l.mean_gamma, l.regularizer});
  v = all_reduce_values(*comm_, v, CollectiveOp::mean);
  reg.ratio = v[0];
  reg.effective_ratio = v[1];
  if (reg.loss.defined()) reg.loss = Var(Tensor::scalar(v[2], reg.loss.value().dtype() == DType::F64 ? DType::F64 : DType::F32));
  for (size_t i = 0; i < reg.layers.size(); ++i) {
    reg.layers[i].ratio = v[3 + 4 * i];
    reg.layers[i].effective_ratio = v[4 + 4 * i];
    reg.layers[i].mean_gamma = v[5 + 4 * i];
    reg.layers[i].regularizer = v[6 + 4 * i];
  }
}

std::map<std::string, double> DataParallel::answer_nll(AnswerNllMeter& meter) const {
  if (!active()) return meter.read_and_reset();
  const auto totals = meter.read_totals_and_reset();
  std::vector<double> v;  // per task: sum of NLL, tokens
  for (const char* task : kAnswerTasks) {
    const auto it = totals.find(task);
    v.push_back(it == totals.end() ? 0.0 : it->second.first);
    v.push_back(it == totals.end() ? 0.0 : static_cast<double>(it->second.second));
  }
  for (const auto& [task, total] : totals)
    if (task != "mqar" && task != "passkey") throw Error("data parallel: answer NLL of an unknown task \"" + task + "\"");
  v = all_reduce_values(*comm_, v, CollectiveOp::sum);
  std::map<std::string, double> out;
  for (size_t i = 0; i < std::size(kAnswerTasks); ++i)
    if (v[2 * i + 1] > 0) out[kAnswerTasks[i]] = v[2 * i] / v[2 * i + 1];
  return out;
}

DataParallelOptions data_parallel_options_from_environment() {
  DataParallelOptions options;
  if (const char* mb = std::getenv("SWIATTN_BUCKET_MB")) {
    char* end = nullptr;
    const double value = std::strtod(mb, &end);
    if (*mb == '\0' || *end != '\0' || !(value > 0.0) || value > 4096.0)
      throw Error(std::string("data parallel: SWIATTN_BUCKET_MB=\"") + mb + "\": a size in MiB in (0, 4096]");
    options.bucket_bytes = static_cast<size_t>(value * (1 << 20));
  }
  if (const char* overlap = std::getenv("SWIATTN_OVERLAP")) {
    if (std::strcmp(overlap, "0") && std::strcmp(overlap, "1"))
      throw Error(std::string("data parallel: SWIATTN_OVERLAP=\"") + overlap + "\": 0 or 1");
    options.overlap = std::strcmp(overlap, "1") == 0;
  }
  return options;
}

TrainSummary run_training_from_environment(const Config& config, const std::string& out_dir, std::ostream& log,
                                           bool resume, bool overwrite) {
  const std::optional<LaunchEnvironment> env = launch_environment();
  if (!env) return run_training(config, out_dir, log, resume, overwrite);
  const std::string who = "rank " + std::to_string(env->rank) + " of " + std::to_string(env->world) + ": ";
  try {
    if (config.train.device != "cuda")
      throw Error("data-parallel training runs on GPUs through NCCL: train.device must be \"cuda\" (--device cuda), "
                  "got \"" + config.train.device + "\"");
    DataParallel dp(connect_ranks(*env, out_dir, log), data_parallel_options_from_environment());
    return run_training(config, out_dir, log, resume, overwrite, &dp);
  } catch (const UsageError& e) {
    throw UsageError(who + e.what());
  } catch (const Error& e) {
    throw Error(who + e.what());
  }
}

}  // namespace swiattn
