// tests/test_data.cpp: tokenizers, corpora, split, batch loader (data/).
//
// Tests that read data/cache/ need `make data` first (`make test` runs it). They FAIL, never skip,
// when the cache is missing. The cache is found through SWIATTN_SOURCE_DIR, which CMake defines
// for this binary (standalone: -DSWIATTN_SOURCE_DIR=\"$PWD\").
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/gpt2_pretokenize.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
#include "train/config.h"

#ifndef SWIATTN_SOURCE_DIR
#error "SWIATTN_SOURCE_DIR must name the repository root (CMake defines it for the test binary)"
#endif

using namespace swiattn;

namespace {

std::string cache_dir() {
  const std::string dir = std::string(SWIATTN_SOURCE_DIR) + "/data/cache";
  const std::string hint = dir + " is missing: run `make data`";
  REQUIRE_MESSAGE(std::filesystem::is_directory(dir), hint);
  return dir;
}

// Loaded once: reading encoder.json and vocab.bpe takes ~0.1 s.
const Tokenizer& gpt2() {
  static const std::unique_ptr<Tokenizer> tokenizer = make_tokenizer("gpt2", cache_dir());
  return *tokenizer;
}

// The message of the swiattn::Error that f throws, or "<no error>".
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Strings every tokenizer must survive: truncated, overlong, surrogate, stray continuation bytes.
const std::vector<std::string> kInvalidUtf8 = {
    "\xff\xfe", "abc\xc3", "\xe2\x82 x", "\xc0\xaf", "\xed\xa0\x80", "\x80" "abc", "caf\xe9 ok",
    "\xf4\x90\x80\x80", " \xff\xff  \xfe'\xffs",
};

std::string random_bytes(uint64_t seed, size_t length) {
  Rng rng(seed);
  std::string bytes(length, '\0');
  for (char& c : bytes) c = static_cast<char>(rng.below(256));
  return bytes;
}

}  // namespace

TEST_CASE("data: byte tokenizer maps each byte to its value and back") {
  ByteTokenizer tokenizer;
  CHECK(tokenizer.vocab_size() == 256);
  CHECK(tokenizer.name() == "byte");
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::vector<int32_t> ids = tokenizer.encode(all_bytes);
  REQUIRE(ids.size() == 256);
  for (int b = 0; b < 256; ++b) CHECK(ids[b] == b);
  CHECK(tokenizer.decode(ids) == all_bytes);
  CHECK(tokenizer.encode("Hi\n") == std::vector<int32_t>{72, 105, 10});
  CHECK(tokenizer.decode(tokenizer.encode("caf\xc3\xa9")) == "caf\xc3\xa9");
}

TEST_CASE("data: gpt2 byte-to-unicode alphabet") {
  CHECK(gpt2_byte_to_codepoint('!') == '!');
  CHECK(gpt2_byte_to_codepoint('~') == '~');
  CHECK(gpt2_byte_to_codepoint(0xE9) == 0xE9);   // printable Latin-1 stands for itself
  CHECK(gpt2_byte_to_codepoint(0) == 256);       // the first byte that needs a stand-in
  CHECK(gpt2_byte_to_codepoint('\n') == 0x10A);  // 'Ċ'
  CHECK(gpt2_byte_to_codepoint(' ') == 0x120);   // 'Ġ'
  CHECK(gpt2_byte_to_codepoint(0xAD) == 323);    // the last stand-in (soft hyphen)
  std::set<uint32_t> codepoints;
  for (int b = 0; b < 256; ++b) codepoints.insert(gpt2_byte_to_codepoint(static_cast<uint8_t>(b)));
  CHECK(codepoints.size() == 256);
}

