// io/args.h: walking one command's options, `--key value` pairs and flags, with the usage errors
// every command gives alike ("--out needs a value", "--tokens: expected an integer, got "x"").
//
//   for (ArgCursor a(args); a.next();) {
//     if (a.is("--out")) out = a.value();
//     else if (a.is("--tokens")) tokens = a.number<int64_t>();
//     else if (a.is("--T")) lengths = a.number_list<int64_t>();  // "--T 128,256"
//     else if (a.is("--greedy")) greedy = true;
//     else throw a.unknown("generate");  // "unknown option for generate: --x"
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sstream>
#include <type_traits>

#include "tensor/tensor.h"  // UsageError

namespace swiattn {

class ArgCursor {
 public:
  explicit ArgCursor(const std::vector<std::string>& args) : args_(args) {}
  // Moves to the next option; false after the last one.
  bool next() { return ++i_ < static_cast<int64_t>(args_.size()); }
  const std::string& option() const { return args_[static_cast<size_t>(i_)]; }
  bool is(const char* name) const { return option() == name; }
  // The option's value, the next argument (consumed); UsageError "<option> needs a value" if none.
  const std::string& value();
  // value() read whole as a number of type N (an integer type, unsigned ones refusing a sign, or a
  // floating type); UsageError "<option>: expected an integer, got "<v>"" (or "a number").
  template <class N>
  N number();
  // value() split at commas ("4096,8192" -> {"4096", "8192"}); UsageError
  // "<option>: expected a comma-separated list, got "<v>"" for an empty list or an empty item.
  std::vector<std::string> list();
  // list() with every item read whole as a number of type N, as number() reads one.
  template <class N>
  std::vector<N> number_list();
  // Whether the current argument is an option ("--x") rather than a positional one ("RUN").
  bool is_option() const { return option().rfind("--", 0) == 0; }
  // The arguments after the current one (what a command hands on: `launch ... train ARGS`).
  std::vector<std::string> rest() const { return {args_.begin() + i_ + 1, args_.end()}; }
  // The error for an option no branch took: "unknown option for <command>: <option>"
  // ("unknown option: <option>" when command is empty).
  UsageError unknown(const std::string& command = "") const;

 private:
  // text read whole as an N, or the UsageError of number() naming `name`.
  template <class N>
  static N read_number(const std::string& name, const std::string& text);

  const std::vector<std::string>& args_;
  int64_t i_ = -1;
};

template <class N>
N ArgCursor::read_number(const std::string& name, const std::string& text) {
  std::istringstream in(text);
  N v{};
  if (!(in >> v) || !in.eof() || (std::is_unsigned_v<N> && text.find('-') != std::string::npos))
    throw UsageError(name + ": expected " + (std::is_integral_v<N> ? "an integer" : "a number") + ", got \"" + text + "\"");
  return v;
}

template <class N>
N ArgCursor::number() {
  const std::string& name = option();
  return read_number<N>(name, value());
}

template <class N>
std::vector<N> ArgCursor::number_list() {
  const std::string& name = option();
  std::vector<N> out;
  for (const std::string& item : list()) out.push_back(read_number<N>(name, item));
  return out;
}

}  // namespace swiattn
