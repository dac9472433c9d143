"""A sweep's grid: axes of settings from the command line or a TOML file, expanded into RunConfigs.

An axis is a setting with a list of values (``act = ["relu", "tanh"]``, ``lr = [0.01, 0.05]``);
the grid is their product. Seeds are not an axis of runs: every run trains all of the sweep's
seeds (they batch together and give the mean ± CI). Every value is checked before anything
trains, and a bad one is refused in one line that says what is accepted.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from .activations import available_activations
from .config import OPTIMIZERS, PRESETS, TUTORIAL_ACTIVATIONS, RunConfig, make_config
from .models import INIT_SCHEMES, NORMS


class SweepError(ValueError):
    """A sweep's grid or plan is not acceptable; the message is one line."""


# axis name -> RunConfig field. The order is the order of the table's columns.
AXES = {"act": "activation", "init": "init", "norm": "norm", "dropout": "dropout", "optimizer": "optimizer",
        "lr": "lr", "weight_decay": "weight_decay", "hidden": "hidden_sizes", "batch_size": "batch_size",
        "preset": "preset"}
# Settings that are one value for the whole sweep (not axes).
FIXED = {"max_epochs": int, "patience": int, "momentum": float, "dataset": str, "record": str,
         "train_subset": int}
DEFAULT_SEEDS = 3  # seeds 42, 43, 44: the fewest that give a confidence interval worth reading


def _choice(accepted):
    def parse(axis, v):
        v = str(v).strip().lower()
        if v not in accepted:
            raise SweepError(f"unknown value {v!r} on axis {axis}; accepted: {', '.join(accepted)}")
        return v
    return parse


def _number(kind, low=None, low_open=False, high=None):
    def parse(axis, v):
        try:
            x = kind(v)
            if isinstance(v, float) and kind is int and v != int(v):
                raise ValueError
        except (TypeError, ValueError):
            raise SweepError(f"{_what(axis)} takes {'integers' if kind is int else 'numbers'}, got {v!r}") from None
        bad = not math.isfinite(x) or (low is not None and (x <= low if low_open else x < low)) \
            or (high is not None and x >= high)
        if bad:
            rng = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")
            raise SweepError(f"{_what(axis)} takes values {rng}, got {v!r}")
        return x
    return parse


def _what(name: str) -> str:
    return f"setting {name}" if name in FIXED else f"axis {name}"


def _activation(axis, v):
    v = str(v).strip().lower()
    if v not in available_activations():
        raise SweepError(f"unknown value {v!r} on axis act; accepted: all, {', '.join(available_activations())}")
    return v


def _hidden(axis, v):
    """'512-256' (command line) or [512, 256] (TOML) -> (512, 256)."""
    parts = v if isinstance(v, (list, tuple)) else str(v).replace("x", "-").split("-")
    try:
        widths = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        widths = ()
    if not widths or min(widths) < 1:
        raise SweepError(f"axis hidden takes layer widths joined by '-', e.g. 512-256-256-128 (TOML: [512, 256]), "
                         f"got {v!r}")
    return widths


PARSERS = {"act": _activation, "init": _choice(INIT_SCHEMES), "norm": _choice(NORMS),
           "dropout": _number(float, 0.0, high=1.0), "optimizer": _choice(OPTIMIZERS),
           "lr": _number(float, 0.0, low_open=True), "weight_decay": _number(float, 0.0), "hidden": _hidden,
           "batch_size": _number(int, 1), "preset": _choice(tuple(PRESETS))}


@dataclass
class Grid:
    axes: dict[str, list] = field(default_factory=dict)  # axis -> parsed values (only the axes given)
    seeds: tuple = tuple(42 + i for i in range(DEFAULT_SEEDS))
    fixed: dict = field(default_factory=dict)  # one value for every run (max_epochs, dataset, ...)

    def configs(self) -> list[RunConfig]:
        """Every point of the grid as a RunConfig (the preset first, then the axes' values)."""
        axes = {"act": ["relu"], "preset": ["quick"], **self.axes}
        names = list(axes)
        out = []
        for values in itertools.product(*(axes[n] for n in names)):
            point = dict(zip(names, values))
            overrides = {AXES[n]: v for n, v in point.items() if n not in ("act", "preset")}
            try:
                out.append(make_config(point["act"], point["preset"], seeds=self.seeds, **self.fixed, **overrides))
            except ValueError as exc:
                raise SweepError(f"grid point {_describe(point)} is not a valid run: {exc}") from None
        return list({c.key(): c for c in out}.values())  # a value given in two spellings is one run

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.axes.values()) if self.axes else 1

    def to_dict(self) -> dict:
        return {"axes": {k: [list(v) if isinstance(v, tuple) else v for v in vals] for k, vals in self.axes.items()},
                "seeds": list(self.seeds), "fixed": dict(self.fixed)}