TEST_CASE("data: gpt2 pre-tokeniser follows GPT-2's pattern") {
  using Pieces = std::vector<std::string>;
  CHECK(gpt2_pretokenize("Hello,   world!  ") == Pieces{"Hello", ",", "  ", " world", "!", "  "});
  CHECK(gpt2_pretokenize("I'm John's") == Pieces{"I", "'m", " John", "'s"});
  CHECK(gpt2_pretokenize("we'd've DON'T") == Pieces{"we", "'d", "'ve", " DON", "'", "T"});
  CHECK(gpt2_pretokenize("a\n\nb") == Pieces{"a", "\n", "\n", "b"});
  CHECK(gpt2_pretokenize("x \ny") == Pieces{"x", " ", "\n", "y"});
  CHECK(gpt2_pretokenize("in 1790, $5.00") == Pieces{"in", " 1790", ",", " $", "5", ".", "00"});
  CHECK(gpt2_pretokenize("caf\xc3\xa9 \xe4\xb8\xad") == Pieces{"caf\xc3\xa9", " \xe4\xb8\xad"});
  CHECK(gpt2_pretokenize("end   ") == Pieces{"end", "   "});
  // An ill-formed byte is an "other" character, as U+FFFD (its usual replacement) would be.
  CHECK(gpt2_pretokenize("ab\xff" "cd \xfe\xff!") == Pieces{"ab", "\xff", "cd", " \xfe\xff!"});
  CHECK(gpt2_pretokenize("").empty());
}

TEST_CASE("data: gpt2 BPE gives the reference encoder's ids") {
  // Expected ids were produced by the reference JavaScript encoder, npm gpt-3-encoder 1.1.4
  // (require('gpt-3-encoder').encode(s) on the package fetched into data/cache/gpt-3-encoder).
  struct Case {
    std::string text;
    std::vector<int32_t> ids;
  };
  const std::vector<Case> cases = {
      {"Hello world", {15496, 995}},
      {"Hello,   world!  ", {15496, 11, 220, 220, 995, 0, 220, 220}},
      {"line one\nline two\n\n\nend\n", {1370, 530, 198, 1370, 734, 628, 198, 437, 198}},
      {"In 1790, there were 3,929,214 people; 12345678 digits.",
       {818, 1596, 3829, 11, 612, 547, 513, 11, 24, 1959, 11, 22291, 661, 26, 17031, 2231, 30924,
        19561, 13}},
      {"Wait... what?! (yes) -- \"quoted\" [brackets] {braces} #hash @at $5.00 100%",
       {21321, 986, 644, 12248, 357, 8505, 8, 1377, 366, 421, 5191, 1, 685, 1671, 25180, 60,
        1391, 1671, 2114, 92, 1303, 17831, 2488, 265, 720, 20, 13, 405, 1802, 4}},
      {"I'm sure you've said they'll go, it's John's and we'd've; DON'T SHOUT",
       {40, 1101, 1654, 345, 1053, 531, 484, 1183, 467, 11, 340, 338, 1757, 338, 290, 356, 1549,
        1053, 26, 23917, 6, 51, 6006, 12425}},
      {"caf\u00e9 r\u00e9sum\u00e9 na\u00efve Z\u00fcrich",
       {66, 1878, 2634, 40560, 16345, 2634, 41492, 1168, 9116, 7527}},
      {"\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5",  // Chinese
       {40792, 23877, 229, 26344, 228, 46237, 235, 38184, 233, 46237, 243}},
      {"emoji \U0001F600\U0001F44D\U0001F3FD and \u2764\uFE0F",
       {368, 31370, 30325, 222, 41840, 235, 8582, 237, 121, 290, 43074, 97, 37929}},
      {"\ttab\r\nwindows  \u00a0nbsp", {197, 8658, 201, 198, 28457, 220, 220, 1849, 77, 24145}},
      {"", {}},
  };
  const Tokenizer& tokenizer = gpt2();
  CHECK(tokenizer.vocab_size() == 50257);
  CHECK(tokenizer.name() == "gpt2");
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(tokenizer.encode(c.text) == c.ids);
    CHECK(tokenizer.decode(c.ids) == c.text);
  }
  CHECK(dynamic_cast<const Gpt2BpeTokenizer&>(tokenizer).end_of_text_id() == 50256);
  CHECK(tokenizer.decode({50256}) == "<|endoftext|>");
}

