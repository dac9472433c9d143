"""``gradflow tensorboard RUN_OR_SWEEP --logdir DIR``: runs as TensorBoard event files.

One TensorBoard run per seed (``DIR/<run>/seed-<s>``), so TensorBoard's own run selector
compares seeds and settings. Written:
  metrics/<train_loss|train_acc|val_loss|val_acc>   per epoch (the step axis is the epoch)
  test/accuracy, test/loss                          the best-validation checkpoint, at its epoch
  <quantity>/<layer>                                the recorder's scalars, per training step
  <kind>_<scale>/<layer>                            the recorder's histograms, per training step
Histograms go through ``add_histogram_raw`` from the stored fixed-edge counts: no re-binning of
tensors (TensorBoard's ``add_histogram`` costs ~33 ms a call on 2 cores). Log-magnitude
histograms are written in log10 space (values are log10|x|), because TensorBoard re-bins linearly.
The stored under/overflow counts become one bucket each, one bin width beyond the edges; in
the log10 histograms the underflow bucket also holds exact zeros. Needs the ``tensorboard``
package only, not TensorFlow.

Each seed's settings go in as hparams (TensorBoard's HPARAMS tab: one row per run, filterable by
act, init, lr, ...) and as a ``settings`` text summary. Exporting again into the same logdir
replaces that run's earlier event files, so curves are never drawn twice.
"""
from __future__ import annotations

import argparse
from pathlib import Path

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")
EVENTS = "events.out.tfevents.*"  # the files a SummaryWriter writes; a re-export removes only these
# the run settings written as hparams, in this order (config key -> hparam name)
SETTINGS = (("activation", "act"), ("init", "init"), ("norm", "norm"), ("dropout", "dropout"),
            ("optimizer", "optimizer"), ("lr", "lr"), ("momentum", "momentum"), ("weight_decay", "weight_decay"),
            ("hidden_sizes", "hidden"), ("batch_size", "batch_size"), ("max_epochs", "max_epochs"),
            ("train_subset", "train_subset"), ("dataset", "dataset"), ("record", "record"), ("preset", "preset"))


def raw_histogram(counts, edges) -> dict | None:
    """Arguments of ``add_histogram_raw`` for stored counts (``len(edges) + 2``: under, bins, over,
    non-finite; see gradflow.stats). Non-finite values have no place on an axis and are left out
    (the export writes their count as a scalar). Empty buckets at both ends are dropped; sum and
    sum of squares are estimated from bin centres.
    """
    import numpy as np
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if len(counts) != len(edges) + 2:
        raise ValueError(f"a stored histogram has len(edges) + 2 = {len(edges) + 2} counts, got {len(counts)}")
    counts = counts[:-1]  # the last count is NaN/inf
    width = edges[1] - edges[0]
    limits = np.concatenate([[edges[0]], edges[1:], [edges[-1] + width]])  # right edge of every bucket
    lefts = np.concatenate([[edges[0] - width], edges])
    nonzero = np.flatnonzero(counts)
    if len(nonzero) == 0:
        return None
    lo, hi = nonzero[0], nonzero[-1] + 1
    counts, limits, lefts = counts[lo:hi], limits[lo:hi], lefts[lo:hi]
    centers = (limits + lefts) / 2
    return {"min": float(lefts[0]), "max": float(limits[-1]), "num": int(counts.sum()),
            "sum": float((counts * centers).sum()), "sum_squares": float((counts * centers ** 2).sum()),
            "bucket_limits": limits.tolist(), "bucket_counts": counts.tolist()}


def run_settings(config: dict, seed: int) -> dict:
    """A run's settings as hparams: scalars and strings only (a list reads 512-256, no subset reads 'all')."""
    out = {}
    for key, name in SETTINGS:
        v = config.get(key)
        if key == "activation":
            v = v.get("name") if isinstance(v, dict) else v
        elif isinstance(v, (list, tuple)):
            v = "-".join(map(str, v))
        elif v is None:
            v = "all" if key == "train_subset" else "none"
        out[name] = v if isinstance(v, (int, float, str, bool)) else str(v)
    out["seed"] = int(seed)
    out["run"] = str(config.get("name", ""))
    return out


def _write_settings(w, settings: dict, result) -> None:
    """hparams (the HPARAMS tab; its metrics are the test scalars written beside) and a text summary."""
    from torch.utils.tensorboard.summary import hparams
    metrics = {"test/accuracy": float(result["test_acc"]), "test/loss": float(result["test_loss"])} \
        if result is not None else {}
    for summary in hparams(settings, metrics):
        w.file_writer.add_summary(summary)
    w.add_text("settings", "\n".join(["| setting | value |", "|---|---|",
                                      *(f"| {k} | {v} |" for k, v in settings.items())]))


