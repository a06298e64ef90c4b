// tests/test_cuda_train.cpp: training on the GPU checked against the CPU (docs/cuda.md,
// "Training on the GPU").
//
// Without a CUDA device every test that needs one prints "SKIPPED (no CUDA device): ..." and
// returns (as in tests/test_cuda_ops.cpp); the GPU-free checks (configuration and model errors)
// run everywhere.
//
//   - the optimizer kernels (kernels/cuda/optimizer.cu) against the CPU AdamW and clipping of
//     train/optimizer.cpp: same double arithmetic per element, so float32 results agree to a
//     float32 rounding;
//   - the router's hard route and the regulariser on the device against the CPU;
//   - a tiny switch-layer model trained 20 steps from the same seed and batches: CPU float32 vs
//     CUDA float32 (tight) and vs CUDA bfloat16 mixed precision (bfloat16 tolerance);
//   - a checkpoint saved from CUDA loads back bit for bit, onto CUDA and onto the CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/optimizer.h"
#include "tests/cuda_test_util.h"
#include "tensor/cuda/device.h"
#include "train/checkpoint.h"
#include "model/router.h"
#include "model/transformer.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/nonfinite.h"
#include "train/optimizer.h"
#include "train/regularizer.h"

namespace swiattn {
namespace {

using testing::skip_without_device;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double d = 0.0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

// ---------------------------------------------------------------------------------------------
// GPU-free

TEST_CASE("cuda train: configuration and model errors name the fix") {
  Config c;
  c.train.device = "cuda";
  c.train.dtype = "float64";
  std::string m = testing::error_of([&] { validate_config(c); });
  INFO(m);
  CHECK(testing::contains(m, "train.dtype"));
  CHECK(testing::contains(m, "float64 is not supported"));
  CHECK(testing::contains(m, "\"bfloat16\""));
  c.train.device = "cpu";
  c.train.dtype = "bfloat16";
  m = testing::error_of([&] { validate_config(c); });
  CHECK(testing::contains(m, "needs train.device \"cuda\""));
  c.train.dtype = "float32";
  c.train.device = "tpu";
  CHECK(testing::contains(testing::error_of([&] { validate_config(c); }), "train.device"));
  c.train.device = "cuda";
  c.train.dtype = "bfloat16";
  CHECK(testing::error_of([&] { validate_config(c); }).empty());
  apply_override(c, "train.device=cpu");
  CHECK(c.train.device == "cpu");

  Transformer model(testing::tiny_model_config(), DType::F32, 3);
  CHECK(model.device() == Device::CPU);
  CHECK(testing::contains(testing::error_of([&] { model.set_compute_dtype(DType::BF16); }), "needs the parameters on cuda"));
  Transformer model64(testing::tiny_model_config(), DType::F64, 3);
  CHECK(testing::contains(testing::error_of([&] { model64.set_compute_dtype(DType::BF16); }), "not supported"));
}

TEST_CASE("cuda train: cast's gradient is the output gradient converted back (CPU)") {
  const Var x(Tensor::from_vector({1.0, -2.5, 3.0 + 1e-9}, {3}, DType::F64), true);
  const Var y = cast(x, DType::F32);
  CHECK(y.dtype() == DType::F32);
  CHECK(y.value().at(2) == static_cast<double>(static_cast<float>(3.0 + 1e-9)));
  const Var L = sum(mul(y, Var(Tensor::from_vector({0.5, 2.0, -1.0}, {3}, DType::F32))));
  L.backward();
  CHECK(x.grad().dtype() == DType::F64);
  CHECK(x.grad().to_vector() == std::vector<double>{0.5, 2.0, -1.0});
  CHECK(testing::contains(testing::error_of([] { cast(Var(Tensor::from_ints({1}, {1})), DType::F32); }), "cast"));
}

// ---------------------------------------------------------------------------------------------
// The optimizer kernels against the CPU

TEST_CASE("cuda train: AdamW and gradient clipping on CUDA match the CPU") {
  if (skip_without_device("AdamW / clip_grad_norm on CUDA")) return;
  // The norm's sum of squares: one block up to 8192 elements, then partial sums per 8192-element
  // chunk (100003: 13 chunks, the last short), and chunks longer than 8192 past 1024 of them.
  const std::vector<Shape> shapes = {{37, 13}, {13}, {1}, {5, 3, 7}, {100003}, {8388609}};
  std::vector<Var> cpu_params, gpu_params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Tensor p = Tensor::randn(shapes[i], DType::F32, 100 + i);
    cpu_params.emplace_back(p.clone(), true, "p" + std::to_string(i));
    gpu_params.emplace_back(p.to_device(), true, "p" + std::to_string(i));
  }
  AdamWOptions o;
  o.weight_decay = 0.1;
  AdamW cpu_opt(cpu_params, o), gpu_opt(gpu_params, o);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (step == 2 && i == 1) continue;  // an undefined grad: skipped entirely on both devices
      const Tensor g = Tensor::randn(shapes[i], DType::F32, 1000 + 10 * step + i, 0.0, step == 1 ? 5.0 : 0.1);
      cpu_params[i].grad_buffer().copy_from(g);
      gpu_params[i].grad_buffer().copy_from(g.to_device());
    }
    const double norm_cpu = global_grad_norm(cpu_params), norm_gpu = global_grad_norm(gpu_params);
    CHECK(norm_gpu == doctest::Approx(norm_cpu).epsilon(1e-12));
    const double max_norm = 1000.0;  // step 1's gradients (stddev 5, norm ~14600) are clipped, the others (~290) not
    const double clipped_cpu = clip_grad_norm(cpu_params, max_norm);
    const Tensor clipped_gpu = clip_grad_norm_on_device(gpu_params, max_norm);
    CHECK(clipped_gpu.device() == Device::CUDA);
    CHECK(clipped_gpu.item() == doctest::Approx(clipped_cpu).epsilon(1e-12));
    if (step == 1) CHECK(global_grad_norm(gpu_params) == doctest::Approx(max_norm).epsilon(1e-6));
    for (size_t i = 0; i < shapes.size(); ++i)
      if (cpu_params[i].grad().defined()) CHECK(max_abs_diff(cpu_params[i].grad(), gpu_params[i].grad()) <= 1e-6);
    cpu_opt.step(1e-2);
    gpu_opt.step(1e-2);
    for (size_t i = 0; i < shapes.size(); ++i) {
      INFO("step ", step, " parameter ", i);
      // The same double arithmetic rounded once to float32: at most a float32 ulp apart (|p| < 8).
      CHECK(max_abs_diff(cpu_params[i].value(), gpu_params[i].value()) <= 1e-6);
      CHECK(max_abs_diff(cpu_opt.first_moments()[i], gpu_opt.first_moments()[i]) <= 1e-6);
      CHECK(max_abs_diff(cpu_opt.second_moments()[i], gpu_opt.second_moments()[i]) <= 1e-6);
      CHECK(gpu_opt.first_moments()[i].device() == Device::CUDA);
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      cpu_params[i].zero_grad();
      gpu_params[i].zero_grad();
    }
  }
  // A parameter that did not move on the step its grad was undefined moved on the others.
  CHECK(max_abs_diff(cpu_params[1].value(), gpu_params[1].value()) <= 1e-6);
  // Mixed devices, and bfloat16 parameters on CUDA, are refused by name.
  CHECK(testing::contains(testing::error_of([&] { (void)AdamW({cpu_params[0], gpu_params[1]}); }), "is on cuda but the first is on cpu"));
  CHECK(testing::contains(testing::error_of([&] { (void)AdamW({Var(Tensor::zeros({3}, DType::BF16, Device::CUDA), true)}); }),
                          "CUDA parameters are float32"));
}

