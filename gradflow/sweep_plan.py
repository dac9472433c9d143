"""A sweep's plan: which runs are cached, and how the missing ones group into shards.

A shard is a set of runs that train as one stacked module in one batched step: they share a
shard key (data, optimizer, layer shapes, batch size, ...; activations, inits, seeds and, where
it stays exact, learning rates may differ). A shard holds at most as many models as a memory
estimate allows on the device, so a large group splits into several shards. ``min_shards`` splits
further where workers would otherwise wait: Ray runs one CPU shard per CPU, so on a 2-CPU machine
one shard of 24 models leaves a CPU idle, while two of 12 finish in 0.6x the time.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

import torch

from . import store
from .config import RunConfig
from .member_lr import shard_key
from .sweep_grid import AXES, Grid, SweepError

FLOAT = 4  # bytes
EVAL_CHUNK = 2500  # validation images per forward (train.EVAL_CHUNK)
INPUT_SIZE, NUM_CLASSES = 784, 10
DATA_BYTES = {"fashion_mnist": 70_000 * (INPUT_SIZE + 1) * FLOAT, "synthetic": 3_000 * (INPUT_SIZE + 1) * FLOAT}
OPTIMIZER_STATE = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}  # tensors per parameter (momentum, moments)
MEMORY_FRACTION = 0.5  # of what the device has free: room for the recorder, the allocator and other work


def member_bytes(config: RunConfig) -> int:
    """Estimated memory of one model while it trains in a shard.

    Parameters times (weights, gradient, optimizer state, best checkpoint, the per-member-rate
    copy), plus the activations autograd keeps for one batch (about four tensors per hidden
    layer: linear output, activation, norm, dropout mask) and one evaluation chunk.
    """
    sizes = [INPUT_SIZE, *config.hidden_sizes, NUM_CLASSES]
    params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    if config.norm != "none":
        params += 2 * sum(config.hidden_sizes)
    state = params * (4 + OPTIMIZER_STATE.get(config.optimizer, 2))
    train_acts = config.batch_size * (INPUT_SIZE + 4 * sum(config.hidden_sizes) + 3 * NUM_CLASSES)
    eval_acts = EVAL_CHUNK * (2 * max(config.hidden_sizes) + NUM_CLASSES)
    return int((state + train_acts + eval_acts) * FLOAT * 1.25)  # 25 %: the allocator's rounding, recorder


def device_budget(device: str | None = None, memory: str | int | None = None) -> tuple[int, str]:
    """Bytes a shard may use and where the number comes from (``memory`` overrides: '2GiB', '500MB')."""
    if memory is not None:
        return parse_bytes(memory), "given"
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free * MEMORY_FRACTION), f"{MEMORY_FRACTION:.0%} of free memory on {dev}"
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 << 30
    return int(avail * MEMORY_FRACTION), f"{MEMORY_FRACTION:.0%} of available RAM"


def parse_bytes(text) -> int:
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b)?\s*", str(text).lower())
    if not m:
        raise SweepError(f"memory is a size such as 512MB, 2GiB or 4G; got {text!r}")
    power = " kmgt".index(m.group(2) or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) == "ib" or not m.group(3) else 1000) ** power)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


@dataclass
class Shard:
    index: int
    configs: list[RunConfig]
    members: int
    est_bytes: int

    def to_dict(self) -> dict:
        return {"index": self.index, "runs": [c.run_name() for c in self.configs], "members": self.members,
                "est_bytes": self.est_bytes, "configs": [c.to_dict() for c in self.configs]}


@dataclass
class Plan:
    grid: Grid
    configs: list[RunConfig]  # every run of the grid, in grid order
    cached: list[bool]
    shards: list[Shard]  # the missing runs only
    budget: int
    budget_source: str
    max_models: int | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)
    min_shards: int = 1
    runs_dir: str = ""  # the run store, absolute: readers take the sweep's runs from here and nowhere else
    estimate: str = ""  # the time estimate line (sweep_estimate.py), or why there is none

    @property
    def n_cached(self) -> int:
        return sum(self.cached)

    def describe(self) -> str:
        seeds = self.grid.seeds
        lines = [f"sweep {self.name}: {len(self.configs)} runs x {len(seeds)} seeds = "
                 f"{len(self.configs) * len(seeds)} models (seeds {', '.join(map(str, seeds))})"]
        for axis, values in self.grid.axes.items():
            shown = ["-".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in values]
            lines.append(f"  {axis:<13} {', '.join(shown)}")
        lines.append(f"every run: {fixed_settings(self.configs, self.grid.fixed)}")
        if self.runs_dir:
            lines.append(f"run store: {self.runs_dir}")
        todo = sum(len(s.configs) for s in self.shards)
        lines.append(f"cached: {self.n_cached} of {len(self.configs)} runs; to train: {todo} runs in "
                     f"{len(self.shards)} shard{'s' * (len(self.shards) != 1)}")
        cap = f", at most {self.max_models} models (--max-models)" if self.max_models else ""
        lines.append(f"memory per shard: {human(self.budget)} ({self.budget_source}{cap})")
        if self.min_shards > 1:
            lines.append(f"at least {self.min_shards} shards where the runs allow: one for each CPU Ray can use, "
                         "so no CPU sits idle")
        for s in self.shards:
            held = [axis_values(c) for c in s.configs]
            axes = [a for a in ("act", *self.grid.axes) if a not in ("hidden", "batch_size", "preset")]
            shown = "; ".join(f"{a} {','.join(_fmt(v) for v in dict.fromkeys(h[a] for h in held))}"
                              for a in dict.fromkeys(axes))  # every axis: which inits, rates, ... a shard holds
            lines.append(f"  shard {s.index}: {len(s.configs)} run{'s' * (len(s.configs) != 1)}, {s.members} models, "
                         f"~{human(s.est_bytes)}; "
                         f"{_shape(s.configs[0])}; {shown}")
        if self.estimate:
            lines.append(self.estimate)
        lines.extend(self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "grid": self.grid.to_dict(), "runs": [c.run_name() for c in self.configs],
                "configs": [c.to_dict() for c in self.configs], "cached": self.cached,
                "shards": [s.to_dict() for s in self.shards], "budget_bytes": self.budget,
                "budget_source": self.budget_source, "max_models": self.max_models, "min_shards": self.min_shards,
                "runs_dir": self.runs_dir}


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# the settings every run shares, as the plan says them, and the flag that sets each
_FIXED_SAID = (("max_epochs", "up to {} epochs", "--max-epochs"), ("patience", "patience {}", "--patience"),
               ("momentum", "momentum {:g}", "--momentum"), ("dataset", "data {}", "--dataset"),
               ("train_subset", "train subset {}", "--train-subset"), ("record", "recording {}", "--record"))


def fixed_settings(configs: list[RunConfig], given: dict) -> str:
    """'up to 1 epochs (--max-epochs), patience 7, ..., train subset 1000 (--train-subset), recording off
    (--record)': each value every run trains with (several, joined by '/', when presets differ), and which
    of them the command set rather than the preset."""
    parts = []
    for key, text, flag in _FIXED_SAID:
        values = list(dict.fromkeys(getattr(c, key) for c in configs))
        if key == "train_subset" and values == [None]:
            parts.append("all training images")
            continue
        said = "/".join(text.format(v) if v is not None else f"{key} all" for v in values)
        if key == "max_epochs" and values == [1]:
            said = "up to 1 epoch"
        parts.append(said + (f" ({flag})" if key in given else ""))
    return ", ".join(parts) + "; the rest: the preset's"


def _shape(c: RunConfig) -> str:
    parts = [f"hidden {'-'.join(map(str, c.hidden_sizes))}", c.optimizer, f"batch {c.batch_size}"]
    if c.norm != "none":
        parts.append(f"{c.norm} norm")
    if c.dropout:
        parts.append("dropout")
    if c.preset != "custom":
        parts.append(f"{c.preset} preset")
    return ", ".join(parts)


def sweep_name(configs: list[RunConfig]) -> str:
    blob = json.dumps(sorted(c.key() for c in configs))
    return "sweep-" + hashlib.sha256(blob.encode()).hexdigest()[:8]


def plan(grid: Grid, runs_dir=None, device: str | None = None, memory=None, max_models: int | None = None,
         name: str | None = None, min_shards: int = 1) -> Plan:
    """Group the grid's missing runs into shards bounded by the device's memory, and into at least
    ``min_shards`` shards where there are that many runs (a run's seeds stay together). Trains nothing."""
    configs = grid.configs()
    if max_models is not None and max_models < 1:
        raise SweepError(f"max_models must be at least 1, got {max_models}")
    if min_shards < 1:
        raise SweepError(f"min_shards must be at least 1, got {min_shards}")
    budget, source = device_budget(device, memory)
    cached = [store.exists(c.run_name(), runs_dir) for c in configs]
    groups: dict[tuple, list[RunConfig]] = {}
    for c, done in zip(configs, cached):
        if not done:
            groups.setdefault((shard_key(c), c.preset), []).append(c)  # presets apart: runs named per preset
    counts = []  # (sorted group, shards it splits into, bytes per model)
    for group in groups.values():
        # same activations side by side: the stacked activation calls each run of equal ones once
        group = sorted(group, key=lambda c: (c.activation_name, c.init, c.lr))
        per_model = member_bytes(group[0])
        room = budget - DATA_BYTES.get(group[0].dataset, DATA_BYTES["fashion_mnist"])
        fit_models = room // per_model if room > 0 else 0
        seeds = len(group[0].seeds)
        if fit_models < seeds:
            raise SweepError(f"grid too big for the device's memory: one run ({seeds} seeds of {_shape(group[0])}) "
                             f"needs ~{human(seeds * per_model + budget - room)}, the budget is {human(budget)} "
                             f"({source}); use fewer seeds, smaller hidden sizes or batch size, or --memory")
        cap = min(fit_models, max_models) if max_models else fit_models
        runs_per_shard = max(1, cap // seeds)
        counts.append([group, -(-len(group) // runs_per_shard), per_model])
    while counts and sum(n for _, n, _ in counts) < min_shards:  # split the group with the most runs per shard
        most = max(counts, key=lambda g: len(g[0]) / g[1])
        if len(most[0]) <= most[1]:
            break  # one run per shard everywhere: nothing left to split
        most[1] += 1
    shards: list[Shard] = []
    for group, n_shards, per_model in counts:
        seeds = len(group[0].seeds)
        size = -(-len(group) // n_shards)  # balanced: 10 runs with room for 8 -> 5 + 5, not 8 + 2
        for i in range(0, len(group), size):
            part = group[i:i + size]
            members = len(part) * seeds
            shards.append(Shard(len(shards), part, members, members * per_model))
    p = Plan(grid, configs, cached, shards, budget, source, max_models, name or sweep_name(configs),
             min_shards=min_shards)
    if max_models and max_models < len(grid.seeds):
        p.notes.append(f"note: --max-models {max_models} is below the seeds per run; a run's seeds always "
                       "train together, so shards hold one run each")
    return p


def axis_values(config: RunConfig) -> dict:
    """The table's axis columns for one run."""
    d = config.to_dict()
    out = {}
    for axis, fld in AXES.items():
        v = d[fld]
        if axis == "act":
            v = config.activation_name
        elif axis == "hidden":
            v = "-".join(map(str, v))
        out[axis] = v
    return out