def clear_events(path: Path) -> int:
    """Remove an earlier export's event files from one TensorBoard run directory; returns how many."""
    old = list(Path(path).glob(EVENTS)) if Path(path).is_dir() else []
    for f in old:
        f.unlink()
    return len(old)


def export_run(run, logdir: Path) -> list[Path]:
    """Write one run's seeds; returns the TensorBoard run directories. An earlier export of the same run
    into the same logdir is replaced (its event files removed first), not added to."""
    from torch.utils.tensorboard import SummaryWriter
    metrics = run.metrics
    recording = run.recordings
    tables = recording.tables() if recording is not None else {}
    edges = recording.edges if recording is not None else {}
    written = []
    for seed in run.seeds:
        path = Path(logdir) / run.name / f"seed-{seed}"
        clear_events(path)
        with SummaryWriter(log_dir=str(path)) as w:
            res = run.results[run.results["seed"] == seed]
            _write_settings(w, run_settings({**run.config.get("run", {}), "name": run.name}, seed),
                            res.iloc[0] if len(res) else None)
            for row in metrics[metrics["seed"] == seed].to_dict("records"):
                for name in METRICS:
                    w.add_scalar(f"metrics/{name}", row[name], int(row["epoch"]))
            if len(res):
                r = res.iloc[0]
                w.add_scalar("test/accuracy", float(r["test_acc"]), int(r["best_epoch"]))
                w.add_scalar("test/loss", float(r["test_loss"]), int(r["best_epoch"]))
            scalars = tables.get("scalars")
            if scalars is not None and len(scalars):
                for row in scalars[scalars["seed"] == seed].itertuples(index=False):
                    w.add_scalar(f"{row.quantity}/{row.layer}", float(row.value), int(row.step))
            hists = tables.get("histograms")
            if hists is not None and len(hists):
                for row in hists[hists["seed"] == seed].itertuples(index=False):
                    raw = raw_histogram(row.counts, edges[f"{row.kind}_{row.scale}"])
                    if row.counts[-1] and row.scale == "linear":  # once per (kind, layer), not per scale
                        w.add_scalar(f"nonfinite_{row.kind}/{row.layer}", float(row.counts[-1]), int(row.step))
                    if raw is not None:
                        w.add_histogram_raw(f"{row.kind}_{row.scale}/{row.layer}", global_step=int(row.step), **raw)
        written.append(path)
    return written


def export(target, logdir, runs_dir=None, sweeps_dir=None) -> list[Path]:
    """Export a run (name or directory) or every finished run of a sweep (name or directory)."""
    from . import store, sweep_results
    try:
        sweep_dir = sweep_results.find_sweep(target, sweeps_dir or sweep_results.default_sweeps_dir(runs_dir))
    except FileNotFoundError:
        sweep_dir = None
    if sweep_dir is not None:
        table = sweep_results.load_table(sweep_dir)
        names = list(dict.fromkeys(table.loc[table["status"] == "ok", "run"]))
        if not names:
            raise ValueError(f"sweep {sweep_dir} has no finished runs to export")
        store_dir = sweep_results.runs_dir_of(sweep_dir, runs_dir)  # the sweep's own store, not a same-named run
        runs = [store.load_run(n, store_dir) for n in names]
    else:
        try:
            runs = [store.load_run(target, runs_dir)]
        except store.RunStoreError as exc:
            raise ValueError(f"{target!r} is neither a sweep nor a run: {exc}") from None
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise ValueError("the TensorBoard export needs the tensorboard package (pip install tensorboard; "
                         "TensorFlow is not needed)") from None
    return [p for run in runs for p in export_run(run, Path(logdir))]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="RUN_OR_SWEEP", help="a run (name or directory) or a sweep (name or directory)")
    p.add_argument("--logdir", required=True, metavar="DIR", help="TensorBoard log directory to write into "
                                                                   "(required; no default)")
    p.add_argument("--out", metavar="DIR", help="runs directory (default: $GRADFLOW_RUNS or ./checkpoints)")
    p.add_argument("--sweeps-dir", metavar="DIR", help="sweeps directory (default: $GRADFLOW_SWEEPS, else sweeps/ beside the run store)")


def run(args) -> int:
    before = {p for p in Path(args.logdir).glob(f"*/seed-*/{EVENTS}")} if Path(args.logdir).is_dir() else set()
    paths = export(args.target, args.logdir, runs_dir=args.out, sweeps_dir=args.sweeps_dir)
    replaced = sum(1 for p in paths if any(f.parent == p for f in before))
    print(f"wrote {len(paths)} TensorBoard run(s) (one per seed) under {args.logdir}"
          + (f", replacing the earlier export of {replaced}" if replaced else "")
          + f"; view them with: tensorboard --logdir {args.logdir} (settings per run in its HPARAMS tab)")
    return 0