TEST_CASE("cuda train: non-finite counts of many tensors in few launches match the CPU's") {
  if (skip_without_device("count_nonfinite_each on CUDA")) return;
  // 70 tensors (3 launches of at most 32), float32 and bfloat16, empty ones, sizes to 300000,
  // with NaN and infinities planted at the ends and in the middle of some.
  std::vector<Tensor> cpu, gpu;
  for (int i = 0; i < 70; ++i) {
    const int64_t n = i % 9 == 4 ? 0 : (i * 7919) % 300001 + 1;
    std::vector<double> v(static_cast<size_t>(n), 0.5);
    if (n > 0 && i % 3 == 0) v.back() = std::nan("");
    if (n > 2 && i % 5 == 0) v[static_cast<size_t>(n / 2)] = -INFINITY, v.front() = INFINITY;
    const Tensor t = Tensor::from_vector(v, {n}, DType::F32).to(i % 2 ? DType::BF16 : DType::F32);
    cpu.push_back(t.to(DType::F32));
    gpu.push_back(t.to_device());
  }
  const Tensor cpu_counts = Tensor::zeros({70}, DType::I32);
  const Tensor gpu_counts = Tensor::zeros({70}, DType::I32, Device::CUDA);
  kernels::count_nonfinite_each(cpu, cpu_counts);
  kernels::count_nonfinite_each(gpu, gpu_counts);
  CHECK(gpu_counts.to_ints() == cpu_counts.to_ints());
  int planted = 0;
  for (int32_t c : cpu_counts.to_ints()) planted += c;
  CHECK(planted > 30);  // the check has something to find
  CHECK(testing::contains(testing::error_of([&] { kernels::count_nonfinite_each(gpu, Tensor::zeros({69}, DType::I32, Device::CUDA)); }),
                          "70 tensors"));
}

