// tests/test_synthetic.cpp: the passkey and MQAR examples of data/synthetic.h.
// The filler is real text (Moby-Dick chapter 1 from data/cache; the test FAILS, never skips, when
// the cache is missing: run `make data`). Both tokenizers are checked.
#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>

#include "data/read_file.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

using namespace swiattn;
using swiattn::testing::contains;
using swiattn::testing::error_of;

namespace {

std::string cache_dir() { return std::string(SWIATTN_SOURCE_DIR) + "/data/cache"; }

const Tokenizer& tokenizer_named(const std::string& kind) {
  static const std::unique_ptr<Tokenizer> byte = make_tokenizer("byte", cache_dir());
  static const std::unique_ptr<Tokenizer> gpt2 = make_tokenizer("gpt2", cache_dir());
  return kind == "byte" ? *byte : *gpt2;
}

std::vector<int32_t> filler_for(const Tokenizer& tok) {
  const std::string text = read_whole_file(cache_dir() + "/moby-dick/data/chapter_1.txt", "test filler");
  REQUIRE(text.size() > 5000);
  return tok.encode(text);
}

std::string span_text(const Tokenizer& tok, const RetrievalExample& ex, size_t i) {
  const auto [b, e] = ex.answers[i];
  return tok.decode(std::vector<int32_t>(ex.tokens.begin() + b, ex.tokens.begin() + e));
}

// True when `needle` occurs in `hay` starting at `at`.
bool occurs_at(const std::vector<int32_t>& hay, const std::vector<int32_t>& needle, int64_t at) {
  if (at < 0 || at + static_cast<int64_t>(needle.size()) > static_cast<int64_t>(hay.size())) return false;
  return std::equal(needle.begin(), needle.end(), hay.begin() + at);
}

}  // namespace

TEST_CASE("synthetic: passkey examples have the exact length and an answer that decodes to the key") {
  for (const std::string kind : {"byte", "gpt2"}) {
    CAPTURE(kind);
    const Tokenizer& tok = tokenizer_named(kind);
    const std::vector<int32_t> filler = filler_for(tok);
    for (int64_t length : {120, 301, 777}) {
      for (double depth : {0.0, 0.25, 0.5, 1.0}) {
        CAPTURE(length);
        CAPTURE(depth);
        Rng rng(7);
        const RetrievalExample ex = make_passkey_example(tok, filler, length, depth, rng);
        REQUIRE(static_cast<int64_t>(ex.tokens.size()) == length);
        REQUIRE(ex.answers.size() == 1);
        REQUIRE(ex.evidence.size() == 1);
        REQUIRE(ex.answer_text.size() == 1);
        const std::string key = ex.answer_text[0];
        CHECK(key.size() == 5);
        CHECK(key.find_first_not_of("0123456789") == std::string::npos);
        CHECK(span_text(tok, ex, 0) == " " + key);
        CHECK(ex.answers[0].second == length);  // the answer ends the example
        // The needle starts at the evidence and holds the key; the question precedes the answer.
        const std::string needle_text = tok.decode(std::vector<int32_t>(ex.tokens.begin() + ex.evidence[0], ex.tokens.end()));
        CHECK(needle_text.rfind(" The pass key is " + key + ". Remember it.", 0) == 0);
        CHECK(contains(tok.decode(ex.tokens), "What is the pass key? The pass key is " + key));
        // Depth orders the needle: at 0 it opens the example, at 1 it directly precedes the question.
        if (depth == 0.0) CHECK(ex.evidence[0] == 0);
        CHECK(evidence_distance(ex, 0) > 0);
      }
    }
  }
}

TEST_CASE("synthetic: a deeper needle sits later; filler is a real run of the stream") {
  const Tokenizer& tok = tokenizer_named("byte");
  const std::vector<int32_t> filler = filler_for(tok);
  int64_t last = -1;
  for (double depth : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    Rng rng(3);  // the same key and filler offset for every depth
    const RetrievalExample ex = make_passkey_example(tok, filler, 500, depth, rng);
    CHECK(ex.evidence[0] > last);
    last = ex.evidence[0];
  }
  // depth 1: the needle ends right where the question starts.
  Rng rng(3);
  const RetrievalExample ex = make_passkey_example(tok, filler, 500, 1.0, rng);
  const std::vector<int32_t> question = tok.encode(" What is the pass key?");
  const std::vector<int32_t> needle_tail = tok.encode(" is the pass key.");
  const int64_t q = ex.answers[0].first - static_cast<int64_t>(tok.encode(" What is the pass key? The pass key is").size());
  CHECK(occurs_at(ex.tokens, question, q));
  CHECK(occurs_at(ex.tokens, needle_tail, q - static_cast<int64_t>(needle_tail.size())));
  // The leading filler (depth 1: everything before the needle) is a contiguous run of the stream.
  const std::vector<int32_t> lead(ex.tokens.begin(), ex.tokens.begin() + ex.evidence[0]);
  CHECK(std::search(filler.begin(), filler.end(), lead.begin(), lead.end()) != filler.end());
}

