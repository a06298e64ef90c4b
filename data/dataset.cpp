// data/dataset.cpp: data.corpus -> train / validation token streams (the rules are in
// data/dataset.h).
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/cache_dir.h"
#include "data/corpus.h"
#include "data/read_file.h"
#include "data/token_file.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace fs = std::filesystem;

namespace {

std::string percent(double f) {
  const double p = std::round(f * 1000.0) / 10.0;
  std::string s = std::to_string(p);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s + "%";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A token file checked against the run's tokenizer.
std::vector<int32_t> read_tokens_for(const std::string& path, const Tokenizer& tokenizer) {
  const TokenFile file = read_token_file(path);
  if (file.tokenizer != tokenizer.name())
    throw Error("data.corpus: " + path + " holds " + file.tokenizer + " token ids (" + file.format +
                " format) but data.tokenizer is \"" + tokenizer.name() + "\": set data.tokenizer=" + file.tokenizer +
                (file.tokenizer == "gpt2" ? " and model.vocab_size=50257" : ""));
  if (file.vocab_size != tokenizer.vocab_size())
    throw Error("data.corpus: " + path + " was made with a " + file.tokenizer + " vocabulary of " +
                std::to_string(file.vocab_size) + " ids, this tokenizer has " + std::to_string(tokenizer.vocab_size()));
  if (file.ids.empty()) throw Error("data.corpus: " + path + " holds no tokens");
  return file.ids;
}

void split_tail(TokenSplits& s, std::vector<int32_t> tokens, double val_fraction, const std::string& what) {
  if (tokens.size() < 2)
    throw Error("data.corpus: " + what + " gives " + std::to_string(tokens.size()) +
                " tokens, too few to split into training and validation");
  const size_t cut = validation_start(tokens.size(), val_fraction);
  s.val.assign(tokens.begin() + static_cast<std::ptrdiff_t>(cut), tokens.end());
  tokens.resize(cut);
  s.train = std::move(tokens);
}

std::string sizes(const TokenSplits& s) {
  return std::to_string(s.train.size()) + " train / " + std::to_string(s.val.size()) + " validation tokens";
}

TokenSplits load_builtin(const std::string& name, const std::string& cache_dir, const Tokenizer& tokenizer) {
  const TextCorpus corpus = load_corpus(name, resolve_cache_dir(cache_dir));
  TokenSplits s;
  s.kind = "builtin";
  s.train = tokenize_docs(tokenizer, corpus.train_docs, -1);
  s.val = tokenize_docs(tokenizer, corpus.val_docs, -1);
  s.description = corpus.description;
  return s;
}

TokenSplits load_token_folder(const std::string& dir, const Tokenizer& tokenizer) {
  const std::string train = dir + "/train.bin", val = dir + "/val.bin";
  if (!file_exists(val))
    throw Error("data.corpus: " + dir + " holds train.bin but no val.bin (swiattn prepare writes both)");
  TokenSplits s;
  s.kind = "tokens";
  s.train = read_tokens_for(train, tokenizer);
  s.val = read_tokens_for(val, tokenizer);
  s.description = "token files " + train + " and " + val + " (" + tokenizer.name() + "): " + sizes(s);
  return s;
}

TokenSplits load_token_file(const std::string& path, double val_fraction, const Tokenizer& tokenizer) {
  TokenSplits s;
  s.kind = "tokens";
  const std::string name = fs::path(path).filename().string();
  const size_t at = name.rfind("train");
  std::string val_path;
  if (at != std::string::npos) {
    const std::string sibling = (fs::path(path).parent_path() / (name.substr(0, at) + "val" + name.substr(at + 5))).string();
    if (file_exists(sibling)) val_path = sibling;
  }
  if (!val_path.empty()) {
    s.train = read_tokens_for(path, tokenizer);
    s.val = read_tokens_for(val_path, tokenizer);
    s.description = "token files " + path + " and " + val_path + " (" + tokenizer.name() + "): " + sizes(s);
  } else {
    split_tail(s, read_tokens_for(path, tokenizer), val_fraction, path);
    s.description = "token file " + path + " (" + tokenizer.name() + "), validation = the last " + percent(val_fraction) +
                    " (data.val_fraction): " + sizes(s);
  }
  return s;
}

TokenSplits load_text(const std::string& path, double val_fraction, const Tokenizer& tokenizer) {
  std::vector<std::string> names;
  const std::vector<std::string> docs = read_text_documents(path, &names);
  TokenSplits s;
  s.kind = "text";
  split_tail(s, tokenize_docs(tokenizer, docs, -1), val_fraction, path);
  s.description = "own text " + path + " (" + std::to_string(docs.size()) + (docs.size() == 1 ? " file, " : " files, ") +
                  std::to_string(total_bytes(docs)) + " bytes), " + tokenizer.name() + " tokenizer, validation = the last " +
                  percent(val_fraction) + " of the tokens (data.val_fraction): " + sizes(s);
  return s;
}

}  // namespace

bool is_builtin_corpus(const std::string& name) {
  return name == "sotu" || name == "moby-dick" || name == "sotu+moby-dick";
}

size_t validation_start(size_t n, double val_fraction) {
  if (n < 2) throw Error("validation_start: need at least 2 tokens, got " + std::to_string(n));
  if (!(val_fraction > 0.0 && val_fraction < 1.0))
    throw Error("data.val_fraction must be in (0, 1), got " + std::to_string(val_fraction));
  const double want = std::round(static_cast<double>(n) * val_fraction);
  const size_t n_val = std::clamp<size_t>(static_cast<size_t>(want), 1, n - 1);
  return n - n_val;
}

std::vector<std::string> read_text_documents(const std::string& path, std::vector<std::string>* names) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path))
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw Error("data.corpus: the folder " + path + " holds no .txt files (and no train.bin from swiattn prepare)");
  } else {
    files.push_back(path);
  }
  std::vector<std::string> docs;
  for (const std::string& file : files) {
    std::string text = read_whole_file(file, "data.corpus");
    if (text.empty()) throw Error("data.corpus: " + file + " is empty");
    if (const size_t nul = text.find('\0'); nul != std::string::npos)
      throw Error("data.corpus: " + file + " holds a NUL byte at offset " + std::to_string(nul) +
                  ": not a text file (token files start with \"SWIATTOK\"; make one with swiattn prepare)");
    docs.push_back(std::move(text));
    if (names) names->push_back(fs::path(file).filename().string());
  }
  return docs;
}

TokenSplits load_token_splits(const std::string& corpus, const std::string& cache_dir, double val_fraction,
                              const Tokenizer& tokenizer) {
  if (is_builtin_corpus(corpus)) return load_builtin(corpus, cache_dir, tokenizer);
  std::error_code ec;
  if (!fs::exists(corpus, ec))
    throw Error("data.corpus: \"" + corpus + "\" is neither a built-in corpus (sotu, moby-dick, sotu+moby-dick) nor an "
                "existing file or folder");
  if (fs::is_directory(corpus, ec))
    return file_exists(corpus + "/train.bin") ? load_token_folder(corpus, tokenizer) : load_text(corpus, val_fraction, tokenizer);
  if (is_token_file(corpus) || ends_with(corpus, ".bin")) return load_token_file(corpus, val_fraction, tokenizer);
  return load_text(corpus, val_fraction, tokenizer);
}

}  // namespace swiattn
