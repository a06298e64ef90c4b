// data/synthetic.cpp: passkey and MQAR examples (see data/synthetic.h for the layouts).
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>

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

RetrievalExample make_passkey_example(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                      int64_t length, double depth, Rng& rng) {
  if (!(depth >= 0.0 && depth <= 1.0))
    throw Error("make_passkey_example: depth must be in [0, 1], got " + std::to_string(depth));
  const std::string key = std::to_string(10000 + rng.below(90000));  // 5 digits
  const std::vector<int32_t> key_tokens = tokenizer.encode(" " + key);
  std::vector<int32_t> needle = tokenizer.encode(" The pass key is");
  append(needle, key_tokens);
  append(needle, tokenizer.encode(". Remember it."));
  append(needle, key_tokens);
  append(needle, tokenizer.encode(" is the pass key."));
  std::vector<int32_t> question = tokenizer.encode(" What is the pass key? The pass key is");
  append(question, key_tokens);

  const int64_t fixed = static_cast<int64_t>(needle.size() + question.size());
  if (length < fixed + 1)
    throw Error("make_passkey_example: length " + std::to_string(length) + " is too short: the needle and " +
                "the question take " + std::to_string(fixed) + " tokens with this tokenizer, so length must be >= " +
                std::to_string(fixed + 1));
  const int64_t filler_count = length - fixed;
  const std::vector<int32_t> text = filler_run(filler, filler_count, rng, "make_passkey_example");
  const int64_t before = static_cast<int64_t>(std::llround(depth * static_cast<double>(filler_count)));

  RetrievalExample ex;
  ex.tokens.reserve(static_cast<size_t>(length));
  ex.tokens.insert(ex.tokens.end(), text.begin(), text.begin() + before);
  ex.evidence.push_back(static_cast<int64_t>(ex.tokens.size()));
  append(ex.tokens, needle);
  ex.tokens.insert(ex.tokens.end(), text.begin() + before, text.end());
  append(ex.tokens, question);
  ex.answers.emplace_back(length - static_cast<int64_t>(key_tokens.size()), length);
  ex.answer_text.push_back(key);
  return ex;
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

}  // namespace swiattn
