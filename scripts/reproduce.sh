#!/usr/bin/env bash
# scripts/reproduce.sh: the small-scale reproduction of the paper's comparison, as resumable stages
# (docs/reproduce.md). `make reproduce-cpu` and `make reproduce` call it.
#
#   1  pretrain   FullAttn from scratch (configs/reproduce/$VARIANT/pretrain.json)
#   2  SWA-ZS     the pretrained weights run as all-swa, no training (train.steps = 0), evaluated
#   3  FullAttn   continued from 1 (all full), then evaluated
#   4  StaticHybrid continued from 1 (swa swa swa full), then evaluated
#   5  SWA-CPT    continued from 1 (all swa), then evaluated
#   6  SwiAttn    continued from 1 (all switch, adaptive regulariser), then evaluated
#   7  results    `swiattn eval table` + results.md (table, figures, seeds, tokens, wall time, device)
# Stages 3-6 train on equal tokens (same steps, batch, length). Each method is evaluated right
# after its training so that on the lent GPU a stage's output is small (its checkpoint is not
# needed again): see scripts/gpu/reproduce-on-device.sh.
#
# Resumable: a stage writes RUN/<stage>/DONE only after it finished; a re-run skips stages with
# DONE. Inside a stage, training and evaluation have their own markers (TRAIN_DONE, eval/DONE),
# and an interrupted training continues from its last checkpoint (`swiattn train --resume`).
# A failing stage stops the pipeline with a message naming the stage and its log.
#
# Environment:
#   VARIANT      cpu (default) | gpu: which configs/reproduce/<VARIANT>/ to use
#   CONFIGS      another folder of the same files instead (e.g. a quick smoke test)
#   RUN          output folder (default runs/reproduce-$VARIANT)
#   SWIATTN      the binary (default build/swiattn)
#   CACHE_DIR    the corpora (default data/cache)
#   DEVICE       cpu | cuda (default: cpu for VARIANT=cpu, cuda for VARIANT=gpu)
#   STAGES       which stages to run: "1-7" (default), "3", "2-4", "1,3,5"
#   RESULTS_MD   also write the results page here (e.g. docs/results.md), figures next to it in
#                <dir>/results-figures/; unset: only RUN/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

VARIANT=${VARIANT:-cpu}
RUN=${RUN:-runs/reproduce-$VARIANT}
SWIATTN=${SWIATTN:-build/swiattn}
CACHE_DIR=${CACHE_DIR:-data/cache}
STAGES=${STAGES:-1-7}
RESULTS_MD=${RESULTS_MD:-}
CONFIGS=${CONFIGS:-configs/reproduce/$VARIANT}
if [ -z "${DEVICE:-}" ]; then
  if [ "$VARIANT" = gpu ]; then DEVICE=cuda; else DEVICE=cpu; fi
fi
[ -d "$CONFIGS" ] || { echo "reproduce: no configs for VARIANT=$VARIANT ($CONFIGS)" >&2; exit 2; }
[ -x "$SWIATTN" ] || { echo "reproduce: $SWIATTN not found: build it first (make build)" >&2; exit 2; }

