#!/usr/bin/env bash
# scripts/gpu/distributed-check.sh: data-parallel training (docs/distributed.md) in one go on a GPU
# machine that lacks the build dependencies (binaries built elsewhere by scripts/gpu/bundle.sh):
#   1. unpacks the bundle (scripts/gpu/unpack.sh) and finds NCCL's libnccl.so.2 on this machine
#      (the binaries load it at run time): SWIATTN_NCCL_LIBRARY, the loader's paths, the CUDA
#      toolkit, PyTorch's nvidia-nccl package, the bundle (BUNDLE_NCCL=1), a search of /;
#   2. the tests: the NCCL ones on this machine's GPUs (one rank; 2 ranks when 2+ GPUs are
#      there) and the CPU data-parallel ones (ranks as threads);
#   3. the reproduction's model (configs/reproduce/gpu/pretrain.json, 512 tokens x 32 rows,
#      bfloat16, STEPS steps): a plain run, a 1-rank launched run and a 1-rank launched run with
#      the all-reduce after the backward (--no-overlap): losses compared, tokens/s compared;
#   4. with NPROC >= 2 GPUs (default: every GPU, at most 8): the same model on NPROC ranks (the
#      same global batch): losses against the plain run, tokens/s against it (targets: 2 GPUs
#      >= 1.85x, 8 GPUs >= 7x), a run killed after its checkpoint and resumed on NPROC ranks;
#   5. prints a short summary last. Full logs go to LOG_DIR (default runs/distributed-check).
#
#   BUNDLE=build-gpu/bundle.tar.xz LOG_DIR=/some/folder bash scripts/gpu/distributed-check.sh
#   NPROC=2 STEPS=200 bash scripts/gpu/distributed-check.sh    # on a machine with 2 GPUs
#
# Each stage has a time limit (one GPU: about 2 minutes in all) and a failing stage does not stop
# the next ones; the exit status is 0 only when every stage that ran passed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
LOG_DIR=${LOG_DIR:-${OUT:-runs/distributed-check}}
RUNS=${RUNS:-/tmp/swiattn-distributed-runs}
STEPS=${STEPS:-200}
mkdir -p "$LOG_DIR"
rm -rf "$RUNS" && mkdir -p "$RUNS"
start=$(date +%s)
declare -A status

# shellcheck disable=SC1091
if ! source scripts/gpu/unpack.sh >"$LOG_DIR/unpack.log" 2>&1; then
  cat "$LOG_DIR/unpack.log"
  echo "distributed-check: FAILED to unpack the bundle"
  exit 1
fi
export SWIATTN_CLI="$SW/bin/swiattn" SWIATTN_DATA_CACHE="$SW/data/cache"
export OMP_WAIT_POLICY=passive
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
NPROC=${NPROC:-$(( GPUS > 8 ? 8 : GPUS ))}

# ---- 1. NCCL on this machine ----
find_nccl() {
  if [ -n "${SWIATTN_NCCL_LIBRARY:-}" ] && [ -f "$SWIATTN_NCCL_LIBRARY" ]; then echo "$SWIATTN_NCCL_LIBRARY (SWIATTN_NCCL_LIBRARY)"; return; fi
  local p
  p=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 / {print $NF; exit}')
  [ -n "$p" ] && { echo "$p (ldconfig)"; return; }
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
    [ -f "$d/libnccl.so.2" ] && { echo "$d/libnccl.so.2 (CUDA / system folder)"; return; }
  done
  p=$(python3 - 2>/dev/null <<'PY'
import glob, importlib.util, os
found = []
try:
    import nvidia.nccl
    for root in nvidia.nccl.__path__:
        found += glob.glob(os.path.join(root, "lib", "libnccl.so*"))
except Exception:
    pass
spec = importlib.util.find_spec("torch")
if spec and spec.origin:
    found += glob.glob(os.path.join(os.path.dirname(spec.origin), "lib", "libnccl*.so*"))
for f in found:
    if os.path.isfile(f):
        print(f)
        break
PY
)
  [ -n "$p" ] && { echo "$p (PyTorch's NCCL)"; return; }
  [ -f "$SW/lib/libnccl.so.2" ] && { echo "$SW/lib/libnccl.so.2 (the bundle)"; return; }
  p=$(timeout 30 find / -xdev \( -name 'libnccl.so.2*' -o -name 'libnccl.so' \) -type f 2>/dev/null | head -1)
  [ -n "$p" ] && { echo "$p (found by a search)"; return; }
}
NCCL_FOUND=$(find_nccl)
if [ -n "$NCCL_FOUND" ]; then
  export SWIATTN_NCCL_LIBRARY="${NCCL_FOUND%% (*}"
  NCCL_NOTE="libnccl at $NCCL_FOUND"
