// tests/test_cli.cpp: the command line as a new user meets it (build/swiattn in a subprocess):
// per-command --help, --version, short usage errors, running from outside the repository, an
// early plain "no CUDA device", and own text through train -> eval -> plot -> routes, with the
// metrics.jsonl records (kind and time on every line).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
// GCC 12 warns inside its own <regex> (std::function in _NFA, -Wmaybe-uninitialized) at -O1,
// as the sanitizer build compiles: not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#include <set>

#include "data/read_file.h"
#include "tensor/cuda/device.h"
#include "test_util.h"

using namespace swiattn;
using testing::contains;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// build/swiattn ARGS run in `cwd`, stdout and stderr kept apart.
Run run_swiattn(const std::vector<std::string>& args, const fs::path& cwd) {
  const std::string out = (cwd / ".cli_out").string(), err = (cwd / ".cli_err").string();
  std::string command = "cd " + quote(cwd.string()) + " && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive " +
                        quote(std::string(SWIATTN_BINARY_DIR) + "/swiattn");
  for (const std::string& a : args) command += " " + quote(a);
  command += " >" + quote(out) + " 2>" + quote(err);
  const int raw = std::system(command.c_str());
  Run r;
  if (raw != -1 && WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  return r;
}

size_t lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

std::string chapter(int n) {
  return read_whole_file(std::string(SWIATTN_SOURCE_DIR) + "/data/cache/moby-dick/data/chapter_" + std::to_string(n) + ".txt",
                         "test");
}

}  // namespace

TEST_CASE("cli: every command has --help, and --version says what was built") {
  TempDir dir("swiattn_cli_help");
  for (const char* command : {"demo", "train", "eval", "generate", "prepare", "plot", "routes", "bench"}) {
    CAPTURE(command);
    const Run r = run_swiattn({command, "--help"}, dir.path);
    CHECK(r.status == 0);
    CHECK(r.out.rfind(std::string("usage: swiattn ") + command, 0) == 0);
  }
  CHECK(contains(run_swiattn({"train", "--set", "train.steps=3", "--help"}, dir.path).out, "--config-reference"));
  CHECK(run_swiattn({"help", "routes"}, dir.path).out.rfind("usage: swiattn routes", 0) == 0);
  const Run top = run_swiattn({"--help"}, dir.path);
  CHECK(top.status == 0);
  CHECK(contains(top.out, "swiattn <command> --help"));
  const Run v = run_swiattn({"--version"}, dir.path);
  CHECK(v.status == 0);
  CHECK(std::regex_search(v.out, std::regex("^swiattn ([0-9a-f]{40}(\\+uncommitted-changes)?|unknown)\n")));
  CHECK(contains(v.out, "build type: "));
  CHECK(contains(v.out, "CUDA: "));
}

TEST_CASE("cli: a usage error is two lines that point at the command's --help") {
  TempDir dir("swiattn_cli_usage");
  const Run r = run_swiattn({"train", "--bogus"}, dir.path);
  CHECK(r.status == 2);
  CHECK(r.err == "swiattn train: unknown option: --bogus\n(`swiattn train --help` lists the options)\n");
  CHECK(r.out.empty());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"generate", "--tokens"}, {"eval", "--checkpoint", "x"}, {"prepare", "--text", "a"},
        {"routes", "--checkpoint", "c", "--out", "o"}, {"plot"}, {"bench", "prefill", "--bogus", "1"}}) {
    CAPTURE(args[0]);
    const Run u = run_swiattn(args, dir.path);
    CHECK(u.status == 2);
    CHECK(lines(u.err) == 2);
    CHECK(contains(u.err, "swiattn " + args[0] + " --help"));
  }
  const Run unknown = run_swiattn({"trian"}, dir.path);
  CHECK(unknown.status == 2);
  CHECK(lines(unknown.err) == 1);
  CHECK(contains(unknown.err, "swiattn --help"));
  CHECK(run_swiattn({}, dir.path).status == 2);
}

