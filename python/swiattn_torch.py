#!/usr/bin/env python3
"""swiattn in PyTorch: our model, read from our checkpoints, with no package but torch.

    python3 python/swiattn_torch.py generate --checkpoint DIR [--prompt TEXT] [--tokens N]
                                             [--temperature X | --greedy] [--seed N]
    python3 python/swiattn_torch.py inspect DIR [--official]

    from swiattn_torch import SwiAttnForCausalLM
    model = SwiAttnForCausalLM.from_pretrained("runs/x/checkpoint", dtype=torch.float64)
    out = model(ids)                    # ids (B, T) int64 -> out.logits (B, T, V), out.routing

The same arithmetic as the C++ model (model/transformer.cpp, kernels/cpu/), written plainly so
that it is an oracle that is not our own C++: python/test_parity.py compares its logits, routes
and one training step's gradients with the C++ binary's in float64 (`make test`). The
specification is docs/spec.md ("spec §N" below); docs/equations.md maps its equations to the C++.

Shape legend: B batch, T time, C hidden_size, H query heads, Hkv key/value heads, D head_dim,
F intermediate_size, V vocab_size, W sliding_window, L layers.

Written for the PyTorch of Debian 12 (python3-torch 1.13) and current PyTorch (2.x) alike: no
scaled_dot_product_attention, no safetensors package (the reader below parses the format).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors (model/safetensors.h): u64 header length N, N bytes of JSON, then the data region.

SAFETENSORS_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8),
                      "BF16": (torch.bfloat16, 2), "I32": (torch.int32, 4)}
SAFETENSORS_MAX_HEADER = 100_000_000


class CheckpointError(ValueError):
    """A file or folder that is not a valid swiattn checkpoint; the message names it."""


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key " + next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def read_safetensors(path):
    """(tensors {name: tensor}, metadata {str: str}) of a safetensors file, every field checked.

    The rules are model/safetensors.cpp's (and the reference implementation's): known dtypes,
    shapes of non-negative ints, each tensor's byte count equal to its shape's, and the tensors
    tiling the data region exactly (no overlap, no gap, nothing after the last one).
    """
    if sys.byteorder != "little":
        raise CheckpointError(f"{path}: this reader needs a little-endian machine")
    with open(path, "rb") as f:  # a writable buffer: torch.frombuffer warns on read-only ones
        data = bytearray(os.path.getsize(path))
        f.readinto(data)
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes, too short for the header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > SAFETENSORS_MAX_HEADER or n > len(data) - 8:
        raise CheckpointError(f"{path}: header length {n} exceeds the file ({len(data)} bytes) "
                              f"or the limit {SAFETENSORS_MAX_HEADER}")
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: header is not valid UTF-8: {e}") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:  # invalid JSON, or a duplicate key
        raise CheckpointError(f"{path}: header: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: __metadata__ must be an object of strings")
    region = memoryview(data)[8 + n:]
    spans, tensors = [], {}
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not name or not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: needs exactly dtype, shape and data_offsets")
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{where}: dtype {info['dtype']!r} is not one of "
                                  f"{', '.join(SAFETENSORS_DTYPES)}")
        dtype, size = SAFETENSORS_DTYPES[info["dtype"]]
        shape, offsets = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{where}: shape must be a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int and o >= 0 for o in offsets)
                or not offsets[0] <= offsets[1] <= len(region)):
            raise CheckpointError(f"{where}: data_offsets {offsets} not within the data region "
                                  f"of {len(region)} bytes")
        count = math.prod(shape)
        if offsets[1] - offsets[0] != count * size:
            raise CheckpointError(f"{where}: {offsets[1] - offsets[0]} bytes for shape {shape} "
                                  f"of {info['dtype']} ({count * size} expected)")
        spans.append((offsets[0], offsets[1], name))
        if count == 0:  # torch.frombuffer refuses an empty buffer
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:  # clone: an aligned tensor that owns its memory
            tensors[name] = torch.frombuffer(region, dtype=dtype, count=count,
                                             offset=offsets[0]).clone().reshape(shape)
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise CheckpointError(f"{path}: tensor {name!r} starts at byte {begin} of the data "
                                  f"region, expected {position} (tensors must tile it exactly)")
        position = end
    if position != len(region):
        raise CheckpointError(f"{path}: {len(region) - position} bytes after the last tensor")
    return tensors, metadata


# ---------------------------------------------------------------------------------------------
# config.json (model/config.h): every ModelConfig field, defaults as there.

CONFIG_DEFAULTS = {
    "vocab_size": 256, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 384, "sliding_window": 64,
    "layer_types": [], "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    "max_position_embeddings": 1024, "initializer_range": 0.02, "router_input": "normed",
    "router_init": "random", "router_threshold": 0.5, "router_init_std": 0.02,
    "router_full_bias": 3.0, "router_detach_input": True,
}
HF_BOOKKEEPING = {"model_type", "architectures", "torch_dtype", "dtype", "transformers_version",
                  "_name_or_path"}


class SwiAttnConfig:
    """The model's configuration: attributes named as in config.json (and model/config.h)."""

    def __init__(self, **fields):
        unknown = set(fields) - set(CONFIG_DEFAULTS)
        if unknown:  # a field this file does not know may change the arithmetic: refuse it
            raise CheckpointError(f"config: unknown key(s) {sorted(unknown)}: this "
                                  "swiattn_torch.py is older than the checkpoint")
        for key, default in CONFIG_DEFAULTS.items():
            setattr(self, key, fields.get(key, default))
        self.layer_types = list(self.layer_types) or ["full"] * self.num_hidden_layers
        if len(self.layer_types) != self.num_hidden_layers:
            raise CheckpointError(f"config: {len(self.layer_types)} layer_types for "
                                  f"{self.num_hidden_layers} layers")
        for t in self.layer_types:
            if t not in ("full", "swa", "switch"):
                raise CheckpointError(f"config: layer type {t!r} is not full, swa or switch")
        if self.num_attention_heads % self.num_key_value_heads or self.head_dim % 2:
            raise CheckpointError("config: num_attention_heads must be a multiple of "
                                  "num_key_value_heads, and head_dim even")
        if self.router_input not in ("normed", "residual"):
            raise CheckpointError(f"config: router_input {self.router_input!r}")

    @classmethod
    def from_json_file(cls, path):
        with open(path) as f:
            j = json.load(f)
        if j.get("model_type") != "swiattn":
            raise CheckpointError(f"{path}: model_type is {j.get('model_type')!r}, not 'swiattn'")
        return cls(**{k: v for k, v in j.items() if k not in HF_BOOKKEEPING})


