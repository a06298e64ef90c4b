#!/usr/bin/env bash
# scripts/gpu/hopper-check.sh: the Hopper attention forward (kernels/cuda/hopper_attention.cu) checked
# on an H100 / H200 in one go, within a time budget (BUDGET_S, default 400 s):
#   0. unpack the bundle of scripts/gpu/bundle.sh (binaries with sm_90a code), name the GPU;
#   1. sass: cuobjdump of the Hopper kernels: HGMMA (wgmma) and UTMALDG (TMA) instructions present,
#      registers, stack and local memory per kernel; plus ptxas's report from the bundle;
#   2. smoke: the small Hopper test case alone, 60 s at most (a deadlock shows here, and the kernel's
#      watchdog names the barrier it hung on);
#   3. tests: tests/test_cuda_hopper.cpp (every variant against the CPU float64 reference and the
#      sm80 kernel, errors per key band and query tile) and tests/test_cuda_flash.cpp;
#   4. compute-sanitizer memcheck and racecheck on the small test case (synccheck after step 5);
#   5. bench: bench/run.py prefill at T 8K, 16K, 32K, r 0 and 0.13: our Hopper kernels and the sm80
#      ones, SDPA (cuDNN / flash / efficient), FlexAttention with the route mask and on gathered
#      queries (32K), the bf16 GEMM rate; the issue's targets marked;
#   6. the other CUDA tests (regressions elsewhere), with the time left.
# Each step runs under a cap inside the budget (a later step is skipped, and says so, when time is
# short). stdout gets one line per step and the summary table last; $OUT (default
# runs/hopper-check) gets summary.md, tests.log, bench.md and hopper-check-logs.tar.xz (every
# step's log, cuobjdump's SASS of the Hopper kernels, ptxas's report).
# Usage (repository root, the bundle at build-gpu/bundle.tar.xz or BUNDLE=...):
#   bash scripts/gpu/hopper-check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/hopper-check}
mkdir -p "$OUT"
LOGS=$(mktemp -d)  # every step's log; packed into $OUT/hopper-check-logs.tar.xz at the end
START=$(date +%s)
BUDGET=${BUDGET_S:-400}
RESERVE=15  # seconds kept for the summary

NAMES=() STATUS=() SECS_ALL=() NOTES=()
record() { NAMES+=("$1"); STATUS+=("$2"); SECS_ALL+=("$3"); NOTES+=("${4//|//}"); }  # no | inside a table cell
left() { echo $((BUDGET - ($(date +%s) - START))); }
# run_step NAME CAP LOG CMD...: CMD under `timeout` (CAP, or less when the budget is short, keeping
# KEEP seconds for the steps after it); sets RC (exit code, "timeout" or "skipped") and SECS.
KEEP=0
run_step() {
  local name=$1 cap=$2 log=$3 t t0
  shift 3
  t=$cap
  (($(left) - RESERVE - KEEP < t)) && t=$(($(left) - RESERVE - KEEP))
  if ((t < 10)); then
    RC=skipped SECS=0
    echo "[$name] skipped: the time budget is spent" | tee "$log"
    return
  fi
  t0=$(date +%s)
  timeout -k 10 "$t" "$@" >"$log" 2>&1
  RC=$?
  SECS=$(($(date +%s) - t0))
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then RC=timeout; fi
  echo "[$name] exit $RC after ${SECS}s (cap ${t}s); log $log"
}

# ---- 0. unpack, the GPU ----
# shellcheck disable=SC1091
if ! source scripts/gpu/unpack.sh >"$LOGS/unpack.log" 2>&1; then
  cat "$LOGS/unpack.log"
  echo "hopper-check: no bundle: run scripts/gpu/bundle.sh where the build dependencies are, carry build-gpu/bundle.tar.xz"
  exit 1
fi
GPU=$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>/dev/null | head -1)
COMMIT=$(cat "$SW/COMMIT" 2>/dev/null || echo unknown)
echo "hopper-check: commit $COMMIT on ${GPU:-no GPU visible}; logs in $OUT"
TESTS=$SW/bin/swiattn_tests

