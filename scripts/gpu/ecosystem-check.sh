#!/usr/bin/env bash
# scripts/gpu/ecosystem-check.sh: the first-hour workflow (own data, --version, the early device
# check, eval, plot, the route map) on a GPU, in one go, on a GPU node that lacks the build
# dependencies (binaries built elsewhere by scripts/gpu/bundle.sh, carried as a bundle). About
# 1-2 minutes; every stage has a time limit and a failing stage does not stop the next ones.
#   1. swiattn --version: "CUDA: on (architectures 90a; <the GPU>)";
#   2. swiattn prepare: a text of Moby-Dick chapters -> train.bin / val.bin (byte and gpt2);
#   3. train on the own text with --device cuda in bfloat16 (a small switch model, 60 steps),
#      then on the prepared gpt2 folder (20 steps);
#   4. eval --device cuda of the first run (it reads the run's own text, validation split);
#   5. plot (RUN/loss.svg) and routes --device cuda --passkey 256 (and --text);
#   6. the CLI's behaviour tests that need no source tree (help, usage errors, version).
# Prints a summary last; full logs go to LOG_DIR (default runs/ecosystem-check).
#
#   BUNDLE=build-gpu/bundle.tar.xz LOG_DIR=/some/folder bash scripts/gpu/ecosystem-check.sh
# DEVICE=cpu STEPS=4 runs the same stages on the CPU (float32, 4 steps), to check the script itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG_DIR=${LOG_DIR:-${OUT:-runs/ecosystem-check}}
mkdir -p "$LOG_DIR"
start=$(date +%s)
declare -A status

# shellcheck disable=SC1091
if ! source scripts/gpu/unpack.sh >"$LOG_DIR/unpack.log" 2>&1; then
  cat "$LOG_DIR/unpack.log"
  echo "ecosystem-check: FAILED to unpack the bundle"
  exit 1
