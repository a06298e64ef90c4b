// tests/test_readme.cpp: the documents say what the code does.
//   - the README's demo block has exactly the format `swiattn demo` prints (train/demo.h);
//   - every repository path with a file extension that README.md, docs/*.md and the folders'
//     README.md name exists (no dangling references);
//   - no file of the repository points at an absolute path of one machine, and the docs and
//     scripts do not speak of a "lent" machine (they are written for the user's own GPU machine).
#include <doctest/doctest.h>

#include <filesystem>
// GCC 12 warns inside its own <regex> (std::function in _NFA, -Wmaybe-uninitialized) at -O1,
// as the sanitizer build compiles: not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#include <set>

#include "data/read_file.h"
#include "test_util.h"
#include "train/demo.h"

using namespace swiattn;
using testing::contains;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = SWIATTN_SOURCE_DIR;

std::string read(const fs::path& p) { return read_whole_file(p.string(), "test"); }

// The repository's own files (not build output, fetched data, runs or git's store).
std::vector<fs::path> source_files(const std::set<std::string>& extensions) {
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(kRoot); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), kRoot).string();
    if (it->is_directory() && (rel.rfind("build", 0) == 0 || rel == ".git" || rel == "runs" || rel == "data/cache" ||
                               rel == "fuzz/corpus" || rel == "fuzz/regressions" || rel == "docs/results-figures" ||
                               rel.find("__pycache__") != std::string::npos)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && (extensions.count(it->path().extension().string()) || extensions.count(rel)))
      files.push_back(it->path());
  }
  return files;
}

std::vector<fs::path> documents() {
  std::vector<fs::path> docs = {kRoot / "README.md"};
  for (const auto& e : fs::directory_iterator(kRoot / "docs"))
    if (e.path().extension() == ".md") docs.push_back(e.path());
  for (const char* d : {"data", "bench", "fuzz"}) docs.push_back(kRoot / d / "README.md");
  return docs;
}

}  // namespace

TEST_CASE("docs: the README's demo block is what swiattn demo prints") {
  const std::string readme = read(kRoot / "README.md");
  const size_t start = readme.find("== summary (");
  REQUIRE_MESSAGE(start != std::string::npos, "README.md has no demo summary block");
  const size_t end = readme.find("```", start);
  REQUIRE(end != std::string::npos);
  const std::string block = readme.substr(start, end - start);
  // Read the numbers back, then print them with the demo's own code: the texts must agree.
  const std::regex shape(
      R"(== summary \(validation loss, nats/token; unigram entropy ([0-9.]+)\) ==\n)"
      R"(  FullAttn after pretraining: +([0-9.]+)\n)"
      R"(  SwiAttn right after conversion: +([0-9.]+)\n)"
      R"(  SwiAttn after continual training: +([0-9.]+)\n)"
      R"(  full-attention ratio per layer: +((?:[0-9.]+ )+)\(mean ([0-9.]+)\)\n)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_match(block, m, shape), "the README's demo block:\n" << block);
  DemoSummary s;
  s.unigram_entropy = std::stod(m[1]);
  s.full_attention_loss = std::stod(m[2]);
  s.converted_loss = std::stod(m[3]);
  s.continued_loss = std::stod(m[4]);
  std::istringstream ratios(m[5].str());
  double r = 0;
  while (ratios >> r) s.layer_ratios.push_back(r);
  s.mean_ratio = std::stod(m[6]);
  CHECK(s.layer_ratios.size() == 4);  // the embedded default has 4 layers
  CHECK(demo_summary(s) == block);
  double mean = 0;
  for (double x : s.layer_ratios) mean += x / static_cast<double>(s.layer_ratios.size());
  CHECK(std::abs(mean - s.mean_ratio) <= 0.0011);  // the mean of the (rounded) ratios
}

TEST_CASE("docs: every file path the documents name exists") {
  // A repository path with an extension; "model/decode.h/.cpp" names both files.
  const std::regex path(R"((?:^|[^\w/.$-])((?:docs|scripts|data|eval|train|model|kernels|tests|bench|python|configs|tensor|autograd|fuzz|cmake)/[A-Za-z0-9_.+/-]*\.(?:md|cuh|cu|cpp|h|py|sh|json|cmake))(?![A-Za-z0-9_]))");
  // Names of outputs and placeholders, not of repository files.
  const std::set<std::string> not_files = {"eval/results.json", "kernels/cpu/x.cpp"};
  size_t checked = 0;
  for (const fs::path& doc : documents()) {
    const std::string text = read(doc);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), path); it != std::sregex_iterator(); ++it) {
      std::string p = (*it)[1];
      if (const size_t both = p.find(".h/.cpp"); both != std::string::npos) p = p.substr(0, both + 2);
      if (not_files.count(p)) continue;
      ++checked;
      CHECK_MESSAGE(fs::exists(kRoot / p), fs::relative(doc, kRoot).string() << " names " << p << ", which does not exist");
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("docs: no absolute paths of one machine, no 'lent' machines") {
  const std::string machine_root = std::string("/wo") + "rk/";  // spelt in two so this file passes
  for (const fs::path& f : source_files({".md", ".h", ".cpp", ".cu", ".cuh", ".py", ".sh", ".txt", ".cmake", "Makefile"})) {
    const std::string text = read(f);
    CHECK_MESSAGE(!contains(text, machine_root), fs::relative(f, kRoot).string() << " names " << machine_root << "...");
  }
  const std::regex lent(R"(\b[Ll]ent\b)");
  std::vector<fs::path> user_facing = documents();
  for (const fs::path& f : source_files({".sh", ".py"}))
    if (fs::relative(f, kRoot).string().rfind("scripts/", 0) == 0) user_facing.push_back(f);
  user_facing.push_back(kRoot / "Makefile");
  for (const fs::path& f : user_facing) {
    const std::string text = read(f);
    CHECK_MESSAGE(!std::regex_search(text, lent), fs::relative(f, kRoot).string() << " speaks of a lent machine");
  }
}
