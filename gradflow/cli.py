"""The ``gradflow`` command: train, runs, diagnose, report. Errors are one line, not a traceback."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import PRESETS, TUTORIAL_ACTIVATIONS


class CliError(Exception):
    pass


def _activations(values: list[str]) -> list[str]:
    from .activations import available_activations
    names = []
    for v in values:
        for name in v.split(","):
            name = name.strip().lower()
            if name == "all":
                names.extend(TUTORIAL_ACTIVATIONS)
            elif name:
                if name not in available_activations():
                    raise CliError(f"unknown activation {name!r}; accepted: all, {', '.join(available_activations())}")
                names.append(name)
    return list(dict.fromkeys(names))


def _seeds(values: list[str] | None) -> list[int] | None:
    if not values:
        return None
    try:
        return [int(s) for v in values for s in v.split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--seeds takes integers, e.g. --seeds 42 43 44; got {' '.join(values)}") from None


def cmd_train(args) -> int:
    if args.case_studies:  # the case studies' own runs (gradflow.case_studies)
        from .case_studies import run
        return run(args)
    from .train import compare
    seeds = _seeds(args.seeds)
    if args.n_seeds is not None:
        if args.n_seeds < 1:
            raise CliError(f"--n-seeds must be at least 1, got {args.n_seeds}")
        seeds = [42 + i for i in range(args.n_seeds)]
    overrides = dict(hidden_sizes=args.hidden, init=args.init, norm=args.norm, dropout=args.dropout,
                     optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size,
                     max_epochs=args.max_epochs, patience=args.patience, dataset=args.dataset,
                     record=args.record, output_act=args.output_act, weight_decay=args.weight_decay)
    runs = compare(_activations(args.act), preset=args.preset, seeds=seeds, runs_dir=args.out,
                   overwrite=args.overwrite, device=args.device, progress=not args.no_progress,
                   data_root=args.data_dir, **overrides)
    for run in runs:
        s = run.summary()
        accs = ", ".join(f"{a * 100:.2f}" for a in s["test_acc"])
        print(f"{run.name}: test accuracy {s['test_acc_mean'] * 100:.2f} % (seeds {s['seeds']}: {accs})")
    return 0


def cmd_data(args) -> int:
    from .data import default_data_root, prepare_fashion_mnist
    root = args.data_dir or default_data_root()
    print(f"FashionMNIST ready in {root}/FashionMNIST/raw (from {prepare_fashion_mnist(root)})")
    return 0


def cmd_runs(args) -> int:
    from .store import list_runs
    table = list_runs(args.out)
    if args.preset and not table.empty and "preset" in table:
        table = table[table["preset"] == args.preset]
    if args.accuracy:
        return _print_accuracy(table)
    if args.json:
        print(json.dumps(table.to_dict("records"), indent=2, default=str))
        return 0
    if table.empty:
        print(f"no runs in {args.out or 'checkpoints'}")
        return 0
    for row in table.to_dict("records"):
        if isinstance(row.get("error"), str):
            print(f"{row['run']}: DAMAGED: {row['error']}")
            continue
        accs = " ".join(f"{a * 100:.2f}" for a in row["test_acc"])
        print(f"{row['run']:<40} {row['activation']:<10} seeds={len(row['seeds'])} test%=[{accs}] "
              f"epochs={row['epochs_trained']} s/epoch={row['seconds_per_epoch']:.2f} ({row['models_in_batch']} models)")
    return 0


def _print_accuracy(table) -> int:
    """Mean test accuracy ± 95 % CI per run, next to the tutorial's single seed (Markdown)."""
    from .config import TUTORIAL_TEST_ACCURACY
    from .plots import mean_ci
    ok = table[table["error"].isna()] if "error" in table else table
    if ok.empty:
        raise CliError("no finished runs to tabulate (train some with `gradflow train`)")
    print("| run | activation | seeds | test accuracy, mean ± 95 % CI | per seed | epochs trained | tutorial, seed 42 |")
    print("|---|---|---|---|---|---|---|")
    for r in ok.to_dict("records"):
        mean, half, n = mean_ci(r["test_acc"])
        ref = TUTORIAL_TEST_ACCURACY.get(r["activation"])
        print(f"| {r['run']} | {r['activation']} | {n} | {100 * mean:.2f} % ± {100 * half:.2f} | "
              f"{', '.join(f'{100 * a:.2f}' for a in r['test_acc'])} | {', '.join(map(str, r['epochs_trained']))} | "
              f"{'—' if ref is None else f'{100 * ref:.2f} %'} |")
    return 0


