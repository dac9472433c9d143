"""A sweep's directory and its one tidy table.

``<sweeps_dir>/<name>/`` holds
  plan.json        the grid, every run's config and name, the shards and the memory budget
  status.json      per shard: ok or failed (and why), seconds, the executor
  results.parquet  one row per (run, seed): every axis a column, test accuracy, epochs,
                   seconds, finding codes; failed runs are rows too (status, error)
  results.csv      the same table, for a spreadsheet
The runs themselves live in the run store like any run; the table names them (column ``run``) and
plan.json names the store (``runs_dir``), so readers never take same-named runs from another store.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic, store
from .sweep_plan import Plan, axis_values

PLAN_FILE, STATUS_FILE, TABLE_FILE, CSV_FILE = "plan.json", "status.json", "results.parquet", "results.csv"
NOT_TRAINED = "the sweep stopped before this run (interrupted or killed); the same command trains it"
INTERRUPTED = "interrupted (Ctrl-C) before this run trained; the same command trains only what is missing"


def default_sweeps_dir(runs_dir=None) -> Path:
    """$GRADFLOW_SWEEPS, else ``sweeps/`` beside the run store (``runs_dir``, default $GRADFLOW_RUNS or
    checkpoints): ``./sweeps`` for the default store. The sweep command, the runs command and the
    sweep report all use this, so a sweep trained with ``--out DIR`` is found by ``--runs DIR``."""
    if os.environ.get("GRADFLOW_SWEEPS"):
        return Path(os.environ["GRADFLOW_SWEEPS"])
    from .paths import default_runs_dir
    return Path(runs_dir or default_runs_dir()).parent / "sweeps"


def write_table(path: Path, table: pd.DataFrame) -> None:
    """The table as Parquet and, beside it, as CSV; each written atomically with the mode every other
    file gets (atomic.atomic_path: 0644 minus the umask; a bare mkstemp file stayed 0600)."""
    with atomic.atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)  # readers see the old table or the new one
    with atomic.atomic_path(path.with_name(CSV_FILE)) as tmp:
        table.to_csv(tmp, index=False)


def _finding_codes(findings: list[dict], seed: int) -> list[str]:
    """The codes found in this seed: a grouped finding lists its seeds (empty: the whole run); an
    ungrouped one (a findings.json written before grouping) has one seed or None."""
    def seen(f):
        return seed in f["seeds"] or not f["seeds"] if f.get("seeds") is not None else f.get("seed") in (None, seed)
    return sorted({f["code"] for f in findings if seen(f)})


def results_table(plan: Plan | list, runs_dir=None, failures: dict[str, str] | None = None,
                  missing: str = NOT_TRAINED) -> pd.DataFrame:
    """One row per (run, seed) of the plan (or of a list of RunConfigs), read from the run store.

    missing -- the error of a run that is neither in the store nor failed (INTERRUPTED after Ctrl-C)"""
    failures = failures or {}
    rows = []
    for config in getattr(plan, "configs", plan):
        name = config.run_name()
        axes = axis_values(config)
        if not store.exists(name, runs_dir):
            status = "failed" if name in failures else "missing"
            for seed in config.seeds:
                rows.append({**axes, "seed": seed, "run": name, "status": status,
                             "error": failures.get(name, missing)})
            continue
        run = store.load_run(name, runs_dir)
        findings = run.findings
        batch = run.config.get("batch", {})
        shard_seconds = float(np.sum(run.config.get("epoch_seconds") or [0.0]))
        members = int(batch.get("members") or len(config.seeds))
        for r in run.results.to_dict("records"):
            codes = _finding_codes(findings, int(r["seed"]))
            rows.append({**axes, "seed": int(r["seed"]), "run": name, "status": "ok", "error": None,
                         "test_acc": float(r["test_acc"]), "test_loss": float(r["test_loss"]),
                         "best_epoch": int(r["best_epoch"]), "epochs_trained": int(r["epochs_trained"]),
                         "epochs_recorded": int(r.get("epochs_recorded", r["epochs_trained"])),
                         "seconds": shard_seconds / members,  # the shard's wall time, shared by its models
                         "shard_seconds": shard_seconds, "models_in_shard": members,
                         "finding_codes": ",".join(codes), "n_findings": len(codes)})
    table = pd.DataFrame(rows)
    for col in ("test_acc", "test_loss", "seconds", "shard_seconds"):  # a table of failures only still has them
        if col not in table:
            table[col] = np.nan
    for col in ("finding_codes", "error"):
        if col not in table:
            table[col] = None
    return table


def save_sweep_files(directory: Path, plan: Plan | None = None, status: dict | None = None,
                     table: pd.DataFrame | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if plan is not None:
        store.write_json_atomic(directory / PLAN_FILE, plan.to_dict())
    if status is not None:
        store.write_json_atomic(directory / STATUS_FILE, status)
    if table is not None:
        write_table(directory / TABLE_FILE, table)


def check_name(name: str) -> str:
    """A sweep name is one plain folder name inside the sweeps directory: no separators, no '..'."""
    bad = (not name or name.strip() != name or name.startswith(".") or "/" in name or "\\" in name
           or (os.altsep and os.altsep in name) or "\0" in name)
    if bad:
        from .sweep_grid import SweepError
        raise SweepError(f"sweep name {name!r} must be a plain folder name (no '/', '\\', '..' or leading '.'): "
                         "it becomes a folder inside the sweeps directory")
    return name


def check_reuse(directory: Path, runs: list[str], overwrite: bool = False) -> bool:
    """Refuse a sweep name already used by a different grid (its table would be replaced without a word)
    unless ``overwrite``. Returns True when an earlier sweep of this name is replaced (its status and
    table are then not merged into the new one's)."""
    from .sweep_grid import SweepError
    if not directory.exists():
        return False
    try:
        earlier = json.loads((directory / PLAN_FILE).read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = None
    if earlier is not None and sorted(earlier) == sorted(runs):
        return False  # the same grid again: resume, keep its status
    if not overwrite:
        what = (f"a different grid ({len(earlier)} runs; this one has {len(runs)})" if earlier is not None
                else "something that is not a sweep of this grid")
        raise SweepError(f"sweep name {directory.name!r} is already used by {what} in {directory}; choose "
                         "another --name, or add --overwrite to replace it")
    return True


def runs_dir_of(path, given=None, warn=None):
    """The run store a sweep's runs are read from: the one its plan recorded (a same-named run in another
    store is another training), with a warning when ``given`` (--out) names another one. Sweeps made
    before the plan recorded it: ``given``."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    recorded = load_plan(path).get("runs_dir")
    if not recorded:
        return given
    if Path(recorded).is_dir():
        if given is not None and Path(given).resolve() != Path(recorded):
            warn(f"note: sweep {Path(path).name} trained into the run store {recorded}; its runs are read from "
                 f"there, not from {given}")
        return recorded
    warn(f"note: sweep {Path(path).name}'s run store {recorded} is not there any more; reading runs of the same "
         f"name from {given or 'the default store'} instead")
    return given


def earlier_shards(directory: Path) -> list[dict]:
    """The shards an earlier invocation of this sweep recorded, marked ``earlier``: status.json keeps every
    invocation's, not only the last one's (a resumed sweep's second run trains only the missing shards)."""
    try:
        shards = json.loads((directory / STATUS_FILE).read_text())["shards"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [{**s, "earlier": True} for s in shards if isinstance(s, dict) and s.get("ok") is not None]


def clear_results(directory: Path) -> None:
    for name in (STATUS_FILE, TABLE_FILE, CSV_FILE):
        (directory / name).unlink(missing_ok=True)


def find_sweep(name_or_path, sweeps_dir=None) -> Path:
    """A sweep directory by path or by name in the sweeps directory; the error lists what is there."""
    path = Path(name_or_path)
    if (path / PLAN_FILE).is_file():
        return path
    root = Path(sweeps_dir) if sweeps_dir else default_sweeps_dir()
    if (root / str(name_or_path) / PLAN_FILE).is_file():
        return root / str(name_or_path)
    names = sorted(p.name for p in root.iterdir() if (p / PLAN_FILE).is_file()) if root.is_dir() else []
    raise FileNotFoundError(f"no sweep {str(name_or_path)!r} (neither a directory with {PLAN_FILE} nor a name in "
                            f"{root}); sweeps there: {', '.join(names) or 'none'}")


def latest_sweep(sweeps_dir=None, preset: str | None = None) -> Path | None:
    """The most recently written sweep with a results table, or None. With ``preset``, the newest
    sweep that trained that preset wins when there is one (a quick report should not show a tutorial
    sweep just because it finished later); a sweep made without --preset trained the default, quick."""
    found = sweeps_newest_first(sweeps_dir)
    if preset is not None:
        found = [p for p in found if preset in _presets_of(p)] or found
    return found[0] if found else None


def sweeps_newest_first(sweeps_dir=None) -> list[Path]:
    """Every sweep with a results table, the most recently written first."""
    root = Path(sweeps_dir) if sweeps_dir else default_sweeps_dir()
    found = [p for p in root.iterdir() if (p / TABLE_FILE).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: (p / TABLE_FILE).stat().st_mtime, reverse=True)


def _presets_of(path: Path) -> list:
    """The presets a sweep trained: its runs' configs (a sweep without a preset axis trained the default,
    quick), else its preset axis; empty if the plan is unreadable."""
    try:
        plan = json.loads((path / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return []
    try:
        presets = [c["preset"] for c in plan.get("configs", []) if "preset" in c]
        return list(dict.fromkeys(presets or plan["grid"]["axes"].get("preset", [])))
    except (KeyError, TypeError, AttributeError):
        return []


def load_table(name_or_path, sweeps_dir=None) -> pd.DataFrame:
    """The sweep's table; when the sweep was killed before it wrote one, rebuilt from its plan and the run
    store (the runs finished shards wrote are there), with ``table.attrs["note"]`` saying so."""
    path = find_sweep(name_or_path, sweeps_dir) / TABLE_FILE
    if path.is_file():
        return pd.read_parquet(path)
    from .config import RunConfig
    plan = load_plan(path.parent)
    runs_dir = plan.get("runs_dir")
    if not runs_dir or not Path(runs_dir).is_dir():
        raise FileNotFoundError(f"sweep {path.parent} has a plan but no {TABLE_FILE}, and its run store "
                                f"{runs_dir or '(not recorded)'} is not there; run the same `gradflow sweep` command again")
    table = results_table([RunConfig.from_dict(c) for c in plan["configs"]], runs_dir)
    done = table.loc[table["status"] == "ok", "run"].nunique()
    table.attrs["note"] = (f"no {TABLE_FILE} yet (the sweep was stopped before it wrote one): rebuilt from the run "
                           f"store {runs_dir}; {done} of {table['run'].nunique()} runs finished")
    return table


def load_plan(name_or_path, sweeps_dir=None) -> dict:
    return json.loads((find_sweep(name_or_path, sweeps_dir) / PLAN_FILE).read_text())


def format_summary(table: pd.DataFrame) -> str:
    """Accuracy mean ± 95 % CI per run (one line each), then what failed and why."""
    from .seed_intervals import mean_ci
    axes = [c for c in ("act", "init", "norm", "dropout", "optimizer", "lr", "weight_decay", "hidden",
                        "batch_size", "preset") if c in table and table[c].nunique() > 1] or ["act"]
    lines = []
    ok = table[table["status"] == "ok"]
    for key, part in ok.groupby(axes, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, half, n = mean_ci(part["test_acc"].tolist())
        label = " ".join(f"{a}={v}" for a, v in zip(axes, key))
        codes = sorted({c for s in part["finding_codes"] if s for c in s.split(",")})
        lines.append(f"  {label:<48} {100 * mean:6.2f} % ± {100 * half:5.2f} (n={n})"
                     + (f"  findings: {', '.join(codes)}" if codes else ""))
    bad = table[table["status"] != "ok"].drop_duplicates("run")
    for (status, error), runs in bad.groupby(["status", "error"], sort=False, dropna=False)["run"]:  # one line a reason
        names = runs.tolist()
        which = names[0] if len(names) == 1 else f"{len(names)} runs ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        # a run that never started is not a failure: say it was interrupted, not FAILED
        lines.append(f"  {'FAILED' if status == 'failed' else 'NOT TRAINED'} {which}: {error}")
    return "\n".join(lines)


SUMMARY_COLUMNS = ["seed", "status", "test_acc", "epochs_trained", "seconds", "finding_codes"]


def print_sweep(name_or_path, sweeps_dir=None, as_json: bool = False) -> int:
    """`gradflow runs --sweep`: the sweep's table, one line per (run, seed), then the summary; with
    ``as_json``, every column of every row as JSON (the note, if any, on stderr)."""
    path = find_sweep(name_or_path, sweeps_dir)
    table = load_table(path)
    if table.attrs.get("note"):
        print(f"note: {table.attrs['note']}", file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(table.to_json(orient="records", indent=2))
        return 0
    axes = [c for c in ("act", "init", "norm", "dropout", "optimizer", "lr", "weight_decay", "hidden",
                        "batch_size", "preset") if c in table]
    cols = [*axes, *SUMMARY_COLUMNS]
    print(f"sweep {path}: {table['run'].nunique()} runs, {len(table)} rows")
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 30):
        print(table[[c for c in cols if c in table]].to_string(index=False))
    print(format_summary(table))
    if (path / TABLE_FILE).is_file():
        print(f"the whole table: {path / TABLE_FILE} (also {CSV_FILE}; --json prints it)")
    return 0
