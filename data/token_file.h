// data/token_file.h: files of token ids, written by `swiattn prepare` and read as data.corpus.
//
// Our format (".bin"; little-endian), a 128-byte header then the ids:
//   offset size  field
//   0      8     magic "SWIATTOK"
//   8      4     version, 1
//   12     4     bytes per id: 2 (uint16) or 4 (uint32)
//   16     8     count: number of ids that follow
//   24     4     vocab_size of the tokenizer that made them (every id is below it)
//   28     16    tokenizer name, NUL-padded ("byte", "gpt2")
//   44     32    sha256 of the id bytes (offset 128 to the end)
//   76     52    zero (reserved)
//   128    count * bytes per id   the ids
// The file's size must be exactly 128 + count * bytes per id, so a truncated or extended file is
// refused; the sha256 catches a garbled one; every id is checked against vocab_size.
//
// llm.c's format is read too (karpathy/llm.c dev/data: a 256 x int32 header, [0] = 20240520,
// [1] = 1, [2] = count, then uint16 GPT-2 ids); it has no checksum and no tokenizer name (its ids
// are GPT-2's), so only its size and ids can be checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swiattn {

struct TokenFile {
  std::vector<int32_t> ids;  // (N)
  std::string tokenizer;     // "byte", "gpt2"; llm.c files: "gpt2"
  int64_t vocab_size = 0;    // every id is in [0, vocab_size)
  std::string format;        // "swiattn" | "llm.c"
};

// Writes `ids` in our format (uint16 when vocab_size <= 65536, else uint32), atomically (a
// temporary file renamed into place). Throws Error on an id outside [0, vocab_size), a tokenizer
// name longer than 15 bytes, or a failed write.
void write_token_file(const std::string& path, const std::vector<int32_t>& ids, const std::string& tokenizer,
                      int64_t vocab_size);

// Reads and checks a token file of either format. Every Error names the path and what is wrong:
// too short for a header, unknown magic (with what the first bytes look like), unsupported
// version or id width, truncated / too long (the size the header implies vs the size found), a
// checksum mismatch, an id >= vocab_size (with its position), a non-zero reserved field.
TokenFile read_token_file(const std::string& path);

// Does the file start with either format's magic? (false for an unreadable file)
bool is_token_file(const std::string& path);

}  // namespace swiattn
