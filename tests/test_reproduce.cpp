// tests/test_reproduce.cpp: the reproduction's configurations (configs/reproduce/{cpu,gpu};
// docs/reproduce.md) say what the pipeline promises: every stage's configuration validates (the
// plan's overrides applied as scripts/reproduce.py applies them); every continued run shares one
// continue.json, so they see equal tokens and differ only in layer types, seed and SwiAttn's
// controller target; the static patterns are spec §9's (one full layer in every K, the last of
// each group); SWA-ZS trains 0 steps; the GPU plan has 3 seeds per table method, a gate that
// stops below 0.9, the equal-ratio static row, a ratio sweep, and trains at T >= 2048 with W
// well below T after a curriculum; the eval options are keys `swiattn eval` knows.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/read_file.h"
#include "eval/evaluate.h"
#include "tests/test_util.h"
#include "train/config.h"

namespace swiattn {
namespace {

using nlohmann::json;

std::string dir_of(const std::string& variant) {
  return std::string(SWIATTN_SOURCE_DIR) + "/configs/reproduce/" + variant;
}

json plan_of(const std::string& variant) {
  return json::parse(read_whole_file(dir_of(variant) + "/plan.json", "test"));
}

// scripts/reproduce.py's layer specification: full | swa | switch | "static K".
std::vector<std::string> layer_types(const std::string& spec, int64_t L) {
  if (spec == "full" || spec == "swa" || spec == "switch") return std::vector<std::string>(static_cast<size_t>(L), spec);
  REQUIRE(spec.rfind("static ", 0) == 0);
  const int64_t k = std::stoll(spec.substr(7));
  REQUIRE(L % k == 0);
  std::vector<std::string> types;
  for (int64_t l = 0; l < L; ++l) types.push_back((l + 1) % k == 0 ? "full" : "swa");
  return types;
}

// The continued run's configuration as the pipeline builds it.
Config continued(const std::string& variant, const json& run, uint64_t seed) {
  Config c = load_config_file(dir_of(variant) + "/" + plan_of(variant)["continue"].get<std::string>());
  c.model.layer_types = layer_types(run["layers"], c.model.num_hidden_layers);
  c.train.seed = seed;
  if (run.contains("steps")) c.train.steps = run["steps"];
  if (run.contains("target_ratio")) {
    c.reg.controller = "bias";
    c.reg.target_ratio = run["target_ratio"];
  }
  return c;
}

TEST_CASE("reproduce: the plans validate and keep the comparison fair") {
  for (const std::string variant : {"cpu", "gpu"}) {
    INFO("variant ", variant);
    const json plan = plan_of(variant);
    const Config pre = load_config_file(dir_of(variant) + "/" + plan["pretrain"].get<std::string>());
    CHECK_NOTHROW(validate_config(pre));
    const int64_t L = pre.model.num_hidden_layers;
    for (int64_t l = 0; l < L; ++l) CHECK(pre.model.layer_type(l) == LayerType::Full);
    CHECK(!pre.train.curriculum.empty());  // short contexts first, then the final length
    CHECK(pre.train.curriculum.front().seq_len < pre.train.seq_len);
    CHECK(pre.data.synthetic_fraction > 0);
    CHECK(pre.data.min_needle_distance == -1);  // passkey needles beyond the window

    std::set<std::string> names;
    json shared_train;
    for (const json& run : plan["runs"]) {
      const std::string name = run["name"];
      INFO("run ", name);
      CHECK(names.insert(name).second);
      for (const json& seed : run["seeds"]) {
        const Config c = continued(variant, run, seed.get<uint64_t>());
        CHECK_NOTHROW(validate_config(c));
        // One model and one data mixture in every stage, the base's (the window is what the
        // methods are about).
        json model = config_to_json(c)["model"], base_model = config_to_json(pre)["model"];
        for (const char* k : {"layer_types", "router_init", "router_init_std"}) model.erase(k), base_model.erase(k);
        CHECK(model == base_model);
        CHECK(config_to_json(c)["data"] == config_to_json(pre)["data"]);
        CHECK(c.train.seq_len == pre.train.seq_len);
        // Equal tokens: every continued run trains with the same train keys but its seed.
        json train = config_to_json(c)["train"];
        train.erase("seed");
        if (name != "SWA-ZS") {
          if (shared_train.is_null()) shared_train = train;
          CHECK(train == shared_train);
        }
      }
      const std::string layers = run["layers"];
      if (layers == "switch") CHECK(run.contains("target_ratio"));
    }
    for (const char* name : {"FullAttn", "SwiAttn", "StaticHybrid", "Static-1in8", "SWA-CPT", "SWA-ZS"}) {
      INFO("method ", name);
      CHECK(names.count(name) == 1);
    }
    for (const json& run : plan["runs"]) {
      if (run["name"] == "SWA-ZS") CHECK(continued(variant, run, 1).train.steps == 0);
      if (run["name"] == "StaticHybrid") CHECK(run["layers"] == "static 4");  // spec §9: ratio 0.25
      if (run["name"] == "Static-1in8") CHECK(run["layers"] == "static 8");   // about SwiAttn's 0.13
    }
    CHECK(layer_types("static 4", 8) ==
          std::vector<std::string>{"swa", "swa", "swa", "full", "swa", "swa", "swa", "full"});  // layers 4, 8 from 1
    CHECK(plan["gate"]["min_passkey_beyond_window"].get<double>() == 0.9);
  }
  // The GPU plan: the claim's test, with seeds and a sweep.
  const json plan = plan_of("gpu");
  CHECK(plan["gate"]["on_fail"] == "stop");
  const Config pre = load_config_file(dir_of("gpu") + "/pretrain.json");
  CHECK(pre.train.seq_len >= 2048);
  CHECK(pre.model.sliding_window * 8 <= pre.train.seq_len);
  int sweep = 0;
  for (const json& run : plan["runs"]) {
    if (run["group"] == "table" && run["name"] != "SWA-ZS") CHECK(run["seeds"].size() >= 3);
    if (run["group"] == "sweep") ++sweep;
  }
  CHECK(sweep >= 3);
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
