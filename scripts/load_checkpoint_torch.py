#!/usr/bin/env python3
"""Open a swiattn checkpoint directory from PyTorch and print what it holds.

    python3 scripts/load_checkpoint_torch.py DIR [--pure-python]

Loads DIR/model.safetensors with safetensors.torch.load_file, or, when the safetensors package
is missing (or --pure-python is given), with the small reader below that needs only json,
struct and torch. Prints every tensor's name, shape, dtype and checksum (the sum of its values
in float64), then reads DIR/config.json and checks that the tensors are exactly the ones that
configuration implies, with the right shapes. Exits 1 if they are not. See docs/checkpoints.md.
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16,
                      "I32": torch.int32}


def read_safetensors_pure_python(path):
    """(tensors, metadata) of a safetensors file, using json, struct and torch.frombuffer only.

    The file's bytes are little-endian; torch.frombuffer reads the machine's order, which is
    little-endian on x86-64 and ARM64, the machines this script is meant for.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for the header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise ValueError(f"{path}: header length {header_length} exceeds the file")
    header = json.loads(data[8:8 + header_length].decode("utf-8"))
    data_start = 8 + header_length
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        if begin == end:  # torch.frombuffer refuses an empty buffer
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            raw = bytearray(data[data_start + begin:data_start + end])  # writable copy
            tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
    return tensors, metadata


def read_safetensors(path, pure_python):
    """(tensors, metadata, reader name)."""
    if not pure_python:
        try:
            from safetensors import safe_open
            from safetensors.torch import load_file
        except ImportError:
            print("safetensors package not found: using the pure-python reader", file=sys.stderr)
        else:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata() or {}
            return load_file(path), metadata, "safetensors.torch.load_file"
    tensors, metadata = read_safetensors_pure_python(path)
    return tensors, metadata, "pure-python reader"


def expected_shapes(config):
    """Every parameter name the model of this config.json has, with its shape (model/transformer.h)."""
    V, C, L = config["vocab_size"], config["hidden_size"], config["num_hidden_layers"]
    H, Hkv = config["num_attention_heads"], config["num_key_value_heads"]
    D, F = config["head_dim"], config["intermediate_size"]
    layer_types = config.get("layer_types") or ["full"] * L
    shapes = {"embed.weight": (V, C), "final_norm.weight": (C,)}
    if not config.get("tie_word_embeddings", True):
        shapes["lm_head.weight"] = (V, C)
    for layer in range(L):
        p = f"layers.{layer}."
        shapes[p + "attn_norm.weight"] = (C,)
        shapes[p + "attn.q_proj.weight"] = (H * D, C)
        shapes[p + "attn.k_proj.weight"] = (Hkv * D, C)
        shapes[p + "attn.v_proj.weight"] = (Hkv * D, C)
        shapes[p + "attn.o_proj.weight"] = (C, H * D)
        if layer_types[layer] == "switch":
            shapes[p + "attn.router.weight"] = (1, C)
            shapes[p + "attn.router.bias"] = (1,)
        shapes[p + "mlp_norm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (F, C)
        shapes[p + "mlp.up_proj.weight"] = (F, C)
        shapes[p + "mlp.down_proj.weight"] = (C, F)
    return shapes


def natural_key(name):
    """Sort key that puts layers.2 before layers.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="checkpoint directory (holds model.safetensors and config.json)")
    parser.add_argument("--pure-python", action="store_true",
                        help="use the built-in reader even if the safetensors package is installed")
    args = parser.parse_args()

    tensors, metadata, reader = read_safetensors(os.path.join(args.dir, "model.safetensors"),
                                                 args.pure_python)
    print(f"model.safetensors: {len(tensors)} tensors, read with {reader}; metadata {metadata}")
    total = 0
    for name in sorted(tensors, key=natural_key):
        t = tensors[name]
        checksum = t.to(torch.float64).sum().item()
        total += t.numel()
        print(f"  {name:40s} {str(tuple(t.shape)):16s} {str(t.dtype):15s} sum {checksum:.17g}")
    print(f"  {total} values in all")

    with open(os.path.join(args.dir, "config.json")) as f:
        config = json.load(f)
    print(f"config.json: model_type {config.get('model_type')}, torch_dtype {config.get('torch_dtype')}, "
          f"{config['num_hidden_layers']} layers of types {config.get('layer_types') or 'all full'}, "
          f"hidden_size {config['hidden_size']}, vocab_size {config['vocab_size']}")

    problems = []
    if config.get("model_type") != "swiattn":
        problems.append(f"model_type is {config.get('model_type')!r}, expected 'swiattn'")
    expected = expected_shapes(config)
    for name in sorted(set(expected) - set(tensors), key=natural_key):
        problems.append(f"missing tensor {name} {expected[name]}")
    for name in sorted(set(tensors) - set(expected), key=natural_key):
        problems.append(f"unexpected tensor {name} {tuple(tensors[name].shape)}")
    for name in sorted(set(tensors) & set(expected), key=natural_key):
        if tuple(tensors[name].shape) != expected[name]:
            problems.append(f"tensor {name} has shape {tuple(tensors[name].shape)}, "
                            f"config.json implies {expected[name]}")
    torch_dtype = getattr(torch, config.get("torch_dtype", ""), None)
    for name, t in tensors.items():
        if t.dtype != torch_dtype:
            problems.append(f"tensor {name} is {t.dtype}, config.json says torch_dtype "
                            f"{config.get('torch_dtype')}")
            break
    for problem in problems:
        print("PROBLEM: " + problem)
    print("OK: the tensors match config.json" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
