"""RunConfig: everything that decides a run's numbers, and the named presets.

A run is cached under a hash of its config, so asking for the same run twice loads it.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields

from .activations import activation_from_config, get_activation
from .models import INIT_SCHEMES, NORMS
from .optimizers import OPTIMIZERS
from .precision import DEFAULT_PRECISION, PRECISIONS
from .record.schedule import RUN_CHOICES as RECORD_CHOICES

TUTORIAL_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish")
# The tutorial's single-seed (42) test accuracies, shared/reference/anchors.md.
TUTORIAL_TEST_ACCURACY = {"sigmoid": 0.1000, "tanh": 0.8759, "relu": 0.8862,
                          "leakyrelu": 0.8892, "elu": 0.8727, "swish": 0.8873}


@dataclass(frozen=True)
class RunConfig:
    activation: dict = field(default_factory=lambda: {"name": "relu"})  # hidden-layer activation config
    hidden_sizes: tuple = (512, 256, 256, 128)  # the tutorial's BaseNetwork
    init: str = "default"                # PyTorch's default Linear init, as in the tutorial
    norm: str = "none"                   # none | batch | layer
    dropout: float = 0.0                 # probability of DROPPING a hidden unit
    output_act: dict | None = None       # activation on the logits (None: plain logits, as it should be)
    dataset: str = "fashion_mnist"       # fashion_mnist | synthetic | "<name>:<hash>" for data passed in
    split_seed: int = 42                 # generator seed of the 50k/10k train/validation split
    train_subset: int | None = None      # train on the first N examples of the split (None: all)
    optimizer: str = "sgd"               # sgd | adam | adamw | rmsprop
    lr: float = 1e-2
    momentum: float = 0.9                # SGD/RMSprop momentum
    weight_decay: float = 0.0
    batch_size: int = 256                # drop_last=True, as the tutorial
    max_epochs: int = 50
    patience: int = 7                    # early stopping on validation accuracy
    seeds: tuple = (42, 43, 44)          # one model per seed: init, data order and dropout masks
    record: str = "default"              # recorder schedule: default | every | off (gradflow.record.schedule)
    preset: str = "custom"               # the preset this config came from (part of the run's name)
    precision: str = DEFAULT_PRECISION   # fp32 | tf32 | bf16 (gradflow.precision); fp32 is left out of
    #                                      to_dict() and so of the hash: fp32 runs keep their names

    def __post_init__(self):
        # Normalise so equal configs hash equally, and reject bad values before any training starts.
        object.__setattr__(self, "activation", _act_config(self.activation))
        if self.output_act is not None:
            object.__setattr__(self, "output_act", _act_config(self.output_act))
        object.__setattr__(self, "hidden_sizes", _integers(self.hidden_sizes, "hidden_sizes", "[512, 256]", "--hidden"))
        object.__setattr__(self, "seeds", _integers(self.seeds, "seeds", "[42, 43, 44]", "--seeds"))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive integers, got {list(self.hidden_sizes)}")
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        for seed in (*self.seeds, self.split_seed):
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
                raise ValueError(f"a seed must be an integer from 0 to 2**63 - 1 (torch's generators take 64 bits), "
                                 f"got {seed!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {self.init!r}; accepted: {', '.join(INIT_SCHEMES)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; accepted: {', '.join(NORMS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; accepted: {', '.join(OPTIMIZERS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (the probability of dropping a unit), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        # NaN compares false both ways: written as "not in range", so a NaN is refused, not trained
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (0: none, 0.9: the tutorial's), got {self.momentum}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0 (0: none), got {self.weight_decay}")
        for name in ("batch_size", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {self.patience}")
        if self.train_subset is not None and self.train_subset < self.batch_size:
            raise ValueError(f"train_subset ({self.train_subset}) must hold at least one batch ({self.batch_size})")
        if self.record not in RECORD_CHOICES:
            raise ValueError(f"unknown record schedule {self.record!r}; accepted: {', '.join(RECORD_CHOICES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; accepted: {', '.join(PRECISIONS)}")

    @property
    def activation_name(self) -> str:
        return self.activation["name"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_sizes"], d["seeds"] = list(self.hidden_sizes), list(self.seeds)
        if d["precision"] == DEFAULT_PRECISION:  # runs made before the setting existed are fp32 runs
            del d["precision"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown run config keys {unknown}; accepted: {sorted(known)}")
        return cls(**d)

    def key(self) -> str:
        """A stable hash of everything that changes the numbers."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        act = "-".join(f"{v}" for v in self.activation.values()).replace(".", "p")
        return f"{act}-{self.preset}-{self.key()}"

    def model_kwargs(self) -> dict:
        return {"act_fn": self.activation, "hidden_sizes": list(self.hidden_sizes), "init": self.init,
                "norm": self.norm, "dropout": self.dropout, "output_act": self.output_act}

    def batch_key(self) -> tuple:
        """Configs with equal batch keys train together in one batched step."""
        d = self.to_dict()
        for k in ("activation", "init", "seeds", "record", "preset"):
            d.pop(k)
        # members need the same layer placement, not the same dropout p or output activation
        d["has_dropout"] = d.pop("dropout") > 0
        d["has_output_act"] = d.pop("output_act") is not None
        return tuple(sorted((k, json.dumps(v)) for k, v in d.items()))


MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits; negative seeds would alias large ones


def _integers(values, name: str, example: str, flag: str) -> tuple:
    """A tuple of integers; a string is refused rather than read digit by digit ("42" is not (4, 2))."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        spaced = " ".join(example.strip("[]").split(", "))
        raise ValueError(f"{name} must be a list of integers, e.g. {name}={example}; got {values!r}"
                         + (f" (a string; the command line's {flag} {spaced} takes text)"
                            if isinstance(values, (str, bytes)) else ""))
    values = tuple(values)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
    if bad:
        raise ValueError(f"{name} must be a list of integers, e.g. {name}={example}; got {list(values)!r}")
    return tuple(int(v) for v in values)


def _act_config(act) -> dict:
    if isinstance(act, str):
        return get_activation(act).config
    if isinstance(act, dict):
        return activation_from_config(act).config  # validates name and parameters
    raise ValueError(f"an activation is a registered name or a config dict, got {act!r}")


PRESETS: dict[str, dict] = {
    # The tutorial's recipe (shared/reference/anchors.md), with three seeds instead of one.
    "tutorial": {},
    # Same net, data and optimizer for a few epochs: the same qualitative picture
    # (sigmoid stuck at chance, the others near 85 %) in a few minutes on a 2-core CPU.
    "quick": {"max_epochs": 4},
    # Seconds: a tiny net on the synthetic set, for tests and smoke runs. Never FashionMNIST.
    "smoke": {"dataset": "synthetic", "hidden_sizes": (64, 32), "batch_size": 64, "max_epochs": 3,
              "patience": 2, "seeds": (0, 1)},
}


def make_config(activation="relu", preset: str = "quick", **overrides) -> RunConfig:
    """A RunConfig from a preset plus explicit overrides (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; accepted: {sorted(known - {'activation', 'preset'})}")
    return RunConfig(activation=activation, preset=preset, **values)
