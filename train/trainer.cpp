#include "train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "data/corpus.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "model/sampling.h"
#include "tensor/random.h"
#include "train/optimizer.h"

namespace swiattn {

double evaluate_loss(const Transformer& model, const std::vector<std::pair<Tensor, Tensor>>& batches) {
  if (batches.empty()) throw Error("evaluate_loss: no batches");
  NoGradGuard no_grad;
  double total = 0.0;
  for (const auto& [inputs, targets] : batches) total += model.loss(inputs, targets).value().item();
  return total / static_cast<double>(batches.size());
}

static std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60) out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else out << s << "s";
  return out.str();
}

// Writes `text` to `path` through a temporary file and a rename: never a half-written file.
static void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write " + tmp.string());
    f << text;
    f.flush();
    if (!f) throw Error("write failed: " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

TrainSummary run_training(const Config& config, const std::string& out_dir, std::ostream& log) {
  validate_config(config);
  const TrainConfig& tc = config.train;
  if (tc.threads > 0) omp_set_num_threads(static_cast<int>(tc.threads));
  const DType dtype = tc.dtype == "float64" ? DType::F64 : DType::F32;

  std::filesystem::create_directories(out_dir);
  write_file_atomically(std::filesystem::path(out_dir) / "config.json", config_to_json(config).dump(2) + "\n");
  std::ofstream metrics(std::filesystem::path(out_dir) / "metrics.jsonl", std::ios::trunc);
  if (!metrics) throw Error("cannot write " + out_dir + "/metrics.jsonl");

  // Data: real text, tokenized, split by whole documents.
  auto tokenizer = make_tokenizer(config.data.tokenizer, config.data.cache_dir);
  const TextCorpus corpus = load_corpus(config.data.corpus, config.data.cache_dir);
  const std::vector<int32_t> train_tokens = tokenize_docs(*tokenizer, corpus.train_docs, -1);
  const std::vector<int32_t> val_tokens = tokenize_docs(*tokenizer, corpus.val_docs, -1);
  TrainSummary summary;
  summary.unigram_entropy = unigram_entropy(train_tokens, tokenizer->vocab_size());
  BatchLoader loader(train_tokens, static_cast<int>(tc.batch_size), static_cast<int>(tc.seq_len),
                     derive_seed(tc.seed, 1));
  const auto val_batches = sequential_batches(val_tokens, static_cast<int>(tc.batch_size),
                                              static_cast<int>(tc.seq_len), static_cast<int>(tc.eval_batches));

  Transformer model(config.model, dtype, derive_seed(tc.seed, 0));
  AdamWOptions adam;
  adam.beta1 = tc.beta1;
  adam.beta2 = tc.beta2;
  adam.eps = tc.adam_eps;
  adam.weight_decay = tc.weight_decay;
  AdamW optimizer(model.parameters(), adam);

  log << "swiattn train: " << corpus.description << "\n"
      << "  tokenizer " << tokenizer->name() << ": " << train_tokens.size() << " train / "
      << val_tokens.size() << " validation tokens; unigram entropy " << std::fixed
      << std::setprecision(3) << summary.unigram_entropy << " nats/token\n"
      << "  model: " << model.parameter_count() << " parameters, " << config.model.num_hidden_layers
      << " layers, d_model " << config.model.hidden_size << ", " << dtype_name(dtype) << ", "
      << omp_get_max_threads() << " threads\n"
      << "  training: " << tc.steps << " steps of " << tc.batch_size << " x " << tc.seq_len
      << " tokens; output in " << out_dir << "\n";

  summary.initial_val_loss = evaluate_loss(model, val_batches);
  log << "  step 0 validation loss " << std::setprecision(4) << summary.initial_val_loss << "\n" << std::flush;

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  Tensor inputs, targets;
  for (int64_t step = 0; step < tc.steps; ++step) {
    const double lr = learning_rate_at(step, tc.learning_rate, tc.min_learning_rate, tc.warmup_steps, tc.steps);
    loader.next(inputs, targets);
    optimizer.zero_grad();
    Var loss = model.loss(inputs, targets);
    loss.backward();
    const double grad_norm = clip_grad_norm(model.parameters(), tc.grad_clip);
    const double loss_value = loss.value().item();
    if (!std::isfinite(loss_value) || !std::isfinite(grad_norm))
      throw Error("train: non-finite loss or gradient at step " + std::to_string(step + 1) +
                  " (loss " + std::to_string(loss_value) + ", grad norm " + std::to_string(grad_norm) +
                  "); lower train.learning_rate");
    optimizer.step(lr);
    summary.tokens_trained += tc.batch_size * tc.seq_len;

    const int64_t done = step + 1;
    if (done % tc.log_interval == 0 || done == tc.steps) {
      const double secs = elapsed();
      const double tok_per_s = summary.tokens_trained / std::max(secs, 1e-9);
      const double eta = secs / done * (tc.steps - done);
      log << "step " << std::setw(5) << done << "/" << tc.steps << " | loss " << std::setprecision(4)
          << loss_value << " | lr " << std::scientific << std::setprecision(2) << lr << std::fixed
          << " | grad norm " << std::setprecision(3) << grad_norm << " | " << std::setprecision(0)
          << tok_per_s << " tok/s | ETA " << format_duration(eta) << "\n" << std::flush;
      metrics << nlohmann::json{{"step", done}, {"loss", loss_value}, {"lr", lr}, {"grad_norm", grad_norm},
                                {"tokens_per_second", tok_per_s}, {"seconds", secs}}.dump() << "\n" << std::flush;
    }
    if (done % tc.eval_interval == 0 || done == tc.steps) {
      const double val = evaluate_loss(model, val_batches);
      summary.final_val_loss = val;
      log << "  step " << done << " validation loss " << std::setprecision(4) << val << " (unigram entropy "
          << summary.unigram_entropy << ")\n" << std::flush;
      metrics << nlohmann::json{{"step", done}, {"val_loss", val}}.dump() << "\n" << std::flush;
    }
  }
  summary.seconds = elapsed();

  log << "done: " << summary.tokens_trained << " tokens in " << format_duration(summary.seconds)
      << "; validation loss " << std::setprecision(4) << summary.initial_val_loss << " -> "
      << summary.final_val_loss << " nats/token, unigram entropy " << summary.unigram_entropy << "\n";
  if (tc.sample_tokens > 0) {
    Rng rng(derive_seed(tc.seed, 2));
    const std::vector<int32_t> prompt = tokenizer->encode(tc.sample_prompt);
    if (prompt.empty()) throw Error("train.sample_prompt: encodes to no tokens; give a non-empty prompt");
    const auto ids = generate(model, prompt, tc.sample_tokens, tc.sample_temperature, tc.seq_len, rng);
    summary.sample = tokenizer->decode(ids);
    log << "sample (temperature " << std::setprecision(2) << tc.sample_temperature << "):\n"
        << summary.sample << "\n";
  }
  metrics << nlohmann::json{{"final_val_loss", summary.final_val_loss},
                            {"initial_val_loss", summary.initial_val_loss},
                            {"unigram_entropy", summary.unigram_entropy},
                            {"tokens", summary.tokens_trained}, {"seconds", summary.seconds}}.dump() << "\n";
  return summary;
}

}  // namespace swiattn
