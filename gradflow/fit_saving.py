"""A fitted batch written to the run store: one run folder per config, each with its own members'
weights, metrics, recording (cut to its members) and findings, diagnosed as written."""
from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from . import store
from ._version import __version__
from .config import RunConfig
from .data import DataSplits
from .diagnose import Evidence, diagnose
from .recording import load_recording, member_subset, save_recording

if TYPE_CHECKING:  # train imports this module
    from .train import FitResult


def library_versions() -> dict:
    """The versions a stored run records, so a reader can tell what trained it."""
    import torchvision

    from .diagnose.codes import DIAGNOSIS_VERSION
    return {"gradflow": __version__, "diagnosis": DIAGNOSIS_VERSION, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "python": platform.python_version()}


def save_fit(configs: list[RunConfig], result: FitResult, data: DataSplits, runs_dir, overwrite) -> list[store.Run]:
    """One run directory per config, each with its own members' weights, metrics, recording and findings."""
    runs = []
    names = [c.run_name() for c in configs]
    for ci, c in enumerate(configs):
        mine = [m for m, mem in enumerate(result.members) if mem.config_index == ci]
        config = {"run": c.to_dict(), "model": result.model.configs[mine[0]] | {"input_size": data.input_size,
                                                                               "num_classes": data.num_classes},
                  "data": data.describe(), "device": result.device, "versions": library_versions(),
                  "precision": result.precision, "training_step": result.step,
                  "seconds_per_epoch": result.seconds_per_epoch, "epoch_seconds": result.epoch_seconds,
                  "batch": {"members": len(result.members), "runs": names},
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        metrics = pd.DataFrame([row for m in mine for row in result.members[m].rows])
        results = [result.members[m].result for m in mine]
        weights = {result.members[m].seed: result.model.export(m) for m in mine}
        recording = None if result.recording is None else member_subset(result.recording, mine)

        def extra(tmp, recording=recording, config=config, metrics=metrics, results=results):
            stored = None
            if recording is not None:  # diagnosed as written: what a reader of the run will load
                stored = load_recording(save_recording(tmp / "recordings", recording.tables(), recording.summary()))
            evidence = Evidence.from_stored(config, metrics, results, stored)
            store.write_json_atomic(tmp / "findings.json", [f.to_dict() for f in diagnose(evidence)])

        try:
            path = store.save_run(c.run_name(), config, metrics, results, weights, runs_dir=runs_dir,
                                  overwrite=overwrite, extra=extra)
        except store.RunExistsError:
            # another process (a second sweep, a train beside it) stored the same config while this one
            # trained: same name, same config, so its run is this run; keep the first one written
            path = Path(store.check_output_dir(runs_dir if runs_dir is not None else store.default_runs_dir())) / c.run_name()
            print(f"gradflow: {c.run_name()} was stored by another process while this one trained; using that run",
                  file=sys.stderr)
        runs.append(store.Run(path))
    return runs
