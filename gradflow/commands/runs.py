"""``gradflow runs``: the runs in the store, told apart.

Besides each run's accuracy it shows where the run came from (a comparison, a case study, a
sweep) and the settings that differ between the runs listed, so five ``relu-quick-<hash>`` runs
read as five different things. A damaged run is listed as DAMAGED with the file at fault.
"""
from __future__ import annotations

import json

from . import PRESET_NAMES, add_runs_dir

# shown in their own columns, or not settings of the recipe at all
_OWN_COLUMNS = ("activation", "seeds", "preset")
# what changes a run's numbers versus the tutorial's recipe: everything but these
_NOT_RECIPE = ("activation", "seeds", "preset", "record")


def add_arguments(r) -> None:
    r.add_argument("--json", action="store_true", help="machine-readable output (every setting of every run)")
    r.add_argument("--preset", choices=PRESET_NAMES, help="only runs of this preset (default: all)")
    r.add_argument("--origin", metavar="WHERE", help="only runs from here: comparison, case study, sweep, ... "
                                                     "(default: all)")
    r.add_argument("--accuracy", action="store_true",
                   help="Markdown table: test accuracy per run, mean ± 95 %% CI over seeds, next to the tutorial's "
                        "(only for runs of the tutorial's recipe)")
    r.add_argument("--adopt", action="store_true",
                   help="seal runs written before run manifests: read every file, write the manifest if all read")
    r.add_argument("--sweep", metavar="NAME_OR_DIR", help="print a sweep's table instead, with --json every column "
                   "as JSON (see `gradflow sweep`; default: the run list)")
    r.add_argument("--sweeps-dir", metavar="DIR", help="where sweeps are (default: $GRADFLOW_SWEEPS, else sweeps/ beside "
                   "the run store: ./sweeps for the default store)")
    add_runs_dir(r, writes=False)


def adopt_all(root) -> int:
    """``--adopt``: seal every run that has no manifest; one line per run."""
    from ..manifest import MANIFEST
    from ..recording import RecordingError
    from ..store import RunStoreError, adopt
    legacy = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and (p / "config.json").is_file() and not (p / MANIFEST).exists()) if root.is_dir() else []
    if not legacy:
        print(f"no run without a manifest in {root}: nothing to adopt")
    failed = 0
    for path in legacy:
        try:
            adopt(path)
            print(f"run {path.name}: every file reads; sealed with a manifest")
        except (RunStoreError, RecordingError) as exc:  # a damaged recording is one line too
            failed += 1
            damage = str(exc).split("; `gradflow train")[0]
            print(f"{damage}; not sealed (`gradflow train` with its settings makes it again)")
    return 1 if failed else 0


def _short(value) -> str:
    if isinstance(value, dict):  # an activation config
        params = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return value.get("name", "?") + (f"({params})" if params else "")
    if isinstance(value, list):
        return "x".join(map(str, value))
    return "none" if value is None else str(value)


def differing_settings(rows: list[dict]) -> list[str]:
    """The setting names whose values are not the same in every row (activation and seeds have columns)."""
    keys = sorted({k for r in rows for k in r["settings"]} - set(_OWN_COLUMNS))
    return [k for k in keys if len({json.dumps(r["settings"].get(k), sort_keys=True) for r in rows}) > 1]


def is_tutorial_recipe(settings: dict) -> bool:
    """True if a run trained with the tutorial's recipe (any seeds, recording on or off)."""
    from ..config import make_config
    try:
        reference = make_config(settings["activation"]["name"], "tutorial").to_dict()
    except (KeyError, ValueError, TypeError):
        return False
    return all(json.dumps(settings.get(k), sort_keys=True) == json.dumps(v, sort_keys=True)
               for k, v in reference.items() if k not in _NOT_RECIPE) and \
        settings.get("activation") == reference["activation"]


