// tests/test_hostile_checkpoints.cpp: checkpoints written to break the CLI (issue 17's hostile
// probe), and runs that must never be lost. Each case corrupts one file of a good checkpoint (or
// asks for something the program cannot honour) and runs the real CLI in a child process
// (tests/cli_test_util.h); the answer must be exit status 1 with one line naming the file and the
// key, never a crash (status 139), never a silently wrong result. A case marked REGRESSION failed
// before its fix (run the cases against an older build with SWIATTN_CLI=that/swiattn).
// The run-config files themselves are in tests/test_hostile_inputs.cpp; the save's crash
// consistency in tests/test_checkpoint_faults.cpp and tests/test_resume.cpp.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "tensor/random.h"
#include "tests/cli_test_util.h"
#include "tests/test_util.h"
#include "train/train_state.h"

namespace swiattn {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::check_one_error_line;
using testing::cli_path;
using testing::CliResult;
using testing::contains;
using testing::read_bytes;
using testing::run_cli;
using testing::shown;
using testing::TempDir;
using testing::write_bytes;

// A small run whose files are all valid: byte tokenizer, a switch layer, moby-dick.
Config small_run() {
  Config c;
  c.model = testing::tiny_model_config();
  c.model.vocab_size = 256;
  c.model.layer_types = {"full", "switch"};
  c.model.max_position_embeddings = 32;
  c.train.seq_len = 32;
  c.train.batch_size = 2;
  c.train.steps = 12;
  c.train.sample_tokens = 0;
  c.train.eval_batches = 1;
  c.data.corpus = "moby-dick";
  c.data.cache_dir = std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
  return c;
}

// OUT/checkpoint -> checkpoints/step-00000004, as `swiattn train` leaves it.
void write_run_folder(const fs::path& out, const Config& config, uint64_t seed = 3) {
  Transformer model(config.model, DType::F32, seed);
  AdamW optimizer(model.parameters());
  TrainingState state;
  state.step = 0;  // the optimizer has taken no step: steps_taken = step - skipped
  state.initial_val_loss = state.last_val_loss = 5.5;
  state.last_val_ratios = {0.5};
  state.loader_rng_seed = derive_seed(config.train.seed, 1);  // what the trainer's loader starts from
  save_training_checkpoint(out.string(), model, config, optimizer, state);
  // As a checkpoint written before train.keep_checkpoints existed: readers keep a missing key's
  // default, and an older build (SWIATTN_CLI, to see these cases fail before their fixes) reads it.
  const fs::path run_config = out / "checkpoint" / "run_config.json";
  json j = json::parse(read_bytes(run_config.string()));
  j["train"].erase("keep_checkpoints");
  write_bytes(run_config.string(), j.dump(2));
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Text edits of a JSON file: a key appended to the top-level object, or a top-level value set.
std::function<std::string(const std::string&)> append_member(const std::string& member) {
  return [member](const std::string& text) {
    const size_t close = text.rfind('}');
    return text.substr(0, close) + ", " + member + text.substr(close);
  };
}
std::function<std::string(const std::string&)> set_value(const std::vector<std::string>& path, const json& value) {
  return [path, value](const std::string& text) {
    json j = json::parse(text);
    json* at = &j;
    for (const std::string& key : path) at = &(*at)[key];
    *at = value;
    return j.dump(2);
  };
}

struct CheckpointCase {
  std::string what;
  std::string file;  // in the checkpoint
  std::function<std::string(const std::string&)> edit;
  std::string expected;  // part of the one error line, besides the file's name
  bool generate = true, eval = true, resume = true;
};

// REGRESSION (issue 17): the checkpoint's JSON readers had no depth limit (a config.json or
// trainer_state.json nested 200,000 deep crashed generate, eval and train --resume with a stack
// overflow), no duplicate-key refusal, no size bounds (model.hidden_size near 2^62 in config.json
// segfaulted in the tensor fill), no range checks of the trainer state (step 10^18 was accepted
// and the save that followed outranked, and so deleted, the real checkpoint), and generate and
// eval never compared config.json with run_config.json.
TEST_CASE("hostile: corrupted checkpoint JSON gives one error line from generate, eval and train --resume") {
  REQUIRE_MESSAGE(fs::exists(cli_path()), "the CLI is not built: " << cli_path());
  TempDir dir("swiattn_test_hostile_ckpt");
  const Config run = small_run();
  const fs::path pristine = dir.path / "pristine";
  write_run_folder(pristine, run);
  // A value nested 200,000 deep in place of a known key's (the reader's message about its type
  // once dumped it recursively).
  auto deepen = [](const std::string& key) {
    return [key](const std::string& text) {
      const size_t at = text.find("\"" + key + "\": ");
      const size_t value = at + key.size() + 4, end = text.find_first_of(",\n}", value);
      return text.substr(0, value) + nested_arrays(200000) + text.substr(end);
    };
  };
  const std::vector<CheckpointCase> cases = {
      {"config.json nested 200,000 deep", "config.json", deepen("sliding_window"), "nested deeper than 16 levels"},
      {"trainer_state.json nested 200,000 deep", "trainer_state.json", deepen("step"), "nested deeper than 16 levels",
       false, false, true},
      {"run_config.json nested 200,000 deep", "run_config.json", deepen("sliding_window"), "nested deeper than 16 levels"},
      {"a key twice in config.json", "config.json", append_member("\"hidden_size\": 16"), "duplicate key \"hidden_size\"",
       true, false, false},
      {"a key twice in trainer_state.json", "trainer_state.json", append_member("\"step\": 4"), "duplicate key \"step\"",
       false, false, true},
      {"hidden_size 2^62 in config.json", "config.json", set_value({"hidden_size"}, json(uint64_t{1} << 62)),
       "model.hidden_size: must be in [1, 2147483647]"},
      {"hidden_size 2^62 in run_config.json", "run_config.json", set_value({"model", "hidden_size"}, json(uint64_t{1} << 62)),
       "model.hidden_size: must be in [1, 2147483647]", false, false, true},
      {"config.json and run_config.json disagree", "run_config.json", set_value({"model", "sliding_window"}, 5),
       "config.json and run_config.json disagree on sliding_window (3 vs 5)", true, true, false},
      {"torch_dtype against train.dtype", "config.json", set_value({"torch_dtype"}, "float64"),
       "torch_dtype \"float64\" disagrees with run_config.json's train.dtype \"float32\"", false, true, false},
      {"vocab_size above the tokenizer's", "run_config.json", set_value({"model", "vocab_size"}, 300),
       "model.vocab_size: 300 is larger than the byte tokenizer's 256 ids", true, false, false},
      {"trainer state step 10^18", "trainer_state.json", set_value({"step"}, json(int64_t{1000000000000000000})),
       "trainer state step 1000000000000000000 is outside [0, 12]", false, false, true},
      {"trainer state step -1", "trainer_state.json", set_value({"step"}, -1), "step must be >= 0", false, false, true},
      {"trainer state step 4.5", "trainer_state.json", set_value({"step"}, 4.5), "field \"step\" has the wrong type",
       false, false, true},
      {"trainer state skipped_batches above step", "trainer_state.json", set_value({"skipped_batches"}, 3),
       "skipped_batches 3 is outside [0, step 0]", false, false, true},
      {"trainer state loss NaN-like", "trainer_state.json", set_value({"final_val_loss"}, -1.0),
       "final_val_loss must be a finite number >= 0", false, false, true},
      {"trainer state ratio 7", "trainer_state.json", set_value({"val_layer_fa_ratio"}, json::array({7})),
       "val_layer_fa_ratio holds 7", false, false, true},
      {"trainer state ratios of another model", "trainer_state.json", set_value({"val_layer_fa_ratio"}, json::array({0.1, 0.2})),
       "val_layer_fa_ratio has 2 entries; the model has 1 switch layers", false, false, true},
  };
  for (const CheckpointCase& c : cases) {
    CAPTURE(c.what);
    const fs::path out = dir.path / "run";
    fs::remove_all(out);
    fs::copy(pristine, out, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    const fs::path file = out / "checkpoint" / c.file;
    write_bytes(file.string(), c.edit(read_bytes(file.string())));
    const std::string link_before = fs::read_symlink(out / "checkpoint").string();
    if (c.generate) {
      const CliResult r = run_cli({"generate", "--checkpoint", out.string(), "--tokens", "2"}, dir);
      check_one_error_line(r, "swiattn generate: error: ", c.expected);
      CHECK(r.output.size() < 1000);
    }
    if (c.eval) {
      const CliResult r = run_cli({"eval", "--checkpoint", out.string(), "--out", dir.file("eval")}, dir);
      check_one_error_line(r, "swiattn eval: error: ", c.expected);
    }
    if (c.resume) {
      const CliResult r = run_cli({"train", "--resume", out.string()}, dir);
      check_one_error_line(r, "swiattn train: error: ", c.expected);
      // The checkpoint is still there and still linked.
      CHECK(fs::read_symlink(out / "checkpoint").string() == link_before);
      CHECK(fs::exists(out / "checkpoint" / "model.safetensors"));
    }
  }
}

// Sets the first `count` elements (all when count < 0) of one tensor of a checkpoint to NaN.
void poison_weights(const fs::path& checkpoint, const std::string& name, int64_t count = -1,
                    const char* file = "model.safetensors") {
  const std::string weights = (checkpoint / file).string();
  SafetensorsFile f = read_safetensors(weights);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : f.names) {
    Tensor t = f.tensors.at(n).clone();
    if (n == name)
      for (int64_t i = 0; i < (count < 0 ? t.numel() : count); ++i) t.data<float>()[i] = std::nanf("");
    tensors.emplace_back(n, t);
  }
  write_safetensors(weights, tensors, f.metadata);
}

// REGRESSION (issue 17): a checkpoint whose weights are NaN generated text with exit status 0, and
// eval exited 0 reporting loss "n/a" beside normal-looking efficiency numbers. Loading refuses
// non-finite weights; --allow-nonfinite loads them to show what the broken model does, and the
// exit status still says it is broken.
TEST_CASE("hostile: NaN weights make generate and eval exit 1, also with --allow-nonfinite") {
  REQUIRE_MESSAGE(fs::exists(cli_path()), "the CLI is not built: " << cli_path());
  TempDir dir("swiattn_test_hostile_ckpt");
  const fs::path out = dir.path / "run";
  write_run_folder(out, small_run());
  // The control: the intact checkpoint generates.
  REQUIRE(run_cli({"generate", "--checkpoint", out.string(), "--tokens", "3"}, dir).status == 0);
  for (const char* name : {"embed.weight", "layers.1.attn.router.weight"}) {
    CAPTURE(name);
    poison_weights(out / "checkpoint", name);
    const std::string what = std::string("tensor \"") + name + "\" holds";
    check_one_error_line(run_cli({"generate", "--checkpoint", out.string(), "--tokens", "3"}, dir),
                         "swiattn generate: error: ", what);
    check_one_error_line(run_cli({"eval", "--checkpoint", out.string(), "--out", dir.file("eval")}, dir),
                         "swiattn eval: error: ", what);
    // Loaded anyway: the outputs are NaN (the router's probability enters the switch layer's
    // output through the straight-through term), and both commands refuse them.
    const CliResult eval = run_cli({"eval", "--checkpoint", out.string(), "--out", dir.file("eval"), "--allow-nonfinite"}, dir);
    CHECK(eval.status == 1);
    CHECK(contains(eval.output, "hold NaN or infinity on held-out text"));
    CHECK_FALSE(fs::exists(dir.file("eval/results.json")));
    const CliResult gen = run_cli({"generate", "--checkpoint", out.string(), "--tokens", "3", "--allow-nonfinite"}, dir);
    CHECK(gen.status == 1);
    CHECK(contains(gen.output, "the logits contain a NaN or an infinity"));
    fs::remove_all(out);
    write_run_folder(out, small_run());
  }
  // NaN moments: a resume is refused before its first step (it used to turn the weights into NaN
  // and, at the next save, replace the good checkpoint with them).
  poison_weights(out / "checkpoint", "v.layers.0.mlp.up_proj.weight", -1, "optimizer.safetensors");
  check_one_error_line(run_cli({"train", "--resume", out.string()}, dir), "swiattn train: error: ",
                       "tensor \"v.layers.0.mlp.up_proj.weight\" holds 96 non-finite values");
  CHECK(linked_checkpoint_step(out.string()) == 0);
  // A NaN that the outputs never meet (an untied embedding's row for byte 0, which neither the
  // prompt, the greedy text nor the held-out text holds): the commands run and print, then exit 1.
  Config untied = small_run();
  untied.model.tie_word_embeddings = false;
  untied.model.max_position_embeddings = untied.train.seq_len = 160;  // room for eval's passkey examples
  fs::remove_all(out);
  write_run_folder(out, untied);
  poison_weights(out / "checkpoint", "embed.weight", 8);  // row 0 (hidden size 8)
  const CliResult gen = run_cli({"generate", "--checkpoint", out.string(), "--tokens", "3", "--temperature", "0",
                                 "--allow-nonfinite"}, dir);
  INFO(shown(gen.output));
  CHECK(gen.status == 1);
  CHECK(contains(gen.output, "non-finite values in the weights of embed.weight (loaded with --allow-nonfinite): "
                             "the text above comes from a broken model"));
  const CliResult eval = run_cli({"eval", "--checkpoint", out.string(), "--out", dir.file("eval2"), "--allow-nonfinite",
                                  "--set", "eval.passkey_trials=1", "--set", "eval.mqar_trials=1", "--set", "eval.batches=1",
                                  "--set", "eval.decode_tokens=8"}, dir);
  INFO(shown(eval.output));
  CHECK(eval.status == 1);
  CHECK(contains(eval.output, "but computed with non-finite values in the weights of embed.weight"));
  REQUIRE(fs::exists(dir.file("eval2/results.json")));
  const json results = json::parse(read_bytes(dir.file("eval2/results.json")));
  CHECK(results["nonfinite_weights"] == "the weights of embed.weight");
  CHECK(results["allow_nonfinite"] == true);
}

// REGRESSION (issue 17): num_hidden_layers = 1000000 passed validation and allocated layer by
// layer until the machine ran out of memory (a checkpoint's config.json could ask for it too). The
// model's memory is estimated first (model/memory_estimate.h); the CLI's train case is in
// tests/test_hostile_inputs.cpp.
TEST_CASE("hostile: a model far beyond the memory is refused before its first tensor is allocated") {
  ModelConfig c;
  c.num_hidden_layers = 1000000;
  const std::string error = testing::error_of([&] { Transformer model(c, DType::F32, 0); });
  CHECK(contains(error, "model: "));
  CHECK(contains(error, "parameters need about"));
  CHECK(contains(error, "model.num_hidden_layers = 1000000"));
  c.num_hidden_layers = 4;
  c.vocab_size = 2147483647;  // 2^31 - 1 rows of the embedding
  CHECK(contains(testing::error_of([&] { Transformer model(c, DType::F32, 0); }), "model.vocab_size = 2147483647"));
}

// REGRESSION (issue 17): `generate --tokens` near 2^63 overflowed a signed sum (undefined
// behaviour; the error that followed named a KV cache capacity of -9223372036854775806); an
// `eval --out` that cannot be written was found only after the whole evaluation.
TEST_CASE("hostile: generate --tokens beyond the context, and eval --out that cannot be written, fail at once") {
  REQUIRE_MESSAGE(fs::exists(cli_path()), "the CLI is not built: " << cli_path());
  TempDir dir("swiattn_test_hostile_ckpt");
  const fs::path out = dir.path / "run";
  write_run_folder(out, small_run());
  for (const char* tokens : {"9223372036854775807", "33"}) {
    CAPTURE(tokens);
    check_one_error_line(run_cli({"generate", "--checkpoint", out.string(), "--tokens", tokens}, dir),
                         "swiattn generate: error: ", "exceeds the model's max_position_embeddings 32");
  }
  write_bytes(dir.file("a_file"), "x");
  const CliResult r = run_cli({"eval", "--checkpoint", out.string(), "--out", dir.file("a_file") + "/eval"}, dir);
  check_one_error_line(r, "swiattn eval: error: ", "cannot be written");
  CHECK_FALSE(contains(r.output, "held-out"));  // before the evaluation, not after it
}

// A snapshot of a folder: every entry's relative path, kind, bytes (or link target) and mtime.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    struct stat info;
    lstat(e.path().c_str(), &info);
    const std::string mtime = std::to_string(info.st_mtim.tv_sec) + "." + std::to_string(info.st_mtim.tv_nsec);
    if (e.is_symlink()) entries[rel] = "link " + fs::read_symlink(e.path()).string() + " " + mtime;
    else if (e.is_regular_file()) entries[rel] = "file " + read_bytes(e.path().string()) + " " + mtime;
    else entries[rel] = "dir";
  }
  return entries;
}