TEST_CASE("cuda train: hard route, adaptive gamma and the non-finite guard match the CPU") {
  if (skip_without_device("router / regulariser / non-finite guard on CUDA")) return;
  const Tensor p = Tensor::rand_uniform({3, 113}, DType::F32, 4);
  CHECK(hard_route(p.to_device(), 0.5).to_vector() == hard_route(p, 0.5).to_vector());
  const Tensor nll = Tensor::rand_uniform({3 * 113}, DType::F32, 5, 0.0, 4.0);
  const Tensor diff = Tensor::rand_uniform({3, 113}, DType::F32, 6, 0.0, 0.1);
  RegularizerConfig rc;
  const Tensor g_cpu = adaptive_gamma(nll, diff, rc, 1e-3);
  const Tensor g_gpu = adaptive_gamma(nll.to_device(), diff.to_device(), rc, 1e-3);
  CHECK(max_abs_diff(g_cpu, g_gpu) <= 1e-12);

  // The regulariser of one "layer": the loss, ratios and mean gamma agree.
  for (const std::string mode : {"adaptive", "fixed"}) {
    rc.mode = mode;
    const Tensor logits = Tensor::randn({3, 113}, DType::F32, 7, 0.0, 2.0);
    const Var cpu_logit(logits, true), gpu_logit(logits.to_device(), true);
    LayerRouting cpu_r{1, cpu_logit, hard_route(p, 0.5), diff};
    LayerRouting gpu_r{1, gpu_logit, hard_route(p.to_device(), 0.5), diff.to_device()};
    const RegularizerResult a = efficiency_regularizer({cpu_r}, nll, rc, 1e-2, 17);
    const RegularizerResult b = efficiency_regularizer({gpu_r}, nll.to_device(), rc, 1e-2, 17);
    INFO("mode ", mode);
    CHECK(b.ratio == doctest::Approx(a.ratio).epsilon(1e-12));
    CHECK(b.effective_ratio == doctest::Approx(a.effective_ratio).epsilon(1e-12));
    CHECK(b.layers[0].mean_gamma == doctest::Approx(a.layers[0].mean_gamma).epsilon(1e-6));
    CHECK(b.loss.value().item() == doctest::Approx(a.loss.value().item()).epsilon(1e-6));
    a.loss.backward();
    b.loss.backward();
    CHECK(max_abs_diff(cpu_logit.grad(), gpu_logit.grad()) <= 1e-9);
    const RegularizerResult unread = efficiency_regularizer({gpu_r}, nll.to_device(), rc, 1e-2, 17, false);
    CHECK(unread.ratio == 0.0);  // not read back: the statistics stay 0
    CHECK(unread.loss.value().item() == doctest::Approx(a.loss.value().item()).epsilon(1e-6));
  }

  // The non-finite guard names the first bad place on the device too.
  Tensor with_nan = Tensor::randn({2, 5}, DType::F32, 8);
  with_nan.data<float>()[7] = NAN;
  CHECK(all_finite(Tensor::randn({2, 5}, DType::F32, 8).to_device()));
  CHECK_FALSE(all_finite(with_nan.to_device()));
  CHECK_FALSE(all_finite(with_nan.to_device().to(DType::BF16)));
  ForwardResult f;
  f.layer_outputs = {Tensor::zeros({2, 5}, DType::F32, Device::CUDA), with_nan.to_device()};
  f.logits = Var(Tensor::zeros({2, 5}, DType::F32, Device::CUDA));
  const Var loss(Tensor::zeros({}, DType::F32, Device::CUDA));
  CHECK(first_nonfinite(f, loss, {}) == "the output of layer 1 (of 2)");
  f.layer_outputs[1] = Tensor::zeros({2, 5}, DType::F32, Device::CUDA);
  const Var w(Tensor::zeros({2, 5}, DType::F32, Device::CUDA), true, "w");
  w.grad_buffer().copy_from(with_nan.to_device());
  CHECK(first_nonfinite(f, loss, {w}) == "the gradient of w");
  w.zero_grad();
  CHECK(first_nonfinite(f, loss, {w}).empty());
}

