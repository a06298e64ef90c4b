// tests/test_checkpoint.cpp: the safetensors format (round trip, exact bytes, a table of hostile
// files) and checkpoint directories (model, config.json, optimizer state, atomic replacement).
#include <doctest/doctest.h>

#include <unistd.h>  // getpid

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "tests/test_util.h"

namespace swiattn {
namespace {

using nlohmann::json;
using testing::contains;
using testing::error_of;
using testing::TempDir;
using testing::read_bytes;
using testing::write_bytes;
namespace fs = std::filesystem;


std::string le64(uint64_t n) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return bytes;
}

// A file with this exact header text followed by `data_bytes` zero bytes.
std::string file_with_header(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\0');
}

// Same dtype, shape and bytes.
bool identical(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

std::vector<Tensor> parameter_copies(const Transformer& model) {
  std::vector<Tensor> copies;
  for (const Var& p : model.parameters()) copies.push_back(p.value().clone());
  return copies;
}

bool parameters_equal(const Transformer& model, const std::vector<Tensor>& values) {
  if (model.parameters().size() != values.size()) return false;
  for (size_t i = 0; i < values.size(); ++i)
    if (!identical(model.parameters()[i].value(), values[i])) return false;
  return true;
}

// The shared tiny model, with 16 token ids and the default initialisation scale.
ModelConfig tiny_model_config() {
  ModelConfig c = testing::tiny_model_config();
  c.vocab_size = 16;
  c.initializer_range = ModelConfig{}.initializer_range;
  return c;
}

Config run_config_for(const ModelConfig& model, DType dtype) {
  Config c;
  c.model = model;
  c.train.dtype = dtype_name(dtype);
  return c;
}

// A fixed batch of token ids (2, 5) and its next-token targets (2, 5).
Tensor batch_ids() { return Tensor::from_ints({1, 5, 9, 2, 14, 7, 3, 0, 11, 6}, {2, 5}); }
Tensor batch_targets() { return Tensor::from_ints({5, 9, 2, 14, 7, 3, 0, 11, 6, 1}, {2, 5}); }

// One optimizer step on the fixed batch.
void train_step(const Transformer& model, AdamW& optimizer) {
  optimizer.zero_grad();
  model.loss(batch_ids(), batch_targets()).backward();
  optimizer.step(0.01);
}

// ---------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, in the given order") {
  TempDir dir("swiattn_test_checkpoint");
  Tensor bf16 = Tensor::empty({3}, DType::BF16);
  const uint16_t bf16_bits[3] = {0x3F80, 0xC000, 0x7F80};  // 1, -2, +inf
  std::memcpy(bf16.raw(), bf16_bits, sizeof bf16_bits);
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"zeta.f32", Tensor::from_vector({1.5, -2.25, 3e-8, 4e30, -0.0, 6}, {2, 3}, DType::F32)},
      {"alpha.f64", Tensor::scalar(0.1, DType::F64)},                       // 0-d
      {"empty.f32", Tensor::zeros({0, 5}, DType::F32)},                     // no bytes
      {"ids", Tensor::from_ints({-7, 0, 2147483647, -2147483647 - 1}, {4})},
      {"empty.f64", Tensor::zeros({3, 0, 2}, DType::F64)},
      {"bf16", bf16},
      {"u\xC3\xA9.name", Tensor::randn({2, 2, 2}, DType::F64, 3)},          // UTF-8 name
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "a b\nc"}};
  write_safetensors(dir.file("t.safetensors"), tensors, metadata);
  CHECK_FALSE(fs::exists(dir.file("t.safetensors.tmp")));

  const SafetensorsFile file = read_safetensors(dir.file("t.safetensors"));
  CHECK(file.metadata == metadata);
  REQUIRE(file.names.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(file.names[i] == tensors[i].first);  // file order is the written order, not sorted
    CHECK(identical(file.tensors.at(tensors[i].first), tensors[i].second));
  }
  CHECK(file.tensors.at("alpha.f64").ndim() == 0);

  // No metadata: the header has no __metadata__ and reads back empty.
  write_safetensors(dir.file("plain.safetensors"), {{"x", Tensor::scalar(1, DType::F32)}});
  CHECK_FALSE(contains(read_bytes(dir.file("plain.safetensors")), "__metadata__"));
  CHECK(read_safetensors(dir.file("plain.safetensors")).metadata.empty());
  // No tensors at all is a valid file too.
  write_safetensors(dir.file("none.safetensors"), {});
  CHECK(read_safetensors(dir.file("none.safetensors")).names.empty());
}