// issue 15 item 4 and issue 17 item 5: a run folder is never lost.
TEST_CASE("run folder: --out over a run is refused, --overwrite replaces it only once the new run starts") {
  REQUIRE_MESSAGE(fs::exists(cli_path()), "the CLI is not built: " << cli_path());
  TempDir dir("swiattn_test_run_folder");
  const std::string cache = std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
  const std::vector<std::string> tiny = {
      "--set", "model.hidden_size=16", "--set", "model.num_hidden_layers=1", "--set", "model.num_attention_heads=2",
      "--set", "model.num_key_value_heads=1", "--set", "model.head_dim=8", "--set", "model.intermediate_size=16",
      "--set", "model.max_position_embeddings=16", "--set", "train.seq_len=16", "--set", "train.batch_size=2",
      "--set", "train.steps=4", "--set", "train.warmup_steps=1", "--set", "train.eval_batches=1",
      "--set", "train.sample_tokens=0", "--set", "train.threads=1", "--set", "data.corpus=moby-dick",
      "--set", "data.cache_dir=" + cache};
  auto train = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tiny.begin(), tiny.end());  // first: the case's own --set wins
    args.insert(args.begin(), "train");
    return run_cli(args, dir);
  };
  const std::string a = dir.file("a");
  REQUIRE(train({"--out", a}).status == 0);
  const auto original = snapshot(a);

  // REGRESSION: a fresh run into the folder replaced config.json and truncated metrics.jsonl at
  // once (and a later save deleted the old checkpoint), even when it then failed.
  CliResult r = train({"--out", a, "--set", "train.learning_rate=1e30", "--set", "train.min_learning_rate=1e30"});
  check_one_error_line(r, "swiattn train: error: ", "already holds a run (a checkpoint at step 4, metrics.jsonl)");
  CHECK(contains(r.output, "--resume " + a));
  CHECK(contains(r.output, "--overwrite"));
  CHECK(snapshot(a) == original);
  // --overwrite, but the run cannot start (its init_from does not exist): nothing is touched.
  r = train({"--out", a, "--overwrite", "--init-from", dir.file("absent")});
  CHECK(r.status == 1);
  CHECK(snapshot(a) == original);
  // --overwrite that starts: the old run is gone, none of its files mixes with the new one.
  r = train({"--out", a, "--overwrite", "--set", "train.steps=2", "--set", "train.keep_checkpoints=3",
             "--set", "train.checkpoint_interval=1"});
  INFO(shown(r.output));
  REQUIRE(r.status == 0);
  CHECK(read_trainer_state(a + "/checkpoint")["step"] == 2);
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(a + "/checkpoints")) dirs.push_back(e.path().filename().string());
  std::sort(dirs.begin(), dirs.end());
  CHECK(dirs == std::vector<std::string>{"step-00000001", "step-00000002"});  // not step 4 of the old run
  std::istringstream metrics(read_bytes(a + "/metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    const json record = json::parse(line);
    if (record.contains("step")) CHECK(record["step"].get<int64_t>() <= 2);  // no line of the old 4-step run
  }
  CHECK(json::parse(read_bytes(a + "/config.json"))["train"]["steps"] == 2);

  // --resume takes no --out, and of --set only train.steps and train.keep_checkpoints.
  r = run_cli({"train", "--resume", a, "--out", dir.file("b")}, dir);
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--resume DIR continues the run in its own folder DIR: drop --out"));
  r = run_cli({"train", "--resume", a, "--set", "model.hidden_size=8"}, dir);
  CHECK(r.status == 2);
  CHECK(contains(r.output, "of --set it takes only train.steps"));
  check_one_error_line(run_cli({"train", "--resume", a, "--set", "train.steps=1"}, dir), "swiattn train: error: ",
                       "a resume can extend a run, not shorten it");
  check_one_error_line(run_cli({"train", "--resume", dir.file("nothing")}, dir), "swiattn train: error: ",
                       "holds no checkpoint");

  // REGRESSION: resuming a finished run re-saved its last step (deleting the linked directory
  // first) and rewrote metrics.jsonl and config.json. Now it changes nothing on disk.
  const auto finished = snapshot(a);
  r = run_cli({"train", "--resume", a}, dir);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "already finished (step 2 = train.steps): nothing to do, nothing changed"));
  CHECK(snapshot(a) == finished);

  // --resume --set train.steps=N extends the run, and says how the schedule changes.
  r = run_cli({"train", "--resume", a, "--set", "train.steps=4"}, dir);
  INFO(shown(r.output));
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "extending the run from 2 to 4 steps (train.steps)"));
  CHECK(contains(r.output, "learning-rate schedule is now the one of a 4-step run"));
  CHECK(read_trainer_state(a + "/checkpoint")["step"] == 4);
  CHECK(json::parse(read_bytes(a + "/checkpoint/run_config.json"))["train"]["steps"] == 4);
  CHECK(linked_checkpoint_step(a) == 4);
}

}  // namespace
}  // namespace swiattn
