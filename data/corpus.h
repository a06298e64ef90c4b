// data/corpus.h: the real text we train on, split into train / validation by whole documents.
//
// Corpora (fetched by `make data` into data/cache/; see data/README.md for sources, licences and
// checksums):
//   "sotu"            233 US State of the Union addresses, 1790-2021, one document per address
//                     (data/cache/sotu/data/<year>_<president>_<party>.txt), in file-name order.
//                     Stage markers recording the audience ("[Applause]", "(Laughter.)",
//                     "[At this point, ...]") are stripped: see strip_stage_markers.
//   "moby-dick"       Herman Melville's novel, one document per section in book order:
//                     etymology, extracts, chapters 1-135, epilogue
//                     (data/cache/moby-dick/data/{etymology,extracts,chapter_N,epilogue}.txt).
//                     The table of contents and data.txt (the whole book again, hard-wrapped)
//                     are not used.
//   "sotu+moby-dick"  both: train = train of each, val = val of each (SOTU first).
//
// Held-out rule (validation split), by whole documents so no text is shared across the split:
//   SOTU:       every address given in a year ending in 5 (1795, 1805, ..., 2015): 23 addresses.
//   Moby-Dick:  every chapter whose number is a multiple of 10 (10, 20, ..., 130): 13 chapters.
//               Etymology, extracts and epilogue stay in train.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace swiattn {

struct TextCorpus {
  std::vector<std::string> train_docs, val_docs;  // document texts, UTF-8
  std::string description;                         // one line: sources, split rule, sizes
  // One name per document, parallel to the docs, e.g. "sotu/1790_george_washington_n".
  std::vector<std::string> train_names, val_names;
};

// name: "sotu", "moby-dick" or "sotu+moby-dick"; cache_dir: normally <repo>/data/cache (own
// text and token files: data/dataset.h). Every file is checked against the pinned manifest first
// (data/verify.h). Throws swiattn::Error for an unknown name, a missing cache (telling the user
// to run `make data`), or a file that is missing, truncated or differs from the pinned package.
TextCorpus load_corpus(const std::string& name, const std::string& cache_dir);

// The held-out rules above, as predicates.
bool sotu_year_is_held_out(int year);
bool moby_dick_chapter_is_held_out(int chapter);

// Removes audience stage markers: a group in [] or () whose text is "applause" or "laughter" (any
// case, optional final '.'), and a [] group starting "At this point". A space left doubled or
// dangling before a line end by the removal is dropped: "Thanks. (Applause.) Now" -> "Thanks. Now".
std::string strip_stage_markers(const std::string& text);

// Encodes each document and concatenates them; when separator >= 0 it is placed between
// consecutive documents (not after the last). separator must be -1 or a valid id.
std::vector<int32_t> tokenize_docs(const Tokenizer& tokenizer, const std::vector<std::string>& docs,
                                   int32_t separator);

// Shannon entropy of the empirical unigram distribution of `tokens`, in nats:
// H = -sum_v p(v) ln p(v) with p(v) = count(v) / tokens.size(). Every token must be in
// [0, vocab_size). Throws on an empty stream.
double unigram_entropy(const std::vector<int32_t>& tokens, int vocab_size);

// Sum of the documents' sizes in bytes.
size_t total_bytes(const std::vector<std::string>& docs);

}  // namespace swiattn
