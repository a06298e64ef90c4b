#!/usr/bin/env bash
# scripts/gpu/check-all.sh: the GPU checks of a bundle (scripts/gpu/bundle.sh) in one go, side by
# side on one GPU, within a time budget; for a GPU node that lacks the build dependencies.
#   tests        every CUDA test case not run by a check below (swiattn_tests -tc="cuda*"), with
#                the CLI and the corpora of the bundle (SWIATTN_CLI, SWIATTN_DATA_CACHE);
#   racecheck    compute-sanitizer racecheck of the small backward case (sm80, deterministic and
#                sm90a kernels), the kernel named for every hazard it reports;
#   reliability  scripts/gpu/reliability-check.sh;
#   distributed  scripts/gpu/distributed-check.sh (STEPS 100);
#   ecosystem    scripts/gpu/ecosystem-check.sh;
#   parity       scripts/gpu/torch-parity-on-device.sh (PyTorch on this node).
# The checks run at the same time (each in its own unpacked copy of the bundle, with a share of
# the cores), so their timings are not benchmarks: bench/run.py and bench/e2e.sh are.
# $OUT (default runs/check-all) receives summary.md (one line per check, then each check's own
# summary), tests-failures.log, racecheck.txt and logs.tar.xz (every log under 2 MB).
#   BUNDLE=build-gpu/bundle.tar.xz BUDGET_S=420 bash scripts/gpu/check-all.sh
# CHECKS="tests racecheck" runs some of them; TESTS_TC / TESTS_TCE replace the test filters
# (doctest's -tc / -tce) of the tests check.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-runs/check-all}
BUDGET=${BUDGET_S:-420}
BUNDLE=$(realpath "${BUNDLE:-build-gpu/bundle.tar.xz}")
export BUNDLE
mkdir -p "$OUT"
LOGS=$(mktemp -d /tmp/swiattn-check-all.XXXXXX)
start=$(date +%s)
cap() { echo $(( BUDGET - 30 < $1 ? BUDGET - 30 : $1 )); }  # a check's cap within the budget

# job NAME SECONDS THREADS command...: one check in the background, in its own copy of the bundle.
pids=() names=()
CHECKS=${CHECKS:-tests racecheck reliability distributed ecosystem parity}
job() {
  [[ " $CHECKS " == *" $1 "* ]] || return 0
  local name=$1 limit; limit=$(cap "$2")
  local threads=$3
  shift 3
  # (LOG_DIR and OUT: the check scripts write their logs there, never into this script's $OUT)
  ( export SW="/tmp/swiattn-gpu-$name" OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive \
      LOG_DIR="$LOGS/$name-logs" OUT="$LOGS/$name-logs"
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$LOGS/$name.txt" 2>&1
    echo "$? $(( $(date +%s) - t0 )) $limit" >"$LOGS/$name.status" ) &
  pids+=($!) names+=("$name")
}

# The tests and the racecheck need the bundle unpacked first (the check scripts unpack their own).
export SW=/tmp/swiattn-gpu-tests
# shellcheck disable=SC1091
source scripts/gpu/unpack.sh >"$LOGS/unpack.txt" 2>&1 || { cat "$LOGS/unpack.txt"; exit 1; }
TESTS_SW=$SW
export SWIATTN_CLI="$TESTS_SW/bin/swiattn" SWIATTN_DATA_CACHE="$TESTS_SW/data/cache"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

job tests 330 5 "$TESTS_SW/bin/swiattn_tests" -tc="${TESTS_TC:-cuda*}" \
  -tce="${TESTS_TCE:-cuda reliability*,cuda train*,cuda generate*,cuda nccl*}"
job racecheck 150 1 "$SAN" --tool racecheck --racecheck-report hazard --print-limit 20 \
  "$TESTS_SW/bin/swiattn_tests" -tc="cuda backward: sanitizer sizes*"
job reliability 330 3 bash scripts/gpu/reliability-check.sh
job distributed 300 2 env STEPS=100 bash scripts/gpu/distributed-check.sh
job ecosystem 240 2 bash scripts/gpu/ecosystem-check.sh
job parity 150 2 bash scripts/gpu/torch-parity-on-device.sh "$LOGS/parity-logs"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  echo "check-all: ${names[$i]} done at $(( $(date +%s) - start )) s"
done

# The summary: one line per check, then each check's last lines (its own summary).
{
  echo "# check-all: bundle of commit $(cat "$TESTS_SW/COMMIT"), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - start )) s"
  echo
  echo "| check | status | s (cap) | last line |"
  echo "|---|---|---|---|"
  for name in "${names[@]}"; do
    read -r rc secs limit <"$LOGS/$name.status"
    case $rc in 0) st=ok ;; 124|137) st="CUT (cap)" ;; *) st="FAIL ($rc)" ;; esac
    last=$(grep -v '^\s*$' "$LOGS/$name.txt" | grep -E 'test cases|SUMMARY|passed|failed|FAIL' | tail -1 | tr '|' '/' | cut -c1-200)
    echo "| $name | $st | $secs ($limit) | $last |"
  done
  for name in reliability distributed ecosystem parity; do
    [ -f "$LOGS/$name.txt" ] || continue
    echo; echo "## $name (its last 40 lines)"; echo '```'; tail -40 "$LOGS/$name.txt"; echo '```'
  done
} >"$OUT/summary.md"
# The failing test cases with their messages, and the backward checks that failed.
touch "$LOGS/tests.txt" "$LOGS/racecheck.txt"
grep -E -B2 -A8 'ERROR:|FAILED|test cases:' "$LOGS/tests.txt" | head -400 >"$OUT/tests-failures.log"
grep 'BACKWARD-CHECK' "$LOGS/tests.txt" | grep -c . | sed 's/^/BACKWARD-CHECK lines: /' >>"$OUT/tests-failures.log"
grep 'BACKWARD-CHECK.*FAIL' "$LOGS/tests.txt" | head -40 >>"$OUT/tests-failures.log"
# The racecheck hazards: each report with the kernel and the source line it names.
grep -E -A6 'Race reported|hazard|RACECHECK SUMMARY|Saved host backtrace|test cases' "$LOGS/racecheck.txt" | head -300 >"$OUT/racecheck.txt"
find "$LOGS" -type f -size -2M -print0 | tar --null -C / -T - -cf - 2>/dev/null | xz -6 >"$OUT/logs.tar.xz"
cat "$OUT/summary.md" | head -12