TEST_CASE("data: gpt2 decode(encode(s)) == s on real text and random bytes") {
  const Tokenizer& tokenizer = gpt2();
  const TextCorpus corpus = load_corpus("moby-dick", cache_dir());
  for (size_t d = 2; d < 7; ++d) {  // chapters 1-5
    const std::string& doc = corpus.train_docs[d];
    const std::vector<int32_t> ids = tokenizer.encode(doc);
    CHECK(ids.size() < doc.size() / 3);  // BPE compresses English text well
    CHECK(tokenizer.decode(ids) == doc);
  }
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::string bytes = random_bytes(seed, 300);
    CHECK(tokenizer.decode(tokenizer.encode(bytes)) == bytes);
  }
}

TEST_CASE("data: invalid UTF-8 does not crash and round-trips") {
  ByteTokenizer bytes;
  const Tokenizer& bpe = gpt2();
  for (const std::string& text : kInvalidUtf8) {
    CAPTURE(text);
    std::string joined;
    for (const std::string& piece : gpt2_pretokenize(text)) {
      CHECK(!piece.empty());
      joined += piece;
    }
    CHECK(joined == text);
    CHECK(bpe.decode(bpe.encode(text)) == text);
    CHECK(bytes.decode(bytes.encode(text)) == text);
  }
}

TEST_CASE("data: stage markers are stripped from SOTU") {
  CHECK(strip_stage_markers("Thank you. (Applause.) Thank you.") == "Thank you. Thank you.");
  CHECK(strip_stage_markers("a tax cut. [Laughter]\nNext") == "a tax cut.\nNext");
  CHECK(strip_stage_markers("Madam Speaker\xe2\x80\x94(applause)\xe2\x80\x94no") ==
        "Madam Speaker\xe2\x80\x94\xe2\x80\x94no");
  CHECK(strip_stage_markers("[applause] Good evening.") == " Good evening.");
  CHECK(strip_stage_markers("us. [At this point, audience members responded.] We") == "us. We");
  // Editorial brackets and ordinary parentheses stay.
  CHECK(strip_stage_markers("[sic] (a) [Footnote 1: x] (applause is due)") ==
        "[sic] (a) [Footnote 1: x] (applause is due)");

  const TextCorpus corpus = load_corpus("sotu", cache_dir());
  for (const auto* docs : {&corpus.train_docs, &corpus.val_docs})
    for (std::string doc : *docs) {
      for (char& c : doc) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const char* marker :
           {"[applause]", "[laughter]", "(applause", "(laughter", "[at this point"})
        CHECK_MESSAGE(!contains(doc, marker), marker);
    }
}

TEST_CASE("data: held-out split is by whole documents, disjoint and non-empty") {
  const TextCorpus sotu = load_corpus("sotu", cache_dir());
  CHECK(sotu.train_docs.size() + sotu.val_docs.size() == 233);
  CHECK(sotu.val_docs.size() == 23);
  auto year_of = [](const std::string& name) { return std::stoi(name.substr(5, 4)); };  // sotu/YYYY
  for (const std::string& name : sotu.val_names) CHECK(sotu_year_is_held_out(year_of(name)));
  for (const std::string& name : sotu.train_names) CHECK(!sotu_year_is_held_out(year_of(name)));

  const TextCorpus moby = load_corpus("moby-dick", cache_dir());
  CHECK(moby.val_names.size() == 13);
  CHECK(moby.val_names.front() == "moby-dick/chapter_10");
  CHECK(moby.val_names.back() == "moby-dick/chapter_130");
  CHECK(moby.train_names.front() == "moby-dick/etymology");
  CHECK(moby.train_names.back() == "moby-dick/epilogue");
  CHECK(contains(moby.train_docs[2], "Call me Ishmael."));  // chapter 1

  const TextCorpus both = load_corpus("sotu+moby-dick", cache_dir());
  CHECK(both.train_docs.size() == sotu.train_docs.size() + moby.train_docs.size());
  CHECK(both.val_docs.size() == sotu.val_docs.size() + moby.val_docs.size());
  for (const TextCorpus* corpus : {&sotu, &moby, &both}) {
    CAPTURE(corpus->description);
    REQUIRE(!corpus->train_docs.empty());
    REQUIRE(!corpus->val_docs.empty());
    CHECK(corpus->train_names.size() == corpus->train_docs.size());
    CHECK(corpus->val_names.size() == corpus->val_docs.size());
    const std::set<std::string> train_names(corpus->train_names.begin(), corpus->train_names.end());
    const std::set<std::string> train_texts(corpus->train_docs.begin(), corpus->train_docs.end());
    for (size_t i = 0; i < corpus->val_docs.size(); ++i) {
      CHECK(train_names.count(corpus->val_names[i]) == 0);
      CHECK(train_texts.count(corpus->val_docs[i]) == 0);
      CHECK(!corpus->val_docs[i].empty());
    }
  }
}

