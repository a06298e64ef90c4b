// fuzz/fuzz_token_file.cpp: libFuzzer target for the token-file reader (data/token_file.h), what
// data.corpus reads from a user's .bin files.
//
// Each input is written to a scratch file and given to read_token_file(path). Allowed outcomes:
// an Error, or a file whose contents keep the reader's promises:
//   - every id is in [0, vocab_size), the tokenizer name is non-empty, the format is named;
//   - writing the ids back with write_token_file and reading that gives the same ids, tokenizer
//     and vocabulary (reader and writer agree).
#include "data/token_file.h"
#include "fuzz/fuzz_common.h"
#include "tensor/tensor.h"

using swiattn_fuzz::finding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input_path = swiattn_fuzz::scratch_path(".bin");
  static const std::string copy_path = swiattn_fuzz::scratch_path("-copy.bin");
  swiattn_fuzz::write_bytes(input_path, data, size);

  swiattn::TokenFile file;
  try {
    file = swiattn::read_token_file(input_path);
  } catch (const swiattn::Error&) {
    return 0;  // rejected with a message
  }
  if (file.tokenizer.empty() || (file.format != "swiattn" && file.format != "llm.c")) finding("accepted without a tokenizer or format");
  for (int32_t id : file.ids)
    if (id < 0 || id >= file.vocab_size) finding("accepted an id outside [0, vocab_size)");
  try {
    swiattn::write_token_file(copy_path, file.ids, file.tokenizer, file.vocab_size);
  } catch (const swiattn::Error& e) {
    if (file.format == "swiattn") finding(std::string("an accepted file cannot be written back: ") + e.what());
    return 0;  // an llm.c file's ids always fit; a name too long for our header cannot come from it
  }
  const swiattn::TokenFile back = swiattn::read_token_file(copy_path);
  if (back.ids != file.ids || back.tokenizer != file.tokenizer || back.vocab_size != file.vocab_size)
    finding("write_token_file of what was read reads back differently");
  return 0;
}
