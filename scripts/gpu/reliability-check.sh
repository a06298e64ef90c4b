#!/usr/bin/env bash
# scripts/gpu/reliability-check.sh: the reliability checks that need a GPU (docs/reliability.md),
# in one go on a GPU machine that lacks the build dependencies (binaries built elsewhere by
# scripts/gpu/bundle.sh, carried as a bundle):
#   1. unpacks the bundle (scripts/gpu/unpack.sh);
#   2. the tests: tests/test_cuda_reliability.cpp (non-finite weights and AdamW moments counted on
#      the device, the memory estimate against the GPU's memory, through the CLI a CUDA run with a
#      learning rate of 1e39 that must stop without saving, and a CUDA run failed with ENOSPC at
#      the link's rename mid-save that must resume to the end), then the CUDA training and
#      generation tests, which run the trainer's guard and the loaders touched by the same change;
#   3. a bfloat16 run at the end-to-end benchmark's size (bench/e2e.sh: 4 switch layers, hidden
#      256, batch 8 x 1024, 80 steps, a checkpoint every 20) killed (SIGKILL) at the link's rename
#      in its step-40 save (so step 20 must stay linked) and resumed,
#      against the same run uninterrupted: the linked step after the kill, the final validation
#      losses, and the training throughput (tokens/s of both runs, for the record: there is no
#      baseline build in the bundle to compare with);
#   4. prints a short summary last. Full logs go to LOG_DIR (default runs/reliability-check).
#
#   BUNDLE=build-gpu/bundle.tar.xz LOG_DIR=/some/folder bash scripts/gpu/reliability-check.sh
#
# Each stage has a time limit (the whole script stays under 6 minutes) and a failing stage does
# not stop the next ones; the exit status is 0 only when every stage passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG_DIR=${LOG_DIR:-${OUT:-runs/reliability-check}}
mkdir -p "$LOG_DIR"
start=$(date +%s)
declare -A status

# shellcheck disable=SC1091
if ! source scripts/gpu/unpack.sh >"$LOG_DIR/unpack.log" 2>&1; then
  cat "$LOG_DIR/unpack.log"
  echo "reliability-check: FAILED to unpack the bundle"
  exit 1
fi
export SWIATTN_CLI="$SW/bin/swiattn"          # the CLI the tests run
export SWIATTN_DATA_CACHE="$SW/data/cache"   # the corpora the CLI tests train on
export OMP_WAIT_POLICY=passive
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  cat "$SW/COMMIT"; } >"$LOG_DIR/device.txt"

stage() {  # stage NAME SECONDS LOG command...
  local name=$1 limit=$2 log=$3 t0
  shift 3
  t0=$(date +%s)
  echo "== $name (limit ${limit}s) ==" >&2
  if declare -F "$1" >/dev/null; then  # a shell function: timeout runs programs, so a bash runs it
    local fn=$1
    shift
    timeout --kill-after=10 "$limit" bash -c "$(declare -p ARGS RUN 2>/dev/null); $(declare -f "$fn"); $fn \"\$@\"" \
      "$fn" "$@" >"$LOG_DIR/$log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >"$LOG_DIR/$log" 2>&1
  fi
  local rc=$?
  status[$name]="rc $rc, $(( $(date +%s) - t0 ))s"
  [ $rc = 124 ] && status[$name]="TIMED OUT after ${limit}s"
  return $rc
}

stage tests 150 tests.log "$SW/bin/swiattn_tests" -tc="cuda reliability*,cuda train*,cuda generate*"

# ---- 3. kill mid-save and resume at the end-to-end size, bfloat16 ----
RUN="$LOG_DIR/runs"
rm -rf "$RUN" && mkdir -p "$RUN"
ARGS=(--device cuda --set train.dtype=bfloat16 --set model.vocab_size=256 --set model.hidden_size=256
      --set model.num_hidden_layers=4 --set model.num_attention_heads=4 --set model.num_key_value_heads=2
      --set model.head_dim=64 --set model.intermediate_size=768 --set model.sliding_window=128
      --set 'model.layer_types=["switch","switch","switch","switch"]' --set model.max_position_embeddings=1024
      --set train.seq_len=1024 --set train.batch_size=8 --set train.steps=80 --set train.warmup_steps=10
      --set train.log_interval=10 --set train.eval_interval=40 --set train.eval_batches=2
      --set train.checkpoint_interval=20 --set train.sample_tokens=0 --set data.cache_dir="$SW/data/cache")