TEST_CASE("safetensors: the bytes of a tiny file are pinned") {
  TempDir dir("swiattn_test_checkpoint");
  write_safetensors(dir.file("x.safetensors"),
                    {{"x", Tensor::from_vector({1.0, -2.0}, {2}, DType::F32)}}, {{"k", "v"}});
  // 79 bytes of JSON, one space of padding to 80 = 0x50; then 1.0f and -2.0f little-endian.
  const std::string header = R"({"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  REQUIRE(header.size() == 80);
  const std::string expected = std::string("\x50\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\x80\x3F\x00\x00\x00\xC0", 8);
  CHECK(read_bytes(dir.file("x.safetensors")) == expected);
}

TEST_CASE("safetensors: hostile files are each rejected with a one-line message naming the problem") {
  TempDir dir("swiattn_test_checkpoint");
  const std::string f32_2 = R"("dtype":"F32","shape":[2])";
  struct Case {
    std::string what;
    std::string bytes;
    std::string expected;  // part of the message
  };
  const std::vector<Case> cases = {
      {"empty file", "", "too short for the 8-byte header length"},
      {"truncated length", std::string("\x10\0\0", 3), "too short"},
      {"header length > file", le64(1000) + "{}", "header length 1000 exceeds the 2 bytes"},
      {"header length 2^63", le64(uint64_t{1} << 63) + "{}", "header length 9223372036854775808 exceeds"},
      {"header length 0", le64(0) + "1234", "header length is 0"},
      {"not JSON", file_with_header("{not json}", 0), "header: not valid JSON"},
      {"JSON array", file_with_header("[1, 2]", 0), "header must be a JSON object, got array"},
      {"nested too deep", file_with_header("{\"a\":[[[[[[[[[[1]]]]]]]]]]}", 0), "header: nested deeper than 8 levels"},
      {"not UTF-8", file_with_header("{\"a\xFF\":{}}", 0), "header is not valid UTF-8 (byte 3"},
      {"overlong UTF-8", file_with_header("{\"a\xC0\xAF\":{}}", 0), "not valid UTF-8"},
      {"unknown dtype", file_with_header(R"({"x":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", 2),
       "tensor \"x\": dtype must be one of \"F32\", \"F64\", \"BF16\", \"I32\", got \"F16\""},
      {"negative dim", file_with_header(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
       "shape must be an array of non-negative integers, got [-1]"},
      {"fractional dim", file_with_header(R"({"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4),
       "shape must be an array of non-negative integers"},
      {"shape not array", file_with_header(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8),
       "shape must be an array"},
      {"numel overflow", file_with_header(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0),
       "has more than 2^63 - 1 elements"},
      {"byte length overflow", file_with_header(R"({"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", 8),
       "needs more than 2^64"},
      {"offsets not a pair", file_with_header("{\"x\":{" + f32_2 + R"(,"data_offsets":[0]}})", 8),
       "data_offsets must be two non-negative integers"},
      {"offsets negative", file_with_header("{\"x\":{" + f32_2 + R"(,"data_offsets":[-8,0]}})", 8),
       "data_offsets must be two non-negative integers"},
      {"begin > end", file_with_header("{\"x\":{" + f32_2 + R"(,"data_offsets":[8,0]}})", 8), "has begin > end"},
      {"end beyond data", file_with_header("{\"x\":{" + f32_2 + R"(,"data_offsets":[0,8]}})", 4),
       "ends beyond the data region (4 bytes)"},
      {"huge end", file_with_header("{\"x\":{" + f32_2 + R"(,"data_offsets":[0,18446744073709551615]}})", 8),
       "ends beyond the data region"},
      {"wrong byte length", file_with_header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "span 8 bytes, but shape (3) of F32 needs 12"},
      {"overlap", file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 +
                                       R"(,"data_offsets":[4,12]}})", 12),
       "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap"},
      {"gap", file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 +
                                   R"(,"data_offsets":[12,20]}})", 20),
       "bytes [8, 12) of the data region belong to no tensor"},
      {"trailing bytes", file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8]}})", 12),
       "the data region has 12 bytes but the tensors cover only 8"},
      {"duplicate names", file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8]},"a":{)" + f32_2 +
                                               R"(,"data_offsets":[8,16]}})", 16),
       "header: duplicate key \"a\""},  // two tensors of one name
      {"duplicate field", file_with_header(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", 8),
       "duplicate key \"dtype\""},
      {"entry not object", file_with_header(R"({"a":[1]})", 0), "tensor \"a\": expected an object"},
      {"missing field", file_with_header(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "missing field \"data_offsets\""},
      {"extra field", file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8],"x":1}})", 8),
       "unexpected field \"x\""},
      {"metadata not strings", file_with_header(R"({"__metadata__":{"step":3}})", 0),
       "__metadata__.step must be a string, got 3"},
      {"metadata not object", file_with_header(R"({"__metadata__":"x"})", 0), "__metadata__ must be an object"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string path = dir.file("hostile.safetensors");
    write_bytes(path, c.bytes);
    const std::string message = error_of([&] { read_safetensors(path); });
    CAPTURE(message);
    CHECK(contains(message, c.expected));
    CHECK(contains(message, "safetensors " + path + ": "));  // names the file
    CHECK_FALSE(contains(message, "\n"));                      // one line
  }
  // The same files stay acceptable once repaired: the table's checks are not over-eager.
  write_bytes(dir.file("ok.safetensors"),
              file_with_header("{\"a\":{" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 +
                                   R"(,"data_offsets":[8,16]},"e":{"dtype":"I32","shape":[0],"data_offsets":[16,16]}})", 16));
  CHECK(read_safetensors(dir.file("ok.safetensors")).names == std::vector<std::string>{"a", "b", "e"});
}

