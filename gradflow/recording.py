"""A recording on disk: the Recorder's tidy tables (Parquet) and its summary (JSON).

Written whole into a hidden sibling folder, then renamed into place (``gradflow.atomic``), so an interrupted save
never leaves a mix of two recordings; the summary names each table's checksum, so a load refuses tables that are
not the summary's. Read back without the model and without unpickling anything.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .manifest import sha256
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
# what a table must hold to be read (the columns of the first format version)
REQUIRED_COLUMNS = {"scalars": ["step", "member", "layer", "quantity", "value"],
                    "histograms": ["step", "member", "layer", "kind", "scale", "counts"],
                    "nonfinite": ["step", "member", "layer", "where"], "dead_units": ["step", "member", "layer"]}


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


class RecordingError(ValueError):
    """A recording folder that cannot be read whole: the message names the file and what is wrong.
    The one type ``load_recording`` raises for a damaged recording (catch it, or ValueError)."""


class NoRecording(RecordingError, FileNotFoundError):
    """The folder holds no recording at all (also a FileNotFoundError, as before this type existed)."""


TABLES_KEY = "table_files"  # in recording.json: each table's size and SHA-256, to prove they belong to it


def _write_files(folder: Path, tables: dict, summary: dict) -> None:
    """The tables, then the summary naming each table's size and checksum: the summary is written last,
    so tables without a summary (or of another save) are never taken for this recording."""
    written = {}
    for key, fname in TABLE_FILES.items():
        df = tables[key].copy()
        if key == "histograms":
            df["counts"] = [np.asarray(c, dtype=np.int64) for c in df["counts"]]
        path = atomic.write_with(folder / fname, lambda tmp, df=df: df.to_parquet(tmp, index=False))
        written[fname] = {"size": path.stat().st_size, "sha256": sha256(path)}
    atomic.write_json(folder / SUMMARY_FILE, {**summary, TABLES_KEY: written}, indent=1)


def _holds_only_a_recording(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    return SUMMARY_FILE in names and names <= {SUMMARY_FILE, *TABLE_FILES.values()}


def save_recording(directory, tables: dict, summary: dict) -> Path:
    """Write a recording all or nothing: into a hidden sibling folder, then renamed into place (a
    recording already there is replaced whole). Interrupted, the folder holds the old recording or the
    new one, never a mix; the next save or load tidies what the interruption left (atomic.recover_folder).

    A folder that holds other files too (a user's own) cannot be swapped without touching them: the
    files are replaced one by one, the summary last, and a load refuses a mix (the checksums differ)."""
    directory = Path(directory)
    final = directory.absolute()
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(f"cannot save a recording to {directory}: it is a file; Recorder.save takes a "
                                 "folder (new, or one holding a recording)")
    final.parent.mkdir(parents=True, exist_ok=True)
    atomic.recover_folder(final)
    # in place: a folder that holds more than a recording, one the user linked or the working directory
    # (renaming any of them away would move what is not ours to move)
    if final.is_dir() and (final.is_symlink() or not _holds_only_a_recording(final)
                           or final.resolve() == Path.cwd().resolve()):
        _write_files(final, tables, summary)
        return directory
    tmp = atomic.temp_folder(final)
    try:
        _write_files(tmp, tables, summary)
        atomic.swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        atomic.recover_folder(final)  # interrupted between the renames: the old recording goes back
        raise
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


def _read_summary(meta: Path) -> dict:
    """recording.json, checked for what every reader indexes; else RecordingError naming the file."""
    try:
        summary = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{meta} is not valid JSON ({exc}); save the recording again "
                             "(Recorder.save(directory))") from None
    if not isinstance(summary, dict):
        raise RecordingError(f"{meta} is not a gradflow recording summary: a JSON object was expected, "
                             f"it holds a {type(summary).__name__}")
    if summary.get("format") != FORMAT:
        raise RecordingError(f"{meta} is not a gradflow recording (format {summary.get('format')!r}, "
                             f"expected {FORMAT!r})")
    version = summary.get("version", 0)
    if not isinstance(version, int):
        raise RecordingError(f"{meta} has a version that is not a number: {version!r}")
    if version > FORMAT_VERSION:
        raise RecordingError(f"{meta} has format version {version}; this gradflow reads up to {FORMAT_VERSION}")
    layers = summary.get("layers")
    edges = summary.get("histogram_edges")
    problems = []
    if not isinstance(layers, list) or not all(isinstance(e, dict) and "name" in e and "kind" in e for e in layers):
        problems.append("'layers' (a list of {name, kind, ...} objects)")
    if not isinstance(edges, dict) or not all(isinstance(v, list) for v in edges.values()):
        problems.append("'histogram_edges' (an object of lists)")
    if not isinstance(summary.get("members"), int) or summary["members"] < 1:
        problems.append("'members' (a positive integer)")
    if problems:
        raise RecordingError(f"{meta} is damaged: {' and '.join(problems)} missing or malformed; "
                             "save the recording again (Recorder.save(directory))")
    return summary


def _read_table(path: Path, key: str, written: dict | None) -> pd.DataFrame:
    entry = (written or {}).get(path.name)
    if written is not None and (not isinstance(entry, dict)
                                or path.stat().st_size != entry.get("size") or sha256(path) != entry.get("sha256")):
        # another save's table (an interrupted save into a folder shared with other files), or damaged since
        raise RecordingError(f"recording {path.parent} is inconsistent: {path.name} is not the table "
                             f"{SUMMARY_FILE} was saved with (an interrupted save, or changed since); "
                             "save the recording again")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises several types for a damaged file
        raise RecordingError(f"recording {path.parent} is damaged: cannot read {path.name} "
                             f"({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED_COLUMNS[key] if c not in df.columns]
    if missing:
        raise RecordingError(f"recording {path.parent} is damaged: {path.name} lacks the column(s) {missing}")
    if key == "histograms":
        df["counts"] = [np.asarray(c, dtype=np.int64) for c in df["counts"]]
    return df


def load_recording(directory) -> Recording:
    """Read a directory written by ``Recorder.save`` (no model, no pickle). A folder that holds no
    recording raises NoRecording (a FileNotFoundError); a damaged one RecordingError, naming the file."""
    directory = Path(directory)
    with contextlib.suppress(OSError):  # a read-only place: read what is there
        atomic.recover_folder(directory.absolute(), unfinished=False)  # a save interrupted between its renames
    meta = directory / SUMMARY_FILE
    if not meta.is_file():
        if (directory / "config.json").is_file() and (directory / "results.json").is_file():
            raise NoRecording(f"{directory} is a gradflow run folder, not a recording: "
                              f"gradflow.store.load_run({str(directory)!r}) reads the run, its metrics and its "
                              "recording (if it has one), and diagnose() takes what it returns")
        raise NoRecording(f"{directory} holds no gradflow recording: {SUMMARY_FILE} is missing "
                          "(write one with Recorder.save(directory))")
    summary = _read_summary(meta)
    written = summary.pop(TABLES_KEY, None)  # absent in recordings saved before it was written
    if written is not None and not isinstance(written, dict):
        raise RecordingError(f"{meta} is damaged: {TABLES_KEY!r} is not an object")
    tables = {}
    for key, fname in TABLE_FILES.items():
        path = directory / fname
        if not path.is_file():
            raise RecordingError(f"recording {directory} is incomplete: {fname} is missing; save it again")
        tables[key] = _read_table(path, key, written)
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
