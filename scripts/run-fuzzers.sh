#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang in build-fuzz/ and runs each one for a bounded
# time. Exits non-zero when any target finds a crash, a sanitizer report, an unexpected exception
# or a broken promise (see fuzz/README.md for what each target checks).
#
#   scripts/run-fuzzers.sh                   every target, FUZZ_SECONDS (default 60) each
#   scripts/run-fuzzers.sh config            only the named targets
#   FUZZ_SECONDS=600 scripts/run-fuzzers.sh  a longer run
#
# Corpora: fuzz/corpus/<target>/ holds the committed seeds (read only); what a run discovers goes
# to build-fuzz/corpus/<target>/ and is reused by the next run in the same build directory.
# A finding is saved as build-fuzz/findings/<target>/crash-<sha1> (or leak-, timeout-, oom-);
# replay one with: build-fuzz/fuzz_<target> build-fuzz/findings/<target>/crash-...
# Before fuzzing, every input in fuzz/regressions/<target>/ (past findings) is replayed once.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build_dir=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc)}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config tokenizer checkpoint_json token_file)

# The largest input each target is given: a few seeds' worth for safetensors and configs; the
# tokenizer's BPE merge is quadratic in a piece's length, so its inputs stay at 1 KiB.
declare -A max_len=([safetensors]=4096 [config]=4096 [tokenizer]=1024 [checkpoint_json]=4096 [token_file]=4096)

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "[fuzz] $tool not found: run scripts/install-deps.sh"; exit 1; }
done

start=$(date +%s)
# Coverage instrumentation and both sanitizers everywhere; -O1 as libFuzzer's docs recommend.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DSWIATTN_CUDA=OFF -DSWIATTN_FUZZ=ON >/dev/null
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"
echo "[fuzz] built in $(( $(date +%s) - start ))s"

export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
failed=()
summary=()
for t in "${targets[@]}"; do
  binary="$build_dir/fuzz_$t"
  corpus="$build_dir/corpus/$t"
  findings="$build_dir/findings/$t"
  log="$build_dir/fuzz_$t.log"
  mkdir -p "$corpus" "$findings"

  # Past findings first: each must now pass (be rejected with an Error, or accepted).
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    if ! "$binary" -artifact_prefix="$findings/" fuzz/regressions/"$t"/* >"$log.regressions" 2>&1; then
      echo "[fuzz] $t: a regression input fails again:"; tail -n 30 "$log.regressions"
      failed+=("$t (regressions)")
      continue
    fi
  fi

  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  echo "[fuzz] $t: ${seconds}s, -max_len=${max_len[$t]}"
  status=0
  "$binary" "$corpus" "fuzz/corpus/$t" "${dict[@]}" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" \
    ${FUZZ_FLAGS:-} >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  summary+=("$(printf '%-12s %10s runs %8s exec/s %6s edges  exit %s' "$t" "${runs:-?}" "${rate:-?}" "${edges:-?}" "$status")")
  if [ "$status" -ne 0 ]; then
    echo "[fuzz] $t FAILED (exit $status); the end of $log:"
    tail -n 60 "$log"
    ls "$findings"
    failed+=("$t")
  fi
done

echo "[fuzz] summary (${seconds}s per target, total $(( $(date +%s) - start ))s):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "[fuzz] FAILED: ${failed[*]}"
  exit 1
fi
