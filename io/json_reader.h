// io/json_reader.h: the one JSON parser for text that comes from outside the program.
//
// Every JSON the program reads goes through parse_json_strict: the run configuration (--config,
// the values of --set), a checkpoint's config.json, run_config.json and trainer_state.json, the
// safetensors header, the eval.* values and the results.json files `eval table` reads. Besides
// the syntax (nlohmann's parser: UTF-8, no NaN literals, numbers within the double range) it
// refuses, with an Error naming the source:
//   - more bytes than the limit (checked before parsing; files are read at most that far, so
//     `--config /dev/zero` stops at the limit instead of filling the memory);
//   - nesting deeper than the limit (checked while parsing: nothing later recurses through an
//     absurd depth, e.g. dump() in an error message, which would overflow the stack);
//   - an object holding the same key twice (a plain parser keeps the last value silently).
// Range checks of the values belong to each reader (train/config.cpp, train/train_state.cpp, ...).
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace swiattn {

struct JsonLimits {
  size_t max_bytes = size_t{16} << 20;  // 16 MiB: far above any configuration or trainer state
  int max_depth = 16;                   // a configuration nests 4 deep ({"train": {"curriculum": [{...}]}})
};

// One JSON document from `text`. Errors read "<where>not valid JSON: ...", "<where>nested deeper
// than N levels", "<where>duplicate key "k"" and "<where>N bytes, more than the limit of M"; pass
// `where` with its separator, e.g. "config run.json: ".
nlohmann::json parse_json_strict(const std::string& text, const std::string& where, const JsonLimits& limits = {});

// The bytes of the file at `path`, at most max_bytes of them: a larger (or endless) file, a
// directory or an unreadable path is an Error starting with `where`.
std::string read_file_bounded(const std::string& path, size_t max_bytes, const std::string& where);

// parse_json_strict of read_file_bounded(path, limits.max_bytes, where).
nlohmann::json read_json_file_strict(const std::string& path, const std::string& where, const JsonLimits& limits = {});

}  // namespace swiattn