# ---- 1. sass ----
t0=$(date +%s)
CUOBJDUMP=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
cp "$SW/ptxas-hopper.txt" "$LOGS/" 2>/dev/null
if [ -x "$CUOBJDUMP" ]; then
  "$CUOBJDUMP" -res-usage "$TESTS" >"$LOGS/res-usage.txt" 2>&1
  "$CUOBJDUMP" -sass "$TESTS" 2>&1 | awk '/Function : /{keep = ($0 ~ /hopper_forward_kernel/)} keep' >"$LOGS/sass-hopper.txt"
  SASS_NOTE=$(python3 - "$LOGS/sass-hopper.txt" "$LOGS/res-usage.txt" <<'EOF'
import re, sys
fns, cur = {}, None
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"Function : (\S+)", line)
    if m:
        cur = m.group(1); fns[cur] = {"HGMMA": 0, "UTMALDG": 0, "lines": 0}
    elif cur:
        fns[cur]["lines"] += 1
        for op in ("HGMMA", "UTMALDG"):
            fns[cur][op] += op in line
res = {}
text = open(sys.argv[2], errors="replace").read()
for m in re.finditer(r"Function (\S+):\s*\n\s*REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", text):
    if "hopper_forward_kernel" in m.group(1):
        res[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(5)))
def short(name):  # template arguments of the mangled name: D, Mode, output type
    m = re.search(r"hopper_forward_kernelILi(\d+)ELNS0_4ModeE(\d)E(\w+?)EEv", name)
    return f"D{m.group(1)} {['plain', 'switch', 'routed'][int(m.group(2))]}{' f32' if m.group(3) == 'f' else ''}" if m else name[:40]
parts = [f"{short(n)}: HGMMA {f['HGMMA']} TMA {f['UTMALDG']}" + (" REG {} STACK {} LOCAL {}".format(*res[n]) if n in res else "")
         for n, f in sorted(fns.items())]
ok = fns and all(f["HGMMA"] > 0 and f["UTMALDG"] > 0 for f in fns.values())
print(("ok" if ok else "FAIL") + f" | {len(fns)} hopper kernels; " + "; ".join(parts))
EOF
)
else
  SASS_NOTE="skipped | cuobjdump not found (looked for $CUOBJDUMP)"
fi
PTXAS_NOTE=$(grep -o 'Used [0-9]* registers' "$LOGS/ptxas-hopper.txt" 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
PTXAS_SPILL=$(grep -o '[0-9]* bytes spill stores' "$LOGS/ptxas-hopper.txt" 2>/dev/null | sort -u | tr '\n' ';')
PTXAS_SERIAL=$(grep -c 'C751' "$LOGS/ptxas-hopper.txt" 2>/dev/null)
record sass "${SASS_NOTE%% |*}" $(($(date +%s) - t0)) \
  "${SASS_NOTE#* | } | ptxas: ${PTXAS_NOTE:-n/a} spills: ${PTXAS_SPILL:-n/a} wgmma-serialised warnings: ${PTXAS_SERIAL:-n/a}"
echo "[sass] ${SASS_NOTE%% |*}"

# Counts of a doctest log: "cases P passed F failed", and the first failures.
doctest_note() {
  local log=$1
  local cases asserts
  cases=$(grep -o 'test cases: *[0-9]* | *[0-9]* passed | *[0-9]* failed' "$log" | tail -1 | tr -s ' ')
  asserts=$(grep -o 'assertions: *[0-9]* | *[0-9]* passed | *[0-9]* failed' "$log" | tail -1 | tr -s ' ')
  echo "${cases:-no doctest summary (crashed or cut off?)}; ${asserts:-}"
}
status_of() {  # exit code -> ok / FAIL / timeout / skipped
  case "$1" in 0) echo ok ;; timeout | skipped) echo "$1" ;; *) echo FAIL ;; esac
}

