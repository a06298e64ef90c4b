// io/json_reader.cpp: see io/json_reader.h.
#include "io/json_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "tensor/tensor.h"

namespace swiattn {

using nlohmann::json;

namespace {

// A key as it may appear in a one-line message: JSON-escaped, at most about 80 characters.
std::string shown_key(const std::string& key) {
  std::string text = json(key).dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

}  // namespace

json parse_json_strict(const std::string& text, const std::string& where, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    throw Error(where + std::to_string(text.size()) + " bytes, more than the limit of " +
                std::to_string(limits.max_bytes));
  // The keys seen so far in each object that is open, innermost last.
  std::vector<std::set<std::string>> open_objects;
  auto watch = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > limits.max_depth)
      throw Error(where + "nested deeper than " + std::to_string(limits.max_depth) + " levels");
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) throw Error(where + "duplicate key " + shown_key(key));
    }
    return true;
  };
  try {
    return json::parse(text, watch);
  } catch (const json::exception& e) {  // syntax, invalid UTF-8, numbers out of range (1e400)
    throw Error(where + "not valid JSON: " + e.what());
  }
}

std::string read_file_bounded(const std::string& path, size_t max_bytes, const std::string& where) {
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) throw Error(where + "is a directory, expected a file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where + "cannot open (" + std::strerror(errno) + ")");
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw Error(where + "read failed (" + reason + ")");
    }
    if (n == 0) break;
    if (bytes.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      throw Error(where + "larger than the limit of " + std::to_string(max_bytes) +
                  " bytes for this file (is it the right file?)");
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

json read_json_file_strict(const std::string& path, const std::string& where, const JsonLimits& limits) {
  return parse_json_strict(read_file_bounded(path, limits.max_bytes, where), where, limits);
}

}  // namespace swiattn