fi
export OMP_WAIT_POLICY=passive
BIN="$SW/bin/swiattn"
DEVICE=${DEVICE:-cuda}
DTYPE=$([ "$DEVICE" = cuda ] && echo bfloat16 || echo float32)
STEPS=${STEPS:-60}
CACHE="$SW/data/cache"
WORK=$(mktemp -d /tmp/swiattn-ecosystem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

stage() {  # stage NAME SECONDS command...
  local name=$1 limit=$2 t0
  shift 2
  t0=$(date +%s)
  echo "== $name (limit ${limit}s) ==" >&2
  timeout --kill-after=10 "$limit" "$@" >"$LOG_DIR/$name.log" 2>&1
  local rc=$?
  status[$name]="rc $rc, $(( $(date +%s) - t0 ))s"
  [ $rc = 124 ] && status[$name]="TIMED OUT after ${limit}s"
  return $rc
}

for n in $(seq 1 20); do cat "$CACHE/moby-dick/data/chapter_$n.txt"; done >"$WORK/my.txt"  # ~250 KB of own text
SMALL=(--set train.log_interval=$(( (STEPS + 5) / 6 )) --set train.eval_interval=$(( (STEPS + 2) / 3 )) --set train.eval_batches=2 --set train.batch_size=8
       --set train.seq_len=256 --set model.sliding_window=64 --set train.sample_tokens=0 --set data.cache_dir="$CACHE"
       --set 'model.layer_types=["full","switch","swa","switch"]')
STAGES=(version prepare train-text train-prepared eval plot routes cli)
stage version 20 "$BIN" --version
stage prepare 60 bash -c "'$BIN' prepare --text '$WORK/my.txt' --out '$WORK/bytes' && \
  '$BIN' prepare --text '$WORK/my.txt' --out '$WORK/bpe' --tokenizer gpt2 --cache-dir '$CACHE'"
stage train-text 120 "$BIN" train --device "$DEVICE" --set train.dtype="$DTYPE" --set train.steps="$STEPS" "${SMALL[@]}" \
  --set data.corpus="$WORK/my.txt" --out "$WORK/run"
stage train-prepared 120 "$BIN" train --device "$DEVICE" --set train.dtype="$DTYPE" --set train.steps=$(( (STEPS + 2) / 3 )) "${SMALL[@]}" \
  --set data.corpus="$WORK/bpe" --set data.tokenizer=gpt2 --set model.vocab_size=50257 --out "$WORK/run-bpe"
stage eval 120 "$BIN" eval --checkpoint "$WORK/run" --out "$WORK/run/eval" --device "$DEVICE" --set eval.passkey_trials=2 \
  --set eval.mqar_trials=2 --set eval.batches=2
stage plot 20 "$BIN" plot "$WORK/run"
stage routes 60 bash -c "'$BIN' routes --checkpoint '$WORK/run' --passkey 256 --out '$WORK/run/routes-pk' --device '$DEVICE' && \
  '$BIN' routes --checkpoint '$WORK/run' --text '$WORK/my.txt' --out '$WORK/run/routes' --device '$DEVICE' --token 200"
cat >"$WORK/cli.sh" <<'CLI'
# The CLI's habits: per-command help, a two-line usage error pointing at it, unknown commands.
set -u
BIN=$1
"$BIN" train --help | head -1 | grep -q '^usage: swiattn train' || { echo "train --help"; exit 1; }
out=$("$BIN" train --bogus 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q 'swiattn train --help' || { echo "usage error: rc $rc: $out"; exit 1; }
"$BIN" frob 2>/dev/null; rc=$?
[ "$rc" = 2 ] || { echo "unknown command: rc $rc"; exit 1; }
echo "cli: ok"
CLI
stage cli 60 bash "$WORK/cli.sh" "$BIN"

# Keep the small outputs (figures, route map, metrics, reports) for a look.
tar -C "$WORK" -cJf "$LOG_DIR/ecosystem-outputs.tar.xz" \
  run/metrics.jsonl run/loss.svg run/eval/report.md run/eval/results.json run/eval/passkey.svg \
  run/eval/decode_keys_read.svg run/routes-pk/routes.html run-bpe/metrics.jsonl 2>/dev/null

# ---- summary (last: only the end of the output may be read) ----
echo
echo "================ ecosystem-check summary ($(( $(date +%s) - start ))s; commit $(cat "$SW/COMMIT")) ================"
for s in "${STAGES[@]}"; do printf '%-15s %s\n' "$s" "${status[$s]:-not run}"; done
echo "-- version: $(tr '\n' ' ' <"$LOG_DIR/version.log")"
echo "-- own text:   $(grep -m1 '^swiattn train:' "$LOG_DIR/train-text.log" | cut -c1-160)"
grep -E '^  device:|^done:' "$LOG_DIR/train-text.log" | cut -c1-160
echo "-- prepared:   $(grep -m1 '^swiattn train:' "$LOG_DIR/train-prepared.log" | cut -c1-160)"
grep -E '^done:' "$LOG_DIR/train-prepared.log" | cut -c1-160
echo "-- eval: $(grep -E 'held-out text|held-out loss|passkey accuracy|full-attention ratio' "$LOG_DIR/eval.log" | cut -c1-140 | tr '\n' '|')"
echo "-- plot: $(tail -1 "$LOG_DIR/plot.log")"
echo "-- routes: $(grep -E 'full-attention ratio per layer' "$LOG_DIR/routes.log" | tr '\n' '|')"
for s in "${STAGES[@]}"; do
  case "${status[$s]:-}" in "rc 0,"*) ;; *) echo "-- $s FAILED, the end of its log:"; tail -8 "$LOG_DIR/$s.log" | cut -c1-200 ;; esac
done
ok=1
for s in "${STAGES[@]}"; do case "${status[$s]:-}" in "rc 0,"*) ;; *) ok=0 ;; esac; done
[ $ok = 1 ] && echo "ecosystem-check: every stage passed" || echo "ecosystem-check: SOME STAGE FAILED (logs in $LOG_DIR)"
[ $ok = 1 ]
