"""The run directory: the only thing reports read.

``<runs_dir>/<run name>/`` holds
  config.json           the RunConfig, the BaseNetwork config, library versions, device, data
  metrics.parquet       one row per (seed, epoch): train/val loss and accuracy, wall seconds, past_stop
  results.json          per seed: test accuracy of the best-validation checkpoint, best/stopped epoch
  seed-<s>.safetensors  an ordinary BaseNetwork state dict per seed (best-validation weights)
  recordings/           the recorder's tables (when recording was on)
  findings.json         the diagnosis
  manifest.json         written last: every file above with its size and SHA-256 (gradflow.manifest)
A run is written into a hidden temporary directory and renamed into place in one step, so a
crash never leaves a half-written run under a finished run's name. Loading checks the manifest:
a run with a missing, truncated or altered file is DAMAGED (the message names the file), is
listed as such and is never served from the cache. Nothing is unpickled.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import inspect
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from . import atomic, manifest
from .lock import runs_lock
from .models import BaseNetwork
from .paths import check_output_dir, default_runs_dir

FORMAT_VERSION = 1


class RunStoreError(RuntimeError):
    """A run directory is missing or damaged; the message names the file."""


class RunExistsError(RunStoreError):
    """A whole run of that name is already stored (another writer may have finished it first)."""


def write_json_atomic(path: Path, obj) -> None:
    atomic.write_json(path, obj)


# Where a run came from, stored as config.json's "origin": "comparison" unless a caller says otherwise
# (``with store.run_origin("case study"):`` around the training of case-study runs, "sweep" in sweeps).
_origin: contextvars.ContextVar[str] = contextvars.ContextVar("gradflow_run_origin", default="comparison")


@contextlib.contextmanager
def run_origin(label: str):
    """Runs saved inside this block are marked as coming from ``label`` (shown by ``gradflow runs``)."""
    token = _origin.set(str(label))
    try:
        yield
    finally:
        _origin.reset(token)


def _read_json(path: Path):
    if not path.is_file():
        raise RunStoreError(f"run {path.parent.name} is DAMAGED: {path.name} is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunStoreError(f"run {path.parent.name} is DAMAGED: {path.name} is not valid JSON ({exc})") from None


class Run:
    """A finished run read back from disk; tables load lazily."""

    def __init__(self, path: Path, verify: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunStoreError(f"no run at {self.path}")
        problem = manifest.problem(self.path) if verify else None
        if problem:
            raise RunStoreError(f"run {self.path.name} is DAMAGED: {problem}; "
                                "`gradflow train` with the same settings trains it again")
        self.config = _read_json(self.path / "config.json")
        if self.config.get("format") != FORMAT_VERSION or "run" not in self.config:
            raise RunStoreError(f"run {self.path.name} is DAMAGED: config.json is not a gradflow run config")
        results = _read_json(self.path / "results.json")
        try:
            self.results = pd.DataFrame(results["seeds"])
        except (KeyError, TypeError, ValueError):
            raise RunStoreError(f"run {self.path.name} is DAMAGED: results.json has no per-seed table") from None
        self._metrics = None
        self._recordings = None
        self._findings = None

    name = property(lambda self: self.path.name)
    seeds = property(lambda self: list(self.config["run"]["seeds"]))
    activation = property(lambda self: self.config["run"]["activation"]["name"])
    origin = property(lambda self: self.config.get("origin", "comparison"))

    @property
    def metrics(self) -> pd.DataFrame:
        if self._metrics is None:
            path = self.path / "metrics.parquet"
            try:
                self._metrics = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise RunStoreError(f"run {self.path.name} is DAMAGED: cannot read {path.name} ({exc})") from None
        return self._metrics

    @property
    def recordings(self):
        """The recorder's tables (``gradflow.record.load_recording``), or None if not recorded."""
        if self._recordings is None and (self.path / "recordings").is_dir():
            from .recording import load_recording
            self._recordings = load_recording(self.path / "recordings")
        return self._recordings

    @property
    def findings(self) -> list[dict]:
        """The diagnosis written at training time; a run written by older rules (its config's
        ``versions.diagnosis`` behind the current one) is diagnosed again from its stored recording
        and metrics, in memory: the run directory stays as written (its manifest covers it)."""
        from .diagnose.codes import DIAGNOSIS_VERSION
        if self._findings is None:
            path = self.path / "findings.json"
            stored = _read_json(path) if path.is_file() else []
            if (self.config.get("versions") or {}).get("diagnosis") == DIAGNOSIS_VERSION:
                self._findings = stored
            else:
                self._findings = self._diagnose_again()
        return self._findings

    def _diagnose_again(self) -> list[dict]:
        from .diagnose import diagnose
        from .diagnose.evidence import Evidence, judged_metrics
        evidence = Evidence.from_stored(self.config, judged_metrics(self.metrics), self.results, self.recordings)
        return [f.to_dict() for f in diagnose(evidence)]

    def with_seeds(self, seeds) -> Run:
        """This run read for some of its seeds only (a page asked for fewer seeds than were trained): those
        seeds' results, metrics and recording, and findings worked out again for them alone. Nothing on disk
        changes."""
        from .recording import member_subset  # loaded when first needed, as load_recording is
        keep = [int(s) for s in seeds]
        if not keep or any(s not in self.seeds for s in keep):
            raise ValueError(f"run {self.name} has seeds {self.seeds}; asked for {keep}")
        view = copy.copy(self)
        view.config = json.loads(json.dumps(self.config))
        view.config["run"]["seeds"] = keep
        view.results = self.results[self.results["seed"].isin(keep)].reset_index(drop=True)
        view._metrics = self.metrics[self.metrics["seed"].isin(keep)].reset_index(drop=True)
        recording = self.recordings
        if recording is not None:
            recorded = [int(s) for s in (recording.summary().get("member_seeds") or self.seeds)]
            view._recordings = member_subset(recording, [recorded.index(s) for s in keep if s in recorded])
        view._findings = view._diagnose_again()  # the stored findings speak of every seed
        return view

    def model(self, seed: int | None = None) -> BaseNetwork:
        """The best-validation BaseNetwork of ``seed`` (the first seed by default), on the CPU."""
        seed = self.seeds[0] if seed is None else int(seed)
        if seed not in self.seeds:
            raise ValueError(f"run {self.name} has no seed {seed}; its seeds: {self.seeds}")
        path = self.path / f"seed-{seed}.safetensors"
        if not path.is_file():
            raise RunStoreError(f"run {self.path.name} is DAMAGED: {path.name} is missing")
        try:
            state = load_file(path)
        except Exception as exc:
            raise RunStoreError(f"run {self.path.name} is DAMAGED: cannot read {path.name} ({exc})") from None
        net = BaseNetwork.from_config(self.config["model"])
        net.load_state_dict(state)
        return net.eval()

    def summary(self) -> dict:
        r = self.results
        return {"run": self.name, "activation": self.activation, "preset": self.config["run"]["preset"],
                "seeds": self.seeds, "test_acc": [float(a) for a in r["test_acc"]],
                "test_acc_mean": float(r["test_acc"].mean()),
                "epochs_trained": [int(e) for e in r["epochs_trained"]],
                "seconds_per_epoch": self.config.get("seconds_per_epoch"),
                "models_in_batch": self.config.get("batch", {}).get("members"),
                "device": self.config.get("device"), "origin": self.origin,
                "settings": self.config["run"], "path": str(self.path)}