NAMES=(pretrain SWA-ZS FullAttn StaticHybrid SWA-CPT SwiAttn results)
CONFIG_OF=([2]=swa_zs [3]=fullattn [4]=static_hybrid [5]=swa_cpt [6]=swiattn)
N=${#NAMES[@]}
mkdir -p "$RUN"
RUN_START=$(date +%s)

# The stage numbers to run, from STAGES ("1-7", "3", "1,3,5", "2-4,6").
selected() {
  local k=$1 part lo hi
  for part in ${STAGES//,/ }; do
    if [[ $part == *-* ]]; then lo=${part%-*}; hi=${part#*-}; else lo=$part; hi=$part; fi
    if [ "$k" -ge "$lo" ] && [ "$k" -le "$hi" ]; then return 0; fi
  done
  return 1
}

stage_dir() { echo "$RUN/$1-${NAMES[$(($1 - 1))]}"; }

hms() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

progress() { echo "[reproduce $(date +%H:%M:%S) +$(hms $(($(date +%s) - RUN_START)))] $*"; }

device_name() {
  if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo "CUDA GPU"
  else
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
  fi
}

# run_logged LOG CMD...: runs CMD, its output both on the screen and in LOG; fails with CMD.
run_logged() {
  local log=$1; shift
  echo "\$ $*" >>"$log"
  "$@" 2>&1 | tee -a "$log"
}

# The eval options of this variant: one `eval.key=value` per line in eval.sets (# comments).
eval_sets() {
  local line
  [ -f "$CONFIGS/eval.sets" ] || return 0
  while IFS= read -r line; do
    line=${line%%#*}; line=$(echo "$line" | xargs)
    [ -n "$line" ] && printf -- '--set\n%s\n' "$line"
  done <"$CONFIGS/eval.sets"
}

# train_stage DIR CONFIG [INIT_FROM]: trains into DIR unless DIR/TRAIN_DONE; resumes an
# interrupted run from DIR/checkpoint.
train_stage() {
  local dir=$1 config=$2 init=${3:-}
  [ -f "$dir/TRAIN_DONE" ] && { progress "  training already done ($dir)"; return 0; }
  if [ -e "$dir/checkpoint/trainer_state.json" ]; then
    progress "  resuming the interrupted training in $dir"
    run_logged "$dir/train.log" "$SWIATTN" train --resume "$dir"
  else
    rm -rf "$dir/checkpoint" "$dir/checkpoints" "$dir/metrics.jsonl"
    mkdir -p "$dir"
    local args=(train --config "$config" --out "$dir" --set "data.cache_dir=$CACHE_DIR")
    [ "$DEVICE" = cpu ] || args+=(--device "$DEVICE")
    [ -n "$init" ] && args+=(--init-from "$init")
    run_logged "$dir/train.log" "$SWIATTN" "${args[@]}"
  fi
  touch "$dir/TRAIN_DONE"
}

# eval_stage DIR: evaluates DIR/checkpoint into DIR/eval unless DIR/eval/DONE.
eval_stage() {
  local dir=$1
  [ -f "$dir/eval/DONE" ] && { progress "  evaluation already done ($dir/eval)"; return 0; }
  rm -rf "$dir/eval"
  mkdir -p "$dir/eval"
  local sets=()
  mapfile -t sets < <(eval_sets)
  run_logged "$dir/eval.log" "$SWIATTN" eval --checkpoint "$dir/checkpoint" --out "$dir/eval" \
    --device "$DEVICE" --set "eval.cache_dir=$CACHE_DIR" "${sets[@]}"
  touch "$dir/eval/DONE"
}

run_stage() {
  local k=$1 dir
  dir=$(stage_dir "$k")
  mkdir -p "$dir"
  case $k in
    1) train_stage "$dir" "$CONFIGS/pretrain.json" ;;
    2|3|4|5|6)
      [ -f "$(stage_dir 1)/DONE" ] || { echo "reproduce: stage $k needs stage 1 (pretrain) first" >&2; exit 1; }
      train_stage "$dir" "$CONFIGS/${CONFIG_OF[$k]}.json" "$(stage_dir 1)/checkpoint"
      eval_stage "$dir" ;;
    7)
      local m missing=()
      for m in 2 3 4 5 6; do [ -f "$(stage_dir $m)/DONE" ] || missing+=("$m"); done
      [ ${#missing[@]} -eq 0 ] || { echo "reproduce: stage 7 needs stages ${missing[*]} first" >&2; exit 1; }
      write_results "$dir" ;;
  esac
}

# Stage 7: the methods table (`swiattn eval table`, FullAttn the reference row) and results.md.
write_results() {
  local dir=$1
  run_logged "$dir/table.log" "$SWIATTN" eval table --out "$dir/table.md" \
    "FullAttn=$(stage_dir 3)/eval" "StaticHybrid=$(stage_dir 4)/eval" "SWA-CPT=$(stage_dir 5)/eval" \
    "SwiAttn=$(stage_dir 6)/eval" "SWA-ZS=$(stage_dir 2)/eval"
  command -v python3 >/dev/null || { echo "reproduce: stage 7 needs python3 (standard library only)" >&2; exit 1; }
  python3 scripts/reproduce_results.py "$RUN" "$VARIANT"
}

# RESULTS_MD: the finished results page, its figure links pointing at <dir>/results-figures/.
publish_results() {
  local figures
  figures="$(dirname "$RESULTS_MD")/results-figures"
  rm -rf "$figures" && mkdir -p "$figures"
  cp "$RUN"/figures/*.svg "$figures/"
  sed 's#(figures/#(results-figures/#g' "$RUN/results.md" >"$RESULTS_MD"
  progress "wrote $RESULTS_MD (figures in $figures)"
}

# A failing stage: say which, where its log is, and how to go on.
current=""
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "$current" ]; then
    progress "stage $current: FAILED (exit $rc) after $(hms $(($(date +%s) - start)));" \
      "see the logs in $(stage_dir "${current%%/*}"). Fix the cause and re-run: finished stages are skipped."
  fi
}
trap on_exit EXIT

progress "VARIANT=$VARIANT DEVICE=$DEVICE RUN=$RUN STAGES=$STAGES ($(device_name))"
for k in $(seq 1 "$N"); do
  selected "$k" || continue
  dir=$(stage_dir "$k")
  name=${NAMES[$((k - 1))]}
  if [ -f "$dir/DONE" ]; then
    progress "stage $k/$N $name: already done, skipped ($(cut -d' ' -f1-3 "$dir/DONE"))"
    continue
  fi
  progress "stage $k/$N $name: started (log in $dir)"
  start=$(date +%s)
  current="$k/$N $name"
  run_stage "$k"  # set -e: a failing command ends the script through the EXIT trap below
  current=""
  seconds=$(($(date +%s) - start))
  # DONE: "seconds=S device=D finished=DATE load=X machine=..." (read back by scripts/reproduce_results.py).
  # load = the 1-minute load average at the end: wall times on a shared machine depend on it.
  echo "seconds=$seconds device=$DEVICE finished=$(date -u +%Y-%m-%dT%H:%M:%SZ) load=$(cut -d' ' -f1 /proc/loadavg)" \
    "machine=$(device_name)" >"$dir/DONE"
  progress "stage $k/$N $name: done in $(hms "$seconds")"
done
progress "finished the selected stages ($STAGES) in $(hms $(($(date +%s) - RUN_START)))"
if [ -n "$RESULTS_MD" ]; then
  if [ -f "$(stage_dir 7)/DONE" ]; then publish_results; else progress "RESULTS_MD: stage 7 has not finished, $RESULTS_MD not written"; fi
fi