else
  NCCL_NOTE="NO libnccl.so.2 on this machine: the NCCL tests skip; carry one (BUNDLE_NCCL=1 scripts/gpu/bundle.sh) or set SWIATTN_NCCL_LIBRARY"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "GPUs: $GPUS, NPROC: $NPROC"; cat "$SW/COMMIT"; echo "$NCCL_NOTE"
  nvidia-smi topo -m 2>/dev/null || true; } >"$LOG_DIR/device.txt"

stage() {  # stage NAME SECONDS LOG command...
  local name=$1 limit=$2 log=$3 t0
  shift 3
  t0=$(date +%s)
  echo "== $name (limit ${limit}s) ==" >&2
  timeout --kill-after=10 "$limit" "$@" >>"$LOG_DIR/$log" 2>&1
  local rc=$?
  status[$name]="rc $rc, $(( $(date +%s) - t0 ))s"
  [ $rc = 124 ] && status[$name]="TIMED OUT after ${limit}s"
  return $rc
}

# ---- 2. tests ----
stage tests 150 tests.log "$SW/bin/swiattn_tests" -tc="cuda nccl*,data parallel*"

# ---- 3. and 4. the reproduction's model ----
COMMON=(--config configs/reproduce/gpu/pretrain.json --set 'train.curriculum=[]' --set train.seq_len=512
        --set train.batch_size=32 --set "train.steps=$STEPS" --set train.warmup_steps=20 --set train.log_interval=20
        --set "train.eval_interval=$STEPS" --set train.checkpoint_interval=0 --set "data.cache_dir=$SW/data/cache")
stage plain 90 repro.log "$SW/bin/swiattn" train "${COMMON[@]}" --out "$RUNS/plain"
stage launch1 90 repro.log "$SW/bin/swiattn" launch --nproc 1 train "${COMMON[@]}" --out "$RUNS/launch1"
stage launch1-no-overlap 90 repro.log "$SW/bin/swiattn" launch --nproc 1 --no-overlap train "${COMMON[@]}" --out "$RUNS/launch1-no-overlap"
MULTI=()
if [ "$NPROC" -ge 2 ] && [ -n "$NCCL_FOUND" ]; then
  MULTI=("launch$NPROC" "launch$NPROC-no-overlap" "killed$NPROC" "resumed$NPROC")
  stage "launch$NPROC" 120 repro.log "$SW/bin/swiattn" launch --nproc "$NPROC" train "${COMMON[@]}" --out "$RUNS/launch$NPROC"
  stage "launch$NPROC-no-overlap" 120 repro.log "$SW/bin/swiattn" launch --nproc "$NPROC" --no-overlap train "${COMMON[@]}" --out "$RUNS/launch$NPROC-no-overlap"
  half=$(( STEPS / 2 ))
  # Rank 0 is killed (SIGKILL) right after its step-$half checkpoint: the launcher then exits 1.
  stage "killed$NPROC" 120 repro.log env "SWIATTN_TEST_KILL_AT=after-save:$half" "$SW/bin/swiattn" launch --nproc "$NPROC" \
    train "${COMMON[@]}" --set "train.checkpoint_interval=$half" --out "$RUNS/resume$NPROC"
  case "${status[killed$NPROC]}" in
    "rc 1,"*) [ -e "$RUNS/resume$NPROC/checkpoint" ] && status[killed$NPROC]="rc 0 (killed after step $half as asked; ${status[killed$NPROC]})" ;;
    *) status[killed$NPROC]="NOT KILLED as asked: ${status[killed$NPROC]}" ;;
  esac
  stage "resumed$NPROC" 120 repro.log "$SW/bin/swiattn" launch --nproc "$NPROC" train --resume "$RUNS/resume$NPROC"
  cp "$RUNS/launch$NPROC/distributed/rank-1.log" "$LOG_DIR/rank-1.log" 2>/dev/null || true
