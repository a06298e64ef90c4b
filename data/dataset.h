// data/dataset.h: what data.corpus names, as a training and a validation token stream.
//
// data.corpus is one of:
//   "sotu", "moby-dick", "sotu+moby-dick"   the fetched corpora (data/corpus.h: split by whole
//                                           documents, files checked against data/verify.h)
//   a text file                             one document
//   a folder of text files                  every *.txt directly inside it, in byte order of
//                                           their names, each one document
//   a token file (.bin, data/token_file.h)  ids from `swiattn prepare` or llm.c
//   a folder holding train.bin              `swiattn prepare`'s output: train.bin and val.bin
// Anything that is not one of the three names is a path (use "./sotu" for a file named sotu).
//
// Own text (a file or a folder) is tokenized with data.tokenizer, documents concatenated with no
// separator, and split by position: the last data.val_fraction of the tokens (at least one) is
// the validation stream, the rest trains. `swiattn prepare` applies the same rule, so training on
// a text and on its prepared folder reads the same tokens.
// A single token file is split the same way, unless its name contains "train" and the file named
// with its last "train" replaced by "val" exists (llm.c's X_train.bin / X_val.bin): that is then
// the validation stream.
//
// Checks: a text file must not be empty nor contain NUL bytes (a binary file, not text); a file
// ending in .bin must be a token file; a token file's tokenizer must be data.tokenizer and its
// ids below the tokenizer's vocabulary (data/token_file.h); both streams must be non-empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace swiattn {

bool is_builtin_corpus(const std::string& name);  // "sotu" | "moby-dick" | "sotu+moby-dick"

struct TokenSplits {
  std::vector<int32_t> train, val;  // (N_train), (N_val)
  std::string description;          // one line: sources, split rule, sizes
  std::string kind;                 // "builtin" | "text" | "tokens"
};

// cache_dir is data.cache_dir (resolved with resolve_cache_dir; only the built-in corpora use it);
// val_fraction is data.val_fraction, in (0, 1). Throws Error naming data.corpus and the file.
TokenSplits load_token_splits(const std::string& corpus, const std::string& cache_dir, double val_fraction,
                              const Tokenizer& tokenizer);

// Own text as documents: the file's contents, or each *.txt of the folder (name order), checked as
// above. names receives the file names. Throws Error when there is no text.
std::vector<std::string> read_text_documents(const std::string& path, std::vector<std::string>* names = nullptr);

// The position where the validation stream starts: n - max(1, round(n * val_fraction)). Needs n >= 2.
size_t validation_start(size_t n, double val_fraction);

}  // namespace swiattn
