// fuzz/make_seeds.cpp: writes the safetensors seed corpus with the library's own writer, so the
// fuzzer starts from files the reader accepts. The files are committed in
// fuzz/corpus/safetensors/; rerun this when the format changes:
//   build-fuzz/fuzz_make_seeds fuzz/corpus/safetensors
// Each file is small (the fuzzer's -max_len is 4096) and covers one feature of the format.
#include <cstdio>
#include <string>

#include "model/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  using swiattn::DType;
  using swiattn::Tensor;
  const std::string dir = argv[1];
  auto write = [&](const char* name, const std::vector<std::pair<std::string, Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
    swiattn::write_safetensors(dir + "/" + name, tensors, metadata);
    swiattn::read_safetensors(dir + "/" + name);  // a seed the reader refuses would be useless
    std::printf("wrote %s/%s\n", dir.c_str(), name);
  };
  const std::map<std::string, std::string> pt = {{"format", "pt"}, {"producer", "swiattn"}};

  write("empty.safetensors", {}, {});                               // header "{}" and no data
  write("metadata_only.safetensors", {}, pt);
  write("one_f32.safetensors", {{"w", Tensor::from_vector({1, -2, 3.5, 0}, {2, 2}, DType::F32)}}, {});
  write("scalar_f64.safetensors", {{"x", Tensor::scalar(3.25, DType::F64)}}, pt);
  write("ids_i32.safetensors", {{"ids", Tensor::from_ints({0, 1, 255, -7}, {4})}}, {});
  write("zero_sized.safetensors",                                  // a (0, 3) tensor between two
        {{"a", Tensor::from_vector({1}, {1}, DType::F32)},
         {"empty", Tensor::zeros({0, 3}, DType::F32)},
         {"b", Tensor::from_vector({2, 3}, {2}, DType::F64)}}, {});
  write("model_like.safetensors",                                  // checkpoint-style names
        {{"embed_tokens.weight", Tensor::randn({4, 3}, DType::F32, 1)},
         {"layers.0.attn.q_proj.weight", Tensor::randn({3, 3}, DType::F32, 2)},
         {"layers.0.attn.router.bias", Tensor::zeros({1}, DType::F32)},
         {"norm.weight", Tensor::full({3}, 1.0, DType::F32)}},
        pt);
  write("unicode_names.safetensors",                               // UTF-8 names and metadata
        {{"t\xC3\xA9nsor \xE2\x9C\x93", Tensor::from_vector({1, 2}, {1, 2}, DType::F64)}},
        {{"note", "\xF0\x9F\x98\x80 \"quoted\" \\ back"}});
  return 0;
}
