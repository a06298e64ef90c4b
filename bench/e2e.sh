#!/usr/bin/env bash
# bench/e2e.sh: end-to-end training throughput and peak GPU memory, ours against the PyTorch
# twin (bench/train_twin.py) on the same configuration and batch shape, eager and torch.compile
# (issue 13's targets: bf16 >= 1.6x the compiled twin, float32 >= 1.0x it, bf16 peak memory
# <= the eager twin's). Prints one table of ratios, and writes it with every run's numbers to
# $OUT/e2e.json.
#
#   bench/e2e.sh [SWIATTN_BINARY] [DATA_CACHE_DIR]     (defaults: build/swiattn, data/cache)
# Environment: STEPS (timed steps, default 60), WARMUP (untimed first steps, default 10),
#   DTYPES (default "bfloat16 float32"), OUT (where logs go, default runs/e2e),
#   COMPILE (1: also the torch.compile twin, default 1), DETERMINISTIC (1: also ours with
#   train.deterministic, default 1), HOPPER_BACKWARD (1: also ours in bfloat16 with the sm_90a
#   attention backward forced, SWIATTN_ATTENTION_BACKWARD=hopper, default 0; "ours" takes it by
#   default where it can run), FAST_FLOAT32 (1: also ours
#   in float32 with train.float32_attention=bfloat16, default 1), RUN_TIMEOUT (seconds per
#   run, default 600): a run that fails
#   or times out shows n/a and the others still run (its log says why). SUMMARY_ONLY=1 prints the
#   table of the runs already in $OUT (those of a run that was cut off) and runs nothing.
#
# The model: the small reproduction size (hidden 256, 4 layers, 4 heads, 2 kv heads, head_dim 64,
# seq_len 1024, window 128, batch 8, byte tokenizer, every layer "switch", adaptive regulariser).
# Our tokens/s is measured between the log lines of steps WARMUP and WARMUP + STEPS (metrics.jsonl),
# the twin's over the same number of steps after the same warm-up; peak memory is our caching
# allocator's peak of bytes held by tensors vs torch.cuda.max_memory_allocated().
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/swiattn}
CACHE=${2:-data/cache}
STEPS=${STEPS:-60}
WARMUP=${WARMUP:-10}
DTYPES=${DTYPES:-bfloat16 float32}
OUT=${OUT:-runs/e2e}
COMPILE=${COMPILE:-1}
DETERMINISTIC=${DETERMINISTIC:-1}
HOPPER_BACKWARD=${HOPPER_BACKWARD:-0}
FAST_FLOAT32=${FAST_FLOAT32:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
mkdir -p "$OUT"
TOTAL=$((WARMUP + STEPS))
RESULTS="$OUT/e2e-runs.jsonl"  # one line per run: {"dtype", "impl", ...numbers or "error"}
# The table of every run so far (from $RESULTS), also as $OUT/e2e.json.
summarize() {
  python3 - "$RESULTS" "$OUT/e2e.json" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["dtype"], r["impl"]): r for r in runs}
def get(dtype, impl, key):
    r = by.get((dtype, impl))
    return r.get(key) if r and "error" not in r else None
def f(x, fmt="{:.0f}"):
    return "n/a" if x is None else fmt.format(x)
def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
print("| precision | ours tok/s | ours, hopper backward (bf16) or bf16 attention (float32) | deterministic tok/s (/ ours) "
      "| eager twin tok/s | ours / eager | compiled twin tok/s | best ours / compiled | ours peak MiB | eager peak MiB "
      "| ours / eager | compiled peak MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
table = []
for dtype in dict.fromkeys(r["dtype"] for r in runs):
    o, d = get(dtype, "ours", "tokens_per_second"), get(dtype, "ours-deterministic", "tokens_per_second")
    h = get(dtype, "ours-hopper-bwd", "tokens_per_second") or get(dtype, "ours-bf16-attention", "tokens_per_second")
    best = max([x for x in (o, h) if x is not None], default=None)
    e, c = get(dtype, "eager", "tokens_per_second"), get(dtype, "compiled", "tokens_per_second")
    om, em, cm = (get(dtype, i, "peak_gpu_memory_bytes") for i in ("ours", "eager", "compiled"))
    mib = lambda b: None if b is None else b / 2**20
    row = {"dtype": dtype, "ours": o, "ours_variant": h, "deterministic": d, "eager": e, "compiled": c,
           "ours_over_eager": ratio(o, e), "ours_over_compiled": ratio(best, c), "deterministic_over_ours": ratio(d, o), "ours_peak_mib": mib(om),
           "eager_peak_mib": mib(em), "compiled_peak_mib": mib(cm), "peak_over_eager": ratio(om, em)}
    table.append(row)
    print(f"| {dtype} | {f(o)} | {f(h)} | {f(d)} ({f(ratio(d, o), '{:.3f}')}) | {f(e)} | {f(ratio(o, e), '{:.2f}')} | "
          f"{f(c)} | {f(ratio(best, c), '{:.2f}')} | {f(mib(om))} | {f(mib(em))} | {f(ratio(om, em), '{:.2f}')} | "
          f"{f(mib(cm))} |")
for r in runs:
    if "error" in r:
        print(f"  {r['dtype']} {r['impl']}: {r['error']}")
print("(tokens/s over the same timed steps after the same warm-up; the twin trains on random bytes, ours on the"
      " text; peak: our allocator's bytes held by tensors vs torch.cuda.max_memory_allocated)")
json.dump({"rows": table, "runs": runs}, open(sys.argv[2], "w"), indent=1)
PY
}
if [ "${SUMMARY_ONLY:-0}" = 1 ]; then  # the table of runs made before (e.g. by a run that was cut off)
  summarize
  exit 0
