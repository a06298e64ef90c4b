// train/answer_nll.cpp: see train/answer_nll.h.
#include "train/answer_nll.h"

#include "autograd/ops.h"
#include "data/synthetic.h"

namespace swiattn {

AnswerNllMeter::AnswerNllMeter(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer), scored_cache_(static_cast<size_t>(tokenizer.vocab_size()), -1) {}

bool AnswerNllMeter::scored(int32_t id) {
  if (id < 0 || id >= static_cast<int32_t>(scored_cache_.size())) return false;
  int8_t& c = scored_cache_[static_cast<size_t>(id)];
  if (c < 0) c = scored_answer_token(tokenizer_, id) ? 1 : 0;
  return c == 1;
}

void AnswerNllMeter::add(const std::vector<BatchRow>& rows, const Tensor& targets, const Tensor& per_token_nll) {
  const int64_t B = targets.dim(0), T = targets.dim(1);
  if (static_cast<int64_t>(rows.size()) != B || per_token_nll.numel() != B * T)
    throw Error("AnswerNllMeter: " + std::to_string(rows.size()) + " rows and " +
                std::to_string(per_token_nll.numel()) + " losses for targets " + shape_str(targets.shape()));
  const int32_t* tg = targets.data<int32_t>();
  std::map<std::string, std::vector<double>> masks;  // task -> (B * T) 1 at scored answer tokens
  for (int64_t b = 0; b < B; ++b) {
    const BatchRow& row = rows[static_cast<size_t>(b)];
    if (row.answers.empty()) continue;  // a text window
    std::vector<double>& mask = masks[row.source];
    if (mask.empty()) mask.assign(static_cast<size_t>(B * T), 0.0);
    for (const auto& [begin, end] : row.answers)
      for (int64_t a = begin; a < end; ++a) {
        // Sequence token a is the target of input position a - 1 (data/loader.h).
        const int64_t t = a - 1;
        if (t < 0 || t >= T || !scored(tg[b * T + t])) continue;
        mask[static_cast<size_t>(b * T + t)] = 1.0;
        tasks_[row.source].tokens += 1;
      }
  }
  if (masks.empty()) return;
  NoGradGuard no_grad;
  const Tensor nll = per_token_nll.reshape({B * T});
  for (const auto& [task, mask] : masks) {
    const Tensor m = Tensor::from_vector(mask, {B * T}, nll.dtype() == DType::F64 ? DType::F64 : DType::F32);
    const Tensor on_device = nll.device() == Device::CPU ? m : m.to(nll.device());
    Var nll_var(nll.dtype() == on_device.dtype() ? nll : nll.to(on_device.dtype()));
    tasks_[task].sums.push_back(sum(mul(nll_var, Var(on_device))).value());  // () on the device
  }
}

std::map<std::string, std::pair<double, int64_t>> AnswerNllMeter::read_totals_and_reset() {
  std::map<std::string, std::pair<double, int64_t>> out;
  for (auto& [task, t] : tasks_) {
    if (t.tokens == 0) continue;
    double total = 0.0;
    for (const Tensor& s : t.sums) total += s.item();
    out[task] = {total, t.tokens};
  }
  tasks_.clear();
  return out;
}

std::map<std::string, double> AnswerNllMeter::read_and_reset() {
  std::map<std::string, double> out;
  for (const auto& [task, total] : read_totals_and_reset())
    out[task] = total.first / static_cast<double>(total.second);
  return out;
}

}  // namespace swiattn
