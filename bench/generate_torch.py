#!/usr/bin/env python3
"""bench/generate_torch.py: the PyTorch baseline of `swiattn bench generate` (bench/generate.cpp):
the same model (model/transformer.h; the layout of bench/train_twin.py) generating greedily in a
loop of one forward per token over a preallocated KV cache, attention by SDPA. Prints one JSON line
per (model, context) with the same fields as the C++ bench, so bench/run.py can put them side by
side.

The model, per layer (pre-norm; residual stream float32, matmuls bfloat16 as our mixed precision):
  u = RMSNorm(x); q = RoPE(u Wq^T), k = RoPE(u Wk^T), v = u Wv^T; x += Attn(q, k, v) Wo^T;
  x += W2(silu(W1 RMSNorm(x)) * W3 RMSNorm(x)); logits = RMSNorm(x) E^T (tied embedding).
  "switch" layers route each token: m = [w_r . u + b_r > 0]; m = 1 reads every cached key, m = 0
  the w most recent (itself included). "full" layers read every cached key.
Decoding: the cache (L, S, Hkv, P, D) bfloat16 is allocated once; step t writes k, v at row t and
attends over rows [0, t]:
  "full"    SDPA(q, K[:t+1], V[:t+1]) with enable_gqa (the fastest decode SDPA has);
  "switch"  one SDPA over K[:t+1] with a boolean mask per sequence (FA rows: every key; SWA rows:
            the window), the G query heads of a kv head folded into the query length so no GQA
            expansion is needed: what "the same model in PyTorch" costs without a custom kernel
            (every key is read whatever the route).
Prefill: the prompts through the same layers at once (full: causal SDPA; switch: both branches,
causal SDPA and SDPA with the window mask, then the route selects), k, v stored in the cache.
Routers are calibrated as the C++ bench does (per layer, the (1 - r) quantile of the logits of a
calibration prompt subtracted from b_r, two passes). Greedy: argmax on the device, fed back without
a host round trip. Times: wall clock with torch.cuda.synchronize() at both ends of each phase.

Usage: python3 bench/generate_torch.py [--models swiattn,full] [--context 8192] [--S 16]
                                      [--new-tokens 256] [--r 0.13] [sizes as the C++ bench]
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def rope_tables(positions, D, theta, device):
    """cos, sin (len(positions), D/2) float32 for the half-split rotation (kernels/cpu/norm.cpp)."""
    inv_freq = theta ** (-2.0 * torch.arange(D // 2, dtype=torch.float64, device=device) / D)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def rope(x, cos, sin):  # x (B, T, H, D); cos, sin (T, D/2)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).to(x.dtype)


def rms_norm(x, gain, eps):  # float32 in, float32 out (the gains stay float32, as ours)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


class Generator:
    def __init__(self, a, kind, device):
        g = torch.Generator(device=device).manual_seed(a.seed)
        self.a, self.kind, self.device = a, kind, device
        C, H, Hkv, D, Fh, V, L = a.hidden, a.Hq, a.Hkv, a.D, a.ffn, a.vocab, a.layers
        std, rstd = 0.02, 0.02 / math.sqrt(2.0 * L)
        bf = torch.bfloat16
        mk = lambda *shape, s=std: (torch.randn(*shape, generator=g, device=device) * s).to(bf)
        self.embed32 = torch.randn(V, C, generator=g, device=device) * std  # the lookup reads float32
        self.embed = self.embed32.to(bf)                                    # the tied output head
        self.layers = []
        for _ in range(L):
            p = {"attn_norm": torch.ones(C, device=device), "mlp_norm": torch.ones(C, device=device),
                 "q": mk(H * D, C), "k": mk(Hkv * D, C), "v": mk(Hkv * D, C), "o": mk(C, H * D, s=rstd),
                 "w1": mk(Fh, C), "w3": mk(Fh, C), "w2": mk(C, Fh, s=rstd)}
            if kind == "swiattn":
                p["router_w"] = mk(1, C)
                p["router_b"] = torch.zeros(1, device=device)
            self.layers.append(p)
        self.final_norm = torch.ones(C, device=device)

    # ---- one layer's attention in both modes ----
    def route(self, p, u):  # u (B, T, C) bf16 -> (B, T) bool, m = 1: full attention
        return (F.linear(u, p["router_w"]).float().squeeze(-1) + p["router_b"]) > 0.0

    def router_logits(self, p, u):
        return F.linear(u, p["router_w"]).float().squeeze(-1) + p["router_b"]

    def prefill_attention(self, p, q, k, v, route, window_mask):  # (1, T, H|Hkv, D) -> (1, T, H, D)
        G = self.a.Hq // self.a.Hkv
        qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        o_full = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=True)
        if route is None:
            return o_full.transpose(1, 2)
        ke, ve = kt.repeat_interleave(G, 1), vt.repeat_interleave(G, 1)  # masks with GQA: expand K, V
        o_swa = F.scaled_dot_product_attention(qt, ke, ve, attn_mask=window_mask)
        return torch.where(route[:, None, :, None], o_full, o_swa).transpose(1, 2)

    def layer_forward(self, p, x, cos, sin, cache_k, cache_v, t=None, window_mask=None, logits_out=None):
        """x (B, T, C) float32; cos, sin (T, D/2) at the rows' positions; t None: prefill (B = 1),
        else a decode step at position t for every sequence (T = 1)."""
        a = self.a
        B, T, _ = x.shape
        H, Hkv, D = a.Hq, a.Hkv, a.D
        u = rms_norm(x, p["attn_norm"], 1e-6).to(torch.bfloat16)
        q = rope(F.linear(u, p["q"]).view(B, T, H, D), cos, sin)
        k = rope(F.linear(u, p["k"]).view(B, T, Hkv, D), cos, sin)
        v = F.linear(u, p["v"]).view(B, T, Hkv, D)
        route = self.route(p, u) if "router_w" in p else None
        if logits_out is not None and route is not None:
            logits_out.append(self.router_logits(p, u))
        if t is None:  # prefill, one sequence per call
            if cache_k is not None:
                cache_k[:, :, :T] = k.transpose(1, 2)
                cache_v[:, :, :T] = v.transpose(1, 2)
            o = self.prefill_attention(p, q, k, v, route, window_mask)
        else:  # one token per sequence, every sequence at position t
            cache_k[:, :, t] = k[:, 0]
            cache_v[:, :, t] = v[:, 0]
            kc, vc = cache_k[:, :, : t + 1], cache_v[:, :, : t + 1]  # (S, Hkv, t+1, D)
            if route is None:
                o = F.scaled_dot_product_attention(q.transpose(1, 2), kc, vc, enable_gqa=True).transpose(1, 2)
            else:
                G = H // Hkv
                mask = route[:, 0, None] | (self.key_index[None, : t + 1] > t - a.w)  # (S, t+1)
                qg = q[:, 0].view(B, Hkv, G, D)  # the G heads of a kv head as G queries
                o = F.scaled_dot_product_attention(qg, kc, vc, attn_mask=mask[:, None, None, :])
                o = o.reshape(B, 1, H, D)
                self.routes_taken.append(route[:, 0])
        x = x + F.linear(o.reshape(B, T, H * D), p["o"]).float()
        h = rms_norm(x, p["mlp_norm"], 1e-6).to(torch.bfloat16)
        return x + F.linear(F.silu(F.linear(h, p["w1"])) * F.linear(h, p["w3"]), p["w2"]).float()

    def logits(self, x):  # (B, C) float32 -> (B, V)
        return F.linear(rms_norm(x, self.final_norm, 1e-6).to(torch.bfloat16), self.embed)

    def window_mask(self, T):
        i = torch.arange(T, device=self.device)
        return (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < self.a.w)

    @torch.no_grad()
    def calibrate(self, r, tokens):
        if self.kind != "swiattn":
            return
        T = tokens.numel()
        mask = self.window_mask(T)
        cos, sin = rope_tables(torch.arange(T, device=self.device), self.a.D, 10000.0, self.device)
        for _ in range(2):
            logits = []
            x = F.embedding(tokens[None], self.embed32)
            for p in self.layers:
                x = self.layer_forward(p, x, cos, sin, None, None, None, mask, logits)
            for p, s in zip(self.layers, logits):
                p["router_b"] -= torch.quantile(s.flatten().float(), min(max(1.0 - r, 0.0), 1.0))

    @torch.no_grad()
    def generate(self, prompts, new_tokens):
        """prompts (S, T) int64 -> (prefill_s, decode_s, fa ratio of the decode steps, cache GB)."""
        a = self.a
        S, T = prompts.shape
        P = T + new_tokens - 1
        cache = [(torch.empty(S, a.Hkv, P, a.D, dtype=torch.bfloat16, device=self.device),
                  torch.empty(S, a.Hkv, P, a.D, dtype=torch.bfloat16, device=self.device)) for _ in self.layers]
        self.key_index = torch.arange(P, device=self.device)
        self.routes_taken = []
        torch.cuda.synchronize()
        start = time.perf_counter()
        mask = self.window_mask(T) if self.kind == "swiattn" else None
        cos, sin = rope_tables(torch.arange(T, device=self.device), a.D, 10000.0, self.device)
        last = []
        for s in range(S):  # one sequence per forward (the window mask is (T, T))
            x = F.embedding(prompts[s : s + 1], self.embed32)
            for p, (ck, cv) in zip(self.layers, cache):
                x = self.layer_forward(p, x, cos, sin, ck[s : s + 1], cv[s : s + 1], None, mask)
            last.append(x[:, -1])
        token = self.logits(torch.cat(last)).argmax(-1)  # (S,)
        torch.cuda.synchronize()
        prefill_s = time.perf_counter() - start
        cos_all, sin_all = rope_tables(self.key_index, a.D, 10000.0, self.device)  # (P, D/2), once
        torch.cuda.synchronize()
        start = time.perf_counter()
        for n in range(1, new_tokens):
            t = T + n - 1  # every sequence's position (a host int: no device round trip)
            x = F.embedding(token[:, None], self.embed32)
            for p, (ck, cv) in zip(self.layers, cache):
                x = self.layer_forward(p, x, cos_all[t : t + 1], sin_all[t : t + 1], ck, cv, t)
            token = self.logits(x[:, 0]).argmax(-1)
        torch.cuda.synchronize()
        decode_s = time.perf_counter() - start
        ratio = torch.stack(self.routes_taken).float().mean().item() if self.routes_taken else 1.0
        return prefill_s, decode_s, ratio, sum(k.numel() * 2 * 2 for k, _ in cache) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="swiattn,full")
    ap.add_argument("--context", default="8192")
    ap.add_argument("--S", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--r", type=float, default=0.13)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--Hq", type=int, default=16)
    ap.add_argument("--Hkv", type=int, default=8)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--w", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("generate_torch.py: SKIPPED (no CUDA device visible to PyTorch)", file=sys.stderr)
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    contexts = [int(c) for c in a.context.split(",")]
    for kind in a.models.split(","):
        if kind not in ("swiattn", "full"):
            raise SystemExit(f"generate_torch.py: --models: swiattn or full, got {kind}")
        model = Generator(a, kind, dev)
        g = torch.Generator(device=dev).manual_seed(a.seed + 1)
        model.calibrate(a.r, torch.randint(0, a.vocab, (min(4096, max(contexts)),), generator=g, device=dev))
        for T in contexts:
            prompts = torch.randint(0, a.vocab, (a.S, T), generator=g, device=dev)
            prefill_s, decode_s, ratio, kv_gb = model.generate(prompts, a.new_tokens)
            print(json.dumps({"kind": "generate", "impl": "pytorch", "model": kind, "S": a.S, "context": T,
                              "new_tokens": a.new_tokens, "layers": a.layers, "hidden": a.hidden, "Hq": a.Hq,
                              "Hkv": a.Hkv, "D": a.D, "ffn": a.ffn, "vocab": a.vocab, "w": a.w,
                              "r_target": a.r if kind == "swiattn" else 1.0, "prefill_s": round(prefill_s, 4),
                              "decode_s": round(decode_s, 4),
                              "decode_tokens_per_s": round(a.S * (a.new_tokens - 1) / decode_s, 1),
                              "ms_per_step": round(1e3 * decode_s / max(1, a.new_tokens - 1), 4),
                              "fa_ratio_decode": round(ratio, 4), "kv_cache_gb": round(kv_gb, 3),
                              "torch": torch.__version__}), flush=True)
        del model
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