TEST_CASE("safetensors: an absurd header length is refused without being allocated") {
  TempDir dir("swiattn_test_checkpoint");
  // A sparse file just over the 100 MB limit: the length fits in the file, but is over the limit.
  const std::string path = dir.file("big.safetensors");
  write_bytes(path, le64(kSafetensorsMaxHeaderBytes + 1));
  fs::resize_file(path, kSafetensorsMaxHeaderBytes + 9);
  const std::string message = error_of([&] { read_safetensors(path); });
  CHECK(contains(message, "header length 100000001 exceeds the limit of 100000000 bytes"));
  CHECK(contains(error_of([&] { read_safetensors(dir.file("absent.safetensors")); }), "cannot open"));
  CHECK(contains(error_of([&] { read_safetensors(dir.path.string()); }), "is a directory"));
}

TEST_CASE("safetensors: the writer refuses bad names and a failed write leaves the old file") {
  TempDir dir("swiattn_test_checkpoint");
  const std::string path = dir.file("w.safetensors");
  const Tensor x = Tensor::scalar(1, DType::F32);
  write_safetensors(path, {{"kept", x}});
  const std::string before = read_bytes(path);
  CHECK(contains(error_of([&] { write_safetensors(path, {{"a", x}, {"a", x}}); }), "duplicate tensor name \"a\""));
  CHECK(contains(error_of([&] { write_safetensors(path, {{"", x}}); }), "invalid tensor name"));
  CHECK(contains(error_of([&] { write_safetensors(path, {{"__metadata__", x}}); }), "invalid tensor name"));
  CHECK(contains(error_of([&] { write_safetensors(path, {{"a\xFF", x}}); }), "not UTF-8"));
  CHECK(contains(error_of([&] { write_safetensors(path, {{"u", Tensor()}}); }), "undefined"));
  CHECK(read_bytes(path) == before);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(contains(error_of([&] { write_safetensors(dir.file("no/such/dir/f.safetensors"), {{"a", x}}); }),
                 "cannot create"));
}