TEST_CASE("cli: --device cuda without a usable GPU fails at once, before the data is read") {
  if (cuda::device_count() > 0) {
    MESSAGE("a CUDA device is present: the no-device message cannot be tested here");
    return;
  }
  TempDir dir("swiattn_cli_nocuda");
  // A missing cache would be the first error if the data were read first.
  const Run r = run_swiattn({"train", "--device", "cuda", "--set", "train.dtype=bfloat16", "--set", "data.cache_dir=/no/such/cache"},
                        dir.path);
  CHECK(r.status == 1);
  CHECK(lines(r.err) == 1);
  CHECK((contains(r.err, "no CUDA device here") || contains(r.err, "built without CUDA")));
  CHECK(contains(r.err, "use --device cpu"));
  CHECK(r.out.empty());
  const Run g = run_swiattn({"generate", "--checkpoint", "/no/such/checkpoint", "--device", "cuda"}, dir.path);
  CHECK(g.status == 1);
  CHECK(contains(g.err, "--device cuda"));
  CHECK(!contains(g.err, "/no/such/checkpoint"));
}

TEST_CASE("cli: own text trains from any folder, evaluates, plots and maps its routes") {
  TempDir work("swiattn_cli_own"), elsewhere("swiattn_cli_elsewhere");
  write_bytes(work.file("my.txt"), chapter(1) + chapter(2) + chapter(3));
  // From a folder outside the repository, with a relative data.corpus: the data cache is found in
  // the source tree, the corpus recorded by its absolute path.
  const std::vector<std::string> small = {
      "--set", "train.steps=6",           "--set", "train.log_interval=3",  "--set", "train.eval_interval=3",
      "--set", "train.eval_batches=1",    "--set", "train.batch_size=2",    "--set", "train.seq_len=128",
      "--set", "train.sample_tokens=0",   "--set", "model.sliding_window=32", "--set", "model.num_hidden_layers=2",
      "--set", "model.layer_types=[\"full\",\"switch\"]", "--set", "data.corpus=my.txt"};
  std::vector<std::string> train = {"train", "--out", "run"};
  train.insert(train.end(), small.begin(), small.end());
  const Run t = run_swiattn(train, work.path);
  INFO("train stderr: " << t.err << "\nstdout: " << t.out);
  REQUIRE(t.status == 0);
  CHECK(contains(t.out, "own text " + fs::canonical(work.file("my.txt")).string()));
  const json config = json::parse(read_bytes(work.file("run/config.json")));
  CHECK(config["data"]["corpus"] == fs::canonical(work.file("my.txt")).string());

  // metrics.jsonl: a kind and an ISO UTC time on every record; the old keys kept.
  std::ifstream metrics(work.file("run/metrics.jsonl"));
  std::string line;
  std::multiset<std::string> kinds;
  const std::regex iso("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
  while (std::getline(metrics, line)) {
    const json r = json::parse(line);
    CAPTURE(line);
    REQUIRE(r.contains("kind"));
    kinds.insert(r["kind"].get<std::string>());
    CHECK(std::regex_match(r["time"].get<std::string>(), iso));
    if (r["kind"] == "progress") CHECK((r.contains("loss") && r.contains("lr") && r.contains("layer_fa_ratio")));
    if (r["kind"] == "validation") CHECK(r.contains("val_loss"));
    if (r["kind"] == "final") CHECK(r.contains("final_val_loss"));
  }
  CHECK(kinds.count("progress") == 2);
  CHECK(kinds.count("validation") == 3);  // steps 0, 3, 6
  CHECK(kinds.count("final") == 1);

  // eval from another folder reads the checkpoint's own corpus (its validation split).
  const Run e = run_swiattn({"eval", "--checkpoint", work.file("run"), "--out", work.file("run/eval"), "--set", "eval.batches=1",
                         "--set", "eval.batch_size=2", "--set", "eval.passkey_trials=1", "--set", "eval.passkey_depths=[0]",
                         "--set", "eval.mqar_trials=1", "--set", "eval.decode_tokens=48"},
                        elsewhere.path);
  INFO("eval stderr: " << e.err);
  REQUIRE(e.status == 0);
  CHECK(contains(e.err, "my.txt validation split"));
  const json results = json::parse(read_bytes(work.file("run/eval/results.json")));
  CHECK(results["held_out"]["tokens"] == 256);
  // The figures: the passkey grid marks the lengths too short to run (32, 64 at T = 128) and has a
  // colour scale; decode and prefill plots mark the window.
  CHECK(results["passkey"]["lengths_skipped"] == json::array({32, 64}));
  const std::string heat = read_bytes(work.file("run/eval/passkey.svg"));
  CHECK(contains(heat, "class=\"skipped-row\""));
  CHECK(contains(heat, "class=\"colour-scale\""));
  for (const char* figure : {"decode_keys_read.svg", "prefill_flops.svg", "loss_by_position.svg"})
    CHECK_MESSAGE(contains(read_bytes(work.file(std::string("run/eval/") + figure)), "window W = 32"), figure);
  CHECK(contains(read_bytes(work.file("run/eval/report.md")), "Not run (shorter than a passkey example needs"));
  // The corpus moved: a clear error pointing at eval.corpus, and eval.corpus reads it elsewhere.
  fs::rename(work.file("my.txt"), work.file("moved.txt"));
  const Run moved = run_swiattn({"eval", "--checkpoint", work.file("run"), "--out", work.file("run/eval2")}, elsewhere.path);
  CHECK(moved.status == 1);
  CHECK(contains(moved.err, "--set eval.corpus=PATH"));
  fs::rename(work.file("moved.txt"), work.file("my.txt"));

  // plot: RUN/loss.svg with the losses, the learning rate and the switch layer's ratio.
  const Run p = run_swiattn({"plot", work.file("run")}, elsewhere.path);
  REQUIRE(p.status == 0);
  const std::string svg = read_bytes(work.file("run/loss.svg"));
  for (const char* part : {"data-name=\"training\"", "data-name=\"validation\"", "data-name=\"learning rate\"",
                           "data-name=\"layer 1\"", "full-attention ratio per switch layer"})
    CHECK_MESSAGE(contains(svg, part), part);
  CHECK(run_swiattn({"plot", work.path.string()}, elsewhere.path).status == 1);  // no metrics.jsonl there

  // routes: the text coloured per layer, the window of token 40 drawn.
  const Run m = run_swiattn({"routes", "--checkpoint", work.file("run"), "--text", work.file("my.txt"), "--out",
                         work.file("run/routes"), "--token", "40", "--max-tokens", "96"},
                        elsewhere.path);
  INFO("routes stderr: " << m.err);
  REQUIRE(m.status == 0);
  const json map = json::parse(read_bytes(work.file("run/routes/routes.json")));
  CHECK(map["ids"].size() == 96);
  CHECK(map["layers"].size() == 2);
  CHECK(map["layers"][0]["type"] == "full");
  CHECK(map["layers"][1]["router_probability"][0].is_number());
  const std::string html = read_bytes(work.file("run/routes/routes.html"));
  CHECK(contains(html, "its window [9, 40]"));
  CHECK(contains(html, "class=\"t win chosen\""));
  const Run pk = run_swiattn({"routes", "--checkpoint", work.file("run"), "--passkey", "128", "--out", work.file("run/pk")},
                         elsewhere.path);
  INFO("routes --passkey stderr: " << pk.err);
  REQUIRE(pk.status == 0);
  CHECK(contains(read_bytes(work.file("run/pk/routes.html")), "the needle ["));

  // prepare from the command line, then train on the prepared folder.
  const Run prep = run_swiattn({"prepare", "--text", "my.txt", "--out", "prepared"}, work.path);
  REQUIRE(prep.status == 0);
  CHECK(fs::exists(work.file("prepared/train.bin")));
  CHECK(run_swiattn({"prepare", "--text", "my.txt", "--out", "prepared"}, work.path).status == 1);  // no --overwrite
}

TEST_CASE("cli: a data.cache_dir that is nowhere is named, with the places looked at") {
  TempDir dir("swiattn_cli_cache");
  const Run r = run_swiattn({"train", "--set", "data.cache_dir=no/such/cache", "--set", "train.steps=1"}, dir.path);
  CHECK(r.status == 1);
  CHECK(contains(r.err, "data.cache_dir \"no/such/cache\" is not a folder in any of: " + fs::canonical(dir.path).string()));
  CHECK(contains(r.err, std::string(SWIATTN_SOURCE_DIR) + "/no/such/cache"));
}
