// data/gpt2_bpe.cpp: GPT-2's byte-level BPE tokenizer (see data/tokenizer.h for the algorithm).
//
// Loading translates every token of encoder.json from its byte-alphabet spelling to raw bytes,
// and every merge line "A B" of vocab.bpe to ids: (id of A, id of B) -> (rank, id of AB).
// Encoding then never touches strings of the byte alphabet again.
#include <unicode/utf8.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/gpt2_pretokenize.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

constexpr uint32_t kByteAlphabetEnd = 256 + 68;  // code points 0 .. 323 spell the 256 bytes
constexpr size_t kMaxCachedPieces = size_t{1} << 20;  // cleared when full, to bound memory

bool byte_stands_for_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

// Code point -> byte for the byte alphabet; -1 for code points outside it.
const std::array<int, kByteAlphabetEnd>& codepoint_to_byte() {
  static const std::array<int, kByteAlphabetEnd> table = [] {
    std::array<int, kByteAlphabetEnd> t;
    t.fill(-1);
    for (int byte = 0; byte < 256; ++byte)
      t[gpt2_byte_to_codepoint(static_cast<uint8_t>(byte))] = byte;
    return t;
  }();
  return table;
}

// A token spelled in the byte alphabet (UTF-8) -> the raw bytes it stands for.
std::string spelling_to_bytes(const std::string& spelling, const std::string& where) {
  const auto* s = reinterpret_cast<const uint8_t*>(spelling.data());
  const int32_t length = static_cast<int32_t>(spelling.size());
  std::string bytes;
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U8_NEXT(s, i, length, c);
    const bool in_alphabet = c >= 0 && static_cast<uint32_t>(c) < kByteAlphabetEnd;
    const int byte = in_alphabet ? codepoint_to_byte()[c] : -1;
    if (byte < 0)
      throw Error("gpt2 tokenizer: " + where + ": token '" + spelling +
                  "' has a character outside GPT-2's byte alphabet");
    bytes.push_back(static_cast<char>(byte));
  }
  return bytes;
}

}  // namespace

uint32_t gpt2_byte_to_codepoint(uint8_t byte) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next_stand_in = 256;
    for (int b = 0; b < 256; ++b)
      t[b] = byte_stands_for_itself(b) ? static_cast<uint32_t>(b) : next_stand_in++;
    return t;
  }();
  return table[byte];
}

Gpt2BpeTokenizer::Gpt2BpeTokenizer(const std::string& directory) {
  load_encoder(directory + "/encoder.json");
  load_merges(directory + "/vocab.bpe");
}

void Gpt2BpeTokenizer::load_encoder(const std::string& path) {
  nlohmann::json vocabulary;
  try {
    vocabulary = nlohmann::json::parse(read_whole_file(path, "gpt2 tokenizer"));
  } catch (const nlohmann::json::exception& e) {
    throw Error("gpt2 tokenizer: " + path + " is not valid JSON: " + e.what());
  }
  if (!vocabulary.is_object() || vocabulary.empty())
    throw Error("gpt2 tokenizer: " + path + " should be a non-empty object {token: id}");

  const size_t vocab = vocabulary.size();
  token_bytes_.assign(vocab, std::string());
  std::vector<bool> seen(vocab, false);
  for (const auto& [spelling, id_value] : vocabulary.items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() >= static_cast<int64_t>(vocab))
      throw Error("gpt2 tokenizer: " + path + ": key '" + spelling + "' has id " +
                  id_value.dump() + ", expected an integer in [0, " + std::to_string(vocab) +
                  ")");
    const auto id = id_value.get<int32_t>();
    if (seen[id])
      throw Error("gpt2 tokenizer: " + path + ": id " + std::to_string(id) + " is used twice");
    seen[id] = true;
    token_bytes_[id] = spelling_to_bytes(spelling, path);
    bytes_to_id_[token_bytes_[id]] = id;
  }

  for (int byte = 0; byte < 256; ++byte) {
    const auto it = bytes_to_id_.find(std::string(1, static_cast<char>(byte)));
    if (it == bytes_to_id_.end())
      throw Error("gpt2 tokenizer: " + path + " has no token for byte " + std::to_string(byte));
    byte_id_[byte] = it->second;
  }
  if (!vocabulary.contains("<|endoftext|>"))
    throw Error("gpt2 tokenizer: " + path + " has no key '<|endoftext|>'");
  end_of_text_id_ = vocabulary["<|endoftext|>"].get<int32_t>();
}

