#!/usr/bin/env python3
"""bench/train_twin.py: the PyTorch twin of `swiattn train --device cuda`, for the end-to-end
benchmark (bench/e2e.sh). Same model, same step, same batch shape; it prints tokens/s and the
peak GPU memory (torch.cuda.max_memory_allocated) so the two can be put side by side.

The model follows model/transformer.h field by field (the names are our config's):
  embed (V, C) ~ N(0, initializer_range^2); per layer (pre-norm):
    u = RMSNorm(x); q = RoPE(u Wq^T), k = RoPE(u Wk^T), v = u Wv^T   GQA: H query, Hkv kv heads
    "full": causal SDPA; "swa": SDPA with the window mask (the w most recent keys, itself included);
    "switch": router s = w_r . u + b_r (router_input "normed", detached input), p = sigmoid(s),
              m = [p > tau], gate = m + p - p.detach() (STE); both branches by SDPA, mixed:
              o = gate * O_full + (1 - gate) * O_swa
    x += o Wo^T;  x += W2(silu(W1 RMSNorm(x)) * W3 RMSNorm(x))
  logits = RMSNorm(x) E^T (E = embed when tied); loss = cross-entropy + the adaptive efficiency
  regulariser (Eq. 7-9: gamma = gamma_base / (eps + NLL + alpha ||O_full - O_swa||^2), detached).
RoPE rotates the pairs (i, i + D/2) as kernels/cpu/norm.cpp does. Training: AdamW (decoupled
weight decay on matrices only, fused), global-norm clipping, bf16 autocast (fp32 master weights)
or plain fp32. The data are random byte ids (the speed does not depend on the text).

Usage: python3 bench/train_twin.py --config run.json [--steps 60] [--warmup 10] [--dtype bfloat16]
where run.json is the config `swiattn train --print-config` prints (sections model, train, reg).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def rope_tables(T, D, theta, device):
    inv_freq = theta ** (-2.0 * torch.arange(D // 2, dtype=torch.float64, device=device) / D)
    angles = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv_freq[None, :]  # (T, D/2)
    return angles.cos().float(), angles.sin().float()


def rope(x, cos, sin):  # x (B, T, H, D): (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :].to(x.dtype), sin[None, :, None, :].to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


def rms_norm(x, gain, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * gain.to(x.dtype)


class Twin(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
        C, H, Hkv, D, F_, V = (m["hidden_size"], m["num_attention_heads"], m["num_key_value_heads"],
                               m["head_dim"], m["intermediate_size"], m["vocab_size"])
        L = m["num_hidden_layers"]
        std, rstd = m["initializer_range"], m["initializer_range"] / math.sqrt(2.0 * L)
        P = lambda *shape, s=std: torch.nn.Parameter(torch.randn(*shape) * s)
        self.types = m["layer_types"] or ["full"] * L
        self.embed = P(V, C)
        self.layers = torch.nn.ModuleList()
        for l in range(L):
            layer = torch.nn.ParameterDict({
                "attn_norm": torch.nn.Parameter(torch.ones(C)), "q": P(H * D, C), "k": P(Hkv * D, C),
                "v": P(Hkv * D, C), "o": P(C, H * D, s=rstd), "mlp_norm": torch.nn.Parameter(torch.ones(C)),
                "w1": P(F_, C), "w3": P(F_, C), "w2": P(C, F_, s=rstd)})
            if self.types[l] == "switch":
                full = m["router_init"] == "full"
                layer["router_w"] = torch.nn.Parameter(torch.zeros(1, C) if full else torch.randn(1, C) * m["router_init_std"])
                layer["router_b"] = torch.nn.Parameter(torch.full((1,), m["router_full_bias"] if full else 0.0))
            self.layers.append(layer)
        self.final_norm = torch.nn.Parameter(torch.ones(C))
        self.lm_head = None if m["tie_word_embeddings"] else P(V, C)

    def attend(self, q, k, v, mask):  # (B, T, H|Hkv, D) -> (B, T, H, D)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if mask is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return o.transpose(1, 2)

    def forward(self, ids):
        m = self.m
        B, T = ids.shape
        H, Hkv, D, eps, w = (m["num_attention_heads"], m["num_key_value_heads"], m["head_dim"],
                             m["rms_norm_eps"], m["sliding_window"])
        cos, sin = rope_tables(T, D, m["rope_theta"], ids.device)
        i = torch.arange(T, device=ids.device)
        window_mask = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < w)  # (T, T) True = attend
        x = F.embedding(ids, self.embed)
        routing = []  # (logit s, O_full - O_swa) of each switch layer
        for l, p in enumerate(self.layers):
            u = rms_norm(x, p["attn_norm"], eps)
            q = rope(F.linear(u, p["q"]).view(B, T, H, D), cos, sin)
            k = rope(F.linear(u, p["k"]).view(B, T, Hkv, D), cos, sin)
            v = F.linear(u, p["v"]).view(B, T, Hkv, D)
            kind = self.types[l]
            if kind == "full":
                o = self.attend(q, k, v, None)
            elif kind == "swa":
                o = self.attend(q, k, v, window_mask)
            else:
                r_in = u if m["router_input"] == "normed" else x
                if m["router_detach_input"]:
                    r_in = r_in.detach()
                s = (F.linear(r_in, p["router_w"]) + p["router_b"]).squeeze(-1).float()  # (B, T)
                prob = torch.sigmoid(s)
                route = (prob > m["router_threshold"]).float()
                gate = route + prob - prob.detach()  # STE (Eq. 2)
                o_full, o_swa = self.attend(q, k, v, None), self.attend(q, k, v, window_mask)
                g = gate[:, :, None, None].to(o_full.dtype)
                o = g * o_full + (1 - g) * o_swa
                routing.append((s, (o_full - o_swa).detach()))
            x = x + F.linear(o.reshape(B, T, H * D), p["o"])
            h = rms_norm(x, p["mlp_norm"], eps)
            x = x + F.linear(F.silu(F.linear(h, p["w1"])) * F.linear(h, p["w3"]), p["w2"])
        h = rms_norm(x, self.final_norm, eps)
        return F.linear(h, self.embed if self.lm_head is None else self.lm_head), routing


def regulariser(routing, nll, reg):
    if not routing or reg["mode"] == "off":
        return None
    total = 0.0
    for s, diff in routing:
        if reg["mode"] == "fixed":
            gamma = torch.full_like(s, reg["gamma_base"])
        else:  # Eq. 8, detached
            gamma = reg["gamma_base"] / (reg["eps"] + nll.view_as(s) + reg["alpha"] * diff.float().pow(2).sum((-1, -2)))
        total = total + (gamma * F.softplus(s)).mean()  # Eq. 7
    return total / len(routing)  # Eq. 9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="JSON of swiattn train --print-config")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10, help="steps not timed (kernel selection, allocator)")
    ap.add_argument("--dtype", default=None, help="bfloat16 (autocast) | float32; default: the config's train.dtype")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (not the default twin)")
    args = ap.parse_args()
    cfg = json.load(open(args.config))
    m, t, reg = cfg["model"], cfg["train"], cfg["reg"]
    dtype = args.dtype or t["dtype"]
    if dtype not in ("bfloat16", "float32"):
        raise SystemExit(f"train_twin: dtype must be bfloat16 or float32, got {dtype}")
    torch.manual_seed(t["seed"])
    torch.backends.cuda.matmul.allow_tf32 = False  # ours computes fp32 GEMMs without TF32
    dev = torch.device("cuda")
    model = Twin(m).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=t["learning_rate"], betas=(t["beta1"], t["beta2"]), eps=t["adam_eps"], fused=True)
    fwd = torch.compile(model) if args.compile else model
    B, T, V = t["batch_size"], t["seq_len"], m["vocab_size"]
    gen = torch.Generator(device=dev).manual_seed(t["seed"])

    def step():
        tokens = torch.randint(0, V, (B, T + 1), device=dev, generator=gen)
        ids, targets = tokens[:, :-1], tokens[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            logits, routing = fwd(ids)
        nll = F.cross_entropy(logits.float().view(-1, V), targets.reshape(-1), reduction="none")
        loss = nll.mean()
        r = regulariser(routing, nll.detach(), reg)
        total = loss if r is None else loss + r
        opt.zero_grad(set_to_none=True)
        total.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss_value = loss.item()
    torch.cuda.synchronize()
    secs = time.perf_counter() - start
    result = {"tokens_per_second": args.steps * B * T / secs, "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(),
              "steps": args.steps, "seconds": secs, "last_loss": loss_value, "dtype": dtype,
              "parameters": sum(p.numel() for p in model.parameters()), "device": torch.cuda.get_device_name()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