// ---------------------------------------------------------------------------------------------
// Training a tiny model: CPU float32 vs CUDA float32 vs CUDA bfloat16

// A tiny model with every layer a switch layer and the adaptive regulariser: the whole training
// step of train/trainer.cpp (forward with routing, loss + regulariser, backward, clipping, AdamW).
ModelConfig tiny_switch_config() {
  ModelConfig c = testing::tiny_model_config();
  c.vocab_size = 23;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 48;
  c.sliding_window = 4;
  c.layer_types = {"switch", "switch"};
  c.max_position_embeddings = 32;
  c.initializer_range = 0.1;
  c.router_init_std = 0.5;
  return c;
}

// The losses of 20 steps on fixed batches (ids, targets on the host, as the loader makes them).
std::vector<double> train_losses(Device device, DType compute, int steps) {
  const ModelConfig mc = tiny_switch_config();
  Transformer model(mc, DType::F32, 42);
  model.to(device);
  if (compute != DType::F32) model.set_compute_dtype(compute);
  AdamW optimizer(model.parameters(), AdamWOptions{});
  RegularizerConfig rc;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    const Tensor tokens = testing::random_ids({4, 17}, mc.vocab_size, 700 + s % 5);  // 5 batches, cycled
    std::vector<int32_t> t = tokens.to_ints(), in, out;
    for (int b = 0; b < 4; ++b)
      for (int i = 0; i < 16; ++i) {
        in.push_back(t[b * 17 + i]);
        out.push_back(t[b * 17 + i + 1]);
      }
    const Tensor ids = Tensor::from_ints(in, {4, 16}), targets = Tensor::from_ints(out, {4, 16});
    optimizer.zero_grad();
    const ForwardResult f = model.forward_with_routing(ids, true);
    Tensor nll;
    const Var loss = next_token_loss(f.logits, targets, &nll);
    const RegularizerResult reg = efficiency_regularizer(f.routing, nll, rc, 1e-2, mc.sliding_window);
    add(loss, reg.loss).backward();
    REQUIRE(first_nonfinite(f, loss, model.parameters()).empty());
    clip_grad_norm(model.parameters(), 1.0);
    optimizer.step(3e-3);
    losses.push_back(loss.value().item());
  }
  return losses;
}

