#!/usr/bin/env python3
"""scripts/reproduce_results.py: the last stage of scripts/reproduce.py: RUN/results.md and its
figures, from what the earlier stages wrote (nothing is re-measured, nothing typed in):
  - the methods table of `swiattn eval table` (RUN/results/table.md; mean +- std over seeds),
  - SwiAttn against each baseline, metric by metric, in words, with the noise of each number
    (seed-to-seed spread and the binomial error of the accuracies), so a loss or a tie is said
    as plainly as a win,
  - the ratio sweep: SwiAttn at several target ratios and static interleaves at matching ratios,
    one Pareto figure (retrieval and held-out loss against the full-attention ratio),
  - the paper's Fig. 6 at our scale: the FA ratio at the passkey answer per layer, needle inside
    vs beyond the window,
  - provenance: per stage its seed, steps, tokens, wall time and device; the gate; the settings
    disclosed in CONFIGS/disclosures.md and the findings written by hand in CONFIGS/findings.md.
Python 3 standard library only.  Usage: reproduce_results.py RUN CONFIGS VARIANT
"""
import json
import math
import os
import shutil
import sys

NAN = float("nan")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
TABLE_BASELINES = ["FullAttn", "StaticHybrid", "Static-1in8", "SWA-CPT", "SWA-ZS"]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def get(r, *path):
    v = r
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return NAN
        v = v[k]
    return NAN if v is None else float(v)


def mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else NAN