fi
: >"$RESULTS"


# ours NAME DTYPE [--set ...]: one training run; appends its numbers (or its error) to $RESULTS
ours() {
  local name=$1 dtype=$2
  shift 2
  local dir="$OUT/$name-$dtype"
  echo "== $dtype: $name ($BIN train --device cuda, $TOTAL steps) ==" >&2
  timeout -k 10 "$RUN_TIMEOUT" "$BIN" train --config "$OUT/config-$dtype.json" "$@" --out "$dir" --overwrite >"$dir.log" 2>&1
  local rc=$?
  if [ "$rc" != 0 ]; then
    tail -5 "$dir.log" >&2
    echo "{\"dtype\": \"$dtype\", \"impl\": \"$name\", \"error\": \"exit $rc (124: timed out; log $dir.log)\"}" >>"$RESULTS"
    return
  fi
  python3 - "$dir/metrics.jsonl" "$WARMUP" "$dtype" "$name" >>"$RESULTS" <<'PY'
import json, os, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [l for l in lines if "tokens_per_second" in l and "step" in l]
warm = int(sys.argv[2])
a = next(l for l in steps if l["step"] == warm)
b = steps[-1]
cfg = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "config.json")))
tokens = (b["step"] - a["step"]) * cfg["train"]["batch_size"] * cfg["train"]["seq_len"]
print(json.dumps({"dtype": sys.argv[3], "impl": sys.argv[4], "tokens_per_second": tokens / (b["seconds"] - a["seconds"]),
                  "peak_gpu_memory_bytes": b["peak_gpu_memory_bytes"], "last_loss": b["loss"]}))
PY
}

# twin NAME DTYPE [--compile]
twin() {
  local name=$1 dtype=$2
  shift 2
  echo "== $dtype: PyTorch twin ($name) ==" >&2
  local out
  if out=$(timeout -k 10 "$RUN_TIMEOUT" python3 bench/train_twin.py --config "$OUT/config-$dtype.json" --steps "$STEPS" \
      --warmup "$WARMUP" --dtype "$dtype" "$@" 2>"$OUT/$name-$dtype.err"); then
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(dtype=sys.argv[2], impl=sys.argv[3]); print(json.dumps(r))' \
      "$(echo "$out" | tail -1)" "$dtype" "$name" >>"$RESULTS"
  else
    tail -5 "$OUT/$name-$dtype.err" >&2
    echo "{\"dtype\": \"$dtype\", \"impl\": \"$name\", \"error\": \"failed or timed out (log $OUT/$name-$dtype.err)\"}" >>"$RESULTS"
  fi
}

for dtype in $DTYPES; do
  "$BIN" train --print-config --device cuda \
    --set model.vocab_size=256 --set model.hidden_size=256 --set model.num_hidden_layers=4 \
    --set model.num_attention_heads=4 --set model.num_key_value_heads=2 --set model.head_dim=64 \
    --set model.intermediate_size=768 --set model.sliding_window=128 \
    --set 'model.layer_types=["switch","switch","switch","switch"]' \
    --set model.max_position_embeddings=1024 --set train.seq_len=1024 --set train.batch_size=8 \
    --set data.tokenizer=byte --set data.cache_dir="$CACHE" --set train.dtype="$dtype" \
    --set train.steps=$TOTAL --set train.warmup_steps=$WARMUP --set train.log_interval=$WARMUP \
    --set train.eval_interval=$TOTAL --set train.eval_batches=1 --set train.sample_tokens=0 \
    >"$OUT/config-$dtype.json" || { echo "e2e: swiattn train --print-config failed" >&2; exit 1; }
  ours ours "$dtype"
  twin eager "$dtype"
  if [ "$HOPPER_BACKWARD" = 1 ] && [ "$dtype" = bfloat16 ]; then
    SWIATTN_ATTENTION_BACKWARD=hopper ours ours-hopper-bwd "$dtype"
  fi
  if [ "$FAST_FLOAT32" = 1 ] && [ "$dtype" = float32 ]; then
    ours ours-bf16-attention "$dtype" --set train.float32_attention=bfloat16
  fi
done
# the slower extras after every main row
for dtype in $DTYPES; do
  [ "$COMPILE" = 1 ] && twin compiled "$dtype" --compile
  [ "$DETERMINISTIC" = 1 ] && ours ours-deterministic "$dtype" --set train.deterministic=true
done
summarize