// ---------------------------------------------------------------------------------------------
// checkpoints
// ---------------------------------------------------------------------------------------------

TEST_CASE("checkpoint: a model round trip restores every parameter bit for bit and the same logits") {
  for (DType dtype : {DType::F32, DType::F64}) {
    for (bool tied : {true, false}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(tied);
      TempDir dir("swiattn_test_checkpoint");
      ModelConfig config = tiny_model_config();
      config.tie_word_embeddings = tied;
      const Transformer saved(config, dtype, 1);
      save_checkpoint(dir.path.string(), saved, run_config_for(config, dtype), nullptr, json());
      for (const char* file : {"model.safetensors", "config.json", "run_config.json"})
        CHECK(fs::exists(dir.file(file)));
      CHECK_FALSE(fs::exists(dir.file("optimizer.safetensors")));

      const SafetensorsFile file = read_safetensors(dir.file("model.safetensors"));
      CHECK(file.metadata.at("format") == "pt");
      CHECK(file.metadata.at("producer") == "swiattn");
      REQUIRE(file.names.size() == saved.parameters().size());
      for (size_t i = 0; i < file.names.size(); ++i) CHECK(file.names[i] == saved.parameters()[i].name());

      Transformer loaded(read_checkpoint_model_config(dir.path.string()), dtype, 2);
      const std::vector<Tensor> saved_values = parameter_copies(saved);
      REQUIRE_FALSE(parameters_equal(loaded, saved_values));  // another seed: the test can fail
      const LoadReport report = load_model_weights(dir.path.string(), loaded);
      CHECK(report.loaded.size() == saved.parameters().size());
      CHECK(report.initialised.empty());
      CHECK(report.ignored.empty());
      CHECK(parameters_equal(loaded, saved_values));
      CHECK(identical(loaded.forward(batch_ids()).value(), saved.forward(batch_ids()).value()));
    }
  }
}

TEST_CASE("checkpoint: float64 weights load into a float32 model, converted") {
  TempDir dir("swiattn_test_checkpoint");
  const ModelConfig config = tiny_model_config();
  const Transformer saved(config, DType::F64, 1);
  save_checkpoint(dir.path.string(), saved, run_config_for(config, DType::F64), nullptr, json());
  Transformer loaded(config, DType::F32, 2);
  load_model_weights(dir.path.string(), loaded);
  for (size_t i = 0; i < saved.parameters().size(); ++i)
    CHECK(identical(loaded.parameters()[i].value(), saved.parameters()[i].value().to(DType::F32)));
}

