// data/synthetic.cpp: passkey and MQAR examples (see data/synthetic.h for the layouts).
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "tensor/tensor.h"

namespace swiattn {

namespace {

// MQAR keys: common nouns, each a single word (a single GPT-2 token with its leading space).
const char* const kMqarKeys[] = {
    "apple",  "river",  "stone",  "horse", "cloud",  "table",  "bread",  "chair",
    "tiger",  "ocean",  "glass",  "paper", "snake",  "flower", "garden", "window",
    "silver", "forest", "candle", "mirror", "island", "button", "rabbit", "castle",
    "pencil", "monkey", "bottle", "carpet", "dragon", "engine", "finger", "hammer",
    "jacket", "ladder", "magnet", "needle", "orange", "pepper", "rocket", "saddle",
    "temple", "violin", "wallet", "anchor", "basket", "cotton", "desert", "feather",
    "harbor", "insect", "jungle", "kettle", "lemon",  "meadow", "nickel", "oyster",
    "parrot", "rubber", "spider", "thread", "valley", "wagon",  "yellow", "zebra",
};
constexpr int64_t kNumMqarKeys = static_cast<int64_t>(sizeof(kMqarKeys) / sizeof(kMqarKeys[0]));

void append(std::vector<int32_t>& out, const std::vector<int32_t>& piece) {
  out.insert(out.end(), piece.begin(), piece.end());
}

// `count` consecutive filler tokens from a uniformly random offset.
std::vector<int32_t> filler_run(const std::vector<int32_t>& filler, int64_t count, Rng& rng,
                                const std::string& what) {
  if (static_cast<int64_t>(filler.size()) < count)
    throw Error(what + ": the filler has " + std::to_string(filler.size()) + " tokens, " +
                std::to_string(count) + " are needed");
  const uint64_t offsets = static_cast<uint64_t>(static_cast<int64_t>(filler.size()) - count + 1);
  const int64_t start = static_cast<int64_t>(rng.below(offsets));
  return std::vector<int32_t>(filler.begin() + start, filler.begin() + start + count);
}

}  // namespace

int64_t mqar_max_pairs() { return kNumMqarKeys; }

int64_t evidence_distance(const RetrievalExample& example, size_t answer) {
  if (answer >= example.answers.size() || answer >= example.evidence.size())
    throw Error("evidence_distance: answer " + std::to_string(answer) + " out of range (" +
                std::to_string(example.answers.size()) + " answers)");
  return example.answers[answer].first - example.evidence[answer];
}

namespace {

// The pieces of one passkey example, key drawn: needle = " The pass key is K. Remember it. K is the
// pass key.", question = " What is the pass key? The pass key is K".
struct PasskeyPieces {
  std::string key;
  std::vector<int32_t> key_tokens, needle, question;
  int64_t fixed() const { return static_cast<int64_t>(needle.size() + question.size()); }
};

PasskeyPieces passkey_pieces(const Tokenizer& tokenizer, uint64_t key_number) {
  PasskeyPieces p;
  p.key = std::to_string(10000 + key_number);  // 5 digits
  p.key_tokens = tokenizer.encode(" " + p.key);
  p.needle = tokenizer.encode(" The pass key is");
  append(p.needle, p.key_tokens);
  append(p.needle, tokenizer.encode(". Remember it."));
  append(p.needle, p.key_tokens);
  append(p.needle, tokenizer.encode(" is the pass key."));
  p.question = tokenizer.encode(" What is the pass key? The pass key is");
  append(p.question, p.key_tokens);
  return p;
}

void check_passkey_length(const PasskeyPieces& p, int64_t length, const Tokenizer& tokenizer) {
  if (length < p.fixed() + 1)
    throw Error("make_passkey_example: length " + std::to_string(length) + " is too short: the needle and " +
                "the question take " + std::to_string(p.fixed()) + " tokens with this key, so length must be >= " +
                std::to_string(p.fixed() + 1) + " (>= " + std::to_string(passkey_min_length(tokenizer)) +
                " for every key)");
}

// [filler a][needle][filler b][question], with `before` filler tokens ahead of the needle.
RetrievalExample assemble_passkey(const PasskeyPieces& p, const std::vector<int32_t>& text, int64_t before,
                                  int64_t length) {
  RetrievalExample ex;
  ex.tokens.reserve(static_cast<size_t>(length));
  ex.tokens.insert(ex.tokens.end(), text.begin(), text.begin() + before);
  ex.evidence.push_back(static_cast<int64_t>(ex.tokens.size()));
  append(ex.tokens, p.needle);
  ex.tokens.insert(ex.tokens.end(), text.begin() + before, text.end());
  append(ex.tokens, p.question);
  ex.answers.emplace_back(length - static_cast<int64_t>(p.key_tokens.size()), length);
  ex.answer_text.push_back(p.key);
  return ex;
}

}  // namespace

RetrievalExample make_passkey_example(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                      int64_t length, double depth, Rng& rng) {
  if (!(depth >= 0.0 && depth <= 1.0))
    throw Error("make_passkey_example: depth must be in [0, 1], got " + std::to_string(depth));
  const PasskeyPieces p = passkey_pieces(tokenizer, rng.below(90000));
  check_passkey_length(p, length, tokenizer);
  const int64_t filler_count = length - p.fixed();
  const std::vector<int32_t> text = filler_run(filler, filler_count, rng, "make_passkey_example");
  const int64_t before = static_cast<int64_t>(std::llround(depth * static_cast<double>(filler_count)));
  return assemble_passkey(p, text, before, length);
}

RetrievalExample make_passkey_example_at_distance(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                                  int64_t length, int64_t distance, Rng& rng) {
  const PasskeyPieces p = passkey_pieces(tokenizer, rng.below(90000));
  check_passkey_length(p, length, tokenizer);
  const int64_t filler_count = length - p.fixed();
  // distance = answer begin - needle start = (length - key) - before.
  const int64_t before = length - static_cast<int64_t>(p.key_tokens.size()) - distance;
  if (before < 0 || before > filler_count)
    throw Error("make_passkey_example_at_distance: distance " + std::to_string(distance) + " is impossible at length " +
                std::to_string(length) + " with this key: it must be in [" +
                std::to_string(length - static_cast<int64_t>(p.key_tokens.size()) - filler_count) + ", " +
                std::to_string(length - static_cast<int64_t>(p.key_tokens.size())) + "]");
  const std::vector<int32_t> text = filler_run(filler, filler_count, rng, "make_passkey_example_at_distance");
  return assemble_passkey(p, text, before, length);
}

namespace {
struct KeyLengths {
  int64_t min_fixed = 0, max_fixed = 0;  // needle + question tokens over all keys
  int64_t min_key = 0, max_key = 0;      // tokens of " K" over all keys
};
KeyLengths key_lengths(const Tokenizer& tokenizer) {
  static std::mutex mutex;
  static std::vector<std::pair<std::string, KeyLengths>> cache;  // by tokenizer name
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& [name, lengths] : cache)
    if (name == tokenizer.name()) return lengths;
  const PasskeyPieces base = passkey_pieces(tokenizer, 0);
  const int64_t without_keys = base.fixed() - 3 * static_cast<int64_t>(base.key_tokens.size());
  KeyLengths k{std::numeric_limits<int64_t>::max(), 0, std::numeric_limits<int64_t>::max(), 0};
  for (uint64_t n = 0; n < 90000; ++n) {
    const int64_t key = static_cast<int64_t>(tokenizer.encode(" " + std::to_string(10000 + n)).size());
    k.min_key = std::min(k.min_key, key);
    k.max_key = std::max(k.max_key, key);
  }
  k.min_fixed = without_keys + 3 * k.min_key;
  k.max_fixed = without_keys + 3 * k.max_key;
  cache.emplace_back(tokenizer.name(), k);
  return k;
}
}  // namespace

