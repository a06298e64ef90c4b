// tests/test_data_parallel.cpp: data-parallel training (train/data_parallel.h) on the CPU, the
// ranks being threads of this process (tests/thread_communicator.h), so no GPU and no NCCL:
//   - the rows: the ranks of a step read exactly the rows the single-process loader reads for
//     the same global batch, each row once (a pure function of rank, world and step);
//   - the gradient reducer: every gradient becomes the mean over the ranks, also for parameters
//     some ranks did not reach, with small buckets and large, with and without overlap;
//   - the trainer: a 1-rank run through the communicator is the plain run bit for bit; 2 and 3
//     ranks give the plain run's losses and gradient norms up to the order of the sums (float64:
//     to 1e-9); repeated runs are bit-identical; rank 0 alone writes; a 2-rank run killed after a
//     checkpoint resumes bit for bit, and also on 3 ranks and on one process;
//   - the agreement between ranks (a non-finite value on one rank, differing starts, differing
//     replicas) and the start-up pieces (environment, rendezvous file, launch options).
// The NCCL path itself, on one GPU: tests/test_cuda_nccl.cpp.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "autograd/ops.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"
#include "tests/thread_communicator.h"
#include "train/data_parallel.h"
#include "train/gradient_reducer.h"
#include "train/launch.h"
#include "train/trainer.h"