fi

# ---- 5. summary (last: only the end of the output may be read) ----
compare() {  # compare NAME: losses and tokens/s of RUNS/NAME against RUNS/plain
  python3 - "$RUNS" "$1" <<'PY'
import json, sys, os
runs, name = sys.argv[1], sys.argv[2]
def read(n):
    rows = {}
    tps = []
    path = os.path.join(runs, n, "metrics.jsonl")
    if not os.path.exists(path):
        return None, None
    for line in open(path):
        j = json.loads(line)
        if "loss" in j:
            rows[j["step"]] = j["loss"]
            tps.append(j["tokens_per_second"])
    return rows, tps
base, base_tps = read("plain")
run, tps = read(name)
if not run or not base:
    print(f"{name:24s} no metrics")
    sys.exit()
worst = max(abs(run[s] - base[s]) / abs(base[s]) for s in base if s in run) if set(base) <= set(run) else float("nan")
last = max(run)
# tokens/s: the last logged value (the whole session's mean; the first steps carry the start-up)
ratio = tps[-1] / base_tps[-1] if base_tps else float("nan")
print(f"{name:24s} loss at step {last}: {run[last]:.4f} (plain {base.get(last, float('nan')):.4f}); worst relative loss diff {worst:.2e}; "
      f"{tps[-1]:,.0f} tok/s = {ratio:.3f}x plain")
PY
}
echo
echo "================ distributed-check summary ($(( $(date +%s) - start ))s; $(head -1 "$LOG_DIR/device.txt"); $GPUS GPU(s); commit $(cat "$SW/COMMIT")) ================"
echo "NCCL: $NCCL_NOTE"
for s in tests plain launch1 launch1-no-overlap "${MULTI[@]}"; do printf '%-22s %s\n' "$s" "${status[$s]:-not run}"; done
echo "-- tests: $(grep -E '^\[doctest\] (test cases|assertions)' "$LOG_DIR/tests.log" | tr '\n' ' ')"
echo "   skipped: $(grep -c 'SKIPPED' "$LOG_DIR/tests.log") ($(grep -o 'SKIPPED ([^)]*)' "$LOG_DIR/tests.log" | sort | uniq -c | tr '\n' ' '))"
grep -E 'MESSAGE: (1-rank launch|2 ranks vs|using NCCL)' "$LOG_DIR/tests.log" | sed 's/.*MESSAGE: /   /' | cut -c1-220
grep -B3 -A3 -E 'ERROR:|FATAL' "$LOG_DIR/tests.log" | grep -vE '^\s*$|^=+$' | cut -c1-220 | head -30
echo "-- the reproduction's model, $STEPS steps of 32 x 512 tokens, bfloat16 (vs the plain run):"
COMPARED=(launch1 launch1-no-overlap)
[ ${#MULTI[@]} -gt 0 ] && COMPARED+=("launch$NPROC" "launch$NPROC-no-overlap" "resume$NPROC")
for n in "${COMPARED[@]}"; do compare "$n"; done
grep -hE 'error|Error' "$LOG_DIR/repro.log" | head -10
ok=1
for s in tests plain launch1 launch1-no-overlap "${MULTI[@]}"; do case "${status[$s]:-}" in "rc 0"*) ;; *) ok=0 ;; esac; done
[ "$NPROC" -lt 2 ] && echo "multi-GPU: NOT RUN ($GPUS GPU(s) here): on a machine with 2+ GPUs run NPROC=2 bash scripts/gpu/distributed-check.sh"
[ $ok = 1 ] && echo "distributed-check: every stage passed" || echo "distributed-check: SOME STAGE FAILED (logs in $LOG_DIR)"
[ $ok = 1 ]
