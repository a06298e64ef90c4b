#!/usr/bin/env bash
# scripts/gpu/torch-parity-on-device.sh: the PyTorch parity test (python/test_parity.py) on a GPU
# node that has a current PyTorch (2.x) but not the build dependencies, so that
# python/swiattn_torch.py is checked under PyTorch 2.x as `make test` checks it under Debian's
# 1.13. Also compares our safetensors reader with the official package (`inspect --official`)
# where that package is installed. Nothing here needs the GPU itself: the models run on the CPU.
#
# Here: bash scripts/gpu/bundle.sh (binaries, with swiattn_step_dump, and the corpora). There:
#   BUNDLE=build-gpu/bundle.tar.xz bash scripts/gpu/torch-parity-on-device.sh [LOG_DIR]
# LOG_DIR (default $OUT, else runs/torch-parity-gpu) receives torch-parity.log (every
# comparison) and inspect.log; the scratch folder is /tmp/swiattn-torch-parity. About 30 s.
# The summary table comes last; success: "parity: N passed, 0 failed" and both readers identical.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=${1:-${OUT:-runs/torch-parity-gpu}}
WORK=/tmp/swiattn-torch-parity
PY=${SWIATTN_PYTHON:-python3}
mkdir -p "$LOG"

# shellcheck disable=SC1091
source scripts/gpu/unpack.sh || exit 1
versions=$("$PY" -c "import sys, torch; print(f'PyTorch {torch.__version__}, Python {sys.version.split()[0]}')" 2>&1) || {
  echo "torch-parity-on-device: $PY cannot import torch: $versions"; exit 1; }

start=$(date +%s)
"$PY" python/test_parity.py --swiattn "$SW/bin/swiattn" --step-dump "$SW/bin/swiattn_step_dump" \
  --data-cache "$SW/data/cache" --work "$WORK" >"$LOG/torch-parity.log" 2>&1
parity_status=$?
parity_seconds=$(( $(date +%s) - start ))

official="not run (no checkpoints)"
: >"$LOG/inspect.log"
if "$PY" -c "import safetensors" >/dev/null 2>&1; then
  official=""
  for case in A B; do
    if [ -d "$WORK/$case/checkpoint" ]; then
      "$PY" python/swiattn_torch.py inspect "$WORK/$case/checkpoint" --official >>"$LOG/inspect.log" 2>&1
      official+="$case: $(grep -o 'safetensors.torch.load_file: .*' "$LOG/inspect.log" | tail -1 | cut -d' ' -f2) "
    fi
  done
else
  official="not run (no safetensors package)"
fi

if [ "$parity_status" -ne 0 ]; then
  echo "---- failures (from $LOG/torch-parity.log) ----"
  grep '^FAIL' "$LOG/torch-parity.log" | head -40
  echo "---- its last lines ----"
  tail -15 "$LOG/torch-parity.log"
fi
echo "---- summary ----"
printf '%-28s %s\n' "python / torch" "$versions"
printf '%-28s %s\n' "bundle commit" "$(cat "$SW/COMMIT")"
printf '%-28s %s\n' "parity test" "$(tail -1 "$LOG/torch-parity.log") (exit $parity_status, ${parity_seconds}s)"
printf '%-28s %s\n' "reader vs safetensors pkg" "$official"
[ "$parity_status" -eq 0 ] || exit 1
case "$official" in *DIFFERENT*) exit 1 ;; esac
exit 0