# ---- 2. smoke ----
run_step smoke 60 "$LOGS/smoke.log" "$TESTS" -tc="cuda hopper: sanitizer sizes*"
SMOKE_RC=$RC
note="$(doctest_note "$LOGS/smoke.log")"
grep -q "SKIPPED" "$LOGS/smoke.log" && note="$(grep -m1 -o 'SKIPPED.*' "$LOGS/smoke.log" | cut -c1-160)" && RC=skipped
grep -q "deadlock" "$LOGS/smoke.log" && note="$(grep -m1 'deadlock' "$LOGS/smoke.log" | cut -c1-200)"
[ "$RC" = timeout ] && note="HANG: last started check: $(grep 'HOPPER-' "$LOGS/smoke.log" | tail -1 | cut -c1-120)"
record smoke "$(status_of "$RC")" "$SECS" "$note"
HOPPER_OK=1
[ "$SMOKE_RC" = timeout ] && HOPPER_OK=0

# ---- 3. tests ----
if [ "$HOPPER_OK" = 1 ]; then
  KEEP=200 run_step tests 150 "$LOGS/tests.log" "$TESTS" -tc="cuda hopper*,cuda flash*"
  skipped=$(grep -c 'SKIPPED (no' "$LOGS/tests.log")
  st=$(status_of "$RC")
  [ "$st" = ok ] && [ "$skipped" != 0 ] && st="ok, but $skipped cases SKIPPED"
  record tests "$st" "$SECS" "$(doctest_note "$LOGS/tests.log"); HOPPER-CHECK lines: $(grep -c '^HOPPER-CHECK' "$LOGS/tests.log")"
else
  record tests skipped 0 "the smoke run hung"
fi

# ---- 4. compute-sanitizer on the small case (memcheck and racecheck now, synccheck after the bench) ----
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
sanitize() {
  local tool=$1 cap=$2 summary
  if [ "$HOPPER_OK" != 1 ]; then
    record "$tool" skipped 0 "the smoke run hung"
    return
  fi
  KEEP=$3 run_step "$tool" "$cap" "$LOGS/$tool.log" "$SANITIZER" --tool "$tool" --error-exitcode 1 "$TESTS" \
    -tc="cuda hopper: sanitizer sizes*"
  summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|SYNCCHECK SUMMARY' "$LOGS/$tool.log" | tail -1 | sed 's/^========= //')
  record "$tool" "$(status_of "$RC")" "$SECS" "${summary:-no sanitizer summary}; $(doctest_note "$LOGS/$tool.log")"
}
sanitize memcheck 90 150  # keep 150 s for the bench
sanitize racecheck 90 150

# ---- 5. bench ----
BENCH_ARGS=(--swiattn "$SW/bin/swiattn" --out "$LOGS/bench.md" --skip decode,train,generate --T 8192,16384,32768 --r 0,0.13
  --flex-T 32768)
if [ "$HOPPER_OK" = 1 ]; then
  run_step bench 200 "$LOGS/bench.log" python3 bench/run.py "${BENCH_ARGS[@]}" --sm80
else  # the Hopper kernel hangs: measure the sm80 kernels and the baselines only
  run_step bench 200 "$LOGS/bench.log" env SWIATTN_ATTENTION_KERNEL=sm80 python3 bench/run.py "${BENCH_ARGS[@]}"
fi
record bench "$(status_of "$RC")" "$SECS" "$LOGS/bench.md ($(grep -c '^| [0-9]' "$LOGS/bench.md" 2>/dev/null || echo 0) rows)"

sanitize synccheck 60 0

# ---- 6. the other CUDA tests ----
run_step other-cuda-tests 90 "$LOGS/other-tests.log" "$TESTS" -tc="cuda*" -tce="cuda hopper*,cuda flash*"
record other-cuda-tests "$(status_of "$RC")" "$SECS" "$(doctest_note "$LOGS/other-tests.log")"