def _describe(point: dict) -> str:
    return ", ".join(f"{k}={'-'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in point.items())


def parse_axis(axis: str, values) -> list:
    """One axis' values: a comma-separated string or a list; 'all' on act is the tutorial's six."""
    axis = axis.replace("-", "_")
    if axis in ("activation", "activations"):
        axis = "act"
    if axis not in PARSERS:
        raise SweepError(f"unknown axis {axis!r}; accepted: {', '.join(AXES)} (and seeds, n_seeds; fixed settings: "
                         f"{', '.join(FIXED)})")
    if isinstance(values, str):
        raw = [v for v in values.split(",") if v.strip()]
    elif isinstance(values, (list, tuple)):
        raw = list(values) if axis != "hidden" or not values or isinstance(values[0], (list, tuple, str)) \
            else [values]  # hidden = [512, 256] is one value, not two
    else:
        raw = [values]
    if not raw:
        raise SweepError(f"axis {axis} is empty; give at least one value")
    parsed = []
    for v in raw:
        if axis == "act" and str(v).strip().lower() == "all":
            parsed.extend(TUTORIAL_ACTIVATIONS)
        else:
            parsed.append(PARSERS[axis](axis, v))
    return list(dict.fromkeys(parsed))


def parse_seeds(seeds=None, n_seeds=None) -> tuple:
    if seeds is not None and n_seeds is not None:
        raise SweepError("give seeds or n_seeds, not both")
    if n_seeds is not None:
        if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
            raise SweepError(f"n_seeds must be a whole number >= 1, got {n_seeds!r}")
        return tuple(42 + i for i in range(n_seeds))
    if seeds is None:
        return tuple(42 + i for i in range(DEFAULT_SEEDS))
    raw = seeds.split(",") if isinstance(seeds, str) else list(seeds)
    try:
        out = tuple(int(s) for s in raw if str(s).strip())
    except ValueError:
        raise SweepError(f"seeds are integers, e.g. 42,43,44; got {seeds!r}") from None
    if not out or len(set(out)) != len(out):
        raise SweepError(f"seeds must be distinct integers, at least one; got {seeds!r}")
    return out


# The fixed settings' ranges, checked with the axes (before anything is written or trained):
# (lowest, lowest excluded?, highest excluded) -- momentum 1 never forgets a gradient, -1 makes SGD oscillate.
FIXED_RANGES = {"max_epochs": (1, False, None), "patience": (1, False, None), "momentum": (0.0, False, 1.0),
                "train_subset": (1, False, None)}
FIXED_CHOICES = {"dataset": ("fashion_mnist", "synthetic"), "record": ("default", "every", "off")}


def parse_fixed(name: str, value):
    kind = FIXED[name]
    if name in FIXED_RANGES:
        low, low_open, high = FIXED_RANGES[name]
        return _number(kind, low, low_open, high)(name, value)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise SweepError(f"setting {name} takes {'an integer' if kind is int else kind.__name__}, got {value!r}") \
            from None
    if name in FIXED_CHOICES and value not in FIXED_CHOICES[name]:
        raise SweepError(f"unknown value {value!r} for {name}; accepted: {', '.join(FIXED_CHOICES[name])}")
    return value


def make_grid(spec: dict) -> Grid:
    """A Grid from a mapping of axis -> values (plus seeds/n_seeds and fixed settings); None = not given."""
    spec = {k.replace("-", "_"): v for k, v in spec.items() if v is not None}
    seeds = parse_seeds(spec.pop("seeds", None), spec.pop("n_seeds", None))
    fixed = {k: parse_fixed(k, spec.pop(k)) for k in list(spec) if k in FIXED}
    axes = {}
    for axis, values in spec.items():
        name = "act" if axis in ("activation", "activations") else axis
        axes[name] = parse_axis(name, values)
    return Grid(axes=axes, seeds=seeds, fixed=fixed)


def read_grid_file(path) -> dict:
    """A TOML file of axes (``act = ["relu", "tanh"]``, ``lr = [0.01, 0.05]``, ``n_seeds = 5``).

    YAML (``.yaml``/``.yml``) is read too when PyYAML is installed.
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise SweepError(f"{path} is YAML, which needs PyYAML (pip install pyyaml); TOML needs nothing") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SweepError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    else:
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path} must hold a table of axes (act = [...], lr = [...]), got {type(data).__name__}")
    data = data.get("sweep", data)  # a [sweep] table, or the axes at the top level
    return data
