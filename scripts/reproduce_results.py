#!/usr/bin/env python3
"""scripts/reproduce_results.py: stage 7 of scripts/reproduce.sh: RUN/results.md.

Assembles, from what the earlier stages wrote (nothing is re-measured, nothing typed in):
  - the methods table of `swiattn eval table` (RUN/7-results/table.md),
  - SwiAttn against each baseline, metric by metric, in words, with the sampling error of the
    accuracies, so a loss or a tie is said as plainly as a win,
  - the figures (each method's SVGs copied to RUN/figures/<method>-<name>.svg),
  - provenance: per stage its seed, steps, batch x length, tokens trained, initial checkpoint,
    layer types, mixture, wall time and device; the evaluation's seed and filler split.
Python 3 standard library only.  Usage: reproduce_results.py RUN VARIANT
"""
import json
import math
import os
import shutil
import sys

METHODS = [("FullAttn", 3), ("StaticHybrid", 4), ("SWA-CPT", 5), ("SwiAttn", 6), ("SWA-ZS", 2)]
STAGES = ["pretrain", "SWA-ZS", "FullAttn", "StaticHybrid", "SWA-CPT", "SwiAttn", "results"]
FIGURES = ["passkey.svg", "passkey_fa_ratio.svg", "fa_ratio_per_layer.svg", "fa_ratio_by_position.svg",
           "loss_by_position.svg", "decode_keys_read.svg", "prefill_flops.svg", "mqar_by_distance.svg"]


def stage_dir(run, k):
    return os.path.join(run, f"{k}-{STAGES[k - 1]}")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_done(path):
    """DONE holds 'seconds=S device=D finished=DATE load=X machine=...'."""
    fields = {}
    with open(path) as f:
        text = f.read().strip()
    head, _, machine = text.partition(" machine=")
    for part in head.split():
        key, _, value = part.partition("=")
        fields[key] = value
    fields["machine"] = machine
    return fields


def final_metrics(path):
    """The last line of metrics.jsonl that has 'final_val_loss' (written at the end of training)."""
    final = {}
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            if "final_val_loss" in j:
                final = j
    return final


