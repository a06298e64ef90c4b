#!/usr/bin/env bash
# scripts/gpu/decode-check.sh: GPU decoding in one go on a GPU machine that lacks the build
# dependencies (binaries built elsewhere by scripts/gpu/bundle.sh, carried as a bundle):
#   1. unpacks the bundle (scripts/gpu/unpack.sh);
#   2. the decode tests on the GPU: the decode kernel and cache append against the CPU, the argmax,
#      the model decoding on the GPU against the full forward (float32 tight, bfloat16 2x control),
#      `swiattn generate --device cuda --temperature 0` against the CPU path; plus the CPU decode
#      and sampling tests and the op table (RoPE with per-row positions);
#   3. compute-sanitizer memcheck and racecheck on the decode kernel's small test cases;
#   4. the benchmarks (bench/run.py --skip prefill,train): the decode kernel's KV bandwidth
#      against a copy (r 0.13 and 1, caches 8K and 32K, 16 sequences), and end-to-end generation
#      (16 prompts, 256 new tokens) against PyTorch at 8K and SwiAttn against FullAttn at 32K;
#   5. prints a short summary last. Full logs go to LOG_DIR (default runs/decode-check).
#
#   BUNDLE=build-gpu/bundle.tar.xz LOG_DIR=/some/folder bash scripts/gpu/decode-check.sh
#
# Each stage has a time limit (the whole script stays under 6 minutes) and a failing stage does
# not stop the next ones; the exit status is 0 only when every stage passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG_DIR=${LOG_DIR:-${OUT:-runs/decode-check}}
mkdir -p "$LOG_DIR"
start=$(date +%s)
declare -A status

# shellcheck disable=SC1091
if ! source scripts/gpu/unpack.sh >"$LOG_DIR/unpack.log" 2>&1; then
  cat "$LOG_DIR/unpack.log"
  echo "decode-check: FAILED to unpack the bundle"
  exit 1
fi
export SWIATTN_CLI="$SW/bin/swiattn"  # the CLI test of tests/test_cuda_generate.cpp runs this binary
export OMP_WAIT_POLICY=passive
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  cat "$SW/COMMIT"; } >"$LOG_DIR/device.txt"

stage() {  # stage NAME SECONDS LOG command...
  local name=$1 limit=$2 log=$3 t0
  shift 3
  t0=$(date +%s)
  echo "== $name (limit ${limit}s) ==" >&2
  timeout --kill-after=10 "$limit" "$@" >"$LOG_DIR/$log" 2>&1
  local rc=$?
  status[$name]="rc $rc, $(( $(date +%s) - t0 ))s"
  [ $rc = 124 ] && status[$name]="TIMED OUT after ${limit}s"
  return $rc
}

TESTS='cuda decode*,cuda generate*,cuda: every op*,decode*,sampling*'
stage tests 90 tests.log "$SW/bin/swiattn_tests" -tc="$TESTS"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
SMALL='cuda decode: pieces*,cuda decode: the routes*'
stage memcheck 60 memcheck.log "$SAN" --tool memcheck --error-exitcode 1 "$SW/bin/swiattn_tests" -tc="$SMALL,cuda generate: greedy*"
stage racecheck 35 racecheck.log "$SAN" --tool racecheck --error-exitcode 1 "$SW/bin/swiattn_tests" -tc="$SMALL"
stage bench 160 bench.log python3 bench/run.py --swiattn "$SW/bin/swiattn" --skip prefill,train --out "$LOG_DIR/bench.md"

# ---- summary (last: only the end of the output may be read) ----
echo
echo "================ decode-check summary ($(( $(date +%s) - start ))s; $(head -1 "$LOG_DIR/device.txt"); commit $(cat "$SW/COMMIT")) ================"
for s in tests memcheck racecheck bench; do printf '%-10s %s\n' "$s" "${status[$s]:-not run}"; done
echo "-- tests: $(grep -E '^\[doctest\] (test cases|assertions)' "$LOG_DIR/tests.log" | tr '\n' ' ')"
echo "   skipped without a device: $(grep -c 'SKIPPED (no CUDA device)' "$LOG_DIR/tests.log")"
grep -E '^cuda (decode|generate)' "$LOG_DIR/tests.log" | cut -c1-200 | head -40
grep -B3 -A2 -E 'ERROR:' "$LOG_DIR/tests.log" | grep -vE '^\s*$|^=+$' | cut -c1-200 | head -40
echo "-- sanitizers: memcheck $(grep -E 'ERROR SUMMARY' "$LOG_DIR/memcheck.log" | tail -1); racecheck $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$LOG_DIR/racecheck.log" | tail -1)"
echo "-- benchmarks ($LOG_DIR/bench.md):"
if [ -f "$LOG_DIR/bench.md" ]; then grep -E '^\||^Copy|^## ' "$LOG_DIR/bench.md"; else tail -20 "$LOG_DIR/bench.log"; fi
grep -E 'failed|Traceback|Error' "$LOG_DIR/bench.log" | head -10
ok=1
for s in tests memcheck racecheck bench; do case "${status[$s]:-}" in "rc 0,"*) ;; *) ok=0 ;; esac; done
[ $ok = 1 ] && echo "decode-check: every stage passed" || echo "decode-check: SOME STAGE FAILED (logs in $LOG_DIR)"
[ $ok = 1 ]
