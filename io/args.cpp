// io/args.cpp: ArgCursor (io/args.h).
#include "io/args.h"

namespace swiattn {

const std::string& ArgCursor::value() {
  if (i_ + 1 >= static_cast<int64_t>(args_.size())) throw UsageError(option() + " needs a value");
  return args_[static_cast<size_t>(++i_)];
}

UsageError ArgCursor::unknown(const std::string& command) const {
  return UsageError((command.empty() ? "unknown option: " : "unknown option for " + command + ": ") + option());
}

}  // namespace swiattn