TEST_CASE("checkpoint: a failed load names the tensor and leaves the model unchanged") {
  TempDir tied_dir, untied_dir;
  ModelConfig config = tiny_model_config();
  save_checkpoint(tied_dir.path.string(), Transformer(config, DType::F32, 1),
                  run_config_for(config, DType::F32), nullptr, json());
  ModelConfig untied = config;
  untied.tie_word_embeddings = false;
  save_checkpoint(untied_dir.path.string(), Transformer(untied, DType::F32, 1),
                  run_config_for(untied, DType::F32), nullptr, json());

  SUBCASE("another shape") {
    ModelConfig wider = config;
    wider.intermediate_size = 16;
    Transformer model(wider, DType::F32, 3);
    const std::vector<Tensor> before = parameter_copies(model);
    const std::string message = error_of([&] { load_model_weights(tied_dir.path.string(), model); });
    CHECK(contains(message, "tensor \"layers.0.mlp.gate_proj.weight\" has shape (12, 8) in the file but (16, 8) in the model"));
    CHECK(parameters_equal(model, before));  // embed.weight etc. come earlier and were not copied
  }
  SUBCASE("a parameter missing from the file, then allowed to be missing") {
    Transformer model(untied, DType::F32, 3);
    const std::vector<Tensor> before = parameter_copies(model);
    const std::string message = error_of([&] { load_model_weights(tied_dir.path.string(), model); });
    CHECK(contains(message, "the model's parameter lm_head.weight (16, 8) is not in the file"));
    CHECK(parameters_equal(model, before));
    const LoadReport report = load_model_weights(tied_dir.path.string(), model,
                                                 [](const std::string& name) { return name == "lm_head.weight"; });
    CHECK(report.initialised == std::vector<std::string>{"lm_head.weight"});
    CHECK(report.loaded.size() == model.parameters().size() - 1);
    CHECK(identical(model.parameters().back().value(), before.back()));  // kept its initial value
    CHECK_FALSE(identical(model.parameters().front().value(), before.front()));
  }
  SUBCASE("a tensor the model lacks, then allowed to be ignored") {
    Transformer model(config, DType::F32, 3);
    const std::vector<Tensor> before = parameter_copies(model);
    const std::string message = error_of([&] { load_model_weights(untied_dir.path.string(), model); });
    CHECK(contains(message, "tensor lm_head.weight (16, 8) is not a parameter of the model"));
    CHECK(parameters_equal(model, before));
    const LoadReport report = load_model_weights(untied_dir.path.string(), model, nullptr,
                                                 [](const std::string& name) { return name == "lm_head.weight"; });
    CHECK(report.ignored == std::vector<std::string>{"lm_head.weight"});
    CHECK(report.loaded.size() == model.parameters().size());
  }
  SUBCASE("a checkpoint with no model file") {
    Transformer model(config, DType::F32, 3);
    CHECK(contains(error_of([&] { load_model_weights(untied_dir.file("nothing_here"), model); }), "cannot open"));
  }
}

TEST_CASE("checkpoint: a full-attention checkpoint starts a switch model, routers initialised (spec 6)") {
  TempDir full_dir, switch_dir;
  ModelConfig full_config = tiny_model_config();
  full_config.layer_types = {"full", "full"};
  const Transformer full(full_config, DType::F64, 1);
  save_checkpoint(full_dir.path.string(), full, run_config_for(full_config, DType::F64), nullptr, json());

  ModelConfig switch_config = full_config;
  switch_config.layer_types = {"switch", "switch"};
  switch_config.router_init = "full";  // w_r = 0, b_r = +3: every token starts on full attention
  Transformer converted(switch_config, DType::F64, 7);
  const std::string message = error_of([&] { load_model_weights(full_dir.path.string(), converted); });
  CHECK(contains(message, "the model's parameter layers.0.attn.router.weight (1, 8) is not in the file (and 3 more)"));

  const LoadReport report = load_model_weights(full_dir.path.string(), converted, is_router_parameter);
  std::vector<std::string> initialised = report.initialised;
  std::sort(initialised.begin(), initialised.end());
  CHECK(initialised == std::vector<std::string>{"layers.0.attn.router.bias", "layers.0.attn.router.weight",
                                                "layers.1.attn.router.bias", "layers.1.attn.router.weight"});
  CHECK(report.loaded.size() == full.parameters().size());
  // The routers are the only parameters is_router_parameter picks out.
  size_t routers = 0;
  for (const Var& p : converted.parameters()) routers += is_router_parameter(p.name());
  CHECK(routers == 4);
  for (const Var& p : full.parameters()) CHECK_FALSE(is_router_parameter(p.name()));
  // With every token routed to full attention, the converted model computes the full model.
  const std::vector<double> expected = full.forward(batch_ids()).value().to_vector();
  const std::vector<double> actual = converted.forward(batch_ids()).value().to_vector();
  REQUIRE(actual.size() == expected.size());
  double max_error = 0;
  for (size_t i = 0; i < actual.size(); ++i) max_error = std::max(max_error, std::abs(actual[i] - expected[i]));
  CHECK(max_error < 1e-10);

  // The reverse: a checkpoint with routers does not silently load into a model without them.
  save_checkpoint(switch_dir.path.string(), converted, run_config_for(switch_config, DType::F64), nullptr, json());
  Transformer plain(full_config, DType::F64, 3);
  CHECK(contains(error_of([&] { load_model_weights(switch_dir.path.string(), plain); }),
                 "is not a parameter of the model (and 3 more)"));
}