TEST_CASE("data: tokenize_docs puts the separator between documents") {
  ByteTokenizer tokenizer;
  CHECK(tokenize_docs(tokenizer, {"ab", "c", "d"}, 0) ==
        std::vector<int32_t>{97, 98, 0, 99, 0, 100});
  CHECK(tokenize_docs(tokenizer, {"ab", "c"}, -1) == std::vector<int32_t>{97, 98, 99});
  CHECK(tokenize_docs(tokenizer, {}, 0).empty());
}

TEST_CASE("data: unigram entropy in nats") {
  CHECK(unigram_entropy({0, 1, 2, 3}, 4) == doctest::Approx(std::log(4.0)));
  CHECK(unigram_entropy({5, 5, 5, 7}, 8) ==
        doctest::Approx(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))));
  CHECK(unigram_entropy({3, 3, 3}, 4) == doctest::Approx(0.0));
  // Unused vocabulary entries do not change the entropy.
  CHECK(unigram_entropy({0, 1}, 50000) == doctest::Approx(std::log(2.0)));
}

TEST_CASE("data: batch loader is reproducible and targets are inputs shifted by one") {
  std::vector<int32_t> tokens(1000);
  for (int i = 0; i < 1000; ++i) tokens[i] = i;  // token = position, so a shift is visible
  const int B = 4, T = 7;
  BatchLoader a(tokens, B, T, /*seed=*/42), b(tokens, B, T, /*seed=*/42), c(tokens, B, T, 43);
  Tensor inputs_a, targets_a, inputs_b, targets_b, inputs_c, targets_c;
  a.next(inputs_a, targets_a);
  b.next(inputs_b, targets_b);
  c.next(inputs_c, targets_c);
  CHECK(inputs_a.shape() == Shape{B, T});
  CHECK(targets_a.shape() == Shape{B, T});
  CHECK(inputs_a.dtype() == DType::I32);
  CHECK(inputs_a.to_ints() == inputs_b.to_ints());
  CHECK(targets_a.to_ints() == targets_b.to_ints());
  CHECK(inputs_a.to_ints() != inputs_c.to_ints());
  const std::vector<int32_t> in = inputs_a.to_ints(), out = targets_a.to_ints();
  for (int row = 0; row < B; ++row)
    for (int t = 0; t < T; ++t) {
      CHECK(out[row * T + t] == in[row * T + t] + 1);
      if (t > 0) CHECK(in[row * T + t] == in[row * T + t - 1] + 1);  // a contiguous window
    }
  CHECK(a.rng().counter == static_cast<uint64_t>(B));

  // Saving (seed, counter) and restoring it resumes the same stream.
  const Rng saved = a.rng();
  Tensor next_inputs, next_targets;
  a.next(next_inputs, next_targets);
  BatchLoader resumed(tokens, B, T, /*seed=*/0);
  resumed.rng() = saved;
  Tensor resumed_inputs, resumed_targets;
  resumed.next(resumed_inputs, resumed_targets);
  CHECK(resumed_inputs.to_ints() == next_inputs.to_ints());
  CHECK(resumed_targets.to_ints() == next_targets.to_ints());

  // Every start is in range, including the last one: a stream of exactly T + 1 tokens.
  BatchLoader tight(std::vector<int32_t>(tokens.begin(), tokens.begin() + T + 1), B, T, 1);
  tight.next(inputs_a, targets_a);
  CHECK(inputs_a.to_ints()[0] == 0);
  CHECK(targets_a.to_ints()[B * T - 1] == T);
}

