"""The run directory: the only thing reports read.

``<runs_dir>/<run name>/`` holds
  config.json           the RunConfig, the BaseNetwork config, library versions, device, data
  metrics.parquet       one row per (seed, epoch): train/val loss and accuracy, wall seconds, past_stop
  results.json          per seed: test accuracy of the best-validation checkpoint, best/stopped epoch
  seed-<s>.safetensors  an ordinary BaseNetwork state dict per seed (best-validation weights)
  recordings/           the recorder's tables (when recording was on)
  findings.json         the diagnosis
A run is written into a hidden temporary directory and renamed into place in one step, so a
crash never leaves a half-written run under a finished run's name. Nothing is unpickled.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from .models import BaseNetwork

FORMAT_VERSION = 1


class RunStoreError(RuntimeError):
    """A run directory is missing or damaged; the message names the file."""


def default_runs_dir() -> Path:
    return Path(os.environ.get("GRADFLOW_RUNS", "checkpoints"))


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


def _read_json(path: Path):
    if not path.is_file():
        raise RunStoreError(f"run directory {path.parent} is incomplete: {path.name} is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunStoreError(f"run directory {path.parent} is damaged: {path.name} is not valid JSON ({exc})") from None


class Run:
    """A finished run read back from disk; tables load lazily."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunStoreError(f"no run at {self.path}")
        self.config = _read_json(self.path / "config.json")
        if self.config.get("format") != FORMAT_VERSION or "run" not in self.config:
            raise RunStoreError(f"run directory {self.path} is damaged: config.json is not a gradflow run config")
        results = _read_json(self.path / "results.json")
        try:
            self.results = pd.DataFrame(results["seeds"])
        except (KeyError, TypeError, ValueError):
            raise RunStoreError(f"run directory {self.path} is damaged: results.json has no per-seed table") from None
        self._metrics = None
        self._recordings = None

    name = property(lambda self: self.path.name)
    seeds = property(lambda self: list(self.config["run"]["seeds"]))
    activation = property(lambda self: self.config["run"]["activation"]["name"])

    @property
    def metrics(self) -> pd.DataFrame:
        if self._metrics is None:
            path = self.path / "metrics.parquet"
            try:
                self._metrics = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise RunStoreError(f"run directory {self.path} is damaged: cannot read {path.name} ({exc})") from None
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
        path = self.path / "findings.json"
        return _read_json(path) if path.is_file() else []

    def model(self, seed: int | None = None) -> BaseNetwork:
        """The best-validation BaseNetwork of ``seed`` (the first seed by default), on the CPU."""
        seed = self.seeds[0] if seed is None else int(seed)
        if seed not in self.seeds:
            raise ValueError(f"run {self.name} has no seed {seed}; its seeds: {self.seeds}")
        path = self.path / f"seed-{seed}.safetensors"
        if not path.is_file():
            raise RunStoreError(f"run directory {self.path} is incomplete: {path.name} is missing")
        try:
            state = load_file(path)
        except Exception as exc:
            raise RunStoreError(f"run directory {self.path} is damaged: cannot read {path.name} ({exc})") from None
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
                "device": self.config.get("device"), "path": str(self.path)}


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
        listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "") or "none"
        raise RunStoreError(f"no run named {name_or_path!r} in {root}; runs there: {listed} "
                            "(`gradflow runs` describes them)")
    return Run(path)


def exists(name: str, runs_dir=None) -> bool:
    return (run_path(name, runs_dir) / "results.json").is_file()


def list_runs(runs_dir=None) -> pd.DataFrame:
    """One row per finished run; damaged runs are listed with their error instead of hiding them."""
    root = Path(runs_dir if runs_dir is not None else default_runs_dir())
    rows = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name.startswith(".") or not path.is_dir() or not (path / "config.json").exists():
            continue  # temporary dirs of unfinished runs start with "."
        try:
            rows.append(Run(path).summary())
        except RunStoreError as exc:
            rows.append({"run": path.name, "error": str(exc), "path": str(path)})
    return pd.DataFrame(rows)


def save_run(name: str, config: dict, metrics: pd.DataFrame, results: list[dict],
             weights: dict[int, dict[str, torch.Tensor]], runs_dir=None, overwrite: bool = False,
             extra: Callable[[Path], None] | None = None) -> Path:
    """Write a finished run atomically; ``extra(tmp_dir)`` adds more files (recordings, findings)."""
    root = Path(runs_dir if runs_dir is not None else default_runs_dir())
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists() and not overwrite:
        raise RunStoreError(f"run {name} already exists in {root}; pass overwrite=True (--overwrite) to replace it")
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_json_atomic(tmp / "config.json", {"format": FORMAT_VERSION, "name": name, **config})
        metrics.to_parquet(tmp / "metrics.parquet", index=False)
        for seed, state in weights.items():
            save_file(state, str(tmp / f"seed-{seed}.safetensors"))
        if extra is not None:
            extra(tmp)
        write_json_atomic(tmp / "results.json", {"seeds": results})  # last: marks the run complete
        if final.exists():  # overwrite: move the old run aside first so a crash keeps one of the two
            trash = root / f".old-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
