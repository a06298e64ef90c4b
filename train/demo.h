// train/demo.h: `swiattn demo` (make demo), the paper's pipeline at toy scale on the CPU.
//
// Two runs of the embedded default configuration. Stage 1 pretrains every layer as full
// attention (300 steps); stage 2 loads that checkpoint into a model whose layers are all
// "switch" (routers initialised randomly, spec §3) and continues with the regulariser (spec §5-6),
// at a lower learning rate and a third of the steps (the paper: about 1/12 of the pretraining).
// The summary block it prints (demo_summary) is also written to OUT/summary.txt; the README
// shows one such block, and tests/test_readme.cpp checks it has exactly this format.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace swiattn {

struct DemoSummary {
  double unigram_entropy = 0.0;       // nats per token of the training split
  double full_attention_loss = 0.0;   // validation loss after stage 1
  double converted_loss = 0.0;        // SwiAttn right after the conversion (stage 2, step 0)
  double continued_loss = 0.0;        // after stage 2
  std::vector<double> layer_ratios;   // validation full-attention ratio per layer after stage 2
  double mean_ratio = 0.0;            // their mean
};

// The summary block, ending in a newline: "== summary (...) ==" and five lines.
std::string demo_summary(const DemoSummary& s);

// Runs both stages into out_dir/full and out_dir/swiattn, progress to `log`, then prints the
// summary and writes out_dir/summary.txt.
DemoSummary run_demo(const std::string& out_dir, std::ostream& log);

}  // namespace swiattn