def cmd_diagnose(args) -> int:
    from .diagnose import diagnose, format_findings
    from .recording import SUMMARY_FILE
    from .store import load_run
    path = Path(args.run)
    if (path / SUMMARY_FILE).is_file():  # a recording saved from the user's own loop (Recorder.save)
        findings = diagnose(path)
    elif path.is_dir() and not (path / "config.json").is_file():
        raise ValueError(f"{path} is neither a gradflow run (config.json is missing) nor a recording "
                         f"({SUMMARY_FILE} is missing; Recorder.save(directory) writes one)")
    else:
        findings = diagnose(load_run(args.run, args.out))
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, default=str))
    else:
        print(format_findings(findings))
    return 0


def cmd_report(args) -> int:
    from .report import render_all
    return render_all(out_dir=args.reports, preset=args.preset, runs_dir=args.out,
                      show_code=args.show_code, jobs=args.jobs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gradflow", description="Gradient-flow diagnostics for PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)

    def runs_dir(sp):
        sp.add_argument("--out", default=None, metavar="DIR",
                        help="runs directory (default: $GRADFLOW_RUNS or ./checkpoints)")

    t = sub.add_parser("train", help="train (or load cached) runs: one per activation, all seeds batched together")
    t.add_argument("--act", nargs="+", default=["all"], metavar="NAME",
                   help="activation(s), space or comma separated; 'all' = the tutorial's six (default)")
    t.add_argument("--preset", default="quick", choices=list(PRESETS), help="recipe preset (default: quick)")
    t.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds, e.g. 42 43 44 (default: the preset's)")
    t.add_argument("--n-seeds", type=int, metavar="N", help="use seeds 42 .. 42+N-1")
    t.add_argument("--hidden", type=int, nargs="+", metavar="WIDTH", help="hidden layer widths")
    t.add_argument("--init", help="weight init: default, xavier, kaiming, orthogonal, ...")
    t.add_argument("--norm", choices=["none", "batch", "layer"])
    t.add_argument("--dropout", type=float, help="probability of DROPPING a unit (PyTorch meaning)")
    t.add_argument("--output-act", metavar="NAME", help="activation on the logits (to reproduce bugs)")
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    t.add_argument("--lr", type=float)
    t.add_argument("--momentum", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--max-epochs", type=int)
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    t.add_argument("--dataset", choices=["fashion_mnist", "synthetic"])
    t.add_argument("--record", choices=["default", "every", "off"], help="gradient recording schedule")
    t.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    t.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $GRADFLOW_DATA or ./data)")
    t.add_argument("--overwrite", action="store_true", help="retrain even if the run is cached")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--case-studies", action="store_true", help="train (or load) the case studies' runs instead")
    runs_dir(t)
    t.set_defaults(func=cmd_train)

    dp = sub.add_parser("data", help="prepare FashionMNIST in the data directory (local files, Debian package "
                                     "or download)")
    dp.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $GRADFLOW_DATA or ./data)")
    dp.set_defaults(func=cmd_data)

    r = sub.add_parser("runs", help="list cached runs")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.add_argument("--preset", choices=list(PRESETS), help="only runs of this preset")
    r.add_argument("--accuracy", action="store_true",
                   help="Markdown table: test accuracy per activation, mean ± 95 %% CI over seeds")
    runs_dir(r)
    r.set_defaults(func=cmd_runs)

    d = sub.add_parser("diagnose", help="print the findings of a run or of a saved recording")
    d.add_argument("run", help="run name (see `gradflow runs`), run directory, or a directory written by "
                               "Recorder.save()")
    d.add_argument("--json", action="store_true")
    runs_dir(d)
    d.set_defaults(func=cmd_diagnose)

    rp = sub.add_parser("report", help="render the notebooks to HTML reports")
    rp.add_argument("--preset", default="quick", choices=list(PRESETS))
    rp.add_argument("--reports", default="reports", metavar="DIR", help="output directory (default: reports)")
    rp.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    rp.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel")
    runs_dir(rp)
    rp.set_defaults(func=cmd_report)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("gradflow: interrupted; finished runs are kept, the unfinished one was discarded", file=sys.stderr)
        return 130
    except (CliError, ValueError, FileNotFoundError, RuntimeError, TypeError) as exc:
        print(f"gradflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
