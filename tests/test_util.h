// tests/test_util.h: small helpers shared by the test files.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace swiattn::testing {

// A 2-layer model small enough for finite differences over every parameter: V 11, C 8, H 2,
// Hkv 1, D 4, F 12, window 3, one full and one swa layer, weights N(0, 0.5^2) so every
// nonlinearity works away from its linear region. Tests change what they need.
inline ModelConfig tiny_model_config() {
  ModelConfig c;
  c.vocab_size = 11;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.intermediate_size = 12;
  c.sliding_window = 3;
  c.layer_types = {"full", "swa"};
  c.max_position_embeddings = 16;
  c.initializer_range = 0.5;
  return c;
}

// Uniform token ids in [0, vocab), int32, reproducible from the seed.
inline Tensor random_ids(const Shape& shape, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(shape_numel(shape)));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return Tensor::from_ints(ids, shape);
}

// The message of the swiattn::Error f throws, or "" when it throws nothing.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Writes `bytes` to `path` exactly (binary), replacing any file there.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// The whole file's bytes ("" when it cannot be read).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// /dev/shm when it is a writable directory (memory: an fsync costs nothing there), else the
// system's temp dir. For tests that save many checkpoints; the code under test is the same.
inline std::filesystem::path fast_temp_directory() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

// A fresh directory under the system's temp dir, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "swiattn_test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace swiattn::testing
