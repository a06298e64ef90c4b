// tests/test_reproduce.cpp: the reproduction's configurations (configs/reproduce/{cpu,gpu};
// docs/reproduce.md) say what the pipeline promises: every file validates, the four continued
// trainings differ only in their layer types (and SwiAttn's regulariser), so they see equal
// tokens; SWA-ZS trains 0 steps; the static hybrid is spec §9's pattern; one model and one data
// mixture throughout; the eval options are keys `swiattn eval` knows.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/evaluate.h"
#include "tests/test_util.h"
#include "train/config.h"

namespace swiattn {
namespace {

using nlohmann::json;

const char* const kStages[] = {"pretrain", "swa_zs", "fullattn", "static_hybrid", "swa_cpt", "swiattn"};

std::string dir_of(const std::string& variant) {
  return std::string(SWIATTN_SOURCE_DIR) + "/configs/reproduce/" + variant;
}

Config load(const std::string& variant, const std::string& stage) {
  return load_config_file(dir_of(variant) + "/" + stage + ".json");
}

// The config as JSON with the keys a stage may change removed: what must be equal across stages.
json without(const Config& c, const std::vector<std::pair<std::string, std::string>>& keys) {
  json j = config_to_json(c);
  for (const auto& [section, key] : keys) j[section].erase(key);
  return j;
}

TEST_CASE("reproduce: the configurations validate and keep the comparison fair") {
  for (const std::string variant : {"cpu", "gpu"}) {
    INFO("variant ", variant);
    for (const char* stage : kStages) {
      INFO("stage ", stage);
      CHECK_NOTHROW(validate_config(load(variant, stage)));
    }
    const Config pre = load(variant, "pretrain"), zs = load(variant, "swa_zs"), full = load(variant, "fullattn"),
                 hybrid = load(variant, "static_hybrid"), swa = load(variant, "swa_cpt"), sw = load(variant, "swiattn");
    const int64_t L = pre.model.num_hidden_layers;
    for (int64_t l = 0; l < L; ++l) {
      INFO("layer ", l);
      CHECK(pre.model.layer_type(l) == "full");
      CHECK(full.model.layer_type(l) == "full");
      CHECK(zs.model.layer_type(l) == "swa");
      CHECK(swa.model.layer_type(l) == "swa");
      CHECK(sw.model.layer_type(l) == "switch");
      CHECK(hybrid.model.layer_type(l) == ((l + 1) % 4 == 0 ? "full" : "swa"));  // layers 4, 8, ... (from 1)
    }
    CHECK(zs.train.steps == 0);
    CHECK(pre.train.steps > 0);
    CHECK(sw.train.steps > 0);
    CHECK(sw.reg.mode == "adaptive");

    // One model and one data mixture in every stage (the window is what the methods are about).
    const std::vector<std::pair<std::string, std::string>> model_free = {
        {"model", "layer_types"}, {"model", "router_init"}, {"model", "router_init_std"}};
    for (const Config* c : {&zs, &full, &hybrid, &swa, &sw}) {
      CHECK(without(*c, model_free)["model"] == without(pre, model_free)["model"]);
      CHECK(config_to_json(*c)["data"] == config_to_json(pre)["data"]);
    }
    // Equal tokens: the continued trainings share every train key; only SwiAttn has a regulariser
    // configuration of its own.
    for (const Config* c : {&hybrid, &swa, &sw}) CHECK(config_to_json(*c)["train"] == config_to_json(full)["train"]);
    // The mixture is on, with needles beyond the window.
    CHECK(pre.data.synthetic_fraction > 0);
    CHECK(pre.data.min_needle_distance == -1);
    CHECK(pre.model.sliding_window < pre.train.seq_len);
  }
}

TEST_CASE("reproduce: the eval options are keys swiattn eval accepts") {
  for (const std::string variant : {"cpu", "gpu"}) {
    std::ifstream in(dir_of(variant) + "/eval.sets");
    REQUIRE(in);
    std::string line;
    int used = 0;
    while (std::getline(in, line)) {
      line = line.substr(0, line.find('#'));
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      INFO(variant, ": ", line);
      EvalConfig config;
      CHECK_NOTHROW(apply_eval_override(config, line));
      ++used;
    }
    CHECK(used > 0);
  }
}

}  // namespace
}  // namespace swiattn
