// data/token_file.cpp: writing and reading token files (the layout is in data/token_file.h).
#include "data/token_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/read_file.h"
#include "data/sha256.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

constexpr char kMagic[8] = {'S', 'W', 'I', 'A', 'T', 'T', 'O', 'K'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 128;
constexpr size_t kNameBytes = 16;
constexpr int32_t kLlmcMagic = 20240520;       // llm.c, GPT-2 ids as uint16
constexpr int32_t kLlmcLlama3Magic = 20240801;  // llm.c, LLaMA 3 ids as uint32: no such tokenizer here
constexpr size_t kLlmcHeaderBytes = 256 * 4;
constexpr int64_t kGpt2Vocab = 50257;

template <class T>
T load_le(const unsigned char* p) {  // little-endian, any host
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}
template <class T>
void store_le(unsigned char* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
}

// The first bytes, printable, for "unknown magic" messages.
std::string show_bytes(const std::string& bytes) {
  std::string s;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      s += hex;
    }
  }
  return "\"" + s + "\"";
}

std::string read_prefix(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

// Reads bytes [offset, offset + n) of the file (its size was checked by the caller).
std::string read_range(const std::string& path, uint64_t offset, uint64_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("token file " + path + ": cannot read");
  in.seekg(static_cast<std::streamoff>(offset));
  std::string bytes(static_cast<size_t>(n), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  if (static_cast<uint64_t>(in.gcount()) != n) throw Error("token file " + path + ": read failed (file changed while reading?)");
  return bytes;
}

// The ids of `payload` (count ids of `width` bytes), each checked to be < vocab_size.
std::vector<int32_t> decode_ids(const std::string& path, const std::string& payload, uint64_t count, uint32_t width,
                                int64_t vocab_size) {
  std::vector<int32_t> ids(static_cast<size_t>(count));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(payload.data());
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t id = width == 2 ? load_le<uint16_t>(p + 2 * i) : load_le<uint32_t>(p + 4 * i);
    if (id >= static_cast<uint64_t>(vocab_size))
      throw Error("token file " + path + ": id " + std::to_string(id) + " at position " + std::to_string(i) +
                  " is not below the vocabulary size " + std::to_string(vocab_size) + " (a garbled or foreign file)");
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(id);
  }
  return ids;
}

uint64_t file_size_of(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("token file " + path + ": is a directory");
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("token file " + path + ": cannot read (" + ec.message() + ")");
  return static_cast<uint64_t>(size);
}

// The size a header announces, checked against the size found.
void check_size(const std::string& path, uint64_t header_bytes, uint64_t count, uint32_t width, uint64_t found) {
  if (count > (UINT64_MAX - header_bytes) / width)
    throw Error("token file " + path + ": the header's count " + std::to_string(count) + " is impossible");
  const uint64_t expected = header_bytes + count * width;
  if (found < expected)
    throw Error("token file " + path + ": truncated: the header announces " + std::to_string(count) + " ids (" +
                std::to_string(expected) + " bytes) but the file has " + std::to_string(found) + " bytes");
  if (found > expected)
    throw Error("token file " + path + ": " + std::to_string(found - expected) +
                " bytes after the last id the header announces (" + std::to_string(count) +
                " ids): a damaged or concatenated file");
}

TokenFile read_llmc(const std::string& path, const std::string& header, uint64_t size) {
  const unsigned char* h = reinterpret_cast<const unsigned char*>(header.data());
  const int32_t version = load_le<int32_t>(h + 4), count = load_le<int32_t>(h + 8);
  if (version != 1)
    throw Error("token file " + path + ": llm.c format version " + std::to_string(version) +
                " is not supported (version 1: GPT-2 ids as uint16)");
  if (count < 0) throw Error("token file " + path + ": llm.c header count " + std::to_string(count) + " is negative");
  check_size(path, kLlmcHeaderBytes, static_cast<uint64_t>(count), 2, size);
  TokenFile file;
  file.format = "llm.c";
  file.tokenizer = "gpt2";
  file.vocab_size = kGpt2Vocab;
  file.ids = decode_ids(path, read_range(path, kLlmcHeaderBytes, 2 * static_cast<uint64_t>(count)),
                        static_cast<uint64_t>(count), 2, kGpt2Vocab);
  return file;
}

}  // namespace