void Gpt2BpeTokenizer::load_merges(const std::string& path) {
  const std::string text = read_whole_file(path, "gpt2 tokenizer");
  auto id_of = [&](const std::string& bytes, const std::string& spelling, size_t line_number) {
    const auto it = bytes_to_id_.find(bytes);
    if (it == bytes_to_id_.end())
      throw Error("gpt2 tokenizer: " + path + " line " + std::to_string(line_number) +
                  ": token '" + spelling + "' is not in encoder.json");
    return it->second;
  };

  int32_t rank = 0;
  size_t line_number = 0;
  size_t line_begin = 0;
  while (line_begin < text.size()) {
    size_t line_end = text.find('\n', line_begin);
    if (line_end == std::string::npos) line_end = text.size();
    std::string line = text.substr(line_begin, line_end - line_begin);
    line_begin = line_end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;

    // "A B": two spellings separated by one space (the space byte itself is spelled 'Ġ').
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw Error("gpt2 tokenizer: " + path + " line " + std::to_string(line_number) +
                  ": expected two tokens separated by one space, got '" + line + "'");
    const std::string left_spelling = line.substr(0, space);
    const std::string right_spelling = line.substr(space + 1);
    const std::string left = spelling_to_bytes(left_spelling, path);
    const std::string right = spelling_to_bytes(right_spelling, path);
    const int32_t left_id = id_of(left, left_spelling, line_number);
    const int32_t right_id = id_of(right, right_spelling, line_number);
    const int32_t merged_id = id_of(left + right, left_spelling + right_spelling, line_number);
    // A repeated pair keeps its first (lowest) rank.
    merges_.emplace(pair_key(left_id, right_id), Merge{rank, merged_id});
    ++rank;
  }
  if (merges_.empty()) throw Error("gpt2 tokenizer: " + path + " has no merges");
}

// Byte symbols -> merged symbols: repeatedly merge the adjacent pair of lowest rank.
std::vector<int32_t> Gpt2BpeTokenizer::merge_symbols(const std::string& piece) const {
  std::vector<int32_t> symbols;  // (number of symbols) token ids; one per byte to begin with
  symbols.reserve(piece.size());
  for (char c : piece) symbols.push_back(byte_id_[static_cast<uint8_t>(c)]);

  std::vector<int32_t> merged;
  while (symbols.size() >= 2) {
    const Merge* best = nullptr;
    int32_t best_left = 0, best_right = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = merges_.find(pair_key(symbols[i], symbols[i + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        best_left = symbols[i];
        best_right = symbols[i + 1];
      }
    }
    if (best == nullptr) break;  // no adjacent pair can merge

    // Merge every occurrence of (best_left, best_right), left to right, without overlap.
    merged.clear();
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == best_left && symbols[i + 1] == best_right) {
        merged.push_back(best->merged);
        i += 2;
      } else {
        merged.push_back(symbols[i]);
        i += 1;
      }
    }
    symbols.swap(merged);
  }
  return symbols;
}

std::vector<int32_t> Gpt2BpeTokenizer::encode_piece(const std::string& piece) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = piece_cache_.find(piece);
    if (it != piece_cache_.end()) return it->second;
  }
  std::vector<int32_t> ids = merge_symbols(piece);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (piece_cache_.size() >= kMaxCachedPieces) piece_cache_.clear();
  piece_cache_.emplace(piece, ids);
  return ids;
}

std::vector<int32_t> Gpt2BpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for (const std::string& piece : gpt2_pretokenize(text)) {
    const std::vector<int32_t> piece_ids = encode_piece(piece);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

std::string Gpt2BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size())
      throw Error("gpt2 tokenizer: decode: id " + std::to_string(ids[i]) + " at position " +
                  std::to_string(i) + " is outside [0, " + std::to_string(vocab_size()) + ")");
    text += token_bytes_[ids[i]];
  }
  return text;
}

}  // namespace swiattn
