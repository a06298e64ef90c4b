#!/usr/bin/env python3
"""scripts/reproduce.py: the small-scale reproduction of the paper's comparison, as resumable
stages (docs/reproduce.md). `make reproduce-cpu` and `make reproduce` call it.

A variant is a folder configs/reproduce/<variant>/ with
  plan.json      the stages: which methods, which seeds, the retrieval gate, how many at a time
  pretrain.json  the FullAttn base, trained from scratch (a context curriculum)
  continue.json  the continued training every method shares (equal tokens), layer types aside
  eval.sets      the `swiattn eval` options, one eval.key=value per line, the same for every run
and the pipeline is
  pretrain       the FullAttn base, then evaluated; the gate: its passkey accuracy beyond the
                 window must reach plan.gate.min_passkey_beyond_window, else the pipeline stops
                 ("stop") or says that this run tests nothing about retrieval ("warn")
  <run>/seed-S   every (run, seed) of plan.runs: continued from the base with continue.json,
                 its layer types (full | swa | switch | "static K": one full layer in every K,
                 the last of each group), train.seed = S, SwiAttn's controller target; evaluated
  results        `swiattn eval table` and RUN/results.md (scripts/reproduce_results.py)

Resumable: each stage writes DONE only after it finished and a re-run skips it; inside a stage
training and evaluation have their own markers (TRAIN_DONE, eval/DONE), and an interrupted
training continues from its last checkpoint (`swiattn train --resume`). A failing stage stops
the pipeline with a message naming the stage and its log. Independent stages run plan.parallel
at a time (--jobs), each logging to its own folder.

Python 3 standard library only. Environment (or options): VARIANT (cpu | gpu), RUN (default
runs/reproduce-VARIANT), SWIATTN (default build/swiattn), CACHE_DIR (default data/cache), DEVICE
(cpu for VARIANT=cpu, cuda for gpu), CONFIGS (another folder of the same files), ONLY (a comma
list of stage names: pretrain, FullAttn, SwiAttn/seed-2, results), JOBS, RESULTS_MD (also write
the results page there, figures beside it in results-figures/).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = time.time()
PRINT_LOCK = threading.Lock()


def hms(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def progress(message):
    with PRINT_LOCK:
        print(f"[reproduce {time.strftime('%H:%M:%S')} +{hms(time.time() - START)}] {message}", flush=True)


class Failure(Exception):
    pass


def layer_types(spec, num_layers):
    """'full' | 'swa' | 'switch' | 'static K' (one full layer in every K, the last of each group,
    spec §9; the rest swa) -> the model.layer_types list."""
    if spec in ("full", "swa", "switch"):
        return [spec] * num_layers
    m = re.fullmatch(r"static (\d+)", spec)
    if not m or int(m.group(1)) < 1 or num_layers % int(m.group(1)) != 0:
        raise Failure(f"plan: layers '{spec}' must be full, swa, switch or 'static K' with K dividing "
                      f"the {num_layers} layers")
    k = int(m.group(1))
    return ["full" if (l + 1) % k == 0 else "swa" for l in range(num_layers)]


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"cannot read {path}: {e}")


class Pipeline:
    def __init__(self, args):
        self.variant = args.variant
        self.configs = args.configs or os.path.join(ROOT, "configs", "reproduce", self.variant)
        self.run = args.run or os.path.join("runs", f"reproduce-{self.variant}")
        self.swiattn = args.swiattn
        self.cache_dir = args.cache_dir
        self.device = args.device or ("cuda" if self.variant == "gpu" else "cpu")
        if not os.path.isdir(self.configs):
            raise Failure(f"no configs for VARIANT={self.variant} ({self.configs})")
        if not (os.path.isfile(self.swiattn) and os.access(self.swiattn, os.X_OK)):
            raise Failure(f"{self.swiattn} not found: build it first (make build)")
        self.plan = read_json(os.path.join(self.configs, "plan.json"))
        for key in ("pretrain", "continue", "runs", "gate"):
            if key not in self.plan:
                raise Failure(f"{self.configs}/plan.json lacks '{key}'")
        self.pretrain_config = os.path.join(self.configs, self.plan["pretrain"])
        self.continue_config = os.path.join(self.configs, self.plan["continue"])
        self.num_layers = read_json(self.pretrain_config)["model"]["num_hidden_layers"]
        self.jobs = args.jobs or int(self.plan.get("parallel", 1))
        self.eval_sets = self.read_eval_sets()
        self.stages = self.make_stages()
        self.only = set(filter(None, (args.only or "").split(",")))
        unknown = [o for o in self.only if not any(self.selected_by(o, s["name"]) for s in self.stages + [{"name": "results"}])]
        if unknown:
            raise Failure(f"ONLY: no stage named {', '.join(unknown)} (stages: pretrain, "
                          f"{', '.join(s['name'] for s in self.stages[1:])}, results)")

    def read_eval_sets(self):
        sets = []
        path = os.path.join(self.configs, "eval.sets")
        if os.path.exists(path):
            for line in open(path):
                line = line.split("#", 1)[0].strip()
                if line:
                    sets += ["--set", line]
        return sets

    def make_stages(self):
        stages = [{"name": "pretrain", "dir": os.path.join(self.run, "pretrain"), "config": self.pretrain_config,
                   "sets": [], "init": None}]
        names = set()
        for r in self.plan["runs"]:
            name = r["name"]
            if not re.fullmatch(r"[A-Za-z0-9._@-]+", name) or name in names or name in ("pretrain", "results"):
                raise Failure(f"plan: run name '{name}' must be unique and made of letters, digits, . _ @ -")
            names.add(name)
            if not r.get("seeds"):
                raise Failure(f"plan: run '{name}' has no seeds")
        # Seed-major order: every method's first seed, then every second seed, ... so that a
        # pipeline stopped early (or run in pieces) has each method covered as soon as possible.
        order = sorted(((i, j) for j, r in enumerate(self.plan["runs"]) for i in range(len(r["seeds"]))))
        for i, j in order:
            r = self.plan["runs"][j]
            name = r["name"]
            types = layer_types(r["layers"], self.num_layers)
            for seed in r["seeds"][i:i + 1]:
                sets = ["--set", "model.layer_types=" + json.dumps(types), "--set", f"train.seed={seed}"]
                if "steps" in r:
                    sets += ["--set", f"train.steps={r['steps']}"]
                if "target_ratio" in r:
                    sets += ["--set", "reg.controller=bias", "--set", f"reg.target_ratio={r['target_ratio']}"]
                stages.append({"name": f"{name}/seed-{seed}", "run": name, "seed": seed,
                               "dir": os.path.join(self.run, name, f"seed-{seed}"), "config": self.continue_config,
                               "sets": sets, "init": os.path.join(self.run, "pretrain", "checkpoint")})
        return stages

    @staticmethod
    def selected_by(only, name):
        return only == name or name.startswith(only + "/")

    def selected(self, name):
        return not self.only or any(self.selected_by(o, name) for o in self.only)

    # ---- one stage ----

    def command(self, log, args, echo):
        with open(log, "a") as f:
            f.write("$ " + " ".join(args) + "\n")
            f.flush()
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            for line in proc.stdout:
                f.write(line)
                if echo:
                    with PRINT_LOCK:
                        sys.stdout.write(line)
                        sys.stdout.flush()
            rc = proc.wait()
        if rc != 0:
            raise Failure(f"exit {rc} from {os.path.basename(args[0])} {args[1]} (log {log})")

    def train(self, stage, echo):
        d = stage["dir"]
        if os.path.exists(os.path.join(d, "TRAIN_DONE")):
            return
        log = os.path.join(d, "train.log")
        if os.path.exists(os.path.join(d, "checkpoint", "trainer_state.json")):
            progress(f"  {stage['name']}: resuming the interrupted training in {d}")
            self.command(log, [self.swiattn, "train", "--resume", d], echo)
        else:
            for leftover in ("checkpoint", "checkpoints", "metrics.jsonl"):
                p = os.path.join(d, leftover)
                if os.path.islink(p) or os.path.isfile(p):
                    os.remove(p)
                elif os.path.isdir(p):
                    shutil.rmtree(p)
            args = [self.swiattn, "train", "--config", stage["config"], "--out", d,
                    "--set", f"data.cache_dir={self.cache_dir}", "--set", f"train.device={self.device}"]
            if self.device == "cpu":
                args += ["--set", "train.dtype=float32"]
            if stage["init"]:
                args += ["--init-from", stage["init"]]
            self.command(log, args + stage["sets"], echo)
        open(os.path.join(d, "TRAIN_DONE"), "w").close()

    def evaluate(self, stage, echo):
        d = stage["dir"]
        out = os.path.join(d, "eval")
        if os.path.exists(os.path.join(out, "DONE")):
            return
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        self.command(os.path.join(d, "eval.log"),
                     [self.swiattn, "eval", "--checkpoint", os.path.join(d, "checkpoint"), "--out", out,
                      "--device", self.device, "--set", f"eval.cache_dir={self.cache_dir}"] + self.eval_sets, echo)
        open(os.path.join(out, "DONE"), "w").close()

    def device_name(self):
        if self.device == "cuda":
            try:
                return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                      text=True, timeout=30).stdout.strip().splitlines()[0]
            except (OSError, IndexError, subprocess.SubprocessError):
                return "CUDA GPU"
        model = "CPU"
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"{model}, {os.cpu_count()} cores"

    def run_stage(self, stage, echo):
        d = stage["dir"]
        done = os.path.join(d, "DONE")
        if os.path.exists(done):
            progress(f"{stage['name']}: already done, skipped ({' '.join(open(done).read().split()[:3])})")
            return
        os.makedirs(d, exist_ok=True)
        progress(f"{stage['name']}: started (log in {d})")
        start = time.time()
        try:
            self.train(stage, echo)
            self.evaluate(stage, echo)
        except Failure as e:
            raise Failure(f"stage {stage['name']}: FAILED after {hms(time.time() - start)}: {e}. Fix the cause and "
                          "re-run: finished stages are skipped.")
        seconds = time.time() - start
        load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
        # DONE: "seconds=S device=D finished=DATE load=X machine=..." (read by scripts/reproduce_results.py).
        with open(done + ".tmp", "w") as f:
            f.write(f"seconds={int(round(seconds))} device={self.device} "
                    f"finished={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load={load} "
                    f"machine={self.device_name()}\n")
        os.replace(done + ".tmp", done)
        r = read_json(os.path.join(d, "eval", "results.json"))
        pk = r.get("passkey_by_distance", {}).get("beyond_window", {})
        progress(f"{stage['name']}: done in {hms(seconds)} (held-out loss {r['held_out']['loss']:.4f}, passkey beyond "
                 f"the window {fmt(pk.get('exact_accuracy'))} exact / {fmt(pk.get('per_digit_accuracy'))} per digit, "
                 f"FA ratio {fmt(r['routing']['fa_ratio'])})")

    # ---- the gate ----

    def check_gate(self):
        gate = self.plan["gate"]
        need = float(gate["min_passkey_beyond_window"])
        r = read_json(os.path.join(self.run, "pretrain", "eval", "results.json"))
        got = r["passkey_by_distance"]["beyond_window"]["exact_accuracy"]
        got = float("nan") if got is None else float(got)
        with open(os.path.join(self.run, "GATE"), "w") as f:
            f.write(f"passkey_beyond_window={got} required={need} passed={int(got >= need)}\n")
        if got >= need:
            progress(f"gate: the FullAttn base retrieves the passkey beyond the window ({got:.3f} >= {need})")
            return
        message = (f"gate: the FullAttn base's passkey accuracy beyond the window is {got:.3f}, below {need}: its "
                   "reference cannot retrieve, so the comparison would test nothing about retrieval")
        if gate.get("on_fail", "stop") == "stop":
            raise Failure(message + ". Stopped: train the base longer (pretrain.json), then delete "
                          f"{self.run}/pretrain and re-run.")
        progress("WARNING: " + message + " (this variant continues: plan.gate.on_fail = warn)")

    # ---- everything ----

    def main(self, results_md):
        progress(f"VARIANT={self.variant} DEVICE={self.device} RUN={self.run} ({self.device_name()}), "
                 f"{len(self.stages)} stages, {self.jobs} at a time")
        os.makedirs(self.run, exist_ok=True)
        pretrain, rest = self.stages[0], [s for s in self.stages[1:] if self.selected(s["name"])]
        if self.selected("pretrain"):
            self.run_stage(pretrain, echo=True)
        if rest:
            if not os.path.exists(os.path.join(pretrain["dir"], "DONE")):
                raise Failure("the continued runs need the pretrain stage first")
            self.check_gate()
            if self.jobs <= 1:
                for s in rest:
                    self.run_stage(s, echo=True)
            else:
                pool = concurrent.futures.ThreadPoolExecutor(self.jobs)
                futures = [pool.submit(self.run_stage, s, False) for s in rest]
                try:
                    for f in concurrent.futures.as_completed(futures):
                        f.result()  # the first failure ends the pipeline: nothing new starts
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
        if self.selected("results"):
            missing = [s["name"] for s in self.stages if not os.path.exists(os.path.join(s["dir"], "DONE"))]
            if missing:
                raise Failure(f"results: stages not finished: {', '.join(missing)}")
            self.write_results(results_md)
        progress(f"finished in {hms(time.time() - START)}")

    def write_results(self, results_md):
        d = os.path.join(self.run, "results")
        os.makedirs(d, exist_ok=True)
        rows = [("FullAttn-base", [os.path.join(self.run, "pretrain", "eval")])]
        for r in self.plan["runs"]:
            rows.append((r["name"], [os.path.join(self.run, r["name"], f"seed-{s}", "eval") for s in r["seeds"]]))
        self.command(os.path.join(d, "table.log"),
                     [self.swiattn, "eval", "table", "--out", os.path.join(d, "table.md")] +
                     [f"{name}={','.join(dirs)}" for name, dirs in rows], echo=False)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "reproduce_results.py"), self.run, self.configs,
                        self.variant], check=True)
        if results_md:
            figures = os.path.join(os.path.dirname(results_md) or ".", "results-figures")
            shutil.rmtree(figures, ignore_errors=True)
            shutil.copytree(os.path.join(self.run, "figures"), figures)
            text = open(os.path.join(self.run, "results.md")).read().replace("](figures/", "](results-figures/")
            with open(results_md, "w") as f:
                f.write(text)
            progress(f"wrote {results_md} (figures in {figures})")


def fmt(x):
    return "n/a" if x is None else f"{x:.3f}"


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default=env("VARIANT", "cpu"))
    p.add_argument("--run", default=env("RUN"))
    p.add_argument("--configs", default=env("CONFIGS"))
    p.add_argument("--swiattn", default=env("SWIATTN", "build/swiattn"))
    p.add_argument("--cache-dir", default=env("CACHE_DIR", "data/cache"))
    p.add_argument("--device", default=env("DEVICE"))
    p.add_argument("--only", default=env("ONLY"))
    p.add_argument("--jobs", type=int, default=int(env("JOBS", "0")))
    p.add_argument("--results-md", default=env("RESULTS_MD"))
    args = p.parse_args()
    # Idle OpenMP threads sleep instead of spinning (several stages may share the cores).
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        Pipeline(args).main(args.results_md)
    except Failure as e:
        progress(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        progress("interrupted: re-run the same command to continue (finished stages are skipped)")
        sys.exit(130)


if __name__ == "__main__":
    main()