# ---------------------------------------------------------------------------------------------
# The ops (kernels/cpu/norm.cpp, attention.cpp, switch_attention.cpp; model/router.cpp).

def rms_norm(x, gain, eps):
    """x (..., C) / sqrt(mean(x^2) + eps) * gain (C)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def rope(x, theta, position_offset=0):
    """Rotary embedding of x (B, T, H, D), 'rotate half' layout: the pair (x_i, x_{i+D/2}) turns
    by the angle p * theta^(-2i/D) at position p."""
    T, D = x.shape[1], x.shape[3]
    inv_freq = torch.tensor([theta ** (-2.0 * i / D) for i in range(D // 2)], dtype=torch.float64)
    angle = torch.arange(position_offset, position_offset + T, dtype=torch.float64)[:, None] * inv_freq
    cos = angle.cos().to(x.dtype)[None, :, None, :]  # (1, T, 1, D/2)
    sin = angle.sin().to(x.dtype)[None, :, None, :]
    x1, x2 = x[..., :D // 2], x[..., D // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def attention(q, k, v, window):
    """Causal attention of q (B, T, H, D) over k, v (B, T, Hkv, D) -> (B, T, H, D).
    window 0: keys 0 <= j <= t (full); window W: max(0, t-W+1) <= j <= t (W keys, self included).
    GQA: query head h reads kv head h // (H / Hkv)."""
    T, H, D = q.shape[1], q.shape[2], q.shape[3]
    group = H // k.shape[2]
    k = k.repeat_interleave(group, dim=2)  # (B, T, H, D): kv head g serves heads g*group ...
    v = v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bthd,bjhd->bhtj", q, k) * (1.0 / math.sqrt(D))  # (B, H, T, T)
    t = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    legal = j <= t
    if window > 0:
        legal = legal & (t - j < window)
    scores = scores.masked_fill(~legal, float("-inf"))
    return torch.einsum("bhtj,bjhd->bthd", scores.softmax(-1), v)


