#!/usr/bin/env python3
"""python/test_parity.py: the C++ model against our PyTorch model (python/swiattn_torch.py).

    python3 python/test_parity.py [--build build] [--work DIR] [--data-cache DIR]

Run by `make test` (through scripts/torch-parity.sh, which finds a python3 with torch). For each
case below: `swiattn train` trains a small model a few steps (every layer type, GQA, a switch layer
whose routes are mixed), then `swiattn_step_dump` (tests/parity/step_dump.cpp) runs one training
step of the checkpoint in float64 on a fixed batch and writes its logits, routes, losses and
gradients; PyTorch loads the same checkpoint in float64, runs the same step with torch.autograd
(the STE and the regulariser written in PyTorch) and every quantity is compared: the residual
stream after each layer, logits, router logits, routes (exactly), per-token NLL, the losses, the
gradient of every parameter. Then `swiattn generate` and the PyTorch model sample from the
checkpoint with the same seed, sampled and greedy, and must print the same text.
Exits 1 on any mismatch; the last line is "parity: N passed, M failed".
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import torch

import swiattn_torch as st

# float64 on both sides: the two computations differ only in summation order (~1e-15 relative).
# Any misreading of the model (an eps, a sign, a mask, a head mapping) is orders of magnitude above.
FORWARD_TOL = 1e-10  # max |ours - torch| / max |torch| for activations, logits, losses
GRAD_TOL = 1e-9      # the same for each parameter's gradient

SEED = 1
COMMON_TRAIN = {"train.steps": 5, "train.batch_size": 4, "train.eval_batches": 1,
                "train.sample_tokens": 0, "train.log_interval": 5, "train.threads": 1,
                "train.warmup_steps": 2, "train.learning_rate": 0.01, "train.seed": SEED}
CASES = [
    {"name": "A", "what": "float32 checkpoint, untied head, full/switch/swa/switch, GQA 4:2, "
                          "router on u_t (detached), adaptive regulariser",
     "T": 57,  # inputs per row of the parity batch (odd on purpose), > window
     "set": {**COMMON_TRAIN, "train.seq_len": 48, "train.dtype": "float32",
             "model.hidden_size": 32, "model.num_hidden_layers": 4,
             "model.layer_types": '["full","switch","swa","switch"]',
             "model.num_attention_heads": 4, "model.num_key_value_heads": 2, "model.head_dim": 8,
             "model.intermediate_size": 64, "model.sliding_window": 16,
             "model.max_position_embeddings": 64, "model.tie_word_embeddings": "false",
             "model.router_init_std": 0.3, "reg.mode": "adaptive", "reg.gamma_base": 0.05}},
    {"name": "B", "what": "float64 checkpoint, tied head, switch/full/swa, GQA 3:1, router on x_t "
                          "(not detached), tau 0.45, eps 1e-5, rope base 500, fixed regulariser",
     "T": 33,
     "set": {**COMMON_TRAIN, "train.seq_len": 32, "train.dtype": "float64",
             "model.hidden_size": 24, "model.num_hidden_layers": 3,
             "model.layer_types": '["switch","full","swa"]',
             "model.num_attention_heads": 3, "model.num_key_value_heads": 1, "model.head_dim": 8,
             "model.intermediate_size": 40, "model.sliding_window": 8,
             "model.max_position_embeddings": 40, "model.tie_word_embeddings": "true",
             "model.router_input": "residual", "model.router_detach_input": "false",
             "model.router_threshold": 0.45, "model.router_init_std": 2.0,
             "model.rms_norm_eps": 1e-5, "model.rope_theta": 500.0,
             "reg.mode": "fixed", "reg.gamma_base": 0.02}},
]
# The parity batch: three rows of English text (bytes), different starts.
TEXT = (b"It is a truth universally acknowledged, that a single man in possession of a good "
        b"fortune, must be in want of a wife. Call me Ishmael. Some years ago, never mind how "
        b"long precisely, having little or no money in my purse, and nothing particular to "
        b"interest me on shore, I thought I would sail about a little and see the watery part.")


class Report:
    def __init__(self):
        self.rows, self.failed = [], 0

    def check(self, case, quantity, ok, detail):
        self.rows.append((case, quantity, "ok" if ok else "FAIL", detail))
        self.failed += 0 if ok else 1
        if not ok:
            print(f"FAIL [{case}] {quantity}: {detail}", flush=True)

    def close(self, ours, theirs, case, quantity, tol):
        """max |ours - theirs| relative to max |theirs| (theirs: PyTorch)."""
        ours, theirs = ours.double(), theirs.detach().double()
        if ours.shape != theirs.shape:
            return self.check(case, quantity, False, f"shape {tuple(ours.shape)} vs {tuple(theirs.shape)}")
        err = (ours - theirs).abs().max().item() if ours.numel() else 0.0
        scale = theirs.abs().max().item() if theirs.numel() else 0.0
        rel = err / scale if scale > 0 else err
        self.check(case, quantity, rel <= tol and scale > 0,
                   f"max err {err:.2e} of max {scale:.2e}: rel {rel:.1e} (tol {tol:.0e})"
                   + ("" if scale > 0 else ", all zero: nothing compared"))


def run(cmd, env, what):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.stdout.write(p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace"))
        raise SystemExit(f"parity: {what} failed (exit {p.returncode}): {' '.join(cmd)}")
    return p.stdout


def parity_case(case, args, env, report):
    name = case["name"]
    folder = os.path.join(args.work, name)
    shutil.rmtree(folder, ignore_errors=True)
    sets = dict(case["set"])
    if args.data_cache:
        sets["data.cache_dir"] = args.data_cache
    cmd = [args.swiattn, "train", "--out", folder]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    run(cmd, env, f"[{name}] swiattn train")
    ckpt = os.path.join(folder, "checkpoint")

    # The batch, and one step in C++ (float64).
    T = case["T"]
    rows = [list(TEXT[start:start + T + 1]) for start in (0, 101, 211)]
    ids_file = os.path.join(folder, "parity_ids.txt")
    with open(ids_file, "w") as f:
        f.write("".join(" ".join(map(str, r)) + "\n" for r in rows))
    dump_file = os.path.join(folder, "step_dump.safetensors")
    run([args.step_dump, "--checkpoint", ckpt, "--ids", ids_file, "--out", dump_file], env,
        f"[{name}] swiattn_step_dump")
    ours, meta = st.read_safetensors(dump_file)

    # The same step in PyTorch (float64), the reg settings read from the run's own files.
    with open(os.path.join(ckpt, "run_config.json")) as f:
        reg = json.load(f)["reg"]
    with open(os.path.join(ckpt, "trainer_state.json")) as f:
        gamma_base = json.load(f).get("gamma_base", reg["gamma_base"])
    report.check(name, "reg settings", meta["reg_mode"] == reg["mode"]
                 and float(meta["gamma_base"]) == gamma_base,
                 f"mode {reg['mode']}, gamma_base {gamma_base:.3g} (C++ used {meta['reg_mode']}, "
                 f"{float(meta['gamma_base']):.3g})")
    model = st.SwiAttnForCausalLM.from_pretrained(ckpt, dtype=torch.float64)
    inputs = torch.tensor([r[:-1] for r in rows])
    targets = torch.tensor([r[1:] for r in rows])
    report.check(name, "batch", torch.equal(ours["inputs"].long(), inputs)
                 and torch.equal(ours["targets"].long(), targets), f"{tuple(inputs.shape)} tokens")
    out = model(inputs)
    loss_lm, nll = st.next_token_loss(out.logits, targets)
    regularizer = st.efficiency_regularizer(out.routing, nll, reg["mode"], gamma_base,
                                            reg["eps"], reg["alpha"])
    loss = loss_lm + regularizer if regularizer is not None else loss_lm
    loss.backward()

    for l, x in enumerate(out.layer_outputs):
        report.close(ours[f"layer_output.{l}"], x, name, f"residual after layer {l} "
                     f"({model.config.layer_types[l]})", FORWARD_TOL)
    report.close(ours["logits"], out.logits, name, "logits", FORWARD_TOL)
    window, mixed_layers = model.config.sliding_window, 0
    for r in out.routing:
        p = f"routing.{r.layer}."
        mismatched = int((ours[p + "route"] != r.route).sum())
        margin = (r.prob - model.config.router_threshold).abs().min().item()
        late = r.route[:, window:].mean().item()  # FA ratio at t >= w, where the branches differ
        mixed_layers += 0 < late < 1
        report.check(name, f"routes of layer {r.layer}", mismatched == 0,
                     f"{mismatched} of {r.route.numel()} differ; FA ratio at t >= w {late:.2f}; "
                     f"closest |p - tau| {margin:.1e}")
        report.close(ours[p + "logit"], r.logit, name, f"router logits of layer {r.layer}", FORWARD_TOL)
        if p + "branch_diff_sq" in ours:
            report.close(ours[p + "branch_diff_sq"], r.branch_diff_sq, name,
                         f"||O_FULL - O_SWA||^2 of layer {r.layer}", FORWARD_TOL)
    # Both branches must really be taken somewhere, or the switch is not tested.
    report.check(name, "mixed routes", mixed_layers > 0, f"{mixed_layers} of {len(out.routing)} "
                 "switch layers send some tokens at t >= w to each branch")
    report.close(ours["per_token_nll"], nll, name, "per-token NLL", FORWARD_TOL)
    report.close(ours["loss_lm"], loss_lm, name, "LM loss", FORWARD_TOL)
    if regularizer is not None:
        report.close(ours["regularizer"], regularizer, name,
                     f"regulariser ({reg['mode']}, Eq. 7-9)", FORWARD_TOL)
    report.close(ours["loss"], loss, name, "total loss", FORWARD_TOL)
    for pname, param in model.named_parameters():
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        report.close(ours["grad." + pname], grad, name, f"grad {pname}", GRAD_TOL)

    # The reader refuses broken files (model/safetensors.cpp refuses the same ones).
    with open(os.path.join(ckpt, "model.safetensors"), "rb") as f:
        good = f.read()
    (n,) = struct.unpack("<Q", good[:8])
    header = good[8:8 + n].decode().rstrip()
    name0, entry0 = [(k, v) for k, v in json.loads(header).items() if k != "__metadata__"][0]
    twice = (header[:-1] + f',"{name0}":{json.dumps(entry0)}}}').encode()  # name0 twice
    broken = {"truncated": good[:-4],
              "a tensor named twice": struct.pack("<Q", len(twice)) + twice + good[8 + n:],
              "an unknown dtype": good.replace(b'"F32"' if b'"F32"' in good else b'"F64"', b'"F16"', 1),
              "bytes after the last tensor": good + b"\0" * 8}
    for what, data in broken.items():
        path = os.path.join(folder, "broken.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            st.read_safetensors(path)
            report.check(name, f"reader refuses {what}", False, "accepted")
        except st.CheckpointError as e:
            report.check(name, f"reader refuses {what}", True, str(e).split(": ", 1)[1][:70])

    # Generation: the binary (KV-cache decoding, checkpoint dtype) and PyTorch (full forwards).
    torch_model = st.SwiAttnForCausalLM.from_pretrained(ckpt)
    for label, temperature, cpp_temperature in (("sampled", 0.8, "0.8"), ("greedy", 0.0, "1e-9")):
        # At temperature 1e-9 the C++ sampler's weights underflow to 0 except at the argmax.
        cpp = run([args.swiattn, "generate", "--checkpoint", ckpt, "--prompt", "The ",
                   "--tokens", "30", "--temperature", cpp_temperature, "--seed", "7"], env,
                  f"[{name}] swiattn generate")
        ids = torch_model.generate(list(b"The "), 30, temperature, seed=7)
        ok = cpp == bytes(ids) + b"\n"
        report.check(name, f"generate ({label}, 30 tokens, {torch_model.embed.weight.dtype})", ok,
                     "same text" if ok else f"C++ {cpp!r} vs PyTorch {bytes(ids)!r}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(root, "build"),
                        help="the CMake build folder (default build/)")
    parser.add_argument("--swiattn", help="the swiattn binary (default BUILD/swiattn)")
    parser.add_argument("--step-dump", help="default BUILD/swiattn_step_dump")
    parser.add_argument("--work", help="scratch folder (default BUILD/torch-parity, emptied first)")
    parser.add_argument("--data-cache", default=os.path.join(root, "data", "cache"),
                        help="data.cache_dir for training (default: the repository's data/cache)")
    args = parser.parse_args()
    args.swiattn = args.swiattn or os.path.join(args.build, "swiattn")
    args.step_dump = args.step_dump or os.path.join(args.build, "swiattn_step_dump")
    args.work = args.work or os.path.join(args.build, "torch-parity")
    for binary in (args.swiattn, args.step_dump):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"parity: {binary} not found: build first (make build)")
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    print(f"torch parity: PyTorch {torch.__version__}, Python {sys.version.split()[0]}; "
          f"work folder {args.work}", flush=True)
    report = Report()
    for case in CASES:
        print(f"[{case['name']}] {case['what']}", flush=True)
        parity_case(case, args, env, report)
    width = max(len(r[1]) for r in report.rows)
    for case, quantity, status, detail in report.rows:
        print(f"  {case}  {quantity:{width}s}  {status:4s}  {detail}")
    print(f"parity: {len(report.rows) - report.failed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