def run(args) -> int:
    if args.sweep:  # a sweep's table (gradflow/sweep_results.py)
        from ..sweep_results import default_sweeps_dir, print_sweep
        if args.accuracy or args.adopt or args.preset or args.origin:  # run-list options: refuse, not ignore
            from ..cli import CliError
            raise CliError("--sweep prints one sweep's table; --accuracy, --adopt, --preset and --origin are for the "
                           "run list (--json works with --sweep)")
        return print_sweep(args.sweep, args.sweeps_dir or default_sweeps_dir(args.out), as_json=args.json)
    from ..cli import CliError
    from ..paths import check_input_dir, default_runs_dir
    root = check_input_dir(args.out if args.out is not None else default_runs_dir())
    if not root.is_dir() and not (args.json or args.accuracy or args.adopt):
        print(f"no runs in {root} (the folder does not exist yet; `gradflow train` makes it)")
        return 0
    from ..store import list_runs
    if args.adopt:
        return adopt_all(root)
    table = list_runs(root)
    rows = table.to_dict("records") if not table.empty else []
    damaged = [r for r in rows if isinstance(r.get("error"), str)]
    ok = [r for r in rows if not isinstance(r.get("error"), str)]
    for r in ok:  # a run's config leaves the default precision out, so fp32 runs keep their names
        r["settings"].setdefault("precision", "fp32")
    if args.preset:
        ok = [r for r in ok if r["preset"] == args.preset]
    if args.origin:
        ok = [r for r in ok if r["origin"] == args.origin]
    if args.accuracy:
        if not ok:
            raise CliError(f"no finished runs to tabulate in {root}" + (f" for preset {args.preset}" if args.preset
                                                                          else "")
                           + " (train some with `gradflow train`)")
        _print_accuracy(ok)
    elif args.json:
        print(json.dumps(ok + damaged, indent=2, default=str))
        return 0
    elif not rows:
        print(f"no runs in {root}")
    else:
        _print_table(ok)
    for r in damaged:  # listed, never as good, whatever the filter
        print(r["error"])  # "run <name> is DAMAGED: <file> is missing; ..."
    return 0


def _print_table(rows: list[dict]) -> None:
    if not rows:
        return
    differ = differing_settings(rows)
    header = ["run", "origin", "activation", *differ, "seeds", "test % per seed", "epochs", "s/epoch"]
    lines = []
    for r in rows:
        lines.append([r["run"], r["origin"], _short(r["settings"]["activation"]),
                      *(_short(r["settings"].get(k)) for k in differ),
                      " ".join(map(str, r["seeds"])), " ".join(f"{100 * a:.2f}" for a in r["test_acc"]),
                      " ".join(map(str, r["epochs_trained"])),
                      "-" if r["seconds_per_epoch"] is None else f"{r['seconds_per_epoch']:.2f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    for line in [header, *lines]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    if len(rows) > 1:
        print(f"settings that differ between these runs: {', '.join(differ) or 'none but activation and seeds'}; "
              "`gradflow runs --json` lists all")


def _print_accuracy(rows: list[dict]) -> None:
    """Mean test accuracy ± 95 % CI per run; the tutorial's single seed only beside runs of its recipe."""
    from ..config import TUTORIAL_TEST_ACCURACY
    from ..seed_intervals import mean_ci
    print("| run | origin | activation | seeds | test accuracy, mean ± 95 % CI | per seed | epochs trained "
          "| tutorial, seed 42 |")
    print("|---|---|---|---|---|---|---|---|")
    others = []
    for r in rows:
        mean, half, n = mean_ci(r["test_acc"])
        ref = TUTORIAL_TEST_ACCURACY.get(r["activation"]) if is_tutorial_recipe(r["settings"]) else None
        if ref is None and r["activation"] in TUTORIAL_TEST_ACCURACY:
            others.append(r["run"])
        print(f"| {r['run']} | {r['origin']} | {r['activation']} | {n} | {100 * mean:.2f} % ± {100 * half:.2f} | "
              f"{', '.join(f'{100 * a:.2f}' for a in r['test_acc'])} | {', '.join(map(str, r['epochs_trained']))} | "
              f"{'—' if ref is None else f'{100 * ref:.2f} %'} |")
    if others:
        print(f"\n{len(others)} run(s) not trained with the tutorial's recipe (another preset or setting) are not "
              "set beside the tutorial's accuracy.")