TEST_CASE("checkpoint: config.json has the Hugging Face keys, round-trips, and rejects unknown keys") {
  ModelConfig config = tiny_model_config();
  config.rope_theta = 500000.0;
  config.tie_word_embeddings = false;
  config.layer_types = {"switch", "swa"};
  config.router_init = "full";
  config.router_threshold = 0.25;
  const json j = model_config_to_hf_json(config, DType::F32);
  CHECK(j.at("model_type") == "swiattn");
  CHECK(j.at("architectures") == json::array({"SwiAttnForCausalLM"}));
  CHECK(j.at("torch_dtype") == "float32");
  CHECK(model_config_to_hf_json(config, DType::F64).at("torch_dtype") == "float64");
  CHECK(j.at("hidden_size") == 8);
  CHECK(j.at("num_key_value_heads") == 1);
  CHECK(j.at("layer_types") == json::array({"switch", "swa"}));
  CHECK(j.at("router_init") == "full");  // the router settings travel with the model
  CHECK(j.at("router_threshold") == 0.25);
  CHECK(j.at("rope_theta") == 500000.0);
  CHECK(j.at("tie_word_embeddings") == false);
  for (const char* key : {"vocab_size", "num_hidden_layers", "num_attention_heads", "head_dim",
                          "intermediate_size", "sliding_window", "rms_norm_eps",
                          "max_position_embeddings", "initializer_range"})
    CHECK_MESSAGE(j.contains(key), key);

  // Round trip through JSON text: every field comes back (compared field by field as JSON).
  const ModelConfig back = model_config_from_hf_json(json::parse(j.dump()), "test");
  CHECK(model_config_to_hf_json(back, DType::F32) == j);
  CHECK(back.hidden_size == 8);
  CHECK(back.layer_types == config.layer_types);
  CHECK(back.router_threshold == 0.25);

  // Hugging Face bookkeeping keys are accepted; everything else unknown is not.
  json with_bookkeeping = j;
  with_bookkeeping["transformers_version"] = "4.46.0";
  with_bookkeeping["_name_or_path"] = "runs/x";
  CHECK_NOTHROW(model_config_from_hf_json(with_bookkeeping, "test"));

  const auto rejected = [&](const std::function<void(json&)>& edit) {
    json bad = j;
    edit(bad);
    return error_of([&] { model_config_from_hf_json(bad, "dir/config.json"); });
  };
  CHECK(contains(rejected([](json& b) { b["hiden_size"] = 8; }), "config dir/config.json: unknown key \"hiden_size\""));
  CHECK(contains(rejected([](json& b) { b["hidden_size"] = "8"; }), "hidden_size must be an integer"));
  CHECK(contains(rejected([](json& b) { b["hidden_size"] = 8.5; }), "hidden_size must be an integer"));
  CHECK(contains(rejected([](json& b) { b["layer_types"] = "full"; }), "layer_types must be an array of strings"));
  CHECK(contains(rejected([](json& b) { b["model_type"] = "llama"; }), "model_type must be \"swiattn\", got \"llama\""));
  CHECK(contains(rejected([](json& b) { b.erase("model_type"); }), "model_type must be \"swiattn\""));
  CHECK(contains(rejected([](json& b) { b["torch_dtype"] = "int8"; }), "torch_dtype must be"));
  CHECK(contains(rejected([](json& b) { b["architectures"] = "X"; }), "architectures must be an array of strings"));
  CHECK(contains(rejected([](json& b) { b = json::array(); }), "expected a JSON object"));
}

