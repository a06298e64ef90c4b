// tests/test_args.cpp: ArgCursor (io/args.h), the option walk every command uses: values,
// numbers, comma-separated lists, and the usage errors they give.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "io/args.h"

namespace swiattn {

TEST_CASE("args: values, numbers and lists, with the usage error of each misuse") {
  const std::vector<std::string> args{"--out", "d", "--n", "7", "--T", "128,256,1", "--r", "0,0.5", "--flag", "--names", "a,b"};
  std::string out;
  int64_t n = 0;
  std::vector<int64_t> T;
  std::vector<double> r;
  std::vector<std::string> names;
  bool flag = false;
  for (ArgCursor a(args); a.next();) {
    if (a.is("--out")) out = a.value();
    else if (a.is("--n")) n = a.number<int64_t>();
    else if (a.is("--T")) T = a.number_list<int64_t>();
    else if (a.is("--r")) r = a.number_list<double>();
    else if (a.is("--flag")) flag = true;
    else if (a.is("--names")) names = a.list();
    else FAIL("unexpected option " << a.option());
  }
  CHECK(out == "d");
  CHECK(n == 7);
  CHECK(T == std::vector<int64_t>{128, 256, 1});
  CHECK(r == std::vector<double>{0.0, 0.5});
  CHECK(flag);
  CHECK(names == std::vector<std::string>{"a", "b"});

  const auto error_of = [](const std::vector<std::string>& bad) -> std::string {
    try {
      for (ArgCursor a(bad); a.next();) {
        if (a.is("--T")) a.number_list<int64_t>();
        else if (a.is("--u")) a.number<uint64_t>();
        else throw a.unknown("bench");
      }
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(error_of({"--T"}) == "--T needs a value");
  CHECK(error_of({"--T", "1,x"}) == "--T: expected an integer, got \"x\"");
  CHECK(error_of({"--T", "1,,2"}) == "--T: expected a comma-separated list, got \"1,,2\"");
  CHECK(error_of({"--T", ""}) == "--T: expected a comma-separated list, got \"\"");
  CHECK(error_of({"--T", "1,"}) == "--T: expected a comma-separated list, got \"1,\"");
  CHECK(error_of({"--u", "-3"}) == "--u: expected an integer, got \"-3\"");
  CHECK(error_of({"--x"}) == "unknown option for bench: --x");
}

}  // namespace swiattn
