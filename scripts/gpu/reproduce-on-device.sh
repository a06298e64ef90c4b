#!/usr/bin/env bash
# scripts/gpu/reproduce-on-device.sh: the GPU reproduction (scripts/reproduce.py, VARIANT=gpu) on a
# GPU node that lacks the build dependencies, from a bundle built elsewhere (scripts/gpu/bundle.sh),
# in time-limited pieces whose state travels between them as a few compressed parts.
#
# On the GPU node, from the repository root:
#   BUNDLE=build-gpu/bundle.tar.xz STATE_IN=runs/gpu-state STATE_OUT=DIR \
#     bash scripts/gpu/reproduce-on-device.sh [BUDGET_S] [ONLY]
#     1. unpacks the bundle (scripts/gpu/unpack.sh: binaries, libraries, corpora);
#     2. restores the earlier pieces' state from $STATE_IN/reproduce-gpu.tar.part* when present;
#     3. runs scripts/reproduce.py (all stages, or the comma list ONLY) and stops it after BUDGET_S
#        seconds (default 480) so that the packing below still fits; a stopped training resumes
#        from its last checkpoint in the next piece;
#     4. packs runs/reproduce-gpu into $STATE_OUT/reproduce-gpu.tar.part00, 01, ... (PART_MB each,
#        default 15), leaving out what no later stage reads (see prune_for_carry), and the log
#        $STATE_OUT/device.log.
# Where the pipeline is driven from (the machine that built the bundle), after each piece:
#   rm -rf runs/gpu-state && mkdir -p runs/gpu-state && cp STATE_OUT_COPY/reproduce-gpu.tar.part* runs/gpu-state/
# and after the piece that finished the results stage:
#   bash scripts/gpu/reproduce-on-device.sh --import runs/gpu-state
# unpacks the state into runs/reproduce-gpu and writes docs/results.md (+ docs/results-figures/).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUN=runs/reproduce-gpu
STATE_IN=${STATE_IN:-runs/gpu-state}
PART_BYTES=$((${PART_MB:-15} * 1000 * 1000))

restore_state() {
  local dir=$1
  if ls "$dir"/reproduce-gpu.tar.part* >/dev/null 2>&1; then
    mkdir -p "$RUN"
    cat "$dir"/reproduce-gpu.tar.part* | xz -dc | tar -C "$RUN" -xf -
    echo "reproduce-on-device: restored $(find "$RUN" -name DONE | wc -l) finished stage(s) from $dir"
  else
    echo "reproduce-on-device: no earlier state in $dir: starting from the beginning"
  fi
}

if [ "${1:-}" = --import ]; then
  dir=${2:-runs/gpu-state}
  rm -rf "$RUN"
  restore_state "$dir"
  if [ -f "$RUN/results.md" ] && [ -d "$RUN/figures" ]; then
    rm -rf docs/results-figures && mkdir -p docs/results-figures
    cp "$RUN"/figures/*.svg docs/results-figures/
    sed 's#](figures/#](results-figures/#g' "$RUN/results.md" >docs/results.md
    echo "reproduce-on-device: wrote docs/results.md and docs/results-figures/ from $RUN"
  else
    echo "reproduce-on-device: the results stage has not run in this state: docs/results.md not written"
  fi
  exit 0
fi

BUDGET=${1:-480}
ONLY=${2:-}
: "${STATE_OUT:?set STATE_OUT to the folder the state parts and the log go to}"
mkdir -p "$STATE_OUT"

# shellcheck disable=SC1091
source scripts/gpu/unpack.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
restore_state "$STATE_IN"

# Drops, from a copy of RUN about to be packed, what no later stage reads: the optimizer moments of
# finished trainings (only a resume reads them), the weights of evaluated continued runs, and the
# base's weights once every continued run is done.
prune_for_carry() {
  local copy=$1 d
  while IFS= read -r d; do
    find "$(dirname "$d")" -name optimizer.safetensors -delete
  done < <(find "$copy" -name TRAIN_DONE)
  while IFS= read -r d; do
    case $d in "$copy"/pretrain/*) ;; *) find "$(dirname "$(dirname "$d")")" -name model.safetensors -delete ;; esac
  done < <(find "$copy" -path '*/eval/DONE')
  if [ -f "$copy/results.md" ]; then find "$copy/pretrain" -name model.safetensors -delete; fi
  return 0
}

pack_state() {
  local copy
  copy=$(mktemp -d)
  cp -a "$RUN"/. "$copy"/
  prune_for_carry "$copy"
  rm -f "$STATE_OUT"/reproduce-gpu.tar.part*
  tar -C "$copy" -cf - . | xz -T0 -3 | split -b "$PART_BYTES" -d - "$STATE_OUT/reproduce-gpu.tar.part"
  rm -rf "$copy"
  echo "reproduce-on-device: state packed into $(ls "$STATE_OUT"/reproduce-gpu.tar.part* | wc -l) part(s):"
  ls -l "$STATE_OUT"/reproduce-gpu.tar.part*
}

rc=0
# timeout signals the pipeline's process group (the trainings included) at BUDGET seconds.
SWIATTN_COMMIT=${SWIATTN_COMMIT:-$(cat "$SW/COMMIT")} VARIANT=gpu RUN=$RUN SWIATTN="$SW/bin/swiattn" CACHE_DIR="$SW/data/cache" DEVICE=${DEVICE:-cuda} ONLY="$ONLY" \
  PYTHONUNBUFFERED=1 timeout -k 20 "$BUDGET" python3 scripts/reproduce.py 2>&1 | tee "$STATE_OUT/device.log" || rc=$?
if [ "$rc" = 124 ]; then
  echo "reproduce-on-device: stopped at the budget of ${BUDGET}s; the next piece resumes" | tee -a "$STATE_OUT/device.log"
fi
pack_state | tee -a "$STATE_OUT/device.log"
exit "$rc"
