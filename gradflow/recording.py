"""A recording on disk: the Recorder's tidy tables (Parquet) and its summary (JSON).

Written file by file, each atomically (``gradflow.atomic``: temporary file + ``os.replace``); read back without the
model and without unpickling anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .quantities import BACKWARD_LOCATIONS, DEAD_FRACTION, INPUT_LAYER

# Names in a saved recording directory.
SUMMARY_FILE = "recording.json"
TABLE_FILES = {"scalars": "recording_scalars.parquet", "histograms": "recording_histograms.parquet",
               "nonfinite": "recording_nonfinite.parquet", "dead_units": "recording_dead_units.parquet"}
FORMAT = "gradflow.recording"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- tables, save, load


SCALAR_COLUMNS = ["step", "epoch", "member", "seed", "layer", "quantity", "value"]
HIST_COLUMNS = ["step", "epoch", "member", "seed", "layer", "kind", "scale", "counts"]
NONFINITE_COLUMNS = ["step", "epoch", "member", "seed", "layer", "where", "phase", "count", "order"]
DEAD_COLUMNS = ["step", "epoch", "member", "seed", "layer", "units", "dead", DEAD_FRACTION, "examples"]


def frame(rows, columns) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    if "seed" in df:
        df["seed"] = df["seed"].astype("Int64")
    return df


def build_tables(scalar_chunks, hist_rows, nonfinite, dead_rows, order, seed_of):
    if scalar_chunks:
        scalars = pd.concat(scalar_chunks, ignore_index=True)
    else:
        scalars = pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                                [("step", "int64"), ("epoch", "int64"), ("member", "int64"), ("layer", "object"),
                                 ("quantity", "object"), ("value", "float64")]})
    scalars.insert(3, "seed", pd.array([seed_of(int(m)) for m in scalars["member"]], dtype="Int64"))
    scalars = scalars.sort_values(["step", "quantity", "layer", "member"], kind="stable", ignore_index=True)
    hists = frame([{**r, "seed": seed_of(r["member"])} for r in hist_rows], HIST_COLUMNS)
    big = 1 << 30  # the model output, the loss and layers never run in a training forward sort last
    nf_rows = [{"step": s, "epoch": e, "member": m, "seed": seed_of(m), "layer": layer, "where": where,
                "phase": "backward" if where in BACKWARD_LOCATIONS else "forward",
                "count": c, "order": order.get(layer, -1 if layer == INPUT_LAYER else big)}
               for (m, layer, where), (s, e, c) in nonfinite.items()]
    # a value appears first in the forward pass (in forward order), else in the backward pass; a forward
    # NaN makes every gradient NaN, so the forward pass is looked at first
    nf = frame(nf_rows, NONFINITE_COLUMNS)
    nf = nf.sort_values(["step", "phase", "order", "member"], key=lambda c: c.map({"forward": 0, "backward": 1})
                        if c.name == "phase" else c, ignore_index=True)
    dead = frame(dead_rows, DEAD_COLUMNS)
    return {"scalars": scalars[SCALAR_COLUMNS], "histograms": hists, "nonfinite": nf, "dead_units": dead}


def save_recording(directory, tables: dict, summary: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, fname in TABLE_FILES.items():
        df = tables[key].copy()
        if key == "histograms":
            df["counts"] = [np.asarray(c, dtype=np.int64) for c in df["counts"]]
        atomic.write_with(directory / fname, lambda tmp, df=df: df.to_parquet(tmp, index=False))
    atomic.write_json(directory / SUMMARY_FILE, summary, indent=1)
    return directory


@dataclass
class Recording:
    """A recording loaded from disk: the same ``tables()`` and ``summary()`` as a live Recorder."""
    directory: Path
    _tables: dict = field(repr=False)
    _summary: dict = field(repr=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {k: v.copy() for k, v in self._tables.items()}

    def summary(self) -> dict:
        return json.loads(json.dumps(self._summary))

    @property
    def edges(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self._summary["histogram_edges"].items()}


def load_recording(directory) -> Recording:
    """Read a directory written by ``Recorder.save`` (no model, no pickle)."""
    directory = Path(directory)
    meta = directory / SUMMARY_FILE
    if not meta.is_file():
        raise FileNotFoundError(f"{directory} holds no gradflow recording: {SUMMARY_FILE} is missing "
                                "(write one with Recorder.save(directory))")
    with open(meta) as f:
        summary = json.load(f)
    if summary.get("format") != FORMAT:
        raise ValueError(f"{meta} is not a gradflow recording (format {summary.get('format')!r}, expected {FORMAT!r})")
    if summary.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{meta} has format version {summary['version']}; this gradflow reads up to {FORMAT_VERSION}")
    tables = {}
    for key, fname in TABLE_FILES.items():
        path = directory / fname
        if not path.is_file():
            raise FileNotFoundError(f"recording {directory} is incomplete: {fname} is missing")
        df = pd.read_parquet(path)
        if key == "histograms":
            df["counts"] = [np.asarray(c, dtype=np.int64) for c in df["counts"]]
        tables[key] = df
    return Recording(directory, tables, summary)


def _members_only(rows: list[dict], renumber: dict[int, int]) -> list[dict]:
    """Rows of the kept members (renumbered) and rows that belong to no member in particular."""
    return [{**d, "member": renumber[d["member"]]} if d.get("member") is not None else d
            for d in rows if d.get("member") is None or d["member"] in renumber]


def member_subset(recording, keep: list[int]) -> Recording:
    """The recording (anything with ``tables()``/``summary()``) of members ``keep`` only, renumbered
    0..len(keep)-1: one run's seeds out of a batch that trained several runs together."""
    renumber = {old: new for new, old in enumerate(keep)}
    sub = {}
    for key, df in recording.tables().items():
        part = df[df["member"].isin(keep)].copy() if "member" in df else df.copy()
        if "member" in part:
            part["member"] = part["member"].map(renumber)
        sub[key] = part.reset_index(drop=True)
    summary = json.loads(json.dumps(recording.summary()))
    summary["members"] = len(keep)
    if summary.get("member_seeds") is not None:
        summary["member_seeds"] = [summary["member_seeds"][m] for m in keep]
    # per-member entries (a stacked dropout's p, the dropout-mask probe, the stale-gradient checks):
    # only these members', renumbered
    summary["dropout"] = _members_only(summary.get("dropout", []), renumber)
    if summary.get("dropout_masks") is not None:
        summary["dropout_masks"] = _members_only(summary["dropout_masks"], renumber)
    if summary.get("stale_grad"):
        summary["stale_grad"]["checks"] = _members_only(summary["stale_grad"].get("checks") or [], renumber)
    for layer in summary.get("layers", []):
        if layer.get("members", 1) > 1:
            layer["members"] = len(keep)
        for per_member in ("max_derivative", "flat_both_sides", "activations"):
            if isinstance(layer.get(per_member), list) and len(layer[per_member]) > 1:
                layer[per_member] = [layer[per_member][m] for m in keep]
        if layer.get("activations"):  # a stacked activation: the name of these members' activations only
            layer["activation"] = "/".join(dict.fromkeys(layer["activations"]))
            if isinstance(layer.get("flat_both_sides"), list) and layer["flat_both_sides"]:
                # bounded for these members (a sigmoid run batched with a relu run was "unbounded" as a whole)
                layer["bounded"] = all(layer["flat_both_sides"])
    return Recording(None, sub, summary)