TEST_CASE("cuda train: a tiny switch model trains the same on CPU float32, CUDA float32 and CUDA bfloat16") {
  if (skip_without_device("20 training steps, CPU vs CUDA")) return;
  const int steps = 20;
  const std::vector<double> cpu = train_losses(Device::CPU, DType::F32, steps);
  const std::vector<double> f32 = train_losses(Device::CUDA, DType::F32, steps);
  const std::vector<double> bf16 = train_losses(Device::CUDA, DType::BF16, steps);
  double worst32 = 0.0, worst16 = 0.0;
  for (int s = 0; s < steps; ++s) {
    worst32 = std::max(worst32, std::fabs(f32[s] - cpu[s]) / cpu[s]);
    worst16 = std::max(worst16, std::fabs(bf16[s] - cpu[s]) / cpu[s]);
  }
  char line[160];
  std::snprintf(line, sizeof line, "loss step 1 / %d: cpu %.5f -> %.5f; worst relative diff: cuda f32 %.2e, cuda bf16 %.2e",
                steps, cpu.front(), cpu.back(), worst32, worst16);
  MESSAGE(line);
  CHECK(cpu.back() < cpu.front() - 0.05);  // it learns
  CHECK(worst32 < 1e-4);                   // float32: the same arithmetic up to summation order
  CHECK(worst16 < 2e-2);                   // bfloat16 activations: 2^-8 relative per rounding
}

// ---------------------------------------------------------------------------------------------
// Checkpoints from the device

TEST_CASE("cuda train: a checkpoint saved from CUDA loads back exactly, onto CUDA and the CPU") {
  if (skip_without_device("checkpoint round trip from CUDA")) return;
  testing::TempDir dir("swiattn_cuda_ckpt");
  Config run;
  run.model = tiny_switch_config();
  run.train.device = "cuda";
  run.train.dtype = "bfloat16";
  Transformer model(run.model, DType::F32, 5);
  model.to(Device::CUDA);
  model.set_compute_dtype(DType::BF16);
  AdamW optimizer(model.parameters(), AdamWOptions{});
  const Tensor ids = testing::random_ids({2, 9}, run.model.vocab_size, 3);
  next_token_loss(model.forward(ids), ids).backward();
  optimizer.step(1e-2);
  const std::string path = (dir.path / "ckpt").string();
  save_checkpoint(path, model, run, &optimizer, nlohmann::json{{"step", 1}});

  Transformer on_gpu(run.model, DType::F32, 99), on_cpu(run.model, DType::F32, 99);
  on_gpu.to(Device::CUDA);
  AdamW gpu_opt(on_gpu.parameters(), AdamWOptions{});
  load_model_weights(path, on_gpu);
  load_optimizer_state(path, gpu_opt, on_gpu);
  load_model_weights(path, on_cpu);
  CHECK(gpu_opt.steps_taken() == 1);
  for (size_t i = 0; i < model.parameters().size(); ++i) {
    const Tensor want = model.parameters()[i].value().to_host();
    INFO(model.parameters()[i].name());
    CHECK(on_gpu.parameters()[i].value().device() == Device::CUDA);
    CHECK(max_abs_diff(on_gpu.parameters()[i].value(), want) == 0.0);
    CHECK(max_abs_diff(on_cpu.parameters()[i].value(), want) == 0.0);
    CHECK(max_abs_diff(gpu_opt.first_moments()[i], optimizer.first_moments()[i]) == 0.0);
    CHECK(max_abs_diff(gpu_opt.second_moments()[i], optimizer.second_moments()[i]) == 0.0);
  }
  // The CPU copy computes the same logits as the device model in float32, and the device model
  // takes its ids from either device.
  on_gpu.set_compute_dtype(DType::F32);
  const Tensor gpu_logits = on_gpu.forward(ids).value();
  CHECK(max_abs_diff(gpu_logits, on_cpu.forward(ids).value()) < 1e-4);
  CHECK(max_abs_diff(on_gpu.forward(ids.to_device()).value(), gpu_logits) < 1e-6);
}

}  // namespace
}  // namespace swiattn
