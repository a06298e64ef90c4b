// data/sha256.h: SHA-256 (FIPS 180-4), for checking the corpus files against their pinned
// digests (data/verify.h) and the payload of token files (data/token_file.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace swiattn {

// Incremental: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  std::string hex_digest();  // 64 lowercase hex digits; the object is finished afterwards

 private:
  void compress(const uint8_t* block);  // one 64-byte block into state_
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// The digest of `bytes`, 64 lowercase hex digits.
std::string sha256_hex(const std::string& bytes);

}  // namespace swiattn
