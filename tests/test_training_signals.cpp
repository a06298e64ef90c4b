// tests/test_training_signals.cpp: what a training run reports and controls beyond its loss, with
// known answers:
//   - AnswerNllMeter averages the per-token loss over exactly the scored answer tokens of the
//     synthetic rows (the digits, not the space before them), per task;
//   - a real run logs answer_nll per task on its progress lines and in metrics.jsonl;
//   - the target-ratio controller brings a tiny switch model's full-attention ratio to the target
//     (within +-0.03, averaged over the last steps) from both router inits, random (ratio near
//     0.5) and full (ratio 1), moves the router biases by at most 1 logit a step, and
//     leaves gamma_base where the configuration put it.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tests/test_util.h"
#include "train/answer_nll.h"
#include "train/config.h"
#include "train/trainer.h"

namespace swiattn {
namespace {

using nlohmann::json;
using testing::contains;
using testing::TempDir;

std::string cache_dir() { return std::string(SWIATTN_SOURCE_DIR) + "/data/cache"; }

std::vector<json> metrics_lines(const std::string& run) {
  std::vector<json> lines;
  std::ifstream f(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) lines.push_back(json::parse(line));
  return lines;
}

TEST_CASE("training signals: answer NLL averages the scored answer tokens of each task") {
  const ByteTokenizer bytes;
  // Two rows of T = 8. Row 0 a passkey whose answer " 42" is sequence tokens [5, 8): the space (5)
  // is not scored, the digits 6 and 7 are targets of input positions 5 and 6. Row 1 an MQAR row
  // with answers [2, 4) (" 7", its digit at 3: position 2) and [7, 9) (" 9": position 7).
  std::vector<int32_t> targets(16, 'x');
  targets[4] = ' ', targets[5] = '4', targets[6] = '2';
  targets[8 + 1] = ' ', targets[8 + 2] = '7', targets[8 + 6] = ' ', targets[8 + 7] = '9';
  std::vector<BatchRow> rows(2);
  rows[0].source = "passkey";
  rows[0].answers = {{5, 8}};
  rows[1].source = "mqar";
  rows[1].answers = {{2, 4}, {7, 9}};
  std::vector<double> nll(16);
  for (size_t i = 0; i < nll.size(); ++i) nll[i] = 0.5 + static_cast<double>(i);
  AnswerNllMeter meter(bytes);
  meter.add(rows, Tensor::from_ints(targets, {2, 8}), Tensor::from_vector(nll, {16}, DType::F32));
  meter.add(rows, Tensor::from_ints(targets, {2, 8}), Tensor::from_vector(nll, {16}, DType::F32));  // the same again
  const auto mean = meter.read_and_reset();
  REQUIRE(mean.size() == 2);
  CHECK(mean.at("passkey") == doctest::Approx((nll[5] + nll[6]) / 2));
  CHECK(mean.at("mqar") == doctest::Approx((nll[8 + 2] + nll[8 + 7]) / 2));
  CHECK(meter.read_and_reset().empty());  // reset: nothing since the last read
  // Text rows only: no task, no number (never a 0 that looks like a perfect score).
  std::vector<BatchRow> text(2);
  text[0].source = text[1].source = "text";
  meter.add(text, Tensor::from_ints(targets, {2, 8}), Tensor::from_vector(nll, {16}, DType::F32));
  CHECK(meter.read_and_reset().empty());
}

Config tiny_switch_run(const std::string& router_init) {
  Config c;
  c.model.hidden_size = 32;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 2;
  c.model.num_key_value_heads = 1;
  c.model.head_dim = 16;
  c.model.intermediate_size = 48;
  c.model.sliding_window = 16;
  c.model.max_position_embeddings = 64;
  c.model.layer_types = {"switch", "switch"};
  c.model.router_init = router_init;
  c.model.router_init_std = 0.3;  // logits spread around 0: a ratio near 0.5 at the start
  c.train.batch_size = 8;
  c.train.seq_len = 64;
  c.train.steps = 90;
  c.train.learning_rate = 1e-3;
  c.train.min_learning_rate = 1e-4;
  c.train.warmup_steps = 5;
  c.train.log_interval = 1;
  c.train.eval_interval = 1000;
  c.train.eval_batches = 1;
  c.train.sample_tokens = 0;
  c.train.threads = 2;
  c.data.corpus = "moby-dick";
  c.data.cache_dir = cache_dir();
  c.reg.controller = "bias";
  c.reg.target_ratio = 0.2;
  return c;
}

TEST_CASE("training signals: the target-ratio controller reaches its target from both router inits, bounded") {
  for (const std::string init : {"random", "full"}) {
    CAPTURE(init);
    TempDir dir("swiattn_controller_" + init);
    const Config c = tiny_switch_run(init);
    std::ostringstream log;
    run_training(c, dir.path.string(), log);
    std::vector<double> ratio, shift, gamma;
    for (const json& line : metrics_lines(dir.path.string()))
      if (line.contains("fa_ratio")) {
        ratio.push_back(line["fa_ratio"].get<double>());
        shift.push_back(line["router_bias_shift"].get<double>());
        gamma.push_back(line["gamma_base"].get<double>());
      }
    REQUIRE(ratio.size() == 90);
    if (init == "full") CHECK(ratio.front() == 1.0);  // every token starts on full attention
    double last = 0.0;
    for (size_t i = ratio.size() - 30; i < ratio.size(); ++i) last += ratio[i] / 30.0;
    INFO("mean full-attention ratio over the last 30 steps: " << last);
    CHECK(std::abs(last - c.reg.target_ratio) <= 0.03);
    for (size_t i = 0; i < shift.size(); ++i) {
      const double step = shift[i] - (i ? shift[i - 1] : 0.0);
      CHECK(std::abs(step) <= 1.0 + 1e-12);  // a bounded step, every step
      CHECK(gamma[i] == c.reg.gamma_base);                      // the controller leaves gamma_base alone
    }
    CHECK(contains(log.str(), "target-ratio controller: router biases held at a full-attention ratio of 0.200"));
  }
}

TEST_CASE("training signals: a run with synthetic rows logs answer_nll per task") {
  TempDir dir("swiattn_answer_nll");
  Config c = tiny_switch_run("random");
  c.model.layer_types = {"full", "full"};
  c.model.max_position_embeddings = 160;
  c.train.seq_len = 160;
  c.train.batch_size = 4;
  c.train.steps = 4;
  c.train.log_interval = 2;
  c.data.synthetic_fraction = 1.0;
  c.data.mqar_pairs = 1;
  c.reg.controller = "off";
  std::ostringstream log;
  run_training(c, dir.path.string(), log);
  CHECK(contains(log.str(), " | answer NLL "));
  int logged = 0;
  for (const json& line : metrics_lines(dir.path.string()))
    if (line.contains("loss")) {
      ++logged;
      REQUIRE(line.contains("answer_nll"));
      for (const auto& [task, value] : line["answer_nll"].items()) {
        CAPTURE(task);
        CHECK((task == "passkey" || task == "mqar"));
        CHECK(value.get<double>() > 0.5);  // an untrained model: near ln(256) per digit
        CHECK(std::isfinite(value.get<double>()));
      }
    }
  CHECK(logged == 2);
}

}  // namespace
}  // namespace swiattn
