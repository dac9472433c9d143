"""A sweep's directory and its one tidy table.

``<sweeps_dir>/<name>/`` holds
  plan.json        the grid, every run's config and name, the shards and the memory budget
  status.json      per shard: ok or failed (and why), seconds, the executor
  results.parquet  one row per (run, seed): every axis a column, test accuracy, epochs,
                   seconds, finding codes; failed runs are rows too (status, error)
The runs themselves live in the run store like any run; the table names them (column ``run``).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import store
from .sweep_plan import Plan, axis_values

PLAN_FILE, STATUS_FILE, TABLE_FILE = "plan.json", "status.json", "results.parquet"


def default_sweeps_dir(runs_dir=None) -> Path:
    """$GRADFLOW_SWEEPS, else ``sweeps/`` beside the run store (``runs_dir``, default $GRADFLOW_RUNS or
    checkpoints): ``./sweeps`` for the default store. The sweep command, the runs command and the
    sweep report all use this, so a sweep trained with ``--out DIR`` is found by ``--runs DIR``."""
    if os.environ.get("GRADFLOW_SWEEPS"):
        return Path(os.environ["GRADFLOW_SWEEPS"])
    from .paths import default_runs_dir
    return Path(runs_dir or default_runs_dir()).parent / "sweeps"


def write_table(path: Path, table: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)  # readers see the old table or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finding_codes(findings: list[dict], seed: int) -> list[str]:
    """The codes found in this seed: a grouped finding lists its seeds (empty: the whole run); an
    ungrouped one (a findings.json written before grouping) has one seed or None."""
    def seen(f):
        return seed in f["seeds"] or not f["seeds"] if f.get("seeds") is not None else f.get("seed") in (None, seed)
    return sorted({f["code"] for f in findings if seen(f)})


def results_table(plan: Plan, runs_dir=None, failures: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (run, seed) of the plan, read from the run store."""
    failures = failures or {}
    rows = []
    for config in plan.configs:
        name = config.run_name()
        axes = axis_values(config)
        if not store.exists(name, runs_dir):
            status = "failed" if name in failures else "missing"
            for seed in config.seeds:
                rows.append({**axes, "seed": seed, "run": name, "status": status,
                             "error": failures.get(name, "not trained (interrupted?)")})
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
    sweep of that preset wins when there is one: a quick report should not show a tutorial sweep
    just because it finished later."""
    root = Path(sweeps_dir) if sweeps_dir else default_sweeps_dir()
    found = [p for p in root.iterdir() if (p / TABLE_FILE).is_file()] if root.is_dir() else []
    if preset is not None:
        found = [p for p in found if preset in _presets_of(p)] or found
    return max(found, key=lambda p: (p / TABLE_FILE).stat().st_mtime) if found else None


def _presets_of(path: Path) -> list:
    """The presets a sweep's plan trained (its ``preset`` axis); empty if the plan is unreadable."""
    try:
        return list(json.loads((path / PLAN_FILE).read_text())["grid"]["axes"].get("preset", []))
    except (OSError, ValueError, KeyError, TypeError):
        return []


def load_table(name_or_path, sweeps_dir=None) -> pd.DataFrame:
    path = find_sweep(name_or_path, sweeps_dir) / TABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"sweep {path.parent} has a plan but no {TABLE_FILE} yet (it never finished a "
                                "shard); run the same `gradflow sweep` command again")
    return pd.read_parquet(path)


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
    for error, runs in bad.groupby("error", sort=False, dropna=False)["run"]:  # one line per distinct reason
        names = runs.tolist()
        which = names[0] if len(names) == 1 else f"{len(names)} runs ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        lines.append(f"  FAILED {which}: {error}")
    return "\n".join(lines)


def print_sweep(name_or_path, sweeps_dir=None) -> int:
    """`gradflow runs --sweep`: the sweep's table, one line per (run, seed), then the summary."""
    path = find_sweep(name_or_path, sweeps_dir)
    table = load_table(path)
    axes = [c for c in ("act", "init", "norm", "dropout", "optimizer", "lr", "weight_decay", "hidden",
                        "batch_size", "preset") if c in table]
    cols = [*axes, "seed", "status", "test_acc", "epochs_trained", "seconds", "finding_codes"]
    print(f"sweep {path}: {table['run'].nunique()} runs, {len(table)} rows")
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 30):
        print(table[[c for c in cols if c in table]].to_string(index=False))
    print(format_summary(table))
    return 0
