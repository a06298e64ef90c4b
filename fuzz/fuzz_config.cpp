// fuzz/fuzz_config.cpp: libFuzzer target for the run configuration (train/config.h).
//
// Each input is used three ways; the only acceptable exception from the library is
// swiattn::Error (the harness's own json::parse may throw nlohmann's parse errors):
//   1. as a config file: load_config_file(path), then validate_config — the CLI's --config path;
//   2. as JSON text: config_from_json(json::parse(input)), then validate_config;
//   3. as an override, the CLI's --set path, which takes any bytes: an input that starts with
//      "section.key=" of a real key is the assignment itself; otherwise the first byte picks one
//      of the config's keys and the rest is the value: apply_override(config, "section.key=" + rest).
// A config that is accepted must survive config_to_json -> config_from_json unchanged (the
// header's promise), and must be printable as JSON (the trainer writes it to config.json).
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "tensor/tensor.h"
#include "train/config.h"

using nlohmann::json;
using swiattn_fuzz::accepts;
using swiattn_fuzz::finding;

namespace {


void check_round_trip(const swiattn::Config& config, const char* what) {
  accepts(what, [&] {
    json written;
    try {
      written = swiattn::config_to_json(config);
      (void)written.dump();  // what the trainer writes to config.json
    } catch (const std::exception& e) {
      finding(std::string(what) + ": accepted config cannot be written as JSON: " + e.what());
    }
    const swiattn::Config back = swiattn::config_from_json(written, "round trip");
    if (swiattn::config_to_json(back) != written)
      finding(std::string(what) + ": config_to_json -> config_from_json changed the config");
  });
}

// Every "section.key" of the configuration, from the defaults' JSON.
const std::vector<std::string>& all_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    const json defaults = swiattn::config_to_json(swiattn::Config{});  // outlives the loop
    for (const auto& [section, fields] : defaults.items())
      for (const auto& [key, value] : fields.items()) k.push_back(section + "." + key);
    return k;
  }();
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  // 1. As a file.
  static const std::string path = swiattn_fuzz::scratch_path(".json");
  swiattn_fuzz::write_bytes(path, data, size);
  swiattn::Config from_file;
  if (accepts("load_config_file", [&] { from_file = swiattn::load_config_file(path); }) &&
      accepts("validate_config (file)", [&] { swiattn::validate_config(from_file); }))
    check_round_trip(from_file, "file");

  // 2. As JSON text.
  json parsed;
  bool is_json = true;
  try {
    parsed = json::parse(text);
  } catch (const json::exception&) {
    is_json = false;  // the harness's own parse: nlohmann's errors are not findings
  }
  swiattn::Config from_json;
  if (is_json && accepts("config_from_json", [&] { from_json = swiattn::config_from_json(parsed, "fuzz"); }) &&
      accepts("validate_config (json)", [&] { swiattn::validate_config(from_json); }))
    check_round_trip(from_json, "json");

  // 3. As one --set override.
  if (size >= 1) {
    std::string assignment = all_keys()[data[0] % all_keys().size()] + "=" + text.substr(1);
    for (const std::string& key : all_keys())
      if (text.rfind(key + "=", 0) == 0) assignment = text;  // already "section.key=value"
    swiattn::Config overridden;
    if (accepts("apply_override", [&] { swiattn::apply_override(overridden, assignment); }) &&
        accepts("validate_config (--set)", [&] { swiattn::validate_config(overridden); }))
      check_round_trip(overridden, "--set");
  }
  return 0;
}
