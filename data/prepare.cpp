// data/prepare.cpp: `swiattn prepare` (data/prepare.h).
#include "data/prepare.h"

#include <chrono>
#include <iomanip>
#include <filesystem>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/args.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/read_file.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace fs = std::filesystem;

void prepare_token_files(const PrepareOptions& o, std::ostream& log) {
  const auto start = std::chrono::steady_clock::now();
  if (!(o.val_fraction > 0.0 && o.val_fraction < 1.0))
    throw Error("prepare: --val-fraction must be in (0, 1), got " + std::to_string(o.val_fraction));
  if (!fs::exists(o.text)) throw Error("prepare: --text " + o.text + " does not exist");
  if (!fs::is_directory(o.text) && is_token_file(o.text))
    throw Error("prepare: " + o.text + " is a token file already; give it to training as data.corpus");
  const std::string train_path = (fs::path(o.out_dir) / "train.bin").string();
  const std::string val_path = (fs::path(o.out_dir) / "val.bin").string();
  for (const std::string& p : {train_path, val_path})
    if (fs::exists(p) && !o.overwrite) throw Error("prepare: " + p + " exists; pass --overwrite to replace it");

  const auto tokenizer = make_tokenizer(o.tokenizer, o.cache_dir);
  std::vector<std::string> names;
  const std::vector<std::string> docs = read_text_documents(o.text, &names);
  log << "prepare: " << docs.size() << (docs.size() == 1 ? " file, " : " files, ") << total_bytes(docs)
      << " bytes from " << o.text << "; tokenizing with " << tokenizer->name() << "\n" << std::flush;
  std::vector<int32_t> tokens = tokenize_docs(*tokenizer, docs, -1);
  if (tokens.size() < 2) throw Error("prepare: " + o.text + " gives " + std::to_string(tokens.size()) + " tokens, too few to split");
  const size_t cut = validation_start(tokens.size(), o.val_fraction);
  const std::vector<int32_t> val(tokens.begin() + static_cast<std::ptrdiff_t>(cut), tokens.end());
  tokens.resize(cut);

  fs::create_directories(o.out_dir);
  write_token_file(train_path, tokens, tokenizer->name(), tokenizer->vocab_size());
  write_token_file(val_path, val, tokenizer->name(), tokenizer->vocab_size());
  const nlohmann::json manifest = {{"source", fs::absolute(o.text).lexically_normal().string()},
                                   {"files", names},
                                   {"bytes", total_bytes(docs)},
                                   {"tokenizer", tokenizer->name()},
                                   {"vocab_size", tokenizer->vocab_size()},
                                   {"val_fraction", o.val_fraction},
                                   {"train_tokens", tokens.size()},
                                   {"val_tokens", val.size()},
                                   {"split", "the last val_fraction of the tokens is val.bin (data/dataset.h)"}};
  write_whole_file((fs::path(o.out_dir) / "prepare.json").string(), manifest.dump(2) + "\n", "prepare");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "prepare: wrote " << train_path << " (" << tokens.size() << " tokens) and " << val_path << " ("
      << val.size() << " tokens) in " << std::fixed << std::setprecision(1) << secs << " s\n"
      << "train on them with: swiattn train --set data.corpus=" << o.out_dir
      << (tokenizer->name() == "gpt2" ? " --set data.tokenizer=gpt2 --set model.vocab_size=50257" : "") << "\n";
}

int run_prepare_command(const std::vector<std::string>& args, std::ostream& log) {
  PrepareOptions o;
  for (ArgCursor a(args); a.next();) {
    if (a.is("--text")) o.text = a.value();
    else if (a.is("--out")) o.out_dir = a.value();
    else if (a.is("--tokenizer")) o.tokenizer = a.value();
    else if (a.is("--cache-dir")) o.cache_dir = a.value();
    else if (a.is("--overwrite")) o.overwrite = true;
    else if (a.is("--val-fraction")) {
      o.val_fraction = a.number<double>();
      if (!(o.val_fraction > 0.0 && o.val_fraction < 1.0)) {
        std::ostringstream got;
        got << o.val_fraction;
        throw UsageError("--val-fraction must be in (0, 1), got " + got.str());
      }
    } else {
      throw a.unknown();
    }
  }
  if (o.text.empty()) throw UsageError("needs --text PATH (a text file or a folder of .txt files)");
  if (o.out_dir.empty()) throw UsageError("needs --out DIR");
  if (o.tokenizer != "byte" && o.tokenizer != "gpt2") throw UsageError("--tokenizer: byte or gpt2, got \"" + o.tokenizer + "\"");
  prepare_token_files(o, log);
  return 0;
}

}  // namespace swiattn