kill_resume() {
  "$SW/bin/swiattn" train "${ARGS[@]}" --out "$RUN/a" >"$RUN/a.log" 2>&1 || return 1
  SWIATTN_TEST_FAULT_AT=count:40 "$SW/bin/swiattn" train "${ARGS[@]}" --set train.steps=40 --out "$RUN/count" \
    >"$RUN/count.log" 2>&1 || return 2
  local op
  op=$(grep -n 'fault injection: operation .*: rename .*/checkpoint$' "$RUN/count.log" | head -1 |
       sed -E 's/.*operation ([0-9]+) .*/\1/')
  [ -n "$op" ] || return 3
  echo "link rename: operation $op of the step-40 save"
  SWIATTN_TEST_FAULT_AT=kill:40:$op "$SW/bin/swiattn" train "${ARGS[@]}" --out "$RUN/b" >"$RUN/b.log" 2>&1
  local rc=$?
  echo "killed run: exit $rc (137 expected), links $(readlink "$RUN/b/checkpoint") (step 20 expected)"
  [ $rc = 137 ] || return 4
  [ "$(readlink "$RUN/b/checkpoint")" = checkpoints/step-00000020 ] || return 6
  "$SW/bin/swiattn" train --resume "$RUN/b" >"$RUN/b2.log" 2>&1 || return 5
  readlink "$RUN/b/checkpoint"
}
stage kill-resume 240 kill-resume.log kill_resume

val_loss() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['final_val_loss'])" "$1/checkpoint/trainer_state.json" 2>/dev/null || echo "?"; }
tok_s() { grep -o '[0-9]* tok/s' "$1" | tail -3 | tr '\n' ' '; }

# ---- summary (last: only the end of the output may be read) ----
echo
echo "================ reliability-check summary ($(( $(date +%s) - start ))s; $(head -1 "$LOG_DIR/device.txt"); commit $(cat "$SW/COMMIT")) ================"
for s in tests kill-resume; do printf '%-12s %s\n' "$s" "${status[$s]:-not run}"; done
echo "-- tests: $(grep -aE '^\[doctest\] (test cases|assertions)' "$LOG_DIR/tests.log" | tr '\n' ' ')"
echo "   skipped without a device: $(grep -ac 'SKIPPED (no CUDA device)' "$LOG_DIR/tests.log")"
grep -a 'GPU memory:' "$LOG_DIR/tests.log" | head -1
grep -a -B3 -A3 -E 'ERROR:' "$LOG_DIR/tests.log" | grep -avE '^\s*$|^=+$' | cut -c1-200 | head -30
echo "-- kill at the link's rename of the step-40 save, then --resume (e2e size, bfloat16):"
cut -c1-200 "$LOG_DIR/kill-resume.log" | tail -5
echo "   final validation loss: uninterrupted $(val_loss "$RUN/a"), killed + resumed $(val_loss "$RUN/b")" \
     "(CUDA resumes agree to rounding, not bit for bit)"
echo "   tokens/s of the last progress lines: uninterrupted $(tok_s "$RUN/a.log"); resumed $(tok_s "$RUN/b2.log")"
grep -ah 'error' "$RUN"/*.log 2>/dev/null | grep -v 'fault injection' | cut -c1-200 | head -5
ok=1
for s in tests kill-resume; do case "${status[$s]:-}" in "rc 0,"*) ;; *) ok=0 ;; esac; done
[ $ok = 1 ] && echo "reliability-check: every stage passed" || echo "reliability-check: SOME STAGE FAILED (logs in $LOG_DIR)"
[ $ok = 1 ]
