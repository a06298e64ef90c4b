#!/usr/bin/env bash
# bench/e2e.sh: end-to-end training throughput and peak GPU memory, ours against the PyTorch
# twin (bench/train_twin.py) on the same configuration and batch shape (issue 5: "End to end",
# "Peak GPU memory"). Prints one table of ratios ours / PyTorch.
#
#   bench/e2e.sh [SWIATTN_BINARY] [DATA_CACHE_DIR]     (defaults: build/swiattn, data/cache)
# Environment: STEPS (timed steps, default 60), WARMUP (untimed first steps, default 10),
#   DTYPES (default "bfloat16 float32"), OUT (where logs go, default runs/e2e).
#
# The model: the small reproduction size (hidden 256, 4 layers, 4 heads, 2 kv heads, head_dim 64,
# seq_len 1024, window 128, batch 8, byte tokenizer, every layer "switch", adaptive regulariser).
# Our tokens/s is measured between the log lines of steps WARMUP and WARMUP + STEPS (metrics.jsonl),
# the twin's over the same number of steps after the same warm-up; peak memory is our caching
# allocator's peak of bytes held by tensors vs torch.cuda.max_memory_allocated().
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/swiattn}
CACHE=${2:-data/cache}
STEPS=${STEPS:-60}
WARMUP=${WARMUP:-10}
DTYPES=${DTYPES:-bfloat16 float32}
OUT=${OUT:-runs/e2e}
mkdir -p "$OUT"
TOTAL=$((WARMUP + STEPS))

rows=()
for dtype in $DTYPES; do
  cfg="$OUT/config-$dtype.json"
  "$BIN" train --print-config --device cuda \
    --set model.vocab_size=256 --set model.hidden_size=256 --set model.num_hidden_layers=4 \
    --set model.num_attention_heads=4 --set model.num_key_value_heads=2 --set model.head_dim=64 \
    --set model.intermediate_size=768 --set model.sliding_window=128 \
    --set 'model.layer_types=["switch","switch","switch","switch"]' \
    --set model.max_position_embeddings=1024 --set train.seq_len=1024 --set train.batch_size=8 \
    --set data.tokenizer=byte --set data.cache_dir="$CACHE" --set train.dtype="$dtype" \
    --set train.steps=$TOTAL --set train.warmup_steps=$WARMUP --set train.log_interval=$WARMUP \
    --set train.eval_interval=$TOTAL --set train.eval_batches=1 --set train.sample_tokens=0 >"$cfg"
  echo "== $dtype: ours ($BIN train --device cuda, $TOTAL steps) ==" >&2
  "$BIN" train --config "$cfg" --out "$OUT/ours-$dtype" --overwrite >"$OUT/ours-$dtype.log" 2>&1 ||
    { tail -20 "$OUT/ours-$dtype.log" >&2; exit 1; }
  grep '^step' "$OUT/ours-$dtype.log" >&2 || true
  ours=$(python3 - "$OUT/ours-$dtype/metrics.jsonl" "$WARMUP" <<'PY'
import json, os, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [l for l in lines if "tokens_per_second" in l and "step" in l]
warm = int(sys.argv[2])
a = next(l for l in steps if l["step"] == warm)
b = steps[-1]
cfg = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "config.json")))
tokens = (b["step"] - a["step"]) * cfg["train"]["batch_size"] * cfg["train"]["seq_len"]
print(json.dumps({"tokens_per_second": tokens / (b["seconds"] - a["seconds"]),
                  "peak_gpu_memory_bytes": b["peak_gpu_memory_bytes"], "last_loss": b["loss"]}))
PY
)
  echo "== $dtype: PyTorch twin ==" >&2
  twin=$(python3 bench/train_twin.py --config "$cfg" --steps "$STEPS" --warmup "$WARMUP" --dtype "$dtype" 2>"$OUT/twin-$dtype.err") ||
    { cat "$OUT/twin-$dtype.err" >&2; exit 1; }
  echo "ours $ours" >"$OUT/result-$dtype.json"
  echo "twin $twin" >>"$OUT/result-$dtype.json"
  rows+=("$dtype|$ours|$twin")
done

python3 - "${rows[@]}" <<'PY'
import json, sys
print("| precision | ours tok/s | PyTorch tok/s | ratio | ours peak MiB | PyTorch peak MiB | ratio | ours loss | PyTorch loss |")
print("|---|---|---|---|---|---|---|---|---|")
for row in sys.argv[1:]:
    dtype, ours, twin = row.split("|")
    o, t = json.loads(ours), json.loads(twin)
    mib = lambda b: b / 2**20
    print(f"| {dtype} | {o['tokens_per_second']:.0f} | {t['tokens_per_second']:.0f} | "
          f"{o['tokens_per_second'] / t['tokens_per_second']:.3f} | {mib(o['peak_gpu_memory_bytes']):.0f} | "
          f"{mib(t['peak_gpu_memory_bytes']):.0f} | {o['peak_gpu_memory_bytes'] / t['peak_gpu_memory_bytes']:.2f} | "
          f"{o['last_loss']:.3f} | {t['last_loss']:.3f} |")
print("(ours / PyTorch; tokens/s over the same timed steps after the same warm-up; the twin trains on random"
      " bytes, ours on the text, so the losses are for orientation only)")
PY