TEST_CASE("checkpoint: config.json and run_config.json are read back from a checkpoint") {
  TempDir dir("swiattn_test_checkpoint");
  const ModelConfig config = tiny_model_config();
  Config run = run_config_for(config, DType::F32);
  run.train.learning_rate = 1e-4;
  run.train.steps = 1234;
  save_checkpoint(dir.path.string(), Transformer(config, DType::F32, 1), run, nullptr, json());
  CHECK(config_to_json(read_checkpoint_run_config(dir.path.string())) == config_to_json(run));
  CHECK(model_config_to_hf_json(read_checkpoint_model_config(dir.path.string()), DType::F32) ==
        model_config_to_hf_json(config, DType::F32));
  CHECK(read_trainer_state(dir.path.string()).is_null());

  // An edited config.json is validated on reading.
  json edited = json::parse(read_bytes(dir.file("config.json")));
  edited["num_key_value_heads"] = 3;
  write_bytes(dir.file("config.json"), edited.dump());
  CHECK(contains(error_of([&] { read_checkpoint_model_config(dir.path.string()); }), "num_key_value_heads"));
  write_bytes(dir.file("config.json"), "{");
  CHECK(contains(error_of([&] { read_checkpoint_model_config(dir.path.string()); }), "not valid JSON"));
}

TEST_CASE("checkpoint: save refuses a run config for another model and a non-object trainer state") {
  TempDir dir("swiattn_test_checkpoint");
  const ModelConfig config = tiny_model_config();
  const Transformer model(config, DType::F32, 1);
  Config other = run_config_for(config, DType::F32);
  other.model.hidden_size = 16;
  const std::string target = dir.file("ckpt");
  CHECK(contains(error_of([&] { save_checkpoint(target, model, other, nullptr, json()); }),
                 "run_config.model.hidden_size is 16 but the model's is 8"));
  const Config f64_run = run_config_for(config, DType::F64), f32_run = run_config_for(config, DType::F32);
  CHECK(contains(error_of([&] { save_checkpoint(target, model, f64_run, nullptr, json()); }),
                 "run_config.train.dtype is \"float64\" but the model is float32"));
  CHECK(contains(error_of([&] { save_checkpoint(target, model, f32_run, nullptr, json(3)); }),
                 "trainer_state must be a JSON object or null"));
  CHECK_FALSE(fs::exists(target));  // checked before anything was written
}

TEST_CASE("checkpoint: optimizer state round trip: the next step after loading is identical") {
  TempDir dir("swiattn_test_checkpoint");
  const ModelConfig config = tiny_model_config();
  const Transformer original(config, DType::F32, 1);
  AdamW original_optimizer(original.parameters());
  train_step(original, original_optimizer);
  train_step(original, original_optimizer);
  const json state = {{"step", 2}, {"data_position", 640}, {"rng", {{"seed", 7}, {"counter", 99}}}};
  save_checkpoint(dir.path.string(), original, run_config_for(config, DType::F32), &original_optimizer, state);
  CHECK(read_trainer_state(dir.path.string()) == state);
  CHECK(read_safetensors(dir.file("optimizer.safetensors")).metadata.at("steps_taken") == "2");

  Transformer resumed(config, DType::F32, 5);
  AdamW resumed_optimizer(resumed.parameters());
  load_model_weights(dir.path.string(), resumed);
  load_optimizer_state(dir.path.string(), resumed_optimizer, resumed);
  CHECK(resumed_optimizer.steps_taken() == 2);

  // Control: the same weights with a fresh optimizer take a different third step.
  Transformer fresh(config, DType::F32, 5);
  AdamW fresh_optimizer(fresh.parameters());
  load_model_weights(dir.path.string(), fresh);

  train_step(original, original_optimizer);
  train_step(resumed, resumed_optimizer);
  train_step(fresh, fresh_optimizer);
  CHECK(parameters_equal(resumed, parameter_copies(original)));
  CHECK_FALSE(parameters_equal(fresh, parameter_copies(original)));
  for (size_t i = 0; i < original.parameters().size(); ++i) {
    CHECK(identical(resumed_optimizer.first_moments()[i], original_optimizer.first_moments()[i]));
    CHECK(identical(resumed_optimizer.second_moments()[i], original_optimizer.second_moments()[i]));
  }
}

