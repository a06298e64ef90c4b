#!/usr/bin/env bash
# scripts/gpu/reproduce-on-device.sh: the GPU reproduction (scripts/reproduce.sh, VARIANT=gpu) on
# the lent GPU machine, a few stages per device call, its state carried between calls
# (docs/reproduce.md, "On the lent GPU").
#
# On the GPU machine (the `run` tool, repository root, $OUT set):
#   BUNDLE=build-gpu/bundle.tar.xz bash scripts/gpu/reproduce-on-device.sh STAGES [BUDGET_S]
#     1. unpacks the bundle (scripts/gpu/unpack.sh: binaries, libraries, corpora);
#     2. restores the earlier stages' outputs from $STATE_IN/reproduce-gpu.tar.part* when present
#        (STATE_IN defaults to runs/gpu-state: carry that folder in);
#     3. runs scripts/reproduce.sh for STAGES ("1", "2-4", "1-7") and stops it after BUDGET_S
#        seconds (default 480) so the packing below still fits in the call; an interrupted
#        training continues from its last checkpoint in the next call;
#     4. packs runs/reproduce-gpu into $OUT/reproduce-gpu.tar.part00, part01, ... (15 MB each),
#        leaving out what no later stage reads (see prune_for_carry), plus $OUT/device.log.
# Here, after the call (FILES_AT = the folder the `run` tool reports):
#   rm -rf runs/gpu-state && mkdir -p runs/gpu-state && cp FILES_AT/reproduce-gpu.tar.part* runs/gpu-state/
# and carry ["<bundle>", "runs/gpu-state"] into the next call. After stage 7:
#   bash scripts/gpu/reproduce-on-device.sh --import runs/gpu-state
# unpacks the state into runs/reproduce-gpu here and writes docs/results.md (+ docs/results-figures/).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUN=runs/reproduce-gpu
STATE_IN=${STATE_IN:-runs/gpu-state}
PART_BYTES=$((15 * 1000 * 1000))

restore_state() {
  local dir=$1
  if ls "$dir"/reproduce-gpu.tar.part* >/dev/null 2>&1; then
    mkdir -p "$RUN"
    cat "$dir"/reproduce-gpu.tar.part* | xz -dc | tar -C "$RUN" -xf -
    echo "reproduce-on-device: restored $(ls "$RUN" | tr '\n' ' ')from $dir"
  else
    echo "reproduce-on-device: no earlier state in $dir: starting from stage 1's inputs only"
  fi
}

if [ "${1:-}" = --import ]; then
  dir=${2:-runs/gpu-state}
  rm -rf "$RUN"
  restore_state "$dir"
  if [ -f "$RUN/7-results/DONE" ] && [ -f "$RUN/results.md" ]; then
    mkdir -p docs/results-figures
    rm -f docs/results-figures/*.svg
    cp "$RUN"/figures/*.svg docs/results-figures/
    sed 's#(figures/#(results-figures/#g' "$RUN/results.md" >docs/results.md
    echo "reproduce-on-device: wrote docs/results.md and docs/results-figures/ from $RUN"
  else
    echo "reproduce-on-device: stage 7 has not finished in this state: docs/results.md not written"
  fi
  exit 0
fi

STAGES=${1:?usage: reproduce-on-device.sh STAGES [BUDGET_S] | --import STATE_DIR}
BUDGET=${2:-480}
: "${OUT:?OUT is not set: run this through the device tool (or set OUT=some/folder)}"

# shellcheck disable=SC1091
source scripts/gpu/unpack.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
restore_state "$STATE_IN"

# Drops, from a copy of RUN about to be packed, what no later stage reads: the optimizer moments of
# finished trainings (only a resume reads them), the weights of methods already evaluated, and
# stage 1's weights once every stage that starts from them (2-6) is done.
prune_for_carry() {
  local copy=$1 d k all_done=1
  for d in "$copy"/*/; do
    [ -f "$d/TRAIN_DONE" ] && find "$d" -name optimizer.safetensors -delete
    [ -f "$d/eval/DONE" ] && find "$d" -name model.safetensors -delete
  done
  for k in 2 3 4 5 6; do
    ls "$copy/$k-"*/DONE >/dev/null 2>&1 || all_done=0
  done
  [ $all_done = 1 ] && find "$copy"/1-* -name model.safetensors -delete
  return 0
}

pack_state() {
  local copy
  copy=$(mktemp -d)
  cp -a "$RUN"/. "$copy"/
  prune_for_carry "$copy"
  tar -C "$copy" -cf - . | xz -T0 -3 | split -b "$PART_BYTES" -d - "$OUT/reproduce-gpu.tar.part"
  rm -rf "$copy"
  echo "reproduce-on-device: state packed into $(ls "$OUT"/reproduce-gpu.tar.part* | wc -l) part(s):"
  ls -l "$OUT"/reproduce-gpu.tar.part*
}

rc=0
# timeout signals the whole process group of the pipeline (training included) at BUDGET seconds.
VARIANT=gpu RUN=$RUN SWIATTN="$SW/bin/swiattn" CACHE_DIR="$SW/data/cache" DEVICE=${DEVICE:-cuda} STAGES="$STAGES" \
  timeout -k 20 "$BUDGET" bash scripts/reproduce.sh 2>&1 | tee "$OUT/device.log" || rc=$?
if [ "$rc" = 124 ]; then
  echo "reproduce-on-device: stopped at the budget of ${BUDGET}s; the next call resumes (same STAGES)" |
    tee -a "$OUT/device.log"
fi
pack_state | tee -a "$OUT/device.log"
exit "$rc"
