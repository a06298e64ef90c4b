// train/demo.cpp: `swiattn demo` (train/demo.h).
#include "train/demo.h"

#include <iomanip>
#include <ostream>
#include <sstream>

#include "model/safetensors.h"

namespace swiattn {

std::string demo_summary(const DemoSummary& s) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << "== summary (validation loss, nats/token; unigram entropy "
      << s.unigram_entropy << ") ==\n"
      << "  FullAttn after pretraining:        " << s.full_attention_loss << "\n"
      << "  SwiAttn right after conversion:    " << s.converted_loss << "\n"
      << "  SwiAttn after continual training:  " << s.continued_loss << "\n"
      << "  full-attention ratio per layer:    " << std::setprecision(3);
  for (double r : s.layer_ratios) out << r << " ";
  out << "(mean " << s.mean_ratio << ")\n";
  return out.str();
}

DemoSummary run_demo(const std::string& out_dir, std::ostream& log) {
  Config full;
  full.train.steps = 300;
  full.train.sample_tokens = 0;
  log << "== stage 1/2: pretrain FullAttn ==\n";  // the demo replaces its own earlier output
  const TrainSummary pretrain = run_training(full, out_dir + "/full", log, /*resume=*/false, /*overwrite=*/true);

  Config swi = full;
  swi.model.layer_types.assign(static_cast<size_t>(swi.model.num_hidden_layers), "switch");
  swi.train.init_from = out_dir + "/full/checkpoint";
  swi.train.steps = 100;
  swi.train.warmup_steps = 10;
  swi.train.learning_rate = 1e-3;
  swi.train.min_learning_rate = 1e-4;
  swi.train.sample_tokens = 200;
  log << "\n== stage 2/2: convert to SwiAttn and continue training ==\n";
  const TrainSummary cpt = run_training(swi, out_dir + "/swiattn", log, /*resume=*/false, /*overwrite=*/true);

  DemoSummary s;
  s.unigram_entropy = pretrain.unigram_entropy;
  s.full_attention_loss = pretrain.final_val_loss;
  s.converted_loss = cpt.initial_val_loss;
  s.continued_loss = cpt.final_val_loss;
  s.layer_ratios = cpt.final_layer_ratios;
  for (double r : s.layer_ratios) s.mean_ratio += r / static_cast<double>(s.layer_ratios.size());
  const std::string block = demo_summary(s);
  log << "\n" << block << std::flush;
  write_file_atomically(out_dir + "/summary.txt", block);
  return s;
}

}  // namespace swiattn
