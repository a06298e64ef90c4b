// data/gpt2_pretokenize.h: GPT-2's pre-tokenisation, written out by hand (no std::regex).
//
// GPT-2 cuts text into pieces with this regular expression, trying the alternatives in order at
// each position and taking the first that matches:
//
//   's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
//
//   - an English contraction suffix (ASCII apostrophe, lower case);
//   - an optional single space (U+0020) then a run of letters, or of numbers, or of characters
//     that are neither whitespace, letters nor numbers (punctuation, symbols, emoji, ...);
//   - a run of whitespace that is followed by whitespace or the end of the text: this leaves the
//     last space of a run to attach to the word after it (" a   b" -> " a", "  ", " b");
//   - any other run of whitespace (a single whitespace character before a non-space).
//
// Character classes come from ICU: \p{L} is general category L*, \p{N} is N*, \s is the
// White_Space property. The text is decoded as UTF-8; each ill-formed byte sequence (as ICU's
// U8_NEXT delimits it) counts as one character of the "other" class, so invalid input is split
// like punctuation and never dropped: concatenating the pieces always gives back the input.
#pragma once

#include <string>
#include <vector>

namespace swiattn {

std::vector<std::string> gpt2_pretokenize(const std::string& text);

}  // namespace swiattn
