"""The tutorial's ``BaseNetwork`` MLP, plus the options a diagnostics suite needs.

Layout of ``self.layers`` (an ``nn.Sequential``) for each hidden layer:
``Linear -> [BatchNorm1d | LayerNorm] -> activation -> [Dropout]``, then the output ``Linear``
and an optional output activation. With no norm and no dropout the state-dict keys are the
tutorial's (``layers.0.weight``, ``layers.2.weight``, ...).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .activations import activation_config, activation_from_config, get_activation


def _orthogonal(w: torch.Tensor) -> torch.Tensor:
    """nn.init.orthogonal_ on one thread, the previous thread count restored after.

    Its QR decomposition (LAPACK) rounds differently with 1 and with 2+ threads, so the same seed gave
    different weights in a Ray task (1 CPU) and in the local process (every core): a sweep's runs must
    not depend on where they trained. The random draws of the other schemes are elementwise and do not
    depend on the thread count (tests/test_sweep.py checks every scheme with 1 and 2 threads).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return nn.init.orthogonal_(w)
    finally:
        torch.set_num_threads(threads)


# name -> what it does to a Linear's weight (None: keep PyTorch's default init). Non-default
# schemes also zero the biases, as the papers that define them do.
INITS = {
    "default": None,
    "xavier": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "orthogonal": _orthogonal,  # one thread: the same weights wherever it runs
    "normal": lambda w: nn.init.normal_(w, std=1.0 / math.sqrt(w.shape[1])),  # the tutorial's "const variance"
}
# name -> the normalisation layer after a hidden Linear of width n (None: no layer)
NORM_LAYERS = {"none": None, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}
INIT_SCHEMES = tuple(INITS)
NORMS = tuple(NORM_LAYERS)


def _as_activation(act_fn) -> nn.Module:
    if isinstance(act_fn, str):
        return get_activation(act_fn)
    if isinstance(act_fn, dict):
        return activation_from_config(act_fn)
    if isinstance(act_fn, nn.Module):
        return act_fn
    raise TypeError(f"act_fn must be an activation name, a config dict or an nn.Module, got {type(act_fn).__name__}")


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {p!r} "
                         "(PyTorch's dropout p is the probability of DROPPING a unit)")
    return float(p)


class BaseNetwork(nn.Module):
    def __init__(self, act_fn="relu", input_size: int = 784, num_classes: int = 10,
                 hidden_sizes=(512, 256, 256, 128), init: str = "default", norm: str = "none",
                 dropout: float = 0.0, output_act=None):
        """
        act_fn       -- activation for every hidden layer: a registered name, a config dict or a module
                        (each layer gets its own copy, so hooks can tell the layers apart)
        input_size   -- pixels per image (784 for 28x28)
        num_classes  -- number of logits
        hidden_sizes -- widths of the hidden layers
        init         -- weight initialisation; 'default' keeps PyTorch's (see INIT_SCHEMES)
        norm         -- 'none', 'batch' (BatchNorm1d) or 'layer' (LayerNorm) after each hidden Linear
        dropout      -- probability of DROPPING a hidden unit (PyTorch's meaning), 0 disables
        output_act   -- optional activation on the logits (reproduces bugs like tanh before cross-entropy)
        """
        super().__init__()
        _check_size("input_size", input_size)
        _check_size("num_classes", num_classes)
        hidden_sizes = list(hidden_sizes)
        for i, h in enumerate(hidden_sizes):
            _check_size(f"hidden_sizes[{i}]", h)
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; accepted: {', '.join(INIT_SCHEMES)}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: {', '.join(NORMS)}")
        dropout = _check_probability("dropout", dropout)

        act = _as_activation(act_fn)
        out_act = None if output_act is None else _as_activation(output_act)
        layers: list[nn.Module] = []
        sizes = [input_size] + hidden_sizes
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(fan_in, fan_out))
            if NORM_LAYERS[norm] is not None:
                layers.append(NORM_LAYERS[norm](fan_out))
            layers.append(copy.deepcopy(act))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], num_classes))
        if out_act is not None:
            layers.append(out_act)
        self.layers = nn.Sequential(*layers)
        init_weights(self, init)

        self.config = {
            "act_fn": activation_config(act), "input_size": input_size, "num_classes": num_classes,
            "hidden_sizes": hidden_sizes, "init": init, "norm": norm, "dropout": dropout,
            "output_act": None if out_act is None else activation_config(out_act),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(x.size(0), -1))

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    @classmethod
    def from_config(cls, config: dict) -> BaseNetwork:
        known = {"act_fn", "input_size", "num_classes", "hidden_sizes", "init", "norm", "dropout", "output_act"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown BaseNetwork config keys {unknown}; accepted: {sorted(known)}")
        return cls(**config)


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear of ``model`` with ``INITS[scheme]``; 'default' leaves PyTorch's init alone."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; accepted: {', '.join(INITS)}")
    if INITS[scheme] is None:
        return
    for m in model.modules():
        if isinstance(m, nn.Linear):
            INITS[scheme](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