# ---- summary (last) ----
TOTAL=$(($(date +%s) - START))
{
  echo
  echo "==================== hopper-check summary: commit $COMMIT, ${GPU:-?}, ${TOTAL}s ===================="
  echo "| step | status | s | notes |"
  echo "|---|---|---|---|"
  for i in "${!NAMES[@]}"; do
    echo "| ${NAMES[$i]} | ${STATUS[$i]} | ${SECS_ALL[$i]} | ${NOTES[$i]} |"
  done
  echo
  python3 - "$LOGS" <<'EOF'
import os, re, sys
out = sys.argv[1]
def read(name):
    p = os.path.join(out, name)
    return open(p, errors="replace").read() if os.path.exists(p) else ""
tests = read("tests.log") or read("smoke.log")
worst, fails = {}, []
for line in tests.splitlines():
    if line.startswith("HOPPER-CHECK"):
        parts = [p.strip() for p in line.split("|")]
        m = re.search(r"err (\S+) sm80 (\S+) ctrl (\S+) bound (\S+)", parts[2])
        if not m:
            continue
        err, err80, bound = float(m.group(1)), float(m.group(2)), float(m.group(4))
        variant = parts[1]
        ratio = err / bound if bound > 0 else float("inf")
        if ratio != ratio:  # NaN
            ratio = float("inf")
        w = worst.setdefault(variant, [0, -1.0, "", 0])
        w[0] += 1
        w[3] += parts[-1] != "ok"
        if ratio > w[1]:
            w[1], w[2] = ratio, f"{parts[0][13:].strip()} err {err:.2e} (sm80 {err80:.2e})"
        if parts[-1] != "ok":
            fails.append(line[:230])
    elif line.startswith("HOPPER-TILE ") or (line.startswith("HOPPER-TILES") and line.rstrip().endswith("FAIL")):
        fails.append(line[:230])
if worst:
    print("Hopper vs CPU float64 (err / bound, worst over problems; bound = 2 ctrl + 1e-3, lse 1e-5):")
    print("| variant | checks | failed | worst err/bound | where |")
    print("|---|---|---|---|---|")
    for v, (n, r, at, nf) in worst.items():
        print(f"| {v} | {n} | {nf} | {r:.2f} | {at} |")
tiles = [l for l in tests.splitlines() if l.startswith("HOPPER-TILES")]
for l in tiles:
    print(l[:200])
if fails:
    print(f"First failures ({len(fails)}):")
    for l in fails[:8]:
        print("  " + l)
for name in ("smoke.log", "tests.log"):
    for l in read(name).splitlines():
        if "deadlock" in l or "cuda error" in l or "ERROR:" in l:
            print(f"  {name}: {l[:220]}")
            break
bench = read("bench.md").splitlines()
rows = [l for l in bench if l.startswith("| 8192") or l.startswith("| 16384") or l.startswith("| 32768")]
if rows:
    print()
    print("Prefill (bench.md): T | r | impl | ours ms | TFLOP/s | % GEMM | sm80 ms | sm80/ours | SDPA ms | SDPA/ours | Flex mask ms | /ours | Flex gathered ms | /ours")
    head = [l for l in bench if "GEMM 8192" in l]
    if head:
        print(head[0][:220])
    for l in rows:
        print(l[:260])
    if "### Forward targets (issue 12)" in bench:
        i = bench.index("### Forward targets (issue 12)")
        for l in bench[i + 2:]:
            if not l.startswith("|"):
                break
            print(l[:240])
else:
    print("no bench table (see bench.log)")
    print("\n".join(read("bench.log").splitlines()[-5:]))
EOF
} | tee "$LOGS/summary.md"
# What comes back: the summary, the two main logs, and everything packed.
cp "$LOGS/summary.md" "$OUT/"
for f in tests.log bench.md; do [ -f "$LOGS/$f" ] && cp "$LOGS/$f" "$OUT/"; done
tar -C "$LOGS" -cJf "$OUT/hopper-check-logs.tar.xz" . && rm -rf "$LOGS"