def run_path(name: str, runs_dir=None) -> Path:
    return Path(runs_dir if runs_dir is not None else default_runs_dir()) / name


def load_run(name_or_path, runs_dir=None) -> Run:
    path = Path(name_or_path)
    if not path.is_dir():
        path = run_path(str(name_or_path), runs_dir)
    if not path.is_dir():
        root = path.parent
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if root.is_dir() else []
        import difflib
        # the names nearest the one typed first ("relu-quick-typo" -> the relu runs), not the alphabet's first
        near = difflib.get_close_matches(str(name_or_path), names, n=5, cutoff=0.5)
        listed = ", ".join(near) if near else (
            ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "") or "none")
        raise RunStoreError(f"no run named {name_or_path!r} in {root}; "
                            f"{'the closest names there' if near else 'runs there'}: {listed} "
                            "(`gradflow runs` describes them)")
    return Run(path)


def exists(name: str, runs_dir=None) -> bool:
    """True if a finished, undamaged run of this name is in the store."""
    return status(name, runs_dir)[0] == "ok"


def status(name: str, runs_dir=None) -> tuple[str, str]:
    """("ok", ""), ("missing", "") or ("damaged", "<one phrase naming the file>")."""
    path = run_path(name, runs_dir)
    if not path.is_dir():
        return "missing", ""
    problem = manifest.problem(path)
    return ("damaged", problem) if problem else ("ok", "")