void write_token_file(const std::string& path, const std::vector<int32_t>& ids, const std::string& tokenizer,
                      int64_t vocab_size) {
  if (tokenizer.empty() || tokenizer.size() >= kNameBytes)
    throw Error("write_token_file: tokenizer name \"" + tokenizer + "\" must have 1 to 15 bytes");
  if (vocab_size < 1 || vocab_size > INT32_MAX)
    throw Error("write_token_file: vocab_size " + std::to_string(vocab_size) + " outside [1, 2^31)");
  const uint32_t width = vocab_size <= 65536 ? 2 : 4;
  std::string payload(ids.size() * width, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(payload.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size)
      throw Error("write_token_file: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                  " is outside [0, " + std::to_string(vocab_size) + ")");
    if (width == 2) store_le<uint16_t>(p + 2 * i, static_cast<uint16_t>(ids[i]));
    else store_le<uint32_t>(p + 4 * i, static_cast<uint32_t>(ids[i]));
  }
  std::string header(kHeaderBytes, '\0');
  unsigned char* h = reinterpret_cast<unsigned char*>(header.data());
  std::memcpy(h, kMagic, sizeof kMagic);
  store_le<uint32_t>(h + 8, kVersion);
  store_le<uint32_t>(h + 12, width);
  store_le<uint64_t>(h + 16, ids.size());
  store_le<uint32_t>(h + 24, static_cast<uint32_t>(vocab_size));
  std::memcpy(h + 28, tokenizer.data(), tokenizer.size());
  const std::string digest = sha256_hex(payload);
  for (size_t i = 0; i < 32; ++i) h[44 + i] = static_cast<unsigned char>(std::stoi(digest.substr(2 * i, 2), nullptr, 16));

  write_whole_file(path, header + payload, "write_token_file");
}

bool is_token_file(const std::string& path) {
  const std::string head = read_prefix(path, 8);
  if (head.size() == 8 && std::memcmp(head.data(), kMagic, 8) == 0) return true;
  if (head.size() < 4) return false;
  const int32_t magic = load_le<int32_t>(reinterpret_cast<const unsigned char*>(head.data()));
  return magic == kLlmcMagic || magic == kLlmcLlama3Magic;
}

TokenFile read_token_file(const std::string& path) {
  const uint64_t size = file_size_of(path);
  const std::string head = read_prefix(path, kLlmcHeaderBytes);
  if (head.size() < 8)
    throw Error("token file " + path + ": " + std::to_string(size) + " bytes, too short for a header");
  const unsigned char* h = reinterpret_cast<const unsigned char*>(head.data());
  const int32_t llmc_magic = load_le<int32_t>(h);
  if (llmc_magic == kLlmcLlama3Magic)
    throw Error("token file " + path + ": an llm.c file of LLaMA 3 ids: not supported (no LLaMA 3 tokenizer here)");
  if (llmc_magic == kLlmcMagic) {
    if (head.size() < kLlmcHeaderBytes)
      throw Error("token file " + path + ": truncated inside its llm.c header (" + std::to_string(size) + " of " +
                  std::to_string(kLlmcHeaderBytes) + " bytes)");
    return read_llmc(path, head, size);
  }
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0)
    throw Error("token file " + path + ": not a token file (starts with " + show_bytes(head) +
                ", expected \"SWIATTOK\" or llm.c's magic 20240520); make one with `swiattn prepare`");
  if (head.size() < kHeaderBytes)
    throw Error("token file " + path + ": truncated inside its header (" + std::to_string(size) + " of " +
                std::to_string(kHeaderBytes) + " bytes)");
  const uint32_t version = load_le<uint32_t>(h + 8), width = load_le<uint32_t>(h + 12);
  const uint64_t count = load_le<uint64_t>(h + 16);
  const uint32_t vocab = load_le<uint32_t>(h + 24);
  if (version != kVersion)
    throw Error("token file " + path + ": version " + std::to_string(version) + " is not supported (this build reads version 1)");
  if (width != 2 && width != 4)
    throw Error("token file " + path + ": " + std::to_string(width) + " bytes per id is not supported (2 or 4)");
  if (vocab < 1 || vocab > INT32_MAX || (width == 2 && vocab > 65536))
    throw Error("token file " + path + ": vocab_size " + std::to_string(vocab) + " does not fit " +
                std::to_string(width) + "-byte ids");
  const std::string name(reinterpret_cast<const char*>(h + 28), strnlen(reinterpret_cast<const char*>(h + 28), kNameBytes));
  if (name.empty() || name.size() == kNameBytes) throw Error("token file " + path + ": the tokenizer name field is malformed");
  for (size_t i = 76; i < kHeaderBytes; ++i)
    if (h[i] != 0) throw Error("token file " + path + ": reserved header byte " + std::to_string(i) + " is not zero");
  check_size(path, kHeaderBytes, count, width, size);

  const std::string payload = read_range(path, kHeaderBytes, count * width);
  const std::string digest = sha256_hex(payload);
  std::string stored;
  for (size_t i = 0; i < 32; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", h[44 + i]);
    stored += hex;
  }
  if (digest != stored)
    throw Error("token file " + path + ": the ids do not match the header's sha256 (" + stored.substr(0, 12) +
                "..., found " + digest.substr(0, 12) + "...): the file is garbled; make it again with `swiattn prepare`");
  TokenFile file;
  file.format = "swiattn";
  file.tokenizer = name;
  file.vocab_size = vocab;
  file.ids = decode_ids(path, payload, count, width, vocab);
  return file;
}

}  // namespace swiattn
