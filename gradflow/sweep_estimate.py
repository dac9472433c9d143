"""A sweep plan's time estimate, from runs that already finished in the same run store.

Only a measurement on this machine can say how long a shard takes (2 cores or a GPU, other work
beside it, recording on or off), so the estimate reads the finished runs of the same shape in the
store: their wall seconds per epoch, divided among the models that trained together. With none of
that shape, the plan says there is no estimate rather than guess. It is an upper bound in epochs
(early stopping can end runs sooner) and assumes the machine is as busy as it was then.
"""
from __future__ import annotations

import json
from pathlib import Path

from .config import RunConfig

# what decides a model-epoch's cost: the net, the batches, the images per epoch, the recording
SHAPE = ("hidden_sizes", "batch_size", "dataset", "train_subset", "record", "norm", "optimizer")


def _shape(run: dict) -> tuple:
    return tuple(json.dumps(run.get(k)) for k in SHAPE)


def measured(runs_dir) -> dict[tuple, list[float]]:
    """Shape -> seconds per model-epoch of every finished run in the store (config.json only is read)."""
    out: dict[tuple, list[float]] = {}
    root = Path(runs_dir)
    if not root.is_dir():
        return out
    for config_file in root.glob("*/config.json"):
        if config_file.parent.name.startswith("."):
            continue
        try:
            config = json.loads(config_file.read_text())
            seconds = [float(x) for x in config.get("epoch_seconds") or []]
            members = int((config.get("batch") or {}).get("members") or len(config["run"]["seeds"]))
            run = config["run"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged or foreign folder: no measurement, no error
        if seconds and members:
            out.setdefault(_shape(run), []).append(sum(seconds) / len(seconds) / members)
    return out


def estimate(shards, runs_dir) -> str:
    """One line: the estimated wall time of every shard, one after another, or why there is none."""
    if not shards:
        return ""
    table = measured(runs_dir)
    total, unknown = 0.0, 0
    for shard in shards:
        config: RunConfig = shard.configs[0]
        per_model_epoch = table.get(_shape(config.to_dict()))
        if not per_model_epoch:
            unknown += 1
            continue
        per_model_epoch = sorted(per_model_epoch)[len(per_model_epoch) // 2]  # the median run
        total += per_model_epoch * shard.members * max(c.max_epochs for c in shard.configs)
    if unknown == len(shards):
        return (f"time: no estimate (no finished run of these shapes in {runs_dir} to measure from; the first "
                "shard's progress line tells)")
    part = f" for {len(shards) - unknown} of {len(shards)} shards (no measurement for the others)" if unknown else ""
    return (f"time: at most about {_duration(total)}{part}, one shard after another at every epoch (early stopping "
            f"ends runs sooner); measured from finished runs of the same shape in {runs_dir}, with this machine as "
            "busy as it was then")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