def cached_run(name: str, runs_dir=None, say: Callable[[str], None] | None = None) -> Run | None:
    """The finished run ``name`` if the store holds it whole; None (saying why, if damaged) to train it."""
    try:
        return Run(run_path(name, runs_dir)) if run_path(name, runs_dir).is_dir() else None
    except RunStoreError as exc:
        damage = str(exc).split("; `gradflow train")[0]
        (say or _stderr)(f"gradflow: {damage}; training it again")
        return None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _looks_like_run(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and any(
        (path / f).exists() for f in (manifest.MANIFEST, "config.json", "results.json"))


def list_runs(runs_dir=None) -> pd.DataFrame:
    """One row per run; a damaged run is listed with its error (``error`` column) instead of hiding it."""
    root = Path(runs_dir if runs_dir is not None else default_runs_dir())
    rows = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not _looks_like_run(path):
            continue  # temporary dirs of unfinished runs start with "."
        try:
            rows.append(Run(path).summary())
        except RunStoreError as exc:
            rows.append({"run": path.name, "error": str(exc), "path": str(path)})
    return pd.DataFrame(rows)


def adopt(path) -> None:
    """Seal a run written before manifests: read every file back, then write its manifest.

    Such runs were renamed into place whole (results.json last), so a run whose files all read is
    the run that was written, unless it was changed since, which nothing can tell any more. Raises
    RunStoreError naming the first file that does not read.
    """
    path = Path(path)
    if (path / manifest.MANIFEST).is_file():
        raise RunStoreError(f"run {path.name} has a manifest already; nothing to adopt")
    with runs_lock(path.parent):
        run = Run(path, verify=False)
        _ = run.metrics, run.findings
        for seed in run.seeds:
            run.model(seed)
        try:
            _ = run.recordings
        except (OSError, ValueError) as exc:
            raise RunStoreError(f"run {path.name} is DAMAGED: its recording does not read ({exc})") from None
        manifest.write_manifest(path)


def recover_leftovers(root: Path) -> None:
    """Tidy what a killed writer left (call with the writer lock held, so no live writer owns them).

    ``.tmp-<run>-*``: an unfinished run, never renamed into place: removed. ``.old-<run>-*``: a finished
    run moved aside by an overwrite that was killed before the new one took its place: put back if
    the name is free, else removed (the new run is in place).
    """
    names = {p.name.split("-", 1)[1].rsplit("-", 1)[0] for p in root.glob(".tmp-*")} | \
        {p.name.split("-", 1)[1].rsplit("-", 1)[0] for p in root.glob(".old-*")}
    for name in sorted(names):
        atomic.recover_folder(root / name)


def writes_runs(func):
    """Decorate a function taking ``runs_dir``: check the folder at the door, then hold the writer lock.

    The check comes before any data is loaded or model trained (a runs folder that is a file, not
    writable or under a missing parent is one line, not a traceback after the training).
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        runs_dir = signature.bind(*args, **kwargs).arguments.get("runs_dir")
        root = check_output_dir(runs_dir if runs_dir is not None else default_runs_dir(), create=True)
        with runs_lock(root):
            recover_leftovers(root)
            return func(*args, **kwargs)
    return wrapper


def save_run(name: str, config: dict, metrics: pd.DataFrame, results: list[dict],
             weights: dict[int, dict[str, torch.Tensor]], runs_dir=None, overwrite: bool = False,
             extra: Callable[[Path], None] | None = None) -> Path:
    """Write a finished run atomically; ``extra(tmp_dir)`` adds more files (recordings, findings).

    A damaged run of the same name is replaced without ``overwrite`` (its loss was already reported
    by ``cached_run``); a whole one only with it.
    """
    root = check_output_dir(runs_dir if runs_dir is not None else default_runs_dir(), create=True)
    final = root / name
    with runs_lock(root):
        if final.exists() and not overwrite and status(name, root)[0] == "ok":
            raise RunExistsError(f"run {name} already exists in {root}; pass overwrite=True (--overwrite) "
                                 "to replace it")
        tmp = atomic.temp_folder(final)
        try:
            origin = config.get("origin") or _origin.get()  # a caller's own, else the block's, else comparison
            atomic.write_json(tmp / "config.json", {"format": FORMAT_VERSION, "name": name, **config,
                                                    "origin": origin})
            atomic.write_with(tmp / "metrics.parquet", lambda p: metrics.to_parquet(p, index=False))
            for seed, state in weights.items():
                atomic.write_with(tmp / f"seed-{seed}.safetensors", lambda p, state=state: save_file(state, str(p)))
            if extra is not None:
                extra(tmp)
            atomic.write_json(tmp / "results.json", {"seeds": results})
            manifest.write_manifest(tmp)  # last: lists every file above, proves the run complete
            atomic.swap_in(tmp, final)  # an old run is moved aside first, so a crash keeps one of the two
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final