TEST_CASE("checkpoint: a bad optimizer state is rejected and the optimizer is unchanged") {
  TempDir with_state, without_state;
  const ModelConfig config = tiny_model_config();
  const Transformer model(config, DType::F32, 1);
  AdamW optimizer(model.parameters());
  train_step(model, optimizer);
  save_checkpoint(with_state.path.string(), model, run_config_for(config, DType::F32), &optimizer, json());
  save_checkpoint(without_state.path.string(), model, run_config_for(config, DType::F32), nullptr, json());

  ModelConfig wider = config;
  wider.intermediate_size = 16;
  const Transformer other(wider, DType::F32, 1);
  AdamW other_optimizer(other.parameters());
  CHECK(contains(error_of([&] { load_optimizer_state(with_state.path.string(), other_optimizer, other); }),
                 "tensor \"m.layers.0.mlp.gate_proj.weight\" has shape (12, 8) in the file but the parameter is (16, 8)"));
  CHECK(other_optimizer.steps_taken() == 0);
  CHECK(contains(error_of([&] { load_optimizer_state(without_state.path.string(), optimizer, model); }),
                 "saved without optimizer state"));
  // An optimizer over some other Vars does not belong to this model.
  AdamW foreign({Var(Tensor::zeros({2}, DType::F32), true, "embed.weight")});
  CHECK(contains(error_of([&] { load_optimizer_state(with_state.path.string(), foreign, model); }),
                 "optimizer parameter 0 (\"embed.weight\") is not a parameter of the model"));
  // An optimizer over a subset of the parameters: the file's other moments are unexplained.
  AdamW partial({model.parameters()[0]});
  CHECK(contains(error_of([&] { load_optimizer_state(with_state.path.string(), partial, model); }),
                 "belongs to no parameter of the optimizer"));
  CHECK(partial.steps_taken() == 0);
}

TEST_CASE("checkpoint: files are replaced atomically; a leftover .tmp is ignored and overwritten") {
  TempDir dir("swiattn_test_checkpoint");
  const std::string d = dir.path.string();
  const ModelConfig config = tiny_model_config();
  const Transformer first(config, DType::F32, 1), second(config, DType::F32, 2);
  AdamW optimizer(first.parameters());
  save_checkpoint(d, first, run_config_for(config, DType::F32), &optimizer, json{{"step", 1}});
  // A crash during a later save would leave a partial model.safetensors.tmp behind.
  write_bytes(dir.file("model.safetensors.tmp"), "partial garbage");
  Transformer reader(config, DType::F32, 9);
  load_model_weights(d, reader);
  CHECK(parameters_equal(reader, parameter_copies(first)));

  // Saving over the checkpoint replaces every file, and drops the optional ones not saved again.
  save_checkpoint(d, second, run_config_for(config, DType::F32), nullptr, json());
  load_model_weights(d, reader);
  CHECK(parameters_equal(reader, parameter_copies(second)));
  CHECK_FALSE(fs::exists(dir.file("optimizer.safetensors")));
  CHECK(read_trainer_state(d).is_null());
  for (const auto& entry : fs::directory_iterator(dir.path))
    CHECK_MESSAGE(entry.path().extension() != ".tmp", entry.path().string());
}

}  // namespace
}  // namespace swiattn