def std(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if len(xs) < 2:
        return NAN
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fmt(x, digits=3):
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def hms(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def read_done(path):
    """DONE holds 'seconds=S device=D finished=DATE load=X machine=...'."""
    fields = {}
    text = open(path).read().strip()
    head, _, machine = text.partition(" machine=")
    for part in head.split():
        key, _, value = part.partition("=")
        fields[key] = value
    fields["machine"] = machine
    return fields


def final_metrics(path):
    """The last metrics.jsonl line with 'final_val_loss' (written at the end of training)."""
    final = {}
    if os.path.exists(path):
        for line in open(path):
            j = json.loads(line)
            if "final_val_loss" in j:
                final = j
    return final


# Metrics compared: (label, path in results.json, lower is better, binomial trials path or None).
METRICS = [
    ("held-out loss", ("held_out", "loss"), True, None),
    ("loss at t >= W", ("held_out", "loss_beyond_window"), True, None),
    ("passkey beyond W (exact)", ("passkey_by_distance", "beyond_window", "exact_accuracy"), False,
     ("passkey_by_distance", "beyond_window", "answers")),
    ("passkey beyond W (per digit)", ("passkey_by_distance", "beyond_window", "per_digit_accuracy"), False,
     ("passkey_by_distance", "beyond_window", "scored_tokens")),
    ("MQAR (exact)", ("mqar", "all", "exact_accuracy"), False, ("mqar", "all", "answers")),
    ("MQAR (per digit)", ("mqar", "all", "per_digit_accuracy"), False, ("mqar", "all", "scored_tokens")),
]
LOSS_TIE = 0.01  # nats: below this, two held-out losses are called a tie even with no seed spread


class Method:
    def __init__(self, name, results):
        self.name, self.results = name, results

    def values(self, path):
        return [get(r, *path) for r in self.results]

    def mean(self, path):
        return mean(self.values(path))

    def noise(self, path, trials_path):
        """The standard error of the mean: seed-to-seed spread over sqrt(n), plus (accuracies) the
        binomial error of the pooled trials."""
        v = self.values(path)
        n = len([x for x in v if not math.isnan(x)])
        var = (std(v) ** 2 / n) if n > 1 else 0.0
        if trials_path is not None:
            p = mean(v)
            trials = sum(get(r, *trials_path) for r in self.results)
            if trials > 0 and not math.isnan(p):
                var += p * (1 - p) / trials
        return math.sqrt(var)


def compare(sw, base, label, path, lower, trials_path):
    a, b = sw.mean(path), base.mean(path)
    if math.isnan(a) or math.isnan(b):
        return f"{label} {fmt(a)} vs {fmt(b)} (not comparable)", "n/a"
    noise = 2 * math.sqrt(sw.noise(path, trials_path) ** 2 + base.noise(path, trials_path) ** 2)
    if trials_path is None:
        noise = max(noise, LOSS_TIE)
    d = a - b
    verdict = "tie" if abs(d) <= noise else ("better" if (d < 0) == lower else "worse")
    digits = 4 if trials_path is None else 3
    return f"{label} {fmt(a, digits)} vs {fmt(b, digits)} (**{verdict}**; noise ±{fmt(noise, digits)})", verdict


# ---- a small SVG writer: line + marker series with error bars, in panels ----

def svg_panels(title, panels, path):
    """panels: [(x_label, y_label, y_range or None, series)], series: [(name, [(x, y, yerr)], color, dashed)]."""
    pw, ph, left, top, gap, legend = 360, 300, 70, 60, 90, 250
    width = left + len(panels) * (pw + gap) - gap + legend
    height = top + ph + 70
    out = [f'<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="26" text-anchor="middle" font-size="16">{esc(title)}</text>']
    names = []
    for k, (xl, yl, yr, series) in enumerate(panels):
        x0 = left + k * (pw + gap)
        ys = [y + (e if not math.isnan(e) else 0) for _, pts, _, _ in series for _, y, e in pts if not math.isnan(y)]
        ys += [y - (e if not math.isnan(e) else 0) for _, pts, _, _ in series for _, y, e in pts if not math.isnan(y)]
        if yr:
            lo, hi = yr
        else:
            lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
            pad = (hi - lo) * 0.1 or 0.01
            lo, hi = lo - pad, hi + pad
        X = lambda x: x0 + pw * x
        Y = lambda y: top + ph - ph * (min(max(y, lo), hi) - lo) / (hi - lo)
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + ph}" stroke="black"/>')
        for i in range(6):
            xv = i / 5
            out.append(f'<text x="{X(xv):.1f}" y="{top + ph + 16}" text-anchor="middle">{xv:.1f}</text>')
            yv = lo + (hi - lo) * i / 5
            out.append(f'<line x1="{x0}" y1="{Y(yv):.1f}" x2="{x0 + pw}" y2="{Y(yv):.1f}" stroke="#e0e0e0"/>')
            out.append(f'<text x="{x0 - 6}" y="{Y(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 36}" text-anchor="middle">{esc(xl)}</text>')
        out.append(f'<text x="{x0 - 50}" y="{top + ph / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 {x0 - 50} {top + ph / 2})">{esc(yl)}</text>')
        for name, pts, color, dashed in series:
            pts = sorted((p for p in pts if not math.isnan(p[0]) and not math.isnan(p[1])), key=lambda p: p[0])
            out.append(f'<g class="series" data-name="{esc(name)}">')
            if len(pts) > 1:
                dash = ' stroke-dasharray="6 4"' if dashed else ""
                line = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, _ in pts)
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{line}"/>')
            for x, y, e in pts:
                if not math.isnan(e) and e > 0:
                    out.append(f'<line x1="{X(x):.1f}" y1="{Y(y - e):.1f}" x2="{X(x):.1f}" y2="{Y(y + e):.1f}" '
                               f'stroke="{color}"/>')
                out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="4" fill="{color}"><title>{esc(name)}: '
                           f'({x:.3f}, {y:.4f})</title></circle>')
            out.append("</g>")
            if (name, color, dashed) not in names:
                names.append((name, color, dashed))
    lx = left + len(panels) * (pw + gap) - gap + 20
    for i, (name, color, dashed) in enumerate(names):
        ly = top + 10 + 20 * i
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{esc(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def svg_grouped_bars(title, groups, series, path, y_max=1.0):
    """series: [(name, [value per group])]; NaN draws 'n/a'."""
    width, height, left, top, pw, ph = 840, 440, 70, 50, 500, 320
    slot = pw / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    out = [f'<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="28" text-anchor="middle" font-size="16">{esc(title)}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    Y = lambda y: top + ph - ph * min(max(y, 0.0), y_max) / y_max
    for i in range(6):
        yv = y_max * i / 5
        out.append(f'<line x1="{left}" y1="{Y(yv):.1f}" x2="{left + pw}" y2="{Y(yv):.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{left - 6}" y="{Y(yv) + 4:.1f}" text-anchor="end">{yv:.2g}</text>')
    for g, label in enumerate(groups):
        gx = left + slot * g
        out.append(f'<text x="{gx + slot / 2:.1f}" y="{top + ph + 16}" text-anchor="middle">{esc(label)}</text>')
        for k, (name, values) in enumerate(series):
            v, x = values[g], gx + slot * 0.1 + bar * k
            if math.isnan(v):
                out.append(f'<text x="{x + bar / 2:.1f}" y="{top + ph - 4}" text-anchor="middle" font-size="9" '
                           'fill="#777777">n/a</text>')
                continue
            out.append(f'<rect class="bar" x="{x:.1f}" y="{Y(v):.1f}" width="{bar * 0.92:.1f}" height="{Y(0) - Y(v):.1f}" '
                       f'fill="{COLORS[k % len(COLORS)]}"><title>{esc(name)}, {esc(label)}: {v:.3f}</title></rect>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 40}" text-anchor="middle">layer</text>')
    out.append(f'<text x="20" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 20 {top + ph / 2})">'
               'full-attention ratio at the answer</text>')
    for k, (name, _) in enumerate(series):
        ly = top + 10 + 20 * k
        out.append(f'<rect x="{left + pw + 20}" y="{ly - 6}" width="24" height="12" fill="{COLORS[k % len(COLORS)]}"/>')
        out.append(f'<text x="{left + pw + 50}" y="{ly + 4}">{esc(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


# ---- the page ----

def main():
    run, configs, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    plan = read_json(os.path.join(configs, "plan.json"))
    base = Method("FullAttn-base", [read_json(os.path.join(run, "pretrain", "eval", "results.json"))])
    methods = {"FullAttn-base": base}
    seeds_of = {}
    for r in plan["runs"]:
        methods[r["name"]] = Method(r["name"], [read_json(os.path.join(run, r["name"], f"seed-{s}", "eval", "results.json"))
                                                for s in r["seeds"]])
        seeds_of[r["name"]] = r["seeds"]
    sw = methods.get("SwiAttn")
    ref = base.results[0]
    T, W = int(ref["seq_len"]), int(ref["window"])
    fig_dir = os.path.join(run, "figures")
    shutil.rmtree(fig_dir, ignore_errors=True)
    os.makedirs(fig_dir)

    L = []
    L.append(f"# Small-scale reproduction ({variant}): results\n")
    L.append(f"Written by `scripts/reproduce.py` (VARIANT={variant}) from the outputs in `{run}`; commit "
             f"{ref.get('commit', 'unknown')}. Every continued run starts from one FullAttn base and trains with equal "
             f"tokens at T = {T}, window W = {W}; the pipeline and the configurations are described in "
             "docs/reproduce.md. Every number below is read from the stages' own outputs (metrics.jsonl, "
             "eval/results.json, DONE).\n")
    gate_file = os.path.join(run, "GATE")
    if os.path.exists(gate_file):
        g = dict(kv.split("=") for kv in open(gate_file).read().split())
        passed = g.get("passed") == "1"
        L.append(f"**Gate** (plan.json): the FullAttn base's passkey accuracy beyond the window is "
                 f"{fmt(float(g['passkey_beyond_window']))}, required {g['required']}: "
                 + ("passed, so the base can retrieve and the comparison can test the retrieval claim.\n" if passed else
                    "**not passed: the reference cannot retrieve, so nothing below says anything about retrieval.**\n"))

    L.append("## The table\n")
    L.append("Rows: FullAttn-base is the pretrained base itself (no continued training). FullAttn, SwiAttn "
             "(target-ratio controller at 0.13), StaticHybrid (one full layer in 4, spec §9), Static-1in8 (one "
             "full layer in 8: a static interleave at about SwiAttn's ratio) and SWA-CPT are continued from it with "
             "equal tokens; SWA-ZS is the base run with all-swa layers, untrained. Several seeds: mean ± sample "
             "standard deviation (the seed changes the continued training's data order and router initialisation; "
             "the base is one run). Efficiency columns are relative to the FullAttn row.\n")
    L.append(open(os.path.join(run, "results", "table.md")).read().rstrip() + "\n")

    if sw is not None:
        L.append("## SwiAttn against each baseline\n")
        L.append("Each line: SwiAttn's value first, the baseline's second; better / worse / tie for SwiAttn. A "
                 "difference is called a tie when it is within two standard errors of the difference: the "
                 "seed-to-seed spread of each mean plus, for accuracies, the binomial error of the pooled trials "
                 f"(and at least {LOSS_TIE} nats for losses).\n")
        for name in TABLE_BASELINES:
            if name not in methods or name == "SwiAttn":
                continue
            b = methods[name]
            items = [compare(sw, b, *m) for m in METRICS]
            v = [x for _, x in items]
            L.append(f"- vs **{name}** ({len(b.results)} run(s); better on {v.count('better')}, worse on "
                     f"{v.count('worse')}, tied on {v.count('tie')} of {len(items)}): " + "; ".join(t for t, _ in items) +
                     f"; full-attention ratio {fmt(sw.mean(('routing', 'fa_ratio')))} vs "
                     f"{fmt(b.mean(('routing', 'fa_ratio')))}.")
        L.append("")

    # ---- the ratio sweep and its Pareto figure ----
    switch_runs = [n for n, r in ((r["name"], r) for r in plan["runs"]) if r["layers"] == "switch"]
    static_runs = [r["name"] for r in plan["runs"] if r["layers"].startswith("static") or r["name"] in ("FullAttn", "SWA-CPT")]
    if len(switch_runs) > 1:
        L.append("## The ratio sweep\n")
        L.append("SwiAttn at several controller targets against static interleaves (one full layer in K) at matching "
                 "ratios, from the same base with the same tokens. x: the measured full-attention ratio on held-out "
                 "text (mean over seeds); error bars: the seed-to-seed standard deviation where there are seeds. "
                 "With 8 layers a static interleave can only take the ratios 0, 1/8, 1/4, 1/2 and 1; below 1/8 only "
                 "SWA-CPT (0) is static.\n")
        rows = []
        for n in switch_runs + [s for s in static_runs if s not in switch_runs]:
            m = methods[n]
            rows.append((n, m))
        L.append("| run | seeds | target | FA ratio | prefill attn FLOPs vs FullAttn | passkey beyond W (exact / per digit) | "
                 "MQAR (exact / per digit) | held-out loss |")
        L.append("|---|---|---|---|---|---|---|---|")
        full_flops = methods["FullAttn"].mean(("efficiency", "prefill", "attention_flops_total")) if "FullAttn" in methods else NAN
        target_of = {r["name"]: r.get("target_ratio") for r in plan["runs"]}
        for n, m in sorted(rows, key=lambda nm: nm[1].mean(("routing", "fa_ratio"))):
            L.append(f"| {n} | {len(m.results)} | {fmt(target_of.get(n) if target_of.get(n) is not None else NAN, 2)} | "
                     f"{fmt(m.mean(('routing', 'fa_ratio')))} | "
                     f"{fmt(m.mean(('efficiency', 'prefill', 'attention_flops_total')) / full_flops)} | "
                     f"{fmt(m.mean(METRICS[2][1]))} / {fmt(m.mean(METRICS[3][1]))} | "
                     f"{fmt(m.mean(METRICS[4][1]))} / {fmt(m.mean(METRICS[5][1]))} | {fmt(m.mean(METRICS[0][1]), 4)} |")
        L.append("")

        def points(names, path):
            return [(methods[n].mean(("routing", "fa_ratio")), methods[n].mean(path), std(methods[n].values(path)))
                    for n in names]
        family = [("SwiAttn", switch_runs, COLORS[1]), ("static", static_runs, COLORS[0])]
        svg_panels("Retrieval and held-out loss against the full-attention ratio (T = %d, W = %d)" % (T, W), [
            ("full-attention ratio", "accuracy beyond / over all answers", (0.0, 1.0),
             [(f"{fam}, passkey beyond W", points(names, METRICS[2][1]), c, False) for fam, names, c in family] +
             [(f"{fam}, MQAR", points(names, METRICS[4][1]), c, True) for fam, names, c in family]),
            ("full-attention ratio", "held-out loss (nats/token)", None,
             [(f"{fam}, held-out loss", points(names, METRICS[0][1]), c, False) for fam, names, c in family]),
        ], os.path.join(fig_dir, "pareto.svg"))
        L.append("![the ratio sweep](figures/pareto.svg)\n")

    # ---- Fig. 6 at our scale ----
    if sw is not None:
        L.append("## Where SwiAttn spends full attention (the paper's Fig. 6 at our scale)\n")
        per_layer = {}
        for side in ("inside", "beyond"):
            rows = [r["passkey_by_distance"].get(f"answer_fa_ratio_{side}_per_layer") or [] for r in sw.results]
            n_layers = max((len(x) for x in rows), default=0)
            per_layer[side] = [mean([x[l] if l < len(x) and x[l] is not None else NAN for x in rows]) for l in range(n_layers)]
        if per_layer["beyond"]:
            groups = [str(l) for l in range(len(per_layer["beyond"]))]
            svg_grouped_bars(f"SwiAttn: full-attention ratio at the passkey answer, per layer ({len(sw.results)} seeds)",
                             groups, [("needle inside the window", per_layer["inside"] or [NAN] * len(groups)),
                                      ("needle beyond the window", per_layer["beyond"])],
                             os.path.join(fig_dir, "fig6_answer_fa_ratio.svg"))
            all_in = mean([get(r, "passkey_by_distance", "fa_ratio_all_positions_inside") for r in sw.results])
            all_out = mean([get(r, "passkey_by_distance", "fa_ratio_all_positions_beyond") for r in sw.results])
            ans_in, ans_out = mean(per_layer["inside"]), mean(per_layer["beyond"])
            L.append(f"At the positions that predict the passkey's digits, SwiAttn's layers route {fmt(ans_out)} of the "
                     f"tokens to full attention when the needle lies beyond the window and {fmt(ans_in)} when it lies "
                     f"inside (mean over layers and seeds); over every position of those examples, {fmt(all_out)} and "
                     f"{fmt(all_in)}. The paper reports about 0.30 of tokens beyond and 0.05 inside (spec §9).\n")
            L.append("| layer | " + " | ".join(groups) + " |\n|---|" + "---|" * len(groups))
            for side in ("inside", "beyond"):
                L.append(f"| needle {side} W | " + " | ".join(fmt(x) for x in (per_layer[side] or [NAN] * len(groups))) + " |")
            L.append("\n![Fig. 6 at our scale](figures/fig6_answer_fa_ratio.svg)\n")

    # ---- per-run figures ----
    L.append("## Figures of each evaluation\n")
    for name, m in methods.items():
        seed = "pretrain" if name == "FullAttn-base" else f"seed-{seeds_of[name][0]}"
        src = os.path.join(run, "pretrain" if name == "FullAttn-base" else os.path.join(name, seed), "eval")
        for fig in sorted(os.listdir(src)):
            if fig.endswith(".svg"):
                shutil.copyfile(os.path.join(src, fig), os.path.join(fig_dir, f"{name}-{fig}"))
    if sw is not None:
        L.append(f"SwiAttn (seed {seeds_of['SwiAttn'][0]}):\n")
        for fig in ("passkey_by_distance.svg", "passkey_fa_ratio.svg", "fa_ratio_per_layer.svg", "fa_ratio_by_position.svg",
                    "loss_by_position.svg", "decode_keys_read.svg", "prefill_flops.svg", "mqar_by_distance.svg"):
            if os.path.exists(os.path.join(fig_dir, f"SwiAttn-{fig}")):
                L.append(f"![SwiAttn {fig[:-4]}](figures/SwiAttn-{fig})")
    L.append("\nPasskey accuracy by needle distance of every method (first seed):\n")
    for name in methods:
        if os.path.exists(os.path.join(fig_dir, f"{name}-passkey_by_distance.svg")):
            L.append(f"{name}:\n\n![{name} passkey by distance](figures/{name}-passkey_by_distance.svg)\n")
    L.append("All figures of every method: `figures/<method>-<figure>.svg`; each evaluation's own report: "
             "`<run>/<method>/seed-<s>/eval/report.md`.\n")

    # ---- provenance ----
    L.append("## Seeds, tokens, wall time, device\n")
    L.append("Wall time includes each stage's evaluation. Load: the machine's 1-minute load average when the stage "
             "ended. The validation loss is training's own (train.eval_batches batches of the validation split at the "
             "stage's length); the table's held-out loss is `swiattn eval`'s.\n")
    L.append("| stage | layer types | seed | steps | tokens trained | synthetic rows | val. loss at the end | wall time | load | device |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    stages = [("pretrain", os.path.join(run, "pretrain"))]
    for r in plan["runs"]:
        for s in r["seeds"]:
            stages.append((f"{r['name']} seed {s}", os.path.join(run, r["name"], f"seed-{s}")))
    total = 0.0
    for label, d in stages:
        done = read_done(os.path.join(d, "DONE"))
        seconds = float(done.get("seconds", "nan"))
        total += 0 if math.isnan(seconds) else seconds
        cfg = read_json(os.path.join(d, "config.json"))
        fin = final_metrics(os.path.join(d, "metrics.jsonl"))
        types = cfg["model"]["layer_types"]
        short = types[0] if len(set(types)) == 1 else " ".join(t[:2] for t in types)
        steps = cfg["train"]["steps"]
        if cfg["train"].get("curriculum"):
            steps = " + ".join(f"{c['steps']} x ({c['batch_size'] or cfg['train']['batch_size']} x {c['seq_len']})"
                               for c in cfg["train"]["curriculum"])
        else:
            steps = f"{steps} x ({cfg['train']['batch_size']} x {cfg['train']['seq_len']})"
        L.append(f"| {label} | {short} | {cfg['train']['seed']} | {steps} | {fin.get('tokens', 'n/a')} | "
                 f"{cfg['data']['synthetic_fraction']} | {fmt(float(fin.get('final_val_loss', 'nan')), 4)} | "
                 f"{hms(seconds) if not math.isnan(seconds) else 'n/a'} | {done.get('load', '?')} | "
                 f"{done.get('device', '?')} ({done.get('machine', '?')}) |")
    L.append(f"\nSum of the stages' wall times: {hms(total)} (stages run {plan.get('parallel', 1)} at a time, so the "
             "pipeline's own wall time is shorter). Evaluation: seed "
             f"{ref.get('seed')} (not a training seed), synthetic examples from the **validation** split's text, "
             "held-out loss on the validation split; training reads only the training split.\n")

    for title, fname in (("Settings chosen after seeing evaluation numbers", "disclosures.md"),
                         ("What this run shows (written by hand after the run)", "findings.md")):
        p = os.path.join(configs, fname)
        L.append(f"## {title}\n")
        L.append(open(p).read().strip() + "\n" if os.path.exists(p) else f"(no {fname} in {configs})\n")

    out = os.path.join(run, "results.md")
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"reproduce_results: wrote {out}")


if __name__ == "__main__":
    main()
