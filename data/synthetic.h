// data/synthetic.h: synthetic retrieval examples built from real filler text (spec §10): passkey
// (needle in a haystack) and multi-query associative recall (MQAR).
//
// Every example is a token sequence of exactly the requested length. The filler is a contiguous
// run of a real token stream (e.g. the validation split) taken from a random offset, so the model
// reads ordinary text between the pieces that matter. Everything random comes from the Rng passed
// in: the same (tokenizer, filler, arguments, rng state) gives the same example.
//
// Passkey (Mohtashami & Jaggi 2023 style), with K = a random 5-digit number 10000..99999:
//   [filler a] " The pass key is K. Remember it. K is the pass key."  [filler b]
//   " What is the pass key? The pass key is K"
// The needle sits after a fraction `depth` of the filler (0: first, 1: just before the
// question). The answer is the final K (the example's last tokens); its evidence is the needle's
// first token.
//
// MQAR, with num_pairs distinct keys (English nouns) and values V (random 4-digit numbers):
//   ... " The code for KEY is V." ...   (each pair at a random place in the filler)
//   " The code for KEY is V" ...        (queries at the end, one per pair, in random order)
// Answer i is the V of query i; its evidence is the first token of that key's pair. Because the
// pairs are spread over the whole filler, the distances from evidence to answer vary.
//
// The pieces are encoded separately and concatenated, so an answer span is exactly the encoding
// of " K" (or " V"): decode(tokens[begin, end)) == " " + answer_text, with any tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/random.h"

namespace swiattn {

struct RetrievalExample {
  std::vector<int32_t> tokens;                         // (length) the whole example
  std::vector<std::pair<int64_t, int64_t>> answers;    // [begin, end) token spans the model must predict
  std::vector<int64_t> evidence;                       // per answer: where its needle / pair starts
  std::vector<std::string> answer_text;                // per answer: the key / value, e.g. "40213"
};

// Throws swiattn::Error when depth is outside [0, 1], when `length` cannot hold the needle and the
// question (the message gives the minimum), or when the filler has fewer tokens than needed.
RetrievalExample make_passkey_example(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                      int64_t length, double depth, Rng& rng);

// Throws swiattn::Error when num_pairs is outside [1, mqar_max_pairs()], when `length` cannot hold
// the pairs and the queries (the message gives the minimum), or when the filler is too short.
RetrievalExample make_mqar_example(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                   int64_t length, int64_t num_pairs, Rng& rng);

// The number of distinct MQAR keys available (the size of the key word list).
int64_t mqar_max_pairs();

// The same passkey layout with the needle placed by distance instead of depth: evidence distance
// (answer begin - needle start) == `distance` exactly. Throws Error when the distance cannot be
// had at this length (the message gives the range) or as make_passkey_example does.
RetrievalExample make_passkey_example_at_distance(const Tokenizer& tokenizer, const std::vector<int32_t>& filler,
                                                  int64_t length, int64_t distance, Rng& rng);

// The shortest length every passkey example fits in with this tokenizer, whatever key is drawn
// (keys encode to different token counts with BPE): the length make_passkey_example accepts for
// all of them. Computed once per tokenizer name over all 90,000 keys, then cached.
int64_t passkey_min_length(const Tokenizer& tokenizer);
// The evidence distances a passkey example of `length` can have: [min, max] (any key).
std::pair<int64_t, int64_t> passkey_distance_range(const Tokenizer& tokenizer, int64_t length);

// The number of tokens of the needle that holds the 5-digit key `key` (" The pass key is K.
// Remember it. K is the pass key."): the span [evidence, evidence + this) of a passkey example.
int64_t passkey_needle_length(const Tokenizer& tokenizer, const std::string& key);

// Whether an answer token is scored token by token (per-digit accuracy, answer NLL): every
// answer token except those that decode to whitespace only, such as the byte tokenizer's space
// before " 40213" (the prompt alone predicts it). Exact match still covers the whole span.
bool scored_answer_token(const Tokenizer& tokenizer, int32_t id);

// Distance in tokens from answer i's evidence to the answer's first token (answers[i].first -
// evidence[i]): the span a model must attend across to retrieve it.
int64_t evidence_distance(const RetrievalExample& example, size_t answer);

}  // namespace swiattn