TEST_CASE("synthetic: examples are a pure function of the seed") {
  const Tokenizer& tok = tokenizer_named("gpt2");
  const std::vector<int32_t> filler = filler_for(tok);
  Rng a(11), b(11), c(12);
  const RetrievalExample pa = make_passkey_example(tok, filler, 400, 0.5, a);
  const RetrievalExample pb = make_passkey_example(tok, filler, 400, 0.5, b);
  const RetrievalExample pc = make_passkey_example(tok, filler, 400, 0.5, c);
  CHECK(pa.tokens == pb.tokens);
  CHECK(pa.answer_text == pb.answer_text);
  CHECK(pa.tokens != pc.tokens);
  const RetrievalExample ma = make_mqar_example(tok, filler, 600, 6, a);
  const RetrievalExample mb = make_mqar_example(tok, filler, 600, 6, b);
  const RetrievalExample mc = make_mqar_example(tok, filler, 600, 6, c);
  CHECK(ma.tokens == mb.tokens);
  CHECK(ma.answers == mb.answers);
  CHECK(ma.evidence == mb.evidence);
  CHECK(ma.tokens != mc.tokens);
}

TEST_CASE("synthetic: MQAR examples: exact length, distinct keys, answers decode to the pair's value") {
  for (const std::string kind : {"byte", "gpt2"}) {
    CAPTURE(kind);
    const Tokenizer& tok = tokenizer_named(kind);
    const std::vector<int32_t> filler = filler_for(tok);
    for (int64_t pairs : {1, 4, 8}) {
      CAPTURE(pairs);
      Rng rng(5);
      const int64_t length = kind == "byte" ? 1000 : 400;
      const RetrievalExample ex = make_mqar_example(tok, filler, length, pairs, rng);
      REQUIRE(static_cast<int64_t>(ex.tokens.size()) == length);
      REQUIRE(ex.answers.size() == static_cast<size_t>(pairs));
      REQUIRE(ex.evidence.size() == static_cast<size_t>(pairs));
      std::set<int64_t> evidence;
      std::set<std::string> keys;
      for (size_t i = 0; i < ex.answers.size(); ++i) {
        CAPTURE(i);
        const std::string value = ex.answer_text[i];
        CHECK(value.size() == 4);
        CHECK(span_text(tok, ex, i) == " " + value);
        // The pair at the evidence reads " The code for KEY is VALUE."; the query names the same key.
        const std::string pair_text =
            tok.decode(std::vector<int32_t>(ex.tokens.begin() + ex.evidence[i], ex.tokens.end()));
        REQUIRE(pair_text.rfind(" The code for ", 0) == 0);
        const size_t key_end = pair_text.find(" is ");
        REQUIRE(key_end != std::string::npos);
        const std::string key = pair_text.substr(14, key_end - 14);
        CHECK(pair_text.substr(key_end, 4 + value.size() + 1) == " is " + value + ".");
        const std::string query_text = tok.decode(std::vector<int32_t>(ex.tokens.begin(), ex.tokens.begin() + ex.answers[i].first));
        CHECK(query_text.size() >= key.size() + 18);
        CHECK(query_text.substr(query_text.size() - (key.size() + 17)) == " The code for " + key + " is");
        CHECK(evidence_distance(ex, i) > 0);
        evidence.insert(ex.evidence[i]);
        keys.insert(key);
      }
      CHECK(evidence.size() == static_cast<size_t>(pairs));  // one pair per query
      CHECK(keys.size() == static_cast<size_t>(pairs));      // distinct keys
      // The last answer ends the example.
      int64_t end = 0;
      for (const auto& a : ex.answers) end = std::max(end, a.second);
      CHECK(end == length);
    }
  }
}

TEST_CASE("synthetic: clear errors for impossible requests") {
  const Tokenizer& tok = tokenizer_named("byte");
  const std::vector<int32_t> filler = filler_for(tok);
  Rng rng(1);
  CHECK(contains(error_of([&] { make_passkey_example(tok, filler, 20, 0.5, rng); }), "too short"));
  CHECK(contains(error_of([&] { make_passkey_example(tok, filler, 20, 0.5, rng); }), "length must be >="));
  CHECK(contains(error_of([&] { make_passkey_example(tok, filler, 500, 1.5, rng); }), "depth must be in [0, 1]"));
  const std::vector<int32_t> few(filler.begin(), filler.begin() + 50);
  CHECK(contains(error_of([&] { make_passkey_example(tok, few, 500, 0.5, rng); }), "the filler has 50 tokens"));
  CHECK(contains(error_of([&] { make_mqar_example(tok, filler, 100, 8, rng); }), "too short for 8 pairs"));
  CHECK(contains(error_of([&] { make_mqar_example(tok, filler, 1000, 0, rng); }), "num_pairs must be in [1,"));
  CHECK(contains(error_of([&] { make_mqar_example(tok, filler, 100000, mqar_max_pairs() + 1, rng); }), "num_pairs"));
  CHECK(contains(error_of([&] { make_mqar_example(tok, few, 1000, 2, rng); }), "the filler has 50 tokens"));
}