namespace swiattn {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::contains;
using testing::error_of;
using testing::run_ranks;
using testing::ThreadCommunicator;
using testing::ThreadGroup;

// The corpora (SWIATTN_DATA_CACHE where the tests run away from the source tree) and the CLI
// (SWIATTN_CLI likewise).
std::string cache_dir() {
  if (const char* env = std::getenv("SWIATTN_DATA_CACHE"); env && *env) return env;
  return std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
}
std::string cli_binary() {
  if (const char* env = std::getenv("SWIATTN_CLI"); env && *env) return env;
  return std::string(SWIATTN_BINARY_DIR) + "/swiattn";
}

// ---------------------------------------------------------------------------------------------
// Rows

TEST_CASE("data parallel: RowShard splits a batch into contiguous, disjoint blocks in rank order") {
  for (int world : {1, 2, 3, 4, 6, 12}) {
    int64_t next = 0;
    for (int rank = 0; rank < world; ++rank) {
      const auto [begin, end] = RowShard{rank, world}.rows(12);
      CHECK(begin == next);  // contiguous, in rank order: the union is [0, 12), each row once
      CHECK(end - begin == 12 / world);
      next = end;
    }
    CHECK(next == 12);
  }
  CHECK(contains(error_of([] { (void)RowShard{0, 5}.rows(12); }), "must be a multiple of the number of ranks"));
  CHECK(contains(error_of([] { (void)RowShard{2, 2}.rows(12); }), "rank 2 of 2"));
  CHECK(contains(error_of([] { (void)RowShard{0, 0}.rows(12); }), "rank 0 of 0"));
  const std::vector<int32_t> tokens(100, 1);
  CHECK(contains(error_of([&] { BatchLoader(tokens, 6, 8, 0, {}, {0, 4}); }), "train.batch_size"));
}

TEST_CASE("data parallel: the ranks of a step read the single-process loader's rows, each once") {
  const auto tokenizer = make_tokenizer("byte", cache_dir());
  const TextCorpus corpus = load_corpus("moby-dick", cache_dir());
  const std::vector<int32_t> tokens = tokenize_docs(*tokenizer, corpus.train_docs, -1);
  SyntheticMixture text_only, mixed;
  mixed.fraction = 0.5;
  mixed.mqar_pairs = 2;
  mixed.min_needle_distance = 16;
  mixed.tokenizer = tokenizer.get();
  const int B = 12, T = 128;
  for (const SyntheticMixture& mixture : {text_only, mixed}) {
    for (uint64_t start_counter : {uint64_t{0}, uint64_t{37}}) {  // 37: a resumed stream
      BatchLoader whole(tokens, B, T, 5, mixture);
      whole.rng().counter = start_counter;
      for (int world : {1, 2, 3, 4, 6}) {
        CAPTURE(world);
        CAPTURE(mixture.fraction);
        std::vector<BatchLoader> ranks;
        for (int r = 0; r < world; ++r) {
          ranks.emplace_back(tokens, B, T, 5, mixture, RowShard{r, world});
          ranks.back().rng().counter = start_counter;
        }
        BatchLoader reference(tokens, B, T, 5, mixture);
        reference.rng().counter = start_counter;
        for (int step = 0; step < 3; ++step) {
          Tensor in, tg;
          reference.next(in, tg);
          std::vector<int32_t> inputs, targets;
          std::vector<BatchRow> rows;
          for (BatchLoader& loader : ranks) {
            Tensor li, lt;
            loader.next(li, lt);
            CHECK(li.dim(0) == B / world);
            const auto a = li.to_ints(), b = lt.to_ints();
            inputs.insert(inputs.end(), a.begin(), a.end());
            targets.insert(targets.end(), b.begin(), b.end());
            rows.insert(rows.end(), loader.last_rows().begin(), loader.last_rows().end());
            CHECK(loader.rng().counter == reference.rng().counter);  // the position a checkpoint saves
          }
          CHECK(inputs == in.to_ints());
          CHECK(targets == tg.to_ints());
          REQUIRE(rows.size() == reference.last_rows().size());
          for (size_t i = 0; i < rows.size(); ++i) {
            CHECK(rows[i].source == reference.last_rows()[i].source);
            CHECK(rows[i].start == reference.last_rows()[i].start);
            CHECK(rows[i].answers == reference.last_rows()[i].answers);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The gradient reducer

TEST_CASE("data parallel: the gradient reducer averages every gradient over the ranks") {
  const int world = 3;
  const std::vector<Shape> shapes{{7, 5}, {13}, {4, 3, 2}, {9}, {2, 2}};
  // Parameter 3 gets a gradient on rank 1 only; parameter 4 on no rank.
  auto reached = [](size_t k, int rank) { return k < 3 || (k == 3 && rank == 1); };
  for (size_t bucket_bytes : {size_t(48), size_t(1) << 20}) {
    for (bool overlap : {false, true}) {
      CAPTURE(bucket_bytes);
      CAPTURE(overlap);
      ThreadGroup group(world);
      std::vector<std::vector<std::vector<double>>> grads(world);  // rank, parameter -> values
      std::vector<int> collectives(world);
      std::vector<size_t> buckets(world);
      run_ranks(world, [&](int rank) {
        ThreadCommunicator comm(group, rank);
        std::vector<Var> params;
        for (size_t k = 0; k < shapes.size(); ++k)
          params.emplace_back(Tensor::randn(shapes[k], DType::F32, 10 + k), true, "p" + std::to_string(k));
        GradientReducer reducer(comm, params, bucket_bytes, overlap);
        buckets[rank] = reducer.num_buckets();
        for (int step = 0; step < 2; ++step) {  // twice: the state of one step must not leak
          for (const Var& p : params) p.zero_grad();
          Var loss;
          for (size_t k = 0; k < shapes.size(); ++k) {
            if (!reached(k, rank)) continue;
            const Var x(Tensor::randn(shapes[k], DType::F32, 100 * rank + 10 * step + k));
            const Var term = sum(mul(params[k], x));  // d term / d p_k = x
            loss = loss.defined() ? add(loss, term) : term;
          }
          reducer.backward(loss);
        }
        for (const Var& p : params) grads[rank].push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<double>{});
        collectives[rank] = comm.collectives;
      });
      CHECK(buckets[0] == (bucket_bytes == 48 ? 5u : 1u));
      for (int r = 1; r < world; ++r) {
        CHECK(grads[r] == grads[0]);  // identical on every rank, bit for bit
        CHECK(collectives[r] == collectives[0]);
      }
      for (size_t k = 0; k < shapes.size(); ++k) {
        CAPTURE(k);
        if (k == 4) {
          CHECK(grads[0][k].empty());  // no gradient anywhere: undefined, as in one process
          continue;
        }
        std::vector<double> want(static_cast<size_t>(shape_numel(shapes[k])), 0.0);  // step 1's x, mean over ranks
        for (int r = 0; r < world; ++r) {
          if (!reached(k, r)) continue;
          const std::vector<double> x = Tensor::randn(shapes[k], DType::F32, 100 * r + 10 + k).to_vector();
          for (size_t i = 0; i < want.size(); ++i) want[i] += x[i];
        }
        for (size_t i = 0; i < want.size(); ++i) CHECK(grads[0][k][i] == static_cast<double>(static_cast<float>(want[i] / world)));
      }
    }
  }
}

TEST_CASE("data parallel: one rank's reducer leaves a model's gradients bit for bit") {
  ModelConfig mc = testing::tiny_model_config();
  mc.layer_types = {"switch", "full"};
  const Tensor ids = testing::random_ids({3, 9}, 11, 4), targets = testing::random_ids({3, 9}, 11, 5);
  auto gradients = [&](bool through_reducer, bool overlap) {
    Transformer model(mc, DType::F64, 7);
    ThreadGroup group(1);
    ThreadCommunicator comm(group, 0);
    const Var loss = next_token_loss(model.forward(ids), targets);
    if (through_reducer) GradientReducer(comm, model.parameters(), 256, overlap).backward(loss);
    else loss.backward();
    std::vector<std::vector<double>> g;
    for (const Var& p : model.parameters()) g.push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<double>{});
    return g;
  };
  const auto plain = gradients(false, false);
  CHECK(gradients(true, false) == plain);
  CHECK(gradients(true, true) == plain);
}

// ---------------------------------------------------------------------------------------------
// The trainer on thread ranks

// A tiny run with every piece of state that must agree between ranks: switch layers (the
// regulariser and the target-ratio controller), synthetic rows (answer NLL), a checkpoint, a
// validation evaluation. float64, so that the order of sums shows as ~1e-15, not 1e-6.
Config tiny_run() {
  Config c;
  c.model.hidden_size = 16;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 2;
  c.model.num_key_value_heads = 1;
  c.model.head_dim = 8;
  c.model.intermediate_size = 24;
  c.model.sliding_window = 8;
  c.model.layer_types = {"switch", "full"};
  c.model.max_position_embeddings = 128;
  c.model.router_init_std = 0.5;
  c.train.batch_size = 6;
  c.train.seq_len = 128;
  c.train.steps = 8;
  c.train.warmup_steps = 2;
  c.train.log_interval = 1;
  c.train.eval_interval = 4;
  c.train.eval_batches = 1;
  c.train.sample_tokens = 0;
  c.train.checkpoint_interval = 4;
  c.train.threads = 1;
  c.train.dtype = "float64";
  c.data.corpus = "moby-dick";
  c.data.cache_dir = cache_dir();
  c.data.synthetic_fraction = 0.5;
  c.data.mqar_pairs = 2;
  c.reg.controller = "bias";
  c.reg.target_ratio = 0.3;
  c.reg.gamma_base = 0.01;
  return c;
}

// Trains `c` into `out` on `world` thread ranks (0: the plain run, no communicator). Returns each
// rank's log.
std::vector<std::string> train_on_threads(const Config& c, const fs::path& out, int world, bool resume = false) {
  if (world == 0) {
    std::ostringstream log;
    run_training(c, out.string(), log, resume);
    return {log.str()};
  }
  ThreadGroup group(world);
  std::vector<std::string> logs(static_cast<size_t>(world));
  run_ranks(world, [&](int rank) {
    std::ostringstream log;
    DataParallel dp(std::make_unique<ThreadCommunicator>(group, rank), DataParallelOptions{4096, true});
    try {
      run_training(c, out.string(), log, resume, /*overwrite=*/false, &dp);
    } catch (...) {
      logs[static_cast<size_t>(rank)] = log.str();
      throw;
    }
    logs[static_cast<size_t>(rank)] = log.str();
  });
  return logs;
}

// metrics.jsonl without the wall-clock fields and the memory peak (a communicator's buffers
// and the other ranks' threads change it, not the numbers).
std::vector<json> metrics_of(const fs::path& run) {
  std::vector<json> lines;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    for (const char* clock : {"seconds", "tokens_per_second", "time", "peak_tensor_memory_bytes"}) j.erase(clock);
    lines.push_back(j);
  }
  return lines;
}

// step -> field, over the lines that have it.
std::map<int64_t, double> by_step(const std::vector<json>& lines, const char* field) {
  std::map<int64_t, double> out;
  for (const json& j : lines)
    if (j.contains(field) && j.contains("step")) out[j["step"].get<int64_t>()] = j[field].get<double>();
  return out;
}

std::string checkpoint_bytes(const fs::path& run) {
  std::string all;
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    all += testing::read_bytes((run / "checkpoint" / f).string()) + "|";
  return all;
}

double worst_relative(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (const auto& [step, x] : a) {
    REQUIRE(b.count(step));
    worst = std::max(worst, std::abs(x - b.at(step)) / std::max(std::abs(x), 1e-300));
  }
  return worst;
}

TEST_CASE("data parallel: on thread ranks the trainer computes the plain run's numbers") {
  testing::TempDir dir("swiattn_dp_train");
  const Config c = tiny_run();
  train_on_threads(c, dir.path / "plain", 0);
  const std::vector<json> plain = metrics_of(dir.path / "plain");
  REQUIRE(by_step(plain, "loss").size() == 8);

  SUBCASE("one rank through the communicator: bit for bit") {
    const auto logs = train_on_threads(c, dir.path / "one", 1);
    CHECK(contains(logs[0], "data parallel: 1 rank through threads"));
    CHECK(metrics_of(dir.path / "one") == plain);
    CHECK(checkpoint_bytes(dir.path / "one") == checkpoint_bytes(dir.path / "plain"));
  }
  SUBCASE("2 and 3 ranks: the same losses up to the order of the sums; repeated runs bit-identical") {
    for (int world : {2, 3}) {
      CAPTURE(world);
      const fs::path run = dir.path / ("w" + std::to_string(world));
      const auto logs = train_on_threads(c, run, world);
      const std::vector<json> m = metrics_of(run);
      CHECK(m.size() == plain.size());  // rank 0 alone wrote metrics.jsonl
      for (const char* field : {"loss", "grad_norm", "val_loss", "fa_ratio", "regularizer", "router_bias_shift"}) {
        const std::string field_name = field;
        CAPTURE(field_name);
        const double worst = worst_relative(by_step(plain, field), by_step(m, field));
        MESSAGE(world << " ranks, " << std::string(field) << ": worst relative difference to one process " << worst);
        CHECK(worst < 1e-9);
      }
      // The answer NLL of the synthetic rows: every rank's rows, not rank 0's.
      for (size_t i = 0; i < m.size(); ++i)
        if (plain[i].contains("answer_nll"))
          for (const auto& [task, value] : plain[i]["answer_nll"].items()) {
            REQUIRE((m[i].contains("answer_nll") && m[i]["answer_nll"].contains(task)));
            CHECK(m[i]["answer_nll"][task].get<double>() == doctest::Approx(value.get<double>()).epsilon(1e-9));
          }
      // Every rank trained and logged every step; only rank 0 wrote files.
      for (int r = 1; r < world; ++r) CHECK(contains(logs[static_cast<size_t>(r)], "step     8/8"));
      CHECK(fs::exists(run / "checkpoint" / "model.safetensors"));
      const fs::path again = dir.path / ("w" + std::to_string(world) + "-again");
      train_on_threads(c, again, world);
      CHECK(metrics_of(again) == m);
      CHECK(checkpoint_bytes(again) == checkpoint_bytes(run));
    }
  }
  SUBCASE("batch sizes that do not split, and the device, are refused on every rank") {
    Config odd = c;
    odd.train.batch_size = 5;
    CHECK(contains(error_of([&] { train_on_threads(odd, dir.path / "odd", 2); }), "train.batch_size = 5 does not split over 2 ranks"));
    Config stages = c;
    stages.train.curriculum = {{4, 112, 6}, {4, 128, 4}};
    CHECK(contains(error_of([&] { train_on_threads(stages, dir.path / "stages", 3); }), "train.curriculum[1].batch_size = 4"));
    Config gpu = c;
    gpu.train.device = "cuda";
    gpu.train.dtype = "float32";
    CHECK(contains(error_of([&] { train_on_threads(gpu, dir.path / "gpu", 2); }), "needs train.device \"cpu\""));
  }
}

// Run in a child process by the next test case (never alone): a 2-rank run that
// SWIATTN_TEST_KILL_AT=after-save:4 kills (SIGKILL) right after its step-4 checkpoint.
TEST_CASE("data parallel: (helper) a 2-rank run killed after a checkpoint" * doctest::skip()) {
  const char* out = std::getenv("SWIATTN_DP_HELPER_OUT");
  REQUIRE_MESSAGE(out, "run by the test case \"data parallel: a checkpoint of 2 ranks ...\"");
  train_on_threads(tiny_run(), out, 2);
  FAIL("the run was not killed at its step-4 checkpoint");
}

TEST_CASE("data parallel: a checkpoint of 2 ranks resumes on 2 ranks bit for bit, and on 3 and 1") {
  testing::TempDir dir("swiattn_dp_resume");
  const Config c = tiny_run();
  train_on_threads(c, dir.path / "whole", 2);
  const std::vector<json> whole = metrics_of(dir.path / "whole");

  const fs::path killed = dir.path / "killed";
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string cmd = "SWIATTN_DP_HELPER_OUT=" + killed.string() + " SWIATTN_TEST_KILL_AT=after-save:4 " + self +
                          " -tc=\"data parallel: (helper)*\" --no-skip > " + (dir.path / "helper.log").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  const bool killed_status = (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) ||
                             (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  REQUIRE_MESSAGE(killed_status,
                  "the helper was not killed; its log: " << testing::read_bytes((dir.path / "helper.log").string()));
  REQUIRE(fs::read_symlink(killed / "checkpoint") == fs::path("checkpoints/step-00000004"));

  for (int world : {2, 3, 0}) {
    CAPTURE(world);
    const fs::path run = dir.path / ("resumed" + std::to_string(world));
    fs::copy(killed, run, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    const auto logs = train_on_threads(c, run, world, /*resume=*/true);
    CHECK(contains(logs[0], "resumed from"));
    const std::vector<json> m = metrics_of(run);
    if (world == 2) {
      CHECK(m == whole);  // the killed run's lines up to step 4, then the resumed ones
      CHECK(checkpoint_bytes(run) == checkpoint_bytes(dir.path / "whole"));
    } else {
      for (const char* field : {"loss", "grad_norm", "val_loss"}) {
        const std::string field_name = field;
        CAPTURE(field_name);
        CHECK(worst_relative(by_step(whole, field), by_step(m, field)) < 1e-9);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What the ranks agree on

TEST_CASE("data parallel: a non-finite value on one rank is every rank's, and differing ranks are named") {
  const int world = 3;
  ThreadGroup group(world);
  std::vector<std::string> seen(world), start_errors(world), replica_errors(world);
  run_ranks(world, [&](int rank) {
    DataParallel dp(std::make_unique<ThreadCommunicator>(group, rank));
    seen[rank] = dp.nonfinite_on_any_rank(rank == 1 ? "the gradient of w" : "");
    CHECK(dp.nonfinite_on_any_rank("").empty());
    std::vector<Var> params{Var(Tensor::full({4}, rank == 2 ? 1.5 : 1.0, DType::F32), true)};
    start_errors[rank] = error_of([&] { dp.check_same_start(tiny_run(), params); });
    std::vector<Var> same{Var(Tensor::full({4}, 1.0, DType::F32), true)};
    AdamW optimizer(same);
    if (rank == 1) Tensor(optimizer.second_moments()[0]).fill(1e-3);
    replica_errors[rank] = error_of([&] { dp.check_replicas(same, optimizer, 7); });
  });
  CHECK(seen[0] == "rank 1's step (its log names the tensor)");
  CHECK(seen[1] == "the gradient of w (rank 1)");
  CHECK(seen[2] == seen[0]);
  for (int r = 0; r < world; ++r) {
    CHECK(contains(start_errors[r], "rank(s) 2 start from weights different from rank 0's"));
    CHECK(contains(replica_errors[r], "after step 7 the weights or AdamW moments of rank(s) 1 differ"));
  }
}

// ---------------------------------------------------------------------------------------------
// Starting the ranks

struct EnvGuard {  // sets variables for one test, restores them after
  std::map<std::string, std::optional<std::string>> saved;
  void set(const std::string& k, const char* v) {
    if (!saved.count(k)) saved[k] = std::getenv(k.c_str()) ? std::optional<std::string>(std::getenv(k.c_str())) : std::nullopt;
    if (v) setenv(k.c_str(), v, 1);
    else unsetenv(k.c_str());
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved)
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
  }
};

TEST_CASE("data parallel: the environment of a rank, and its errors") {
  EnvGuard env;
  for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SWIATTN_LAUNCH_ID"}) env.set(k, nullptr);
  CHECK_FALSE(launch_environment().has_value());  // a plain run
  env.set("RANK", "1");
  CHECK(contains(error_of([] { launch_environment(); }), "RANK is set but WORLD_SIZE is not"));
  env.set("WORLD_SIZE", "2");
  CHECK(contains(error_of([] { launch_environment(); }), "LOCAL_RANK is not set"));
  env.set("LOCAL_RANK", "1");
  CHECK(contains(error_of([] { launch_environment(); }), "SWIATTN_LAUNCH_ID is not set"));
  env.set("SWIATTN_LAUNCH_ID", "job 42");
  CHECK(contains(error_of([] { launch_environment(); }), "use 1 to 64 letters"));
  env.set("SWIATTN_LAUNCH_ID", "job-42.a_b");
  const auto e = launch_environment();
  REQUIRE(e.has_value());
  CHECK((e->rank == 1 && e->world == 2 && e->local_rank == 1 && e->launch_id == "job-42.a_b"));
  env.set("RANK", "2");
  CHECK(contains(error_of([] { launch_environment(); }), "RANK=2 but WORLD_SIZE=2"));
  env.set("RANK", "x");
  CHECK(contains(error_of([] { launch_environment(); }), "RANK=\"x\" is not a non-negative integer"));
  CHECK(rendezvous_path("runs/a", "j1") == "runs/a/distributed/nccl-id.j1");

  env.set("SWIATTN_BUCKET_MB", "0");
  CHECK(contains(error_of([] { data_parallel_options_from_environment(); }), "SWIATTN_BUCKET_MB"));
  env.set("SWIATTN_BUCKET_MB", "0.5");
  env.set("SWIATTN_OVERLAP", "0");
  const DataParallelOptions o = data_parallel_options_from_environment();
  CHECK((o.bucket_bytes == (size_t(1) << 19) && !o.overlap));
  env.set("SWIATTN_OVERLAP", "yes");
  CHECK(contains(error_of([] { data_parallel_options_from_environment(); }), "SWIATTN_OVERLAP"));
  env.set("SWIATTN_BUCKET_MB", nullptr);
  env.set("SWIATTN_OVERLAP", nullptr);
}

TEST_CASE("data parallel: the rendezvous file is published whole, once, and waited for") {
  testing::TempDir dir("swiattn_dp_rendezvous");
  const std::string path = rendezvous_path(dir.path.string(), "t1");
  const std::string id(128, '\x07');
  std::string got;
  std::thread waiter([&] { got = wait_for_rendezvous_id(path, 128, 1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  publish_rendezvous_id(path, id);
  waiter.join();
  CHECK(got == id);
  CHECK(contains(error_of([&] { publish_rendezvous_id(path, id); }), "SWIATTN_LAUNCH_ID must be fresh"));
  EnvGuard env;
  env.set("SWIATTN_RENDEZVOUS_TIMEOUT", "0");
  CHECK(contains(error_of([&] { wait_for_rendezvous_id(path + "-missing", 128, 3); }), "rank 3 waited 0 s for"));
}

TEST_CASE("data parallel: the launcher starts every rank with its environment and stops them when one fails") {
  testing::TempDir dir("swiattn_dp_launcher");
  // A stand-in for `swiattn train`: records its arguments and environment, then rank 1 fails
  // (exit 3) while rank 0 would run for a minute unless stopped.
  const std::string script = (dir.path / "rank.sh").string();
  std::ofstream(script) << "#!/bin/sh\n"
                           "echo \"$@|$RANK|$WORLD_SIZE|$LOCAL_RANK|$SWIATTN_LAUNCH_ID|$SWIATTN_OVERLAP|$SWIATTN_BUCKET_MB\" > "
                        << dir.path.string() << "/args-$RANK\n"
                           "[ \"$MODE\" = fail ] && [ \"$RANK\" = 1 ] && { echo 'rank 1 gives up' >&2; exit 3; }\n"
                           "[ \"$MODE\" = fail ] && [ \"$RANK\" = 0 ] && exec sleep 60\n"
                           "exit 0\n";
  fs::permissions(script, fs::perms::owner_all);
  LaunchPlan plan = parse_launch_args({"--nproc", "3", "--bucket-mb", "2", "train", "--out", (dir.path / "run").string()});
  EnvGuard env;
  env.set("MODE", "ok");
  CHECK(run_launch(plan, script) == 0);
  std::string launch_id;
  for (int r = 0; r < 3; ++r) {
    std::string line = testing::read_bytes((dir.path / ("args-" + std::to_string(r))).string());
    CAPTURE(line);
    const std::string want = "train --out " + (dir.path / "run").string() + "|" + std::to_string(r) + "|3|" + std::to_string(r) + "|";
    CHECK(line.rfind(want, 0) == 0);
    CHECK(contains(line, "|1|2\n"));  // overlap on, 2 MiB buckets
    const std::string id = line.substr(want.size(), line.find('|', want.size()) - want.size());
    if (r == 0) launch_id = id;
    CHECK(id == launch_id);  // one launch id for all ranks
  }
  CHECK(launch_id.size() >= 8);
  CHECK(fs::exists(dir.path / "run" / "distributed" / "rank-1.log"));
  env.set("MODE", "fail");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_launch(plan, script) == 3);  // rank 1's status; rank 0 was stopped, not waited for
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  CHECK(contains(testing::read_bytes((dir.path / "run" / "distributed" / "rank-1.log").string()), "rank 1 gives up"));
}

TEST_CASE("data parallel: launch options, and a launch without the GPUs it needs") {
  const LaunchPlan p = parse_launch_args({"--nproc", "4", "--bucket-mb", "8", "--no-overlap", "train", "--out", "runs/x",
                                          "--set", "train.steps=3"});
  CHECK(p.nproc == 4);
  CHECK(p.bucket_mb == 8.0);
  CHECK_FALSE(p.overlap);
  CHECK(p.out_dir == "runs/x");
  CHECK(p.train_args == std::vector<std::string>{"--out", "runs/x", "--set", "train.steps=3"});
  CHECK(parse_launch_args({"--nproc", "2", "train", "--resume", "runs/y"}).out_dir == "runs/y");
  CHECK(parse_launch_args({"--nproc", "2", "train"}).out_dir == "runs/train");
  CHECK(contains(error_of([] { parse_launch_args({"train"}); }), "launch needs --nproc N"));
  CHECK(contains(error_of([] { parse_launch_args({"--nproc", "0", "train"}); }), "in [1, 1024]"));
  CHECK(contains(error_of([] { parse_launch_args({"--nproc", "2"}); }), "launch needs the command to start"));
  CHECK(contains(error_of([] { parse_launch_args({"--nproc", "2", "--bogus", "train"}); }), "unknown option for launch: --bogus"));
  CHECK(contains(error_of([] { parse_launch_args({"--nproc", "2", "train", "--print-config"}); }), "--print-config"));
  // 999 GPUs: more than any machine shows, so the launcher refuses before starting anything.
  testing::TempDir dir("swiattn_dp_launch");
  const std::string log = (dir.path / "launch.log").string();
  const std::string cmd = cli_binary() + " launch --nproc 999 train --out " +
                          (dir.path / "run").string() + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 1));
  CHECK(contains(testing::read_bytes(log), "--nproc 999 needs one GPU per process"));
  CHECK_FALSE(fs::exists(dir.path / "run"));
  // A rank started by hand on the CPU: refused before anything is loaded, naming the rank.
  const std::string by_hand = "env RANK=0 WORLD_SIZE=1 " + cli_binary() + " train --device cpu --out " +
                              (dir.path / "run").string() + " > " + log + " 2>&1";
  const int hand_status = std::system(by_hand.c_str());
  CHECK((WIFEXITED(hand_status) && WEXITSTATUS(hand_status) == 1));
  CHECK(contains(testing::read_bytes(log), "rank 0 of 1: data-parallel training runs on GPUs through NCCL"));
  CHECK_FALSE(fs::exists(dir.path / "run"));
}

}  // namespace
}  // namespace swiattn