TEST_CASE("data: sequential batches cut the stream into consecutive windows") {
  std::vector<int32_t> tokens(23);
  for (int i = 0; i < 23; ++i) tokens[i] = i;
  // T = 3: windows start at 0, 3, ..., 18 (7 windows, 21 + 1 tokens); B = 2 -> 3 full batches.
  const auto batches = sequential_batches(tokens, /*batch_size=*/2, /*context_length=*/3, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0].first.to_ints() == std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  CHECK(batches[0].second.to_ints() == std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  CHECK(batches[2].first.to_ints() == std::vector<int32_t>{12, 13, 14, 15, 16, 17});
  CHECK(batches[2].first.shape() == Shape{2, 3});
  CHECK(sequential_batches(tokens, 2, 3, /*max_batches=*/2).size() == 2);
  CHECK(sequential_batches(tokens, 2, 3, 0)[1].first.to_ints() ==
        sequential_batches(tokens, 2, 3, 0)[1].first.to_ints());
}

TEST_CASE("data: errors name the bad argument, file or key") {
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  CHECK(contains(error_message([] { make_tokenizer("wordpiece", "."); }), "wordpiece"));
  const std::string missing_files = error_message([] { make_tokenizer("gpt2", "/nonexistent"); });
  CHECK(contains(missing_files, "encoder.json"));
  CHECK(contains(missing_files, "make data"));
  CHECK(contains(error_message([] { load_corpus("shakespeare", "."); }), "shakespeare"));
  const std::string missing_cache = error_message([] { load_corpus("sotu", "/nonexistent"); });
  CHECK(contains(missing_cache, "/nonexistent/sotu"));
  CHECK(contains(missing_cache, "make data"));
  CHECK(contains(error_message([&] { BatchLoader(five, 2, 5, 0); }), "tokens"));
  CHECK(contains(error_message([&] { BatchLoader(five, 0, 2, 0); }), "batch_size"));
  CHECK(contains(error_message([&] { BatchLoader(five, 2, 0, 0); }), "context_length"));
  CHECK(contains(error_message([&] { sequential_batches(five, 3, 2, 0); }), "batch_size"));
  CHECK(contains(error_message([] { ByteTokenizer().decode({256}); }), "256"));
  CHECK(contains(error_message([] { gpt2().decode({50257}); }), "50257"));
  CHECK(contains(error_message([] { tokenize_docs(ByteTokenizer(), {"a"}, 256); }), "separator"));
  CHECK(contains(error_message([] { unigram_entropy({}, 4); }), "empty"));
  CHECK(contains(error_message([] { unigram_entropy({4}, 4); }), "token 4"));
}

// ---- The training mixture: synthetic retrieval rows among the text windows ----

namespace {

// Real text as filler, byte-tokenized: enough for many T = 256 rows.
std::vector<int32_t> byte_filler() {
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += "Call me Ishmael. Some years ago, never mind how long precisely, having little money " +
            std::to_string(i) + " in my purse, I thought I would sail about a little. ";
  return ByteTokenizer().encode(text);
}

// Row `row` of a batch as its T + 1 token sequence: inputs[row, :] then the last target.
std::vector<int32_t> row_sequence(const Tensor& inputs, const Tensor& targets, int row, int T) {
  const std::vector<int32_t> in = inputs.to_ints(), out = targets.to_ints();
  std::vector<int32_t> seq(in.begin() + row * T, in.begin() + (row + 1) * T);
  seq.push_back(out[static_cast<size_t>((row + 1) * T - 1)]);
  return seq;
}

std::string decode_span(const std::vector<int32_t>& seq, int64_t begin, int64_t end) {
  return ByteTokenizer().decode(std::vector<int32_t>(seq.begin() + begin, seq.begin() + end));
}

}  // namespace

TEST_CASE("data: a mixture with synthetic_fraction 0 gives exactly the plain loader's batches") {
  const ByteTokenizer bytes;
  const std::vector<int32_t> filler = byte_filler();
  SyntheticMixture none;
  none.tokenizer = &bytes;  // present but unused: fraction 0 is text only
  BatchLoader plain(filler, 4, 64, 7), mixed(filler, 4, 64, 7, none);
  for (int batch = 0; batch < 5; ++batch) {
    Tensor a_in, a_out, b_in, b_out;
    plain.next(a_in, a_out);
    mixed.next(b_in, b_out);
    CHECK(a_in.to_ints() == b_in.to_ints());
    CHECK(a_out.to_ints() == b_out.to_ints());
    for (const BatchRow& row : mixed.last_rows()) CHECK(row.source == "text");
  }
  CHECK(plain.rng().counter == mixed.rng().counter);
  CHECK(contains(mixed.mixture_description(), "text windows only"));
}

TEST_CASE("data: with synthetic_fraction 1 every row is a retrieval example whose answers decode") {
  const ByteTokenizer bytes;
  const std::vector<int32_t> filler = byte_filler();
  const int B = 8, T = 256;
  SyntheticMixture all;
  all.fraction = 1.0;
  all.mqar_pairs = 2;
  all.min_needle_distance = 150;  // forces needles into the first part of the row
  all.tokenizer = &bytes;
  BatchLoader loader(filler, B, T, 3, all);
  int passkeys = 0, mqars = 0;
  for (int batch = 0; batch < 6; ++batch) {
    Tensor inputs, targets;
    loader.next(inputs, targets);
    REQUIRE(loader.last_rows().size() == static_cast<size_t>(B));
    CHECK(loader.rng().counter == static_cast<uint64_t>((batch + 1) * B));  // one draw per row
    const std::vector<int32_t> in = inputs.to_ints(), out = targets.to_ints();
    for (int row = 0; row < B; ++row) {
      const BatchRow& info = loader.last_rows()[static_cast<size_t>(row)];
      INFO("batch ", batch, " row ", row, " source ", info.source);
      for (int t = 0; t + 1 < T; ++t) CHECK(out[row * T + t] == in[row * T + t + 1]);  // shifted by one
      const std::vector<int32_t> seq = row_sequence(inputs, targets, row, T);
      REQUIRE(info.answers.size() == info.answer_text.size());
      REQUIRE(info.answers.size() == info.evidence.size());
      REQUIRE(!info.answers.empty());
      for (size_t a = 0; a < info.answers.size(); ++a) {
        const auto [begin, end] = info.answers[a];
        REQUIRE(begin >= 1);  // every answer token is a target of some position
        REQUIRE(end <= T + 1);
        CHECK(decode_span(seq, begin, end) == " " + info.answer_text[a]);
        // The evidence before the answer states the same key / value.
        const std::string evidence = decode_span(seq, info.evidence[a], begin);
        CHECK(contains(evidence, info.answer_text[a]));
      }
      if (info.source == "passkey") {
        ++passkeys;
        REQUIRE(info.answers.size() == 1);
        CHECK(info.answer_text[0].size() == 5);
        CHECK(info.answers[0].second == T + 1);  // the key ends the row
        CHECK(info.answers[0].first - info.evidence[0] >= 150);
        CHECK(decode_span(seq, info.evidence[0], info.evidence[0] + 16) == " The pass key is");
      } else {
        REQUIRE(info.source == "mqar");
        ++mqars;
        CHECK(info.answers.size() == 2);
        for (int64_t e : info.evidence) CHECK(decode_span(seq, e, e + 13) == " The code for");
      }
    }
  }
  CHECK(passkeys > 0);  // both tasks occur (equal weights, 48 rows)
  CHECK(mqars > 0);
}

TEST_CASE("data: the synthetic share and the task shares are near the configured ones") {
  const ByteTokenizer bytes;
  SyntheticMixture m;
  m.fraction = 0.3;
  m.passkey_weight = 3.0;
  m.mqar_weight = 1.0;
  m.mqar_pairs = 1;
  m.tokenizer = &bytes;
  BatchLoader loader(byte_filler(), 16, 160, 11, m);
  int rows = 0, synthetic = 0, passkeys = 0;
  for (int batch = 0; batch < 60; ++batch) {
    Tensor inputs, targets;
    loader.next(inputs, targets);
    for (const BatchRow& row : loader.last_rows()) {
      ++rows;
      synthetic += row.source != "text";
      passkeys += row.source == "passkey";
    }
  }
  // 960 rows: the synthetic count is Binomial(960, 0.3), mean 288, sd 14.2; 5 sd either side.
  CHECK(rows == 960);
  CHECK(synthetic > 288 - 71);
  CHECK(synthetic < 288 + 71);
  // Passkey share among synthetic rows: 0.75 (sd about 0.026 at ~288 rows); 5 sd either side.
  const double passkey_share = static_cast<double>(passkeys) / synthetic;
  CHECK(passkey_share > 0.75 - 0.13);
  CHECK(passkey_share < 0.75 + 0.13);
  CHECK(contains(loader.mixture_description(), "30% of rows synthetic (passkey 75%"));
}

TEST_CASE("data: a mixed stream is reproducible and resumes from (seed, counter)") {
  const ByteTokenizer bytes;
  const std::vector<int32_t> filler = byte_filler();
  SyntheticMixture m;
  m.fraction = 0.5;
  m.tokenizer = &bytes;
  BatchLoader a(filler, 4, 200, 5, m), b(filler, 4, 200, 5, m), c(filler, 4, 200, 6, m);
  Tensor a_in, a_out, b_in, b_out, c_in, c_out;
  a.next(a_in, a_out);
  b.next(b_in, b_out);
  c.next(c_in, c_out);
  CHECK(a_in.to_ints() == b_in.to_ints());
  CHECK(a_in.to_ints() != c_in.to_ints());
  const Rng saved = a.rng();
  a.next(a_in, a_out);
  BatchLoader resumed(filler, 4, 200, 0, m);
  resumed.rng() = saved;
  resumed.next(b_in, b_out);
  CHECK(a_in.to_ints() == b_in.to_ints());
  CHECK(a_out.to_ints() == b_out.to_ints());
}

TEST_CASE("data: a bad mixture is refused with the key to change") {
  const ByteTokenizer bytes;
  const std::vector<int32_t> filler = byte_filler();
  SyntheticMixture m;
  m.tokenizer = &bytes;
  m.fraction = 1.5;
  CHECK(contains(error_message([&] { BatchLoader(filler, 2, 200, 0, m); }), "data.synthetic_fraction"));
  m.fraction = 0.5;
  m.passkey_weight = m.mqar_weight = 0.0;
  CHECK(contains(error_message([&] { BatchLoader(filler, 2, 200, 0, m); }), "data.mqar_weight"));
  m.passkey_weight = 1.0;
  m.tokenizer = nullptr;
  CHECK(contains(error_message([&] { BatchLoader(filler, 2, 200, 0, m); }), "tokenizer"));
  m.tokenizer = &bytes;
  const std::string too_short = error_message([&] { BatchLoader(filler, 2, 40, 0, m); });
  CHECK(contains(too_short, "too short"));
  CHECK(contains(too_short, "train.seq_len"));

  // The same rules in the configuration, checked before any data is read.
  Config config;
  config.data.synthetic_fraction = -0.1;
  CHECK(contains(error_message([&] { validate_config(config); }), "data.synthetic_fraction"));
  config.data.synthetic_fraction = 0.2;
  config.data.mqar_pairs = 0;
  CHECK(contains(error_message([&] { validate_config(config); }), "data.mqar_pairs"));
  config.data.mqar_pairs = 2;
  config.data.passkey_weight = config.data.mqar_weight = 0.0;
  CHECK(contains(error_message([&] { validate_config(config); }), "data.passkey_weight"));
  config.data.passkey_weight = 1.0;
  config.data.min_needle_distance = config.train.seq_len;
  CHECK(contains(error_message([&] { validate_config(config); }), "data.min_needle_distance"));
  config.data.min_needle_distance = -1;
  CHECK_NOTHROW(validate_config(config));
}
