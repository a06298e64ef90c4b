// data/prepare.h: `swiattn prepare`, own text -> DIR/train.bin, DIR/val.bin (data/token_file.h).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace swiattn {

struct PrepareOptions {
  std::string text;                     // a text file or a folder of .txt files (data/dataset.h)
  std::string out_dir;                  // receives train.bin, val.bin, prepare.json
  std::string tokenizer = "byte";       // "byte" | "gpt2"
  std::string cache_dir = "data/cache"; // for the GPT-2 files
  double val_fraction = 0.1;            // the last share of the tokens is validation, in (0, 1)
  bool overwrite = false;               // replace existing train.bin / val.bin
};

// Tokenizes the text with the split rule of data/dataset.h (so training on the text and on DIR
// gives the same tokens) and writes the two token files and prepare.json (source, tokenizer,
// counts). Refuses to replace existing files without overwrite. Progress lines go to `log`.
void prepare_token_files(const PrepareOptions& options, std::ostream& log);

// The command line: --text PATH --out DIR [--tokenizer K] [--val-fraction F] [--cache-dir D]
// [--overwrite]. Bad arguments throw UsageError.
int run_prepare_command(const std::vector<std::string>& args, std::ostream& log);

}  // namespace swiattn
