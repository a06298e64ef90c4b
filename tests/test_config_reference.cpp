// tests/test_config_reference.cpp: docs/config.md is the field table of train/config.cpp, and
// the ranges it states are the ones validate_config enforces.
//
// (1) docs/config.md must equal config_reference_markdown() byte for byte: regenerate it with
//     `./build/swiattn train --config-reference > docs/config.md` after changing the table.
// (2) Every documented numeric range (">= a", "> a", "[a, b]", "(a, b)", ...) is probed: a value
//     just outside it must be refused by validate_config with a message naming the key, and the
//     inclusive ends must not be refused for that key. Every range of the form "\"a\" | \"b\""
//     must refuse any other string.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
// GCC 12 warns inside its own <regex> (std::function in _NFA, -Wmaybe-uninitialized) at -O1,
// as the sanitizer build compiles: not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>

#include "data/read_file.h"
#include "test_util.h"
#include "train/config.h"

using namespace swiattn;
using testing::contains;
using testing::error_of;
using json = nlohmann::json;

namespace {

// The Error validate_config gives after `--set key=value` on the default configuration ("" = none).
std::string outcome(const std::string& key, const std::string& value) {
  Config c;
  return error_of([&] {
    apply_override(c, key + "=" + value);
    validate_config(c);
  });
}

std::string number_text(double v, bool integer) {
  if (integer) return std::to_string(static_cast<int64_t>(std::llround(v)));
  return json(v).dump();
}

}  // namespace

TEST_CASE("config reference: docs/config.md is generated from the field table") {
  const std::string path = std::string(SWIATTN_SOURCE_DIR) + "/docs/config.md";
  const std::string generated = config_reference_markdown();
  const std::string on_disk = file_exists(path) ? read_whole_file(path, "test") : "";
  CHECK_MESSAGE(on_disk == generated,
                "docs/config.md differs from the field table of train/config.cpp: regenerate it with "
                "`./build/swiattn train --config-reference > docs/config.md`");
  const json defaults = config_to_json(Config{});
  size_t keys = 0;
  for (const auto& [section, fields] : defaults.items())
    for (const auto& [key, value] : fields.items()) {
      ++keys;
      const std::string full_key = section + "." + key;
      CHECK_MESSAGE(contains(generated, "| `" + full_key + "` |"), full_key);
    }
  CHECK(keys == config_key_ranges().size());
  for (const char* section : {"## model", "## train", "## data", "## reg"}) CHECK(contains(generated, section));
}

TEST_CASE("config reference: the documented ranges are the ones validate_config enforces") {
  const json defaults = config_to_json(Config{});
  const std::regex lower(R"(^(>=|>) (-?[0-9.]+)$)");
  const std::regex interval(R"(^([\[\(])(-?[0-9.]+), (-?[0-9.]+)([\]\)])$)");
  const std::regex choices(R"(^"[^"]+"( \| "[^"]+")+$)");
  size_t probed = 0;
  CHECK(outcome("train.steps", "10").empty());  // the probe itself accepts a good value
  for (const auto& [key, range] : config_key_ranges()) {
    CAPTURE(key);
    CAPTURE(range);
    CHECK(!range.empty());
    const std::string section = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    const json& def = defaults[section][name];
    std::smatch m;
    auto refused = [&](double v) {
      const std::string e = outcome(key, number_text(v, def.is_number_integer()));
      INFO("value " << v << ": " << e);
      CHECK(e.rfind(key, 0) == 0);
    };
    auto accepted_for_key = [&](double v) {
      const std::string e = outcome(key, number_text(v, def.is_number_integer()));
      INFO("value " << v << ": " << e);
      CHECK(e.rfind(key + ":", 0) != 0);
    };
    const double step = def.is_number_integer() ? 1.0 : 1e-9;
    if (std::regex_match(range, m, lower)) {
      const double a = std::stod(m[2]);
      if (m[1] == ">=") refused(a - step), accepted_for_key(a);
      else refused(a);
      ++probed;
    } else if (std::regex_match(range, m, interval)) {
      const double a = std::stod(m[2]), b = std::stod(m[3]);
      if (m[1] == "[") refused(a - step), accepted_for_key(a);
      else refused(a);
      if (m[4] == "]") refused(b + step), accepted_for_key(b);
      else refused(b);
      ++probed;
    } else if (std::regex_match(range, choices)) {
      const std::string e = outcome(key, "not-a-choice");
      INFO(e);
      CHECK(e.rfind(key, 0) == 0);
      ++probed;
    }
  }
  MESSAGE("config reference: " << probed << " of " << config_key_ranges().size() << " documented ranges probed");
  CHECK(probed >= 45);
}
