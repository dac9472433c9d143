"""How well the diagnosis finds planted bugs, and how quiet it stays on healthy models.

Every program of ``diagnosis_cases`` (DeepCrime-style mutants of the tutorial's BaseNetwork, a
small CNN and normalised models, plus healthy controls) trains on a FashionMNIST subset in a plain
PyTorch loop inside ``gradflow.Recorder``, over several seeds. Each run is then judged twice, on
the same recording: by ``gradflow.diagnose`` (a mutant is detected when a finding with one of its
ground-truth codes has severity warning or error; any warning or error on a control is a false
alarm) and by the published AUTOTRAINER and DeepDiagnosis threshold rules (``diagnosis_baseline``:
any symptom of theirs that maps onto a ground-truth code detects; any symptom on a control is a
false alarm).

    python benchmarks/bench_diagnosis.py            # every case, 3 seeds, 300 steps (~10 min, 2 cores)
    python benchmarks/bench_diagnosis.py --quick    # a subset, 1 seed, 120 steps (about a minute)
    python benchmarks/bench_diagnosis.py --json out.json

Recall = detected mutant runs / mutant runs. Precision = detected mutant runs / runs the tool
flagged (detected mutants, mutants flagged for something else, controls with an alarm). Cause
named = detected mutant runs where one ground-truth finding ranks the planted bug first among its
likely causes (``diagnosis_cases.PLANTED_CAUSE``): detecting a symptom is half the job, pointing at
its cause the other half.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this file

from diagnosis_baseline import baseline_symptoms, codes_of  # noqa: E402
from diagnosis_cases import CASES, PLANTED_CAUSE, STEP_TAKES_TARGETS, Data, train_case  # noqa: E402

import gradflow  # noqa: E402
from gradflow.data import load_fashion_mnist  # noqa: E402

TOOLS = ("gradflow", "AUTOTRAINER", "DeepDiagnosis")
ALARM = ("warning", "error")
TARGET_RANGES = {"labels": (0.0, 1.0), "pixels_pm1": (-1.0, 1.0), "pixels_01": (0.0, 1.0),  # one-hot for labels
                 "brightness": (0.0, 10.0)}


def run_one(case, seed, data, steps) -> dict:
    t0 = time.perf_counter()
    rec, metrics = train_case(case, seed, data, steps)
    findings = gradflow.diagnose(rec, metrics=metrics)
    tables, summary = rec.tables(), rec.summary()
    base = baseline_symptoms(tables, summary, metrics, TARGET_RANGES[case.targets])
    last = metrics.iloc[-1]
    return {
        "case": case.name, "symptom": case.symptom, "seed": seed, "control": case.control,
        "truth": list(case.codes), "steps": int(summary["steps"]),
        "val_acc": None if "val_acc" not in metrics else float(metrics["val_acc"].max()),
        "train_loss": float(last["train_loss"]), "val_loss": float(last["val_loss"]),
        "codes": {"gradflow": sorted({f.code for f in findings if f.severity in ALARM}),
                  "AUTOTRAINER": sorted(codes_of(base["AUTOTRAINER"])),
                  "DeepDiagnosis": sorted(codes_of(base["DeepDiagnosis"]))},
        "findings": sorted({f"{f.severity}:{f.code}" for f in findings}),
        # the first-ranked cause of each ground-truth finding: does the ranking lead to the planted bug?
        "first_causes": {f.code: f.alternatives[0]["cause"] for f in findings
                         if f.severity in ALARM and f.code in case.codes and f.alternatives},
        "planted_cause": list(PLANTED_CAUSE.get(case.name, ())),
        "baseline_symptoms": base, "seconds": round(time.perf_counter() - t0, 2),
    }


def verdict(run, tool) -> str:
    """'hit' (a mutant named by one of its codes), 'miss', 'wrong' (a mutant flagged for something
    else), 'alarm' (a control flagged) or 'quiet' (a control left alone)."""
    codes = set(run["codes"][tool])
    if run["control"]:
        return "alarm" if codes else "quiet"
    return "hit" if codes & set(run["truth"]) else ("wrong" if codes else "miss")


def cause_named(run) -> bool:
    """A detected mutant whose ground-truth findings rank the planted cause first (one is enough)."""
    return any(p.lower() in c.lower() for c in run["first_causes"].values() for p in run["planted_cause"])


def score(runs) -> dict:
    out = {}
    for tool in TOOLS:
        v = [verdict(r, tool) for r in runs]
        hits, mutants = v.count("hit"), sum(not r["control"] for r in runs)
        flagged = hits + v.count("wrong") + v.count("alarm")
        controls = sum(r["control"] for r in runs)
        per_symptom = {}
        for r, x in zip(runs, v):
            s = per_symptom.setdefault(r["symptom"], {"runs": 0, "detected": 0, "alarms": 0})
            s["runs"] += 1
            s["detected"] += x == "hit"
            s["alarms"] += x == "alarm"
        out[tool] = {"recall": hits / mutants if mutants else float("nan"),
                     "precision": hits / flagged if flagged else float("nan"),
                     "mutant_runs": mutants, "detected": hits, "control_runs": controls,
                     "false_alarms": v.count("alarm"), "per_symptom": per_symptom}
    hits = [r for r in runs if verdict(r, "gradflow") == "hit"]
    out["gradflow"]["cause_named"] = sum(map(cause_named, hits))
    out["gradflow"]["cause_rate"] = out["gradflow"]["cause_named"] / len(hits) if hits else float("nan")
    return out


def markdown_table(runs, scores) -> str:
    symptoms = list(dict.fromkeys(r["symptom"] for r in runs if not r["control"]))
    n_cases = {s: len({r["case"] for r in runs if r["symptom"] == s}) for s in symptoms + ["control"]}
    lines = ["| planted symptom (cases) | runs | " + " | ".join(TOOLS) + " |",
             "|---|---:|" + "---:|" * len(TOOLS)]
    for s in symptoms:
        cells = [f"{scores[t]['per_symptom'][s]['detected']}/{scores[t]['per_symptom'][s]['runs']}" for t in TOOLS]
        lines.append(f"| {s} ({n_cases[s]}) | {scores[TOOLS[0]]['per_symptom'][s]['runs']} | " + " | ".join(cells) + " |")
    if "control" in n_cases and n_cases["control"]:
        c = scores[TOOLS[0]]["control_runs"]
        cells = [f"{scores[t]['false_alarms']}/{c}" for t in TOOLS]
        lines.append(f"| **healthy controls: false alarms** ({n_cases['control']}) | {c} | " + " | ".join(cells) + " |")
    lines.append("| **recall** (mutant runs detected) | | " + " | ".join(f"**{scores[t]['recall']:.2f}**" for t in TOOLS) + " |")
    lines.append("| **precision** (flagged runs flagged right) | | "
                 + " | ".join(f"**{scores[t]['precision']:.2f}**" for t in TOOLS) + " |")
    return "\n".join(lines)


def case_table(runs) -> str:
    """Per case: what each tool said on each seed, for finding which cases fail and why."""
    lines = ["| case | truth | best val acc | gradflow (warning+) | cause ranked first | baseline symptoms |",
             "|---|---|---:|---|---|---|"]
    by_case = {}
    for r in runs:
        by_case.setdefault(r["case"], []).append(r)
    for name, rs in by_case.items():
        acc = [r["val_acc"] for r in rs if r["val_acc"] is not None]
        marks = "".join({"hit": "+", "miss": "-", "wrong": "x", "alarm": "!", "quiet": "."}[verdict(r, "gradflow")]
                        for r in rs)
        gf = sorted(set().union(*(r["codes"]["gradflow"] for r in rs)))
        bs = sorted(set().union(*(r["baseline_symptoms"]["AUTOTRAINER"] + r["baseline_symptoms"]["DeepDiagnosis"]
                                  for r in rs)))
        hits = [r for r in rs if verdict(r, "gradflow") == "hit"]
        named = "".join("+" if cause_named(r) else "-" for r in hits)
        wrong = sorted({c for r in hits if not cause_named(r) for c in r["first_causes"].values()})
        first = f"`{named}`" + (f" {'; '.join(wrong)}" if wrong else "") if hits else "-"
        lines.append(f"| {name} | {', '.join(rs[0]['truth']) or '(control)'} | "
                     f"{f'{sum(acc) / len(acc):.2f}' if acc else 'n/a'} | `{marks}` {', '.join(gf) or '-'} | "
                     f"{first} | {', '.join(s.split(':')[1] for s in bs) or '-'} |")
    return "\n".join(lines)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a subset of the cases, 1 seed, 120 steps")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per case (default 3; --quick: 1)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 300; --quick: 120)")
    ap.add_argument("--train-size", type=int, default=4096, help="training examples (default 4096)")
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: all, or the quick subset)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--json", type=Path, default=None, help="also write every run and score here")
    ap.add_argument("--list", action="store_true", help="list the cases with their ground truth and exit")
    args = ap.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    steps = args.steps if args.steps is not None else (120 if args.quick else 300)
    if seeds < 1 or steps < 1 or args.train_size < 128:
        ap.error("--seeds and --steps must be positive and --train-size at least one batch (128)")
    if args.json is not None and not args.json.parent.is_dir():
        ap.error(f"--json: folder {args.json.parent} does not exist")
    cases = [c for c in CASES if c.quick or not args.quick]
    if args.cases:
        wanted = args.cases.split(",")
        unknown = sorted(set(wanted) - {c.name for c in CASES})
        if unknown:
            ap.error(f"unknown case(s) {', '.join(unknown)}; accepted: {', '.join(c.name for c in CASES)}")
        cases = [c for c in CASES if c.name in wanted]
    if args.list:
        for c in cases:
            print(f"{c.name:28} {'control' if c.control else ', '.join(c.codes):45} {c.what}")
        return 0
    torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    splits = load_fashion_mnist()
    data = Data(splits.train_x[:args.train_size], splits.train_y[:args.train_size],
                splits.val_x[:1024], splits.val_y[:1024])
    runs = []
    for case in cases:
        for seed in range(seeds):
            run = run_one(case, seed, data, steps)
            runs.append(run)
            print(f"  {case.name:28} seed {seed}  {run['seconds']:5.1f} s  gradflow: {verdict(run, 'gradflow'):5}  "
                  f"{', '.join(run['codes']['gradflow']) or '-'}", flush=True)
    wall = time.perf_counter() - t_start
    scores = score(runs)

    when = datetime.date.today().isoformat()
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}, {args.threads} thread(s)"
    print(f"\ndiagnosis benchmark, {when}, code {git_commit()}, {machine}")
    print(f"{len(cases)} cases x {seeds} seed(s), {steps} steps on {len(data.train_y)} FashionMNIST examples, "
          f"batch 128; Recorder.step targets= {'passed' if STEP_TAKES_TARGETS else 'not available'}; "
          f"wall {wall:.1f} s")
    print()
    print(markdown_table(runs, scores))
    g = scores["gradflow"]
    print(f"\ngradflow's first-ranked likely cause names the planted bug in {g['cause_named']}/{g['detected']} "
          f"detected mutant runs ({g['cause_rate']:.2f})")
    print()
    print(case_table(runs))
    print("\n(gradflow per seed: + detected, - missed, x flagged for another cause, ! false alarm, . quiet; "
          "cause ranked first, per detected seed: + the planted bug, - another cause, listed)")
    if args.json is not None:
        payload = {"date": when, "code": git_commit(), "machine": machine, "seeds": seeds, "steps": steps,
                   "train_size": len(data.train_y), "wall_seconds": wall, "scores": scores, "runs": runs}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
