// data/gpt2_pretokenize.cpp: GPT-2's pre-tokenisation pattern as a hand-written scanner.
// See data/gpt2_pretokenize.h for the pattern and how each alternative reads.
#include "data/gpt2_pretokenize.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <cstdint>
#include <limits>

#include "tensor/tensor.h"

namespace swiattn {
namespace {

enum class CharClass : uint8_t { Letter, Number, Space, Other };

// One decoded character: its byte span in the text and its class.
struct Char {
  size_t begin, end;  // bytes [begin, end) of the text
  CharClass cls;
  bool is_ascii_space;  // exactly U+0020, the only character " ?" accepts
};

CharClass classify(UChar32 c) {
  if (c < 0) return CharClass::Other;  // ill-formed UTF-8
  if (u_isUWhiteSpace(c)) return CharClass::Space;
  const uint32_t category_mask = U_GET_GC_MASK(c);
  if (category_mask & U_GC_L_MASK) return CharClass::Letter;
  if (category_mask & U_GC_N_MASK) return CharClass::Number;
  return CharClass::Other;
}

std::vector<Char> decode_utf8(const std::string& text) {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error("gpt2 pre-tokeniser: text of " + std::to_string(text.size()) +
                " bytes is over 2 GiB; encode it in parts");
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  std::vector<Char> chars;
  chars.reserve(text.size());
  int32_t i = 0;
  while (i < length) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);  // advances i; c < 0 for an ill-formed sequence
    chars.push_back({static_cast<size_t>(begin), static_cast<size_t>(i), classify(c), c == 0x20});
  }
  return chars;
}

// Length in characters of the contraction suffix ('s 't 're 've 'm 'll 'd) at chars[i], or 0.
size_t contraction_length(const std::string& text, const std::vector<Char>& chars, size_t i) {
  if (text[chars[i].begin] != '\'') return 0;
  // The suffixes are ASCII, so characters and bytes coincide here.
  const size_t at = chars[i].begin + 1;
  auto next_is = [&](const char* suffix) {
    return text.compare(at, std::char_traits<char>::length(suffix), suffix) == 0;
  };
  for (const char* two_letters : {"re", "ve", "ll"})
    if (next_is(two_letters)) return 3;
  for (const char* one_letter : {"s", "t", "m", "d"})
    if (next_is(one_letter)) return 2;
  return 0;
}

// End (exclusive) of the run of `cls` characters starting at chars[i].
size_t run_end(const std::vector<Char>& chars, size_t i, CharClass cls) {
  while (i < chars.size() && chars[i].cls == cls) ++i;
  return i;
}

// The end (exclusive, in characters) of the piece that GPT-2's pattern matches at chars[i].
size_t match_piece(const std::string& text, const std::vector<Char>& chars, size_t i) {
  const size_t n = chars.size();

  // 's|'t|'re|'ve|'m|'ll|'d
  if (size_t len = contraction_length(text, chars, i)) return i + len;

  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
  // A character of these classes at i always starts a match, so only spaces get past here.
  const bool space_then_word =
      chars[i].is_ascii_space && i + 1 < n && chars[i + 1].cls != CharClass::Space;
  const size_t first = space_then_word ? i + 1 : i;
  if (chars[first].cls != CharClass::Space) return run_end(chars, first, chars[first].cls);

  // `\s+(?!\S)`: the whitespace run, minus its last character when a non-space follows it.
  const size_t end = run_end(chars, i, CharClass::Space);
  if (end == n) return end;
  if (end - i >= 2) return end - 1;
  // `\s+`: a single whitespace character right before a non-space.
  return end;
}

}  // namespace

std::vector<std::string> gpt2_pretokenize(const std::string& text) {
  const std::vector<Char> chars = decode_utf8(text);
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < chars.size()) {
    const size_t end = match_piece(text, chars, i);
    pieces.push_back(text.substr(chars[i].begin, chars[end - 1].end - chars[i].begin));
    i = end;
  }
  return pieces;
}

}  // namespace swiattn
