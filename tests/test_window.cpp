// tests/test_window.cpp: the window rule of kernels/cpu/window.h against its statement in words.
//
// Query t under window w reads the keys j with j <= t and t - j < w (all j <= t when w = 0);
// the far keys of a switch layer are the rest of [0, t]. Checked over every (t, w) of a small
// grid, odd sizes included, for int and int64_t.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>

#include "kernels/cpu/window.h"

namespace swiattn {

template <class I>
static void check_window_rule() {
  for (I w = 0; w <= 70; ++w)
    for (I t = 0; t <= 200; ++t) {
      I first = t + 1, count = 0;  // the keys read, from the statement: j <= t and (w == 0 or t - j < w)
      for (I j = t; j >= 0; --j)
        if (w == 0 || t - j < w) first = j, ++count;
      INFO("t = ", t, ", w = ", w);
      CHECK(window_first_key(t, w) == first);
      CHECK(window_key_count(t, w) == count);
      CHECK(window_has_far_keys(t, w) == (first > 0));
    }
  // The count of queries with far keys, against counting them one by one.
  for (I T = 0; T <= 90; ++T)
    for (I w = 0; w <= 70; ++w) {
      I far = 0;
      for (I t = 0; t < T; ++t) far += window_has_far_keys(t, w) ? 1 : 0;
      CHECK(window_far_queries(T, w) == far);
    }
  // The inverse: the last of T queries that reads key j.
  for (I T : {I(1), I(3), I(113)})
    for (I w = 0; w <= 9; ++w)
      for (I j = 0; j < T; ++j) {
        I last = -1;
        for (I t = 0; t < T; ++t)
          if (window_first_key(t, w) <= j && j <= t) last = t;
        CHECK(window_last_query(j, w, T) == last);
      }
  CHECK(window_first_key(I(-1), I(4)) == 0);  // padding rows (t < 0) read from key 0, i.e. nothing
}

TEST_CASE("window rule: first key, key count, far keys and the last query of a key") {
  check_window_rule<int>();
  check_window_rule<int64_t>();
}

}  // namespace swiattn
