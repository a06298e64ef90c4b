// tests/test_sampling.cpp: choosing the next token (model/sampling.h) on known logits:
// greedy, temperature, top-k, top-p and their combination, the exact distributions and the
// draws that follow them, ties, and clear errors for bad values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "model/sampling.h"
#include "tensor/random.h"

namespace swiattn {
namespace {

// Probabilities 0.1, 0.4, 0.2, 0.3 at temperature 1: sorted 1 (0.4), 3 (0.3), 2 (0.2), 0 (0.1).
const std::vector<double> kLogits = {std::log(0.1), std::log(0.4), std::log(0.2), std::log(0.3)};

SamplingOptions options(double temperature, int64_t top_k = 0, double top_p = 1.0) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  return o;
}

void check_distribution(const std::vector<double>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-12));
    if (expected[i] == 0.0) CHECK(got[i] == 0.0);  // removed tokens are exactly 0
  }
}

TEST_CASE("sampling: the distributions of greedy, temperature, top-k and top-p on known logits") {
  check_distribution(sampling_distribution(kLogits, options(1.0)), {0.1, 0.4, 0.2, 0.3});
  check_distribution(sampling_distribution(kLogits, options(0.0)), {0, 1, 0, 0});           // greedy
  check_distribution(sampling_distribution(kLogits, options(0.0, 3, 0.5)), {0, 1, 0, 0});   // greedy ignores filters
  const double z = std::sqrt(0.1) + std::sqrt(0.4) + std::sqrt(0.2) + std::sqrt(0.3);     // T = 2: p^(1/2)
  check_distribution(sampling_distribution(kLogits, options(2.0)),
                     {std::sqrt(0.1) / z, std::sqrt(0.4) / z, std::sqrt(0.2) / z, std::sqrt(0.3) / z});
  check_distribution(sampling_distribution(kLogits, options(1.0, 1)), {0, 1, 0, 0});
  check_distribution(sampling_distribution(kLogits, options(1.0, 2)), {0, 4.0 / 7, 0, 3.0 / 7});
  check_distribution(sampling_distribution(kLogits, options(1.0, 4)), {0.1, 0.4, 0.2, 0.3});
  check_distribution(sampling_distribution(kLogits, options(1.0, 99)), {0.1, 0.4, 0.2, 0.3});  // K >= V: all
  // top-p: the smallest most-probable set reaching P.
  check_distribution(sampling_distribution(kLogits, options(1.0, 0, 0.3)), {0, 1, 0, 0});       // 0.4 >= 0.3
  check_distribution(sampling_distribution(kLogits, options(1.0, 0, 0.65)), {0, 4.0 / 7, 0, 3.0 / 7});  // 0.7
  check_distribution(sampling_distribution(kLogits, options(1.0, 0, 0.75)), {0, 4.0 / 9, 2.0 / 9, 3.0 / 9});  // 0.9
  check_distribution(sampling_distribution(kLogits, options(1.0, 0, 1.0)), {0.1, 0.4, 0.2, 0.3});
  // Both: top-k first (renormalised over 1, 3, 2: 0.44, 0.78, 1.0), then top-p.
  check_distribution(sampling_distribution(kLogits, options(1.0, 3, 0.7)), {0, 4.0 / 7, 0, 3.0 / 7});
  check_distribution(sampling_distribution(kLogits, options(1.0, 3, 0.8)), {0, 4.0 / 9, 2.0 / 9, 3.0 / 9});
  check_distribution(sampling_distribution(kLogits, options(1.0, 2, 0.99)), {0, 4.0 / 7, 0, 3.0 / 7});
}

TEST_CASE("sampling: ties go to the lower index, in greedy and in the filters") {
  const std::vector<double> tied = {1.0, 3.0, 3.0, 0.0};
  Rng rng(1);
  CHECK(sample_token(tied, options(0.0), rng) == 1);
  CHECK(rng.counter == 0);  // greedy draws nothing
  check_distribution(sampling_distribution(tied, options(1.0, 1)), {0, 1, 0, 0});
  check_distribution(sampling_distribution(tied, options(1.0, 2)), {0, 0.5, 0.5, 0});
  CHECK(argmax_rows(Tensor::from_vector({1, 3, 3, 0, 5, 5, 5, 5}, {2, 4}, DType::F32)) == std::vector<int32_t>{1, 0});
}

TEST_CASE("sampling: draws follow the filtered distribution (never a removed token)") {
  Rng rng(20261201);
  const int64_t n = 20000;
  std::vector<int64_t> count(4, 0);
  for (int64_t i = 0; i < n; ++i) ++count[sample_token(kLogits, options(1.0, 0, 0.75), rng)];
  CHECK(count[0] == 0);  // outside the nucleus
  const std::vector<double> p = {0, 4.0 / 9, 2.0 / 9, 3.0 / 9};
  for (size_t i = 1; i < 4; ++i) {  // within 5 standard deviations of the expected count
    const double mean = n * p[i], sd = std::sqrt(n * p[i] * (1 - p[i]));
    CAPTURE(i);
    CHECK(std::abs(count[i] - mean) < 5 * sd);
  }
  // sample_rows draws one token per row, row 0 first, from the same stream.
  Rng a(5), b(5);
  const Tensor rows = Tensor::from_vector({kLogits[0], kLogits[1], kLogits[2], kLogits[3], 0, 0, 9, 0}, {2, 4}, DType::F64);
  const std::vector<int32_t> drawn = sample_rows(rows, options(1.0, 2), a);
  CHECK(drawn[0] == sample_token(kLogits, options(1.0, 2), b));
  CHECK(drawn[1] == sample_token({0, 0, 9, 0}, options(1.0, 2), b));
  CHECK(a.counter == 2);
}

TEST_CASE("sampling: clear errors for bad values and NaN logits") {
  Rng rng(0);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(check_sampling(options(-1.0)), doctest::Contains("temperature"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(nan)), doctest::Contains("temperature"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(inf)), doctest::Contains("temperature"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(1.0, -1)), doctest::Contains("top-k"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(1.0, 0, 0.0)), doctest::Contains("top-p"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(1.0, 0, 1.5)), doctest::Contains("top-p"), Error);
  CHECK_THROWS_WITH_AS(check_sampling(options(1.0, 0, nan)), doctest::Contains("top-p"), Error);
  CHECK_THROWS_WITH_AS(sample_token({}, options(1.0), rng), doctest::Contains("empty"), Error);
  CHECK_THROWS_WITH_AS(sample_token({0.0, nan}, options(0.0), rng), doctest::Contains("NaN"), Error);
  CHECK_THROWS_WITH_AS(sample_token({0.0, nan}, options(1.0), rng), doctest::Contains("NaN"), Error);
  CHECK_THROWS_WITH_AS(argmax_rows(Tensor::from_vector({0, 1, nan, 2}, {2, 2}, DType::F64)), doctest::Contains("row 1"),
                       Error);
  CHECK_THROWS_WITH_AS(sample_token({1.0}, 0.0, rng), doctest::Contains("temperature"), Error);  // the old form: > 0
}

}  // namespace
}  // namespace swiattn