def hms(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def get(results, *path):
    v = results
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return float("nan")
        v = v[k]
    return float("nan") if v is None else float(v)


def binomial_se(p, n):
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else float("nan")


def compare(metric, ours, theirs, lower_is_better, noise, unit_fmt):
    """'metric 1.23 vs 1.25 (**better**)': SwiAttn first, the baseline second; a difference
    within `noise` is a tie. Returns (text, verdict) with verdict in better / worse / tie / n/a."""
    if math.isnan(ours) or math.isnan(theirs):
        return f"{metric} {unit_fmt(ours)} vs {unit_fmt(theirs)} (not comparable)", "n/a"
    diff = ours - theirs
    if abs(diff) <= noise:
        verdict = "tie"
    elif (diff < 0) == lower_is_better:
        verdict = "better"
    else:
        verdict = "worse"
    return f"{metric} {unit_fmt(ours)} vs {unit_fmt(theirs)} (**{verdict}**)", verdict


def main():
    run, variant = sys.argv[1], sys.argv[2]
    out = os.path.join(run, "results.md")
    results = {m: read_json(os.path.join(stage_dir(run, k), "eval", "results.json")) for m, k in METHODS}
    table = open(os.path.join(stage_dir(run, 7), "table.md")).read()

    # Figures: every method's SVGs, renamed <method>-<figure>.
    fig_dir = os.path.join(run, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    for m, k in METHODS:
        for fig in FIGURES:
            src = os.path.join(stage_dir(run, k), "eval", fig)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(fig_dir, f"{m}-{fig}"))

    sw = results["SwiAttn"]
    T, W = int(sw["seq_len"]), int(sw["window"])
    lines = []
    lines.append(f"# Small-scale reproduction ({variant}): results\n")
    lines.append(f"Written by `scripts/reproduce.sh` (VARIANT={variant}) from the outputs in `{run}`; "
                 f"commit {sw.get('commit', 'unknown')}. Context T = {T}, window W = {W}. "
                 "The pipeline is described in docs/reproduce.md; every number below is read from the "
                 "stages' own outputs (metrics.jsonl, eval/results.json, DONE).\n")

    lines.append("## The table\n")
    lines.append("Rows: FullAttn, StaticHybrid, SWA-CPT and SwiAttn are continued from the same pretrained "
                 "FullAttn checkpoint with equal tokens; SWA-ZS is that checkpoint run with all-swa layers "
                 "and no training. Efficiency columns are relative to the FullAttn row.\n")
    lines.append(table.rstrip() + "\n")

    # SwiAttn against each baseline, in words.
    lines.append("## SwiAttn against each baseline\n")
    pk_n = get(sw, "passkey", "beyond_window_trials")
    pk_p = get(sw, "passkey", "beyond_window_accuracy")
    mq_n = get(sw, "mqar", "answers")
    mq_p = get(sw, "mqar", "accuracy")
    pk_noise = 2 * binomial_se(0.5, pk_n) if pk_n > 0 else float("nan")
    mq_noise = 2 * binomial_se(0.5, mq_n) if mq_n > 0 else float("nan")
    loss_noise = 0.01  # nats; see docs/reproduce.md ("how to read the table")
    lines.append(f"Noise: accuracies count {int(pk_n) if not math.isnan(pk_n) else 'n/a'} passkey trials beyond "
                 f"the window and {int(mq_n) if not math.isnan(mq_n) else 'n/a'} MQAR answers per method, so a "
                 f"difference below two binomial standard errors at p = 0.5 "
                 f"({pk_noise:.3f} passkey, {mq_noise:.3f} MQAR) is called a tie; held-out losses within "
                 f"{loss_noise} nats are called a tie (one run per method: seeds are not varied).\n")
    fmt4 = lambda x: "n/a" if math.isnan(x) else f"{x:.4f}"
    fmt3 = lambda x: "n/a" if math.isnan(x) else f"{x:.3f}"
    lines.append("Each line: SwiAttn's value first, the baseline's second; better / worse / tie for SwiAttn.\n")
    for base in ["FullAttn", "StaticHybrid", "SWA-CPT", "SWA-ZS"]:
        b = results[base]
        items = [
            compare("held-out loss", get(sw, "held_out", "loss"), get(b, "held_out", "loss"), True, loss_noise, fmt4),
            compare("loss at t >= W", get(sw, "held_out", "loss_beyond_window"),
                    get(b, "held_out", "loss_beyond_window"), True, loss_noise, fmt4),
            compare("passkey accuracy beyond W", pk_p, get(b, "passkey", "beyond_window_accuracy"), False,
                    pk_noise, fmt3),
            compare("MQAR accuracy", mq_p, get(b, "mqar", "accuracy"), False, mq_noise, fmt3),
        ]
        verdicts = [v for _, v in items]
        summary = (f"better on {verdicts.count('better')}, worse on {verdicts.count('worse')}, "
                   f"tied on {verdicts.count('tie')} of {len(items)} quality metrics")
        ratio_sw, ratio_b = get(sw, "routing", "fa_ratio"), get(b, "routing", "fa_ratio")
        lines.append(f"- vs **{base}** ({summary}): " + "; ".join(t for t, _ in items) +
                     f"; full-attention ratio {fmt3(ratio_sw)} vs {fmt3(ratio_b)}.")
    lines.append("")
    lines.append("The paper's claim (spec §9) is that SwiAttn keeps FullAttn's quality, retrieval included, at a "
                 "full-attention ratio near 0.13, and beats StaticHybrid (ratio 0.25). The lines above say, "
                 "at this scale, where that holds and where it does not.\n")

    # Figures.
    lines.append("## Figures\n")
    lines.append("SwiAttn:\n")
    for fig in FIGURES:
        if os.path.exists(os.path.join(fig_dir, f"SwiAttn-{fig}")):
            lines.append(f"![SwiAttn {fig[:-4]}](figures/SwiAttn-{fig})")
    lines.append("\nPasskey accuracy (context length x needle depth) of every method:\n")
    for m, _ in METHODS:
        if os.path.exists(os.path.join(fig_dir, f"{m}-passkey.svg")):
            lines.append(f"{m}:\n\n![{m} passkey](figures/{m}-passkey.svg)\n")
    lines.append("All figures of every method: `figures/<method>-<figure>.svg`; each method's own report: "
                 "`<stage>/eval/report.md`.\n")

    # Provenance.
    lines.append("## Seeds, tokens, wall time, device\n")
    lines.append("Wall time of stages 2-6 includes their evaluation. Load: the machine's 1-minute load average "
                 "when the stage ended (on a shared machine wall times grow with it). The validation loss here is "
                 "training's own (train.eval_batches batches of the validation split); the table's held-out loss is "
                 "`swiattn eval`'s.\n")
    lines.append("| stage | starts from | layer types | seed | steps | batch x length | tokens trained | "
                 "synthetic rows | val. loss at the end of training | wall time | load | device |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    total = 0.0
    for k in range(1, 8):
        d = stage_dir(run, k)
        done = read_done(os.path.join(d, "DONE")) if os.path.exists(os.path.join(d, "DONE")) else {}
        seconds = float(done.get("seconds", "nan"))
        if not math.isnan(seconds):
            total += seconds
        device = f"{done.get('device', '?')} ({done.get('machine', '?')})"
        if k == 7:
            continue  # this stage, still running while it writes this page
        cfg = read_json(os.path.join(d, "config.json"))
        fin = final_metrics(os.path.join(d, "metrics.jsonl"))
        tr, data = cfg["train"], cfg["data"]
        types = " ".join(cfg["model"]["layer_types"]) or "all full"
        start = "scratch" if k == 1 else "stage 1"
        lines.append(f"| {k} {STAGES[k - 1]} | {start} | {types} | {tr['seed']} | {tr['steps']} | "
                     f"{tr['batch_size']} x {tr['seq_len']} | {fin.get('tokens', 'n/a')} | "
                     f"{data['synthetic_fraction']} | {fmt4(float(fin.get('final_val_loss', 'nan')))} | "
                     f"{hms(seconds)} | {done.get('load', '?')} | {device} |")
    lines.append(f"\nTotal wall time of stages 1-6: {hms(total)}. "
                 f"Evaluation: seed {sw.get('seed')} (not a training seed), synthetic examples from the "
                 "**validation** split's text, held-out loss on the validation split; training reads only the "
                 "training split (its synthetic rows use training-split filler). No setting in `configs/reproduce/` "
                 "is chosen from evaluation numbers (docs/reproduce.md says how each was chosen).\n")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"reproduce_results: wrote {out}")


if __name__ == "__main__":
    main()
