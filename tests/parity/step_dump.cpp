// tests/parity/step_dump.cpp: build/swiattn_step_dump, the C++ side of the PyTorch parity test
// (python/test_parity.py, run by `make test`). A test tool, not part of the swiattn CLI.
//
//   swiattn_step_dump --checkpoint DIR --ids FILE --out FILE.safetensors
//
// Loads the checkpoint into a float64 model (float32 weights convert exactly) and runs one
// training step's forward and backward on the batch in FILE, as run_training does
// (train/trainer.cpp): loss = next-token loss + the efficiency regulariser (spec §5) with the
// run's reg settings (DIR/run_config.json) and gamma_base (DIR/trainer_state.json, which the
// target-ratio controller may have moved). No clipping, no optimizer step: the raw gradients.
// FILE holds one sequence per line, B lines of T + 1 token ids: inputs = ids[:-1],
// targets = ids[1:]. Writes, all float64 but the ids:
//   inputs, targets (B, T) int32; logits (B, T, V); per_token_nll (B, T);
//   loss_lm, regularizer, loss () ; layer_output.{l} (B, T, C), the residual stream after layer l;
//   routing.{l}.logit / .route / .branch_diff_sq (B, T) for each switch layer l;
//   grad.{name} for every parameter (zeros where no gradient arrived);
//   __metadata__: reg_mode, gamma_base, reg_eps, reg_alpha as decimal strings (%.17g).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "model/safetensors.h"
#include "train/regularizer.h"

namespace {

using swiattn::Error;
using swiattn::Tensor;

// B lines of T + 1 ids each -> (inputs, targets), int32 (B, T).
std::pair<Tensor, Tensor> read_batch(const std::string& path, int64_t vocab) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::vector<std::vector<int32_t>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::vector<int32_t> row;
    long long id;
    while (s >> id) {
      if (id < 0 || id >= vocab)
        throw Error(path + ": token id " + std::to_string(id) + " outside [0, " + std::to_string(vocab) + ")");
      row.push_back(static_cast<int32_t>(id));
    }
    if (!s.eof()) throw Error(path + ": line " + std::to_string(rows.size() + 1) + " holds a non-integer");
    if (!row.empty()) rows.push_back(row);
  }
  if (rows.empty() || rows[0].size() < 2) throw Error(path + ": needs lines of at least 2 token ids");
  const int64_t B = static_cast<int64_t>(rows.size()), T = static_cast<int64_t>(rows[0].size()) - 1;
  std::vector<int32_t> inputs, targets;
  for (const auto& row : rows) {
    if (static_cast<int64_t>(row.size()) != T + 1) throw Error(path + ": lines of different lengths");
    inputs.insert(inputs.end(), row.begin(), row.end() - 1);
    targets.insert(targets.end(), row.begin() + 1, row.end());
  }
  return {Tensor::from_ints(inputs, {B, T}), Tensor::from_ints(targets, {B, T})};
}

std::string decimal(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

int run(int argc, char** argv) {
  std::string dir, ids_path, out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw Error("usage: swiattn_step_dump --checkpoint DIR --ids FILE --out FILE");
    if (a == "--checkpoint") dir = argv[++i];
    else if (a == "--ids") ids_path = argv[++i];
    else if (a == "--out") out_path = argv[++i];
    else throw Error("unknown option " + a);
  }
  if (dir.empty() || ids_path.empty() || out_path.empty())
    throw Error("usage: swiattn_step_dump --checkpoint DIR --ids FILE --out FILE");

  const swiattn::Config run = swiattn::read_checkpoint_run_config(dir);
  swiattn::Transformer model(swiattn::read_checkpoint_model_config(dir), swiattn::DType::F64, 0);
  swiattn::load_model_weights(dir, model);
  double gamma_base = run.reg.gamma_base;
  const nlohmann::json state = swiattn::read_trainer_state(dir);
  if (state.is_object() && state.contains("gamma_base")) gamma_base = state["gamma_base"].get<double>();
  const auto [inputs, targets] = read_batch(ids_path, model.config().vocab_size);

  // One step of run_training: forward (branch differences measured for Eq. 8), loss, backward.
  const bool measure_branches = run.reg.mode == "adaptive";
  const swiattn::ForwardResult forward = model.forward_with_routing(inputs, measure_branches);
  Tensor per_token_nll;
  const swiattn::Var loss_lm = swiattn::next_token_loss(forward.logits, targets, &per_token_nll);
  const swiattn::RegularizerResult reg = swiattn::efficiency_regularizer(
      forward.routing, per_token_nll, run.reg, gamma_base, model.config().sliding_window);
  const swiattn::Var loss = reg.loss.defined() ? swiattn::add(loss_lm, reg.loss) : loss_lm;
  loss.backward();

  std::vector<std::pair<std::string, Tensor>> out = {
      {"inputs", inputs}, {"targets", targets}, {"logits", forward.logits.value()},
      {"per_token_nll", per_token_nll.reshape(inputs.shape())}, {"loss_lm", loss_lm.value()},
      {"regularizer", reg.loss.defined() ? reg.loss.value() : Tensor::scalar(0.0, swiattn::DType::F64)},
      {"loss", loss.value()}};
  for (size_t l = 0; l < forward.layer_outputs.size(); ++l)
    out.push_back({"layer_output." + std::to_string(l), forward.layer_outputs[l]});
  for (const swiattn::LayerRouting& r : forward.routing) {
    const std::string p = "routing." + std::to_string(r.layer) + ".";
    out.push_back({p + "logit", r.logit.value()});
    out.push_back({p + "route", r.route});
    if (r.branch_diff_sq.defined()) out.push_back({p + "branch_diff_sq", r.branch_diff_sq});
  }
  for (const swiattn::Var& p : model.parameters())
    out.push_back({"grad." + p.name(), p.grad().defined() ? p.grad() : Tensor::zeros(p.value().shape(), p.dtype())});
  swiattn::write_safetensors(out_path, out,
                             {{"reg_mode", run.reg.mode}, {"gamma_base", decimal(gamma_base)},
                              {"reg_eps", decimal(run.reg.eps)}, {"reg_alpha", decimal(run.reg.alpha)}});
  std::cout << "swiattn_step_dump: " << out.size() << " tensors to " << out_path << "; loss "
            << decimal(loss.value().item()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "swiattn_step_dump: error: " << e.what() << "\n";
    return 1;
  }
}
