// io/args.cpp: ArgCursor (io/args.h).
#include "io/args.h"

namespace swiattn {

const std::string& ArgCursor::value() {
  if (i_ + 1 >= static_cast<int64_t>(args_.size())) throw UsageError(option() + " needs a value");
  return args_[static_cast<size_t>(++i_)];
}

std::vector<std::string> ArgCursor::list() {
  const std::string& name = option();
  const std::string& text = value();
  std::vector<std::string> items;
  size_t begin = 0;
  for (size_t comma = text.find(','); ; comma = text.find(',', begin)) {
    items.push_back(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin));
    if (items.back().empty()) throw UsageError(name + ": expected a comma-separated list, got \"" + text + "\"");
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return items;
}

UsageError ArgCursor::unknown(const std::string& command) const {
  return UsageError((command.empty() ? "unknown option: " : "unknown option for " + command + ": ") + option());
}

}  // namespace swiattn
