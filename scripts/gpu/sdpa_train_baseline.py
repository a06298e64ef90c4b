#!/usr/bin/env python3
"""scripts/gpu/sdpa_train_baseline.py: PyTorch SDPA full causal attention, forward + backward
(bf16), timed with CUDA events (warm-up, then the median of --reps), for the flash backward's
comparison (notes: B1b-perf). Prints one JSON line per (T, backend); the fastest is the baseline.

  python3 scripts/gpu/sdpa_train_baseline.py --T 4096,8192,16384,32768 --B 1 --Hq 16 --Hkv 8 --D 128
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", default="4096,8192,16384,32768")
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--Hq", type=int, default=16)
    ap.add_argument("--Hkv", type=int, default=8)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    for T in [int(x) for x in a.T.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(T)
        q = torch.randn(a.B, a.Hq, T, a.D, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
        k = torch.randn(a.B, a.Hkv, T, a.D, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
        v = torch.randn(a.B, a.Hkv, T, a.D, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
        dout = torch.randn(a.B, a.Hq, T, a.D, device="cuda", dtype=torch.bfloat16, generator=g)
        flops = 3.5 * 4 * a.D * a.Hq * a.B * T * (T + 1) / 2  # forward 4 D per (query, key); backward 2.5x
        for name, be in backends.items():
            def step():
                with sdpa_kernel(be):
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                q.grad = k.grad = v.grad = None
                o.backward(dout)
            try:
                ms = time_ms(step, a.warmup, a.reps)
            except Exception as e:  # a backend that refuses this shape
                print(json.dumps({"kind": "sdpa-train", "T": T, "backend": name, "error": str(e)[:120]}))
                continue
            print(json.dumps({"kind": "sdpa-train", "T": T, "B": a.B, "Hq": a.Hq, "Hkv": a.Hkv, "D": a.D,
                              "backend": name, "ms": ms, "tflops": flops / ms / 1e9}), flush=True)


if __name__ == "__main__":
    main()