def softplus(x):
    """log(1 + e^x), in the overflow-free form of kernels/cpu/elementwise.h."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


class LayerRouting:
    """What one switch layer decided (model/transformer.h, LayerRouting)."""

    def __init__(self, layer, logit, prob, route, branch_diff_sq):
        self.layer = layer                    # l
        self.logit = logit                    # s_t (B, T), in the graph (the regulariser's input)
        self.prob = prob                      # p_t (B, T)
        self.route = route                    # m_t (B, T), 1 = full attention, constant
        self.branch_diff_sq = branch_diff_sq  # ||O_FULL_t - O_SWA_t||^2 (B, T), detached


# ---------------------------------------------------------------------------------------------
# The model (model/transformer.cpp). Parameters carry the checkpoint's names, so
# state_dict() / load_state_dict() read and write model.safetensors' tensors one to one.

def _weight(*shape, dtype):
    return torch.nn.Parameter(torch.empty(*shape, dtype=dtype))


class Weight(torch.nn.Module):  # one named tensor "....weight": a norm gain (C), the embedding (V, C)
    def __init__(self, *shape, dtype):
        super().__init__()
        self.weight = _weight(*shape, dtype=dtype)


class Projection(torch.nn.Module):  # "....weight" (out, in): y = x W^T, as nn.Linear
    def __init__(self, n_out, n_in, dtype, bias=False):
        super().__init__()
        self.weight = _weight(n_out, n_in, dtype=dtype)
        self.bias = _weight(n_out, dtype=dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Attention(torch.nn.Module):
    def __init__(self, config, layer_type, dtype):
        super().__init__()
        c = config
        C, H, Hkv, D = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.config, self.type = c, layer_type
        self.q_proj = Projection(H * D, C, dtype)    # (H D, C)
        self.k_proj = Projection(Hkv * D, C, dtype)  # (Hkv D, C)
        self.v_proj = Projection(Hkv * D, C, dtype)
        self.o_proj = Projection(C, H * D, dtype)    # (C, H D)
        if layer_type == "switch":
            self.router = Projection(1, C, dtype, bias=True)  # w_r (1, C), b_r (1)

    def forward(self, u, x, layer_index, routing):
        """u = RMSNorm(x) (B, T, C) -> (B, T, C); a switch layer appends its LayerRouting."""
        c = self.config
        B, T, _ = u.shape
        q = rope(self.q_proj(u).view(B, T, c.num_attention_heads, c.head_dim), c.rope_theta)
        k = rope(self.k_proj(u).view(B, T, c.num_key_value_heads, c.head_dim), c.rope_theta)
        v = self.v_proj(u).view(B, T, c.num_key_value_heads, c.head_dim)
        if self.type == "switch":
            # spec §3, Eq. 1-2: one route per token, shared by all heads.
            r_in = u if c.router_input == "normed" else x
            if c.router_detach_input:  # the STE trains w_r, b_r only (docs/swiattn.md)
                r_in = r_in.detach()
            s = self.router(r_in)[..., 0]                  # s_t = w_r . r_t + b_r  (B, T)
            p = torch.sigmoid(s)                           # Eq. 1
            m = (p > c.router_threshold).to(p.dtype)       # m_t = [p_t > tau], 1 = FA
            sigma = m + p - p.detach()                     # Eq. 2: value m, gradient of p
            # spec §4, Eq. 4-6: both branches from the same q, k, v, mixed by the gate.
            o_full = attention(q, k, v, 0)                 # (B, T, H, D)
            o_swa = attention(q, k, v, c.sliding_window)
            o = sigma[:, :, None, None] * o_full + (1 - sigma[:, :, None, None]) * o_swa
            diff_sq = (o_full - o_swa).detach().pow(2).sum((2, 3))  # (B, T)
            routing.append(LayerRouting(layer_index, s, p, m.detach(), diff_sq))
        else:
            o = attention(q, k, v, c.sliding_window if self.type == "swa" else 0)
        return self.o_proj(o.reshape(B, T, -1))


class Mlp(torch.nn.Module):  # SwiGLU: W2( silu(W1 h) * W3 h )
    def __init__(self, C, F_, dtype):
        super().__init__()
        self.gate_proj = Projection(F_, C, dtype)  # W1
        self.up_proj = Projection(F_, C, dtype)    # W3
        self.down_proj = Projection(C, F_, dtype)  # W2

    def forward(self, h):
        return self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Layer(torch.nn.Module):
    def __init__(self, config, layer_type, dtype):
        super().__init__()
        self.attn_norm = Weight(config.hidden_size, dtype=dtype)
        self.attn = Attention(config, layer_type, dtype)
        self.mlp_norm = Weight(config.hidden_size, dtype=dtype)
        self.mlp = Mlp(config.hidden_size, config.intermediate_size, dtype)


class ModelOutput:
    def __init__(self, logits, routing, layer_outputs):
        self.logits = logits                # (B, T, V)
        self.routing = routing              # [LayerRouting], one per switch layer, in order
        self.layer_outputs = layer_outputs  # the residual stream after each layer, (B, T, C)


class SwiAttnForCausalLM(torch.nn.Module):
    def __init__(self, config, dtype=torch.float32):
        super().__init__()
        c = config
        self.config = c
        self.embed = Weight(c.vocab_size, c.hidden_size, dtype=dtype)  # (V, C)
        self.layers = torch.nn.ModuleList(Layer(c, t, dtype) for t in c.layer_types)
        self.final_norm = Weight(c.hidden_size, dtype=dtype)
        if not c.tie_word_embeddings:
            self.lm_head = Projection(c.vocab_size, c.hidden_size, dtype)  # (V, C)

    @classmethod
    def from_pretrained(cls, directory, dtype=None):
        """The model of DIR/config.json with the weights of DIR/model.safetensors (every tensor
        must be there, with its shape; nothing else may be). dtype: the checkpoint's by default
        (float32 for a bfloat16 one); float32 <-> float64 converts."""
        config = SwiAttnConfig.from_json_file(os.path.join(directory, "config.json"))
        weights, _ = read_safetensors(os.path.join(directory, "model.safetensors"))
        if dtype is None:
            first = next(iter(weights.values()), torch.empty(0))
            dtype = first.dtype if first.dtype == torch.float64 else torch.float32
        model = cls(config, dtype)
        expected = {name: tuple(p.shape) for name, p in model.named_parameters()}
        problems = [f"missing tensor {n} {s}" for n, s in expected.items() if n not in weights]
        problems += [f"unexpected tensor {n}" for n in weights if n not in expected]
        problems += [f"tensor {n} has shape {tuple(t.shape)}, config.json implies {expected[n]}"
                     for n, t in weights.items() if n in expected and tuple(t.shape) != expected[n]]
        if problems:
            raise CheckpointError(f"{directory}: " + "; ".join(problems))
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(weights[name].to(dtype))
        return model

    def output_weight(self):  # (V, C)
        return self.embed.weight if self.config.tie_word_embeddings else self.lm_head.weight

    def forward(self, ids):
        """ids (B, T) integer -> ModelOutput: logits (B, T, V), routing, layer_outputs."""
        c = self.config
        if ids.dim() != 2 or ids.shape[1] > c.max_position_embeddings:
            raise ValueError(f"ids must be (B, T) with T <= max_position_embeddings "
                             f"{c.max_position_embeddings}, got {tuple(ids.shape)}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= c.vocab_size):
            raise ValueError(f"token ids must be in [0, {c.vocab_size})")
        x = F.embedding(ids.long(), self.embed.weight)  # (B, T, C), the residual stream
        routing, layer_outputs = [], []
        for l, layer in enumerate(self.layers):
            u = rms_norm(x, layer.attn_norm.weight, c.rms_norm_eps)
            x = x + layer.attn(u, x, l, routing)                                     # spec §1
            x = x + layer.mlp(rms_norm(x, layer.mlp_norm.weight, c.rms_norm_eps))
            layer_outputs.append(x)
        logits = F.linear(rms_norm(x, self.final_norm.weight, c.rms_norm_eps), self.output_weight())
        return ModelOutput(logits, routing, layer_outputs)

    @torch.no_grad()
    def generate(self, prompt, new_tokens, temperature=0.8, seed=0):
        """prompt (list of ids) + new_tokens tokens. temperature 0: greedy (argmax); otherwise
        sampled exactly as `swiattn generate` samples (model/sampling.cpp, tensor/random.cpp), so
        the same seed gives the same text wherever the logits agree. Each step runs the whole
        sequence (no KV cache; it must fit in max_position_embeddings, as in the C++)."""
        if not prompt:
            raise ValueError("generate: the prompt must hold at least one token")
        if len(prompt) + new_tokens - 1 > self.config.max_position_embeddings:
            raise ValueError(f"generate: prompt ({len(prompt)}) + new_tokens ({new_tokens}) - 1 "
                             f"exceeds max_position_embeddings {self.config.max_position_embeddings}")
        ids, rng = list(prompt), SwiAttnRng(seed)
        for _ in range(new_tokens):
            logits = self(torch.tensor([ids])).logits[0, -1].double().tolist()  # (V)
            ids.append(max(range(len(logits)), key=logits.__getitem__) if temperature == 0
                       else sample_token(logits, temperature, rng))
        return ids


# ---------------------------------------------------------------------------------------------
# The training objective (spec §5; model/transformer.cpp next_token_loss, train/regularizer.cpp).

def next_token_loss(logits, targets, ignore_index=-100):
    """(mean next-token cross-entropy over counted targets, per-token NLL (B, T), 0 where ignored)."""
    valid = targets != ignore_index
    lse = torch.logsumexp(logits, dim=-1)                                       # (B, T)
    picked = logits.gather(-1, targets.clamp(min=0).long()[..., None])[..., 0]  # (B, T)
    nll = (lse - picked) * valid.to(logits.dtype)
    count = int(valid.sum())
    return nll.sum() * (1.0 / count if count else 0.0), nll


def efficiency_regularizer(routing, per_token_nll, mode="adaptive", gamma_base=1e-3, eps=0.1,
                           alpha=100.0):
    """Eq. 7-9: the mean over switch layers of mean_{b,t} gamma_t softplus(s_t), with
    gamma_t = gamma_base / (eps + NLL_t + alpha ||O_FULL_t - O_SWA_t||^2) from detached values
    ("adaptive") or gamma_base ("fixed"). None for mode "off" or a model without switch layers."""
    if mode == "off" or not routing:
        return None
    terms = []
    for r in routing:
        gamma = (gamma_base / (eps + per_token_nll.detach() + alpha * r.branch_diff_sq)
                 if mode == "adaptive" else torch.full_like(r.logit, gamma_base))
        terms.append((gamma.detach() * softplus(r.logit)).mean())  # Eq. 7, mean over (B, T)
    return sum(terms) / len(terms)                                  # Eq. 9's 1 / L_s


# ---------------------------------------------------------------------------------------------
# Sampling as the C++ samples (tensor/random.cpp: SplitMix64's finaliser, counter-based).

MASK64 = (1 << 64) - 1


def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


class SwiAttnRng:
    """swiattn::Rng: state (seed, counter); uniform() = top 53 bits of a hash of both."""

    def __init__(self, seed):
        self.seed, self.counter = seed & MASK64, 0

    def uniform(self):
        derived = mix64(mix64(self.seed) ^ self.counter)  # derive_seed(seed, counter)
        self.counter += 1
        return (mix64(derived) >> 11) * 2.0 ** -53


def sample_token(logits, temperature, rng):
    """Inverse-CDF draw from softmax(logits / temperature), summed in the C++ order."""
    mx = max(logits)
    p = [math.exp((x - mx) / temperature) for x in logits]
    u = rng.uniform() * sum(p)
    for i, pi in enumerate(p):
        if u < pi:
            return i
        u -= pi
    return len(p) - 1


# ---------------------------------------------------------------------------------------------
# Command line.

def tokenizer_kind(directory):
    """The run's data.tokenizer (run_config.json), or "byte" for a 256-id model without one."""
    path = os.path.join(directory, "run_config.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f).get("data", {}).get("tokenizer", "byte")
    return "byte"


def cmd_generate(args):
    dtype = {"float32": torch.float32, "float64": torch.float64, None: None}[args.dtype]
    model = SwiAttnForCausalLM.from_pretrained(args.checkpoint, dtype)
    kind = tokenizer_kind(args.checkpoint)
    if args.prompt_ids is not None:
        prompt = [int(t) for t in args.prompt_ids.split(",") if t.strip()]
    elif kind == "byte":
        prompt = list(args.prompt.encode("utf-8"))
    else:
        raise SystemExit(f"generate: the {kind!r} tokenizer is not implemented here (only "
                         "'byte'); give the prompt as token ids: --prompt-ids 464,3290")
    temperature = 0.0 if args.greedy else args.temperature
    if temperature < 0:
        raise SystemExit("generate: --temperature must be >= 0 (0 = greedy)")
    ids = model.generate(prompt, args.tokens, temperature, args.seed)
    if args.print_ids or kind != "byte":
        print(",".join(map(str, ids)))
    else:
        sys.stdout.buffer.write(bytes(ids) + b"\n")
    routes = model(torch.tensor([ids[:-1]])).routing if len(ids) > 1 else []
    if routes:
        print("full-attention ratio per switch layer: " + " ".join(
            f"{float(r.route.mean()):.3f}" for r in routes), file=sys.stderr)
    return 0


def cmd_inspect(args):
    """Every tensor with shape, dtype and checksum; the check against config.json; --official
    also reads the file with the safetensors package and compares bit for bit."""
    path = os.path.join(args.dir, "model.safetensors")
    tensors, metadata = read_safetensors(path)
    print(f"model.safetensors: {len(tensors)} tensors; metadata {metadata}")
    for name, t in tensors.items():
        print(f"  {name:40s} {str(tuple(t.shape)):16s} {str(t.dtype):15s} "
              f"sum {t.double().sum().item():.17g}")
    print(f"  {sum(t.numel() for t in tensors.values())} values in all")
    SwiAttnForCausalLM.from_pretrained(args.dir)  # raises CheckpointError naming every problem
    print("OK: the tensors match config.json")
    if args.official:
        from safetensors.torch import load_file
        official = load_file(path)
        same = set(official) == set(tensors) and all(
            official[n].dtype == t.dtype and torch.equal(official[n], t) for n, t in tensors.items())
        print("safetensors.torch.load_file: " + ("identical" if same else "DIFFERENT"))
        return 0 if same else 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="swiattn in PyTorch (python/swiattn_torch.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="sample text from a checkpoint")
    g.add_argument("--checkpoint", required=True, help="a folder written by swiattn train")
    g.add_argument("--prompt", default="The ")
    g.add_argument("--prompt-ids", help="comma-separated token ids instead of --prompt")
    g.add_argument("--tokens", type=int, default=200, help="new tokens (default 200)")
    g.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    g.add_argument("--greedy", action="store_true", help="argmax at every step")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dtype", choices=["float32", "float64"], help="default: the checkpoint's")
    g.add_argument("--print-ids", action="store_true", help="print token ids, not text")
    i = sub.add_parser("inspect", help="list a checkpoint's tensors and check them")
    i.add_argument("dir")
    i.add_argument("--official", action="store_true",
                   help="also read with the safetensors package and compare")
    args = parser.parse_args(argv)
    try:
        return cmd_generate(args) if args.command == "generate" else cmd_inspect(args)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"swiattn_torch {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