int64_t passkey_min_length(const Tokenizer& tokenizer) { return key_lengths(tokenizer).max_fixed + 1; }

std::pair<int64_t, int64_t> passkey_distance_range(const Tokenizer& tokenizer, int64_t length) {
  const KeyLengths k = key_lengths(tokenizer);
  // distance = length - key - before with before in [0, length - fixed]; the needle's own tokens
  // before the answer: the smallest distance is reached with before = length - fixed.
  const int64_t needle_and_question_without_answer_key = k.max_fixed - k.max_key;
  return {needle_and_question_without_answer_key, length - k.max_key};
}

bool scored_answer_token(const Tokenizer& tokenizer, int32_t id) {
  const std::string text = tokenizer.decode({id});
  for (unsigned char c : text)
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r')) return true;
  return false;
}

RetrievalExample make_mqar_example(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                   int64_t length, int64_t num_pairs, Rng& rng) {
  if (num_pairs < 1 || num_pairs > kNumMqarKeys)
    throw Error("make_mqar_example: num_pairs must be in [1, " + std::to_string(kNumMqarKeys) + "], got " +
                std::to_string(num_pairs));
  // Distinct keys: a partial Fisher-Yates shuffle of the word list.
  std::vector<int64_t> order(static_cast<size_t>(kNumMqarKeys));
  for (int64_t i = 0; i < kNumMqarKeys; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < num_pairs; ++i)
    std::swap(order[static_cast<size_t>(i)],
              order[static_cast<size_t>(i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(kNumMqarKeys - i))))]);

  const std::vector<int32_t> lead = tokenizer.encode(" The code for");
  const std::vector<int32_t> is = tokenizer.encode(" is");
  const std::vector<int32_t> stop = tokenizer.encode(".");
  std::vector<std::vector<int32_t>> keys, values;
  std::vector<std::string> value_text;
  int64_t fixed = 0;
  for (int64_t i = 0; i < num_pairs; ++i) {
    keys.push_back(tokenizer.encode(std::string(" ") + kMqarKeys[order[static_cast<size_t>(i)]]));
    value_text.push_back(std::to_string(1000 + rng.below(9000)));  // 4 digits
    values.push_back(tokenizer.encode(" " + value_text.back()));
    const int64_t query = static_cast<int64_t>(lead.size() + keys.back().size() + is.size() + values.back().size());
    fixed += 2 * query + static_cast<int64_t>(stop.size());  // the pair (with its '.') and its query
  }
  if (length < fixed + 1)
    throw Error("make_mqar_example: length " + std::to_string(length) + " is too short for " +
                std::to_string(num_pairs) + " pairs: pairs and queries take " + std::to_string(fixed) +
                " tokens with this tokenizer, so length must be >= " + std::to_string(fixed + 1));
  const int64_t filler_count = length - fixed;
  const std::vector<int32_t> text = filler_run(filler, filler_count, rng, "make_mqar_example");

  // Pair i goes after cut[i] filler tokens (sorted uniform cut points, so pairs keep their order).
  std::vector<int64_t> cut(static_cast<size_t>(num_pairs));
  for (auto& c : cut) c = static_cast<int64_t>(rng.below(static_cast<uint64_t>(filler_count + 1)));
  std::sort(cut.begin(), cut.end());

  RetrievalExample ex;
  ex.tokens.reserve(static_cast<size_t>(length));
  std::vector<int64_t> pair_start(static_cast<size_t>(num_pairs));
  int64_t used = 0;
  for (int64_t i = 0; i < num_pairs; ++i) {
    ex.tokens.insert(ex.tokens.end(), text.begin() + used, text.begin() + cut[static_cast<size_t>(i)]);
    used = cut[static_cast<size_t>(i)];
    pair_start[static_cast<size_t>(i)] = static_cast<int64_t>(ex.tokens.size());
    append(ex.tokens, lead);
    append(ex.tokens, keys[static_cast<size_t>(i)]);
    append(ex.tokens, is);
    append(ex.tokens, values[static_cast<size_t>(i)]);
    append(ex.tokens, stop);
  }
  ex.tokens.insert(ex.tokens.end(), text.begin() + used, text.end());

  // Queries in random order (a Fisher-Yates shuffle of the pair indices).
  std::vector<int64_t> queries(static_cast<size_t>(num_pairs));
  for (int64_t i = 0; i < num_pairs; ++i) queries[static_cast<size_t>(i)] = i;
  for (int64_t i = num_pairs - 1; i > 0; --i)
    std::swap(queries[static_cast<size_t>(i)], queries[static_cast<size_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  for (int64_t q : queries) {
    const size_t k = static_cast<size_t>(q);
    append(ex.tokens, lead);
    append(ex.tokens, keys[k]);
    append(ex.tokens, is);
    const int64_t begin = static_cast<int64_t>(ex.tokens.size());
    append(ex.tokens, values[k]);
    ex.answers.emplace_back(begin, static_cast<int64_t>(ex.tokens.size()));
    ex.evidence.push_back(pair_start[k]);
    ex.answer_text.push_back(value_text[k]);
  }
  if (static_cast<int64_t>(ex.tokens.size()) != length)
    throw Error("make_mqar_example: internal error, built " + std::to_string(ex.tokens.size()) +
                " tokens for length " + std::to_string(length));
  return ex;
}

int64_t passkey_needle_length(const Tokenizer& tokenizer, const std::string& key) {
  if (key.size() != 5 || key.find_first_not_of("0123456789") != std::string::npos || key[0] == '0')
    throw Error("passkey_needle_length: key \"" + key + "\" is not a 5-digit number");
  return static_cast<int64_t>(passkey_pieces(tokenizer, static_cast<uint64_t>(std::stoi(key) - 10000)).needle.size());
}

}  // namespace swiattn
