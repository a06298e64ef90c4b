// tests/test_layering.cpp: the folders of the source tree include only downwards.
//
// Every #include "folder/..." of every source file is an edge of the include graph; the layers
// below put each folder at a level, and a file may include its own folder or a lower level only
// (and a folder its subfolder in the same layer: tensor and tensor/cuda).
// So there is no loop between folders (model/ never includes train/, tensor/ never kernels/),
// and the libraries of CMakeLists.txt (swiattn_tensor <- swiattn_cuda <- swiattn_core) need no
// cycle on the link line. kernels/ (the backend-neutral entries) sits above both backends and
// below autograd: the one place an op's device is chosen. A new folder must be given a level
// here before its files pass.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Bottom to top (docs/architecture.md draws the same layers).
const std::map<std::string, int> kLevel = {
    {"tensor", 0}, {"tensor/cuda", 0},             // tensors and their storage, on either device
    {"io", 1},     {"kernels/cpu", 1},             // files; the CPU arithmetic on raw pointers
    {"kernels/cuda", 2},                           // the CUDA kernels (tested against kernels/cpu)
    {"kernels", 3},                                // the seam: one Tensor-level entry per op, which
                                                   // picks kernels/cpu or kernels/cuda
    {"autograd", 4}, {"data", 4},                  // ops with their backwards; text to token ids
    {"model", 5},                                  // the network, its weights, decoding
    {"train", 6},                                  // configuration, the training run, checkpoints
    {"eval", 7},   {"bench", 7},                   // evaluation, figures; the benchmarks
};

// The folder of a path relative to the source root: "kernels/cuda" for kernels/cuda/x.cu.
std::string folder_of(const std::string& relative) {
  const size_t slash = relative.rfind('/');
  return slash == std::string::npos ? "" : relative.substr(0, slash);
}

struct Edge {
  std::string file, included;
};

std::vector<Edge> include_edges(const fs::path& root) {
  const std::regex include(R"(^\s*#\s*include\s*"([^"]+)\")");
  std::vector<Edge> edges;
  for (const auto& layer : kLevel) {
    const std::string& folder = layer.first;
    for (const auto& entry : fs::directory_iterator(root / folder)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp" && ext != ".cu" && ext != ".cuh")) continue;
      std::ifstream in(entry.path());
      std::string line;
      std::smatch m;
      while (std::getline(in, line))
        if (std::regex_search(line, m, include))
          edges.push_back({folder + "/" + entry.path().filename().string(), m[1].str()});
    }
  }
  return edges;
}

// The edges that break the rule: into a higher layer, or to a file of the tree in no layer.
std::vector<std::string> violations(const std::vector<Edge>& edges, const fs::path& root) {
  std::vector<std::string> bad;
  for (const Edge& e : edges) {
    const std::string from = folder_of(e.file), to = folder_of(e.included);
    if (to.empty() || !kLevel.count(to)) {
      // Not one of ours by folder ("swiattn_version.h" is generated): it must not name a file of
      // the tree either.
      if (fs::exists(root / e.included)) bad.push_back(e.file + " includes \"" + e.included + "\", a file in no layer");
      continue;
    }
    // One layer may hold a folder and its subfolder (tensor and tensor/cuda): those two may
    // include each other; other folders of one layer may not.
    const bool nested = to.rfind(from + "/", 0) == 0 || from.rfind(to + "/", 0) == 0;
    const bool down = kLevel.at(to) < kLevel.at(from) || (kLevel.at(to) == kLevel.at(from) && nested);
    if (to != from && !down)
      bad.push_back(e.file + " (layer " + std::to_string(kLevel.at(from)) + ") includes " + e.included + " (layer " +
                    std::to_string(kLevel.at(to)) + "): a folder may include only its own or a lower layer");
  }
  return bad;
}

}  // namespace

TEST_CASE("layering: every folder includes only its own or a lower layer") {
  const fs::path root = SWIATTN_SOURCE_DIR;
  const std::vector<Edge> edges = include_edges(root);
  REQUIRE(edges.size() > 200);  // the scan found the tree
  std::set<std::string> folders_seen;
  for (const Edge& e : edges) folders_seen.insert(folder_of(e.file));
  for (const std::string& v : violations(edges, root)) FAIL_CHECK(v);
  // Every folder of the table exists and has files (a renamed folder must be renamed here too).
  for (const auto& layer : kLevel) {  // (not a structured binding: CHECK_MESSAGE captures it)
    const std::string& folder = layer.first;
    CHECK_MESSAGE(folders_seen.count(folder), "no source file with includes under " << folder);
  }
}

TEST_CASE("layering: the check refuses the loops this tree used to have") {
  const fs::path root = SWIATTN_SOURCE_DIR;
  // model/checkpoint.h included train/config.h; tensor/tensor.cpp included kernels/cuda/copy.h.
  const std::vector<Edge> old = {{"model/checkpoint.h", "train/config.h"},
                                 {"tensor/tensor.cpp", "kernels/cuda/copy.h"},
                                 {"autograd/ops.h", "tensor/tensor.h"},
                                 {"train/trainer.cpp", "train/config.h"},
                                 {"tensor/tensor.cpp", "tensor/cuda/copy.h"},
                                 {"io/json_reader.h", "kernels/cpu/matmul.h"}};
  const std::vector<std::string> bad = violations(old, root);
  REQUIRE(bad.size() == 3);  // the two old loops, and io -> kernels/cpu (one layer, not nested)
  CHECK(bad[0].rfind("model/checkpoint.h (layer 5) includes train/config.h (layer 6)", 0) == 0);
  CHECK(bad[1].rfind("tensor/tensor.cpp (layer 0) includes kernels/cuda/copy.h (layer 2)", 0) == 0);
  CHECK(bad[2].rfind("io/json_reader.h (layer 1) includes kernels/cpu/matmul.h (layer 1)", 0) == 0);
  // A file of the tree outside every layer is refused too (tests/ is not a layer).
  CHECK(violations({{"model/x.cpp", "tests/test_util.h"}}, root).size() == 1);
}

TEST_CASE("layering: the backend seam sits between the kernels and autograd") {
  const fs::path root = SWIATTN_SOURCE_DIR;
  // autograd and model call the seam (kernels/), which calls both backends; no backend calls the
  // seam, and the seam calls nothing above it. kernels/cpu and kernels/cuda sit inside kernels/
  // on disk but are separate layers: "nested" does not make an upward include legal.
  const std::vector<Edge> allowed = {{"autograd/ops_norm.cpp", "kernels/norm.h"},
                                     {"kernels/norm.cpp", "kernels/cpu/norm.h"},
                                     {"kernels/norm.cpp", "kernels/cuda/norm.h"},
                                     {"train/optimizer.cpp", "kernels/optimizer.h"}};
  CHECK(violations(allowed, root).empty());
  const std::vector<Edge> refused = {{"kernels/cpu/norm.cpp", "kernels/norm.h"},
                                     {"kernels/cuda/norm.cu", "kernels/backend.h"},
                                     {"kernels/norm.cpp", "autograd/ops.h"}};
  CHECK(violations(refused, root).size() == refused.size());
  // The seam is where the device is chosen: autograd/ names no backend.
  for (const Edge& e : include_edges(root)) {
    const bool names_a_backend = folder_of(e.included) == "kernels/cpu" || folder_of(e.included) == "kernels/cuda";
    if (folder_of(e.file) == "autograd")
      CHECK_MESSAGE(!names_a_backend,
                    e.file << " includes " << e.included << ": autograd calls the kernels/ entries only");
  }
}
