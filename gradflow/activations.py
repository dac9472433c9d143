"""Activation registry: name -> constructor, with a JSON config that round-trips.

Every activation built here is an ``nn.Module`` carrying ``.config`` (``{"name": ..., **params}``),
so a saved run can rebuild exactly the module it trained with, and the recorder can find
activation modules in any model by type.
"""
from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class Activation(nn.Module):
    """A stateless activation ``fn(x, **params)`` with a name and a JSON-able config."""

    def __init__(self, name: str, fn: Callable[..., torch.Tensor], **params: Any):
        super().__init__()
        self.name = name
        self.fn = fn
        self.params = dict(params)

    @property
    def config(self) -> dict:
        return {"name": self.name, **self.params}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)

    def extra_repr(self) -> str:
        return ", ".join([self.name] + [f"{k}={v}" for k, v in self.params.items()])


@dataclass
class _Entry:
    build: Callable[..., nn.Module]  # params -> module
    defaults: dict = field(default_factory=dict)  # accepted parameters and their defaults
    bounded: bool = False  # output confined to a finite interval (sigmoid, tanh, ...)


_REGISTRY: dict[str, _Entry] = {}


def _swish(x):  # the tutorial's x * sigmoid(x); silu is the same function, fused
    return F.silu(x)


def _identity(x):
    return x


_BUILTINS: dict[str, tuple[Callable, dict]] = {  # bounded: see BOUNDED_OPS
    "sigmoid": (lambda x: torch.sigmoid(x), {}),
    "tanh": (lambda x: torch.tanh(x), {}),
    "relu": (lambda x: F.relu(x), {}),
    "leakyrelu": (lambda x, alpha: F.leaky_relu(x, alpha), {"alpha": 0.1}),
    "elu": (lambda x, alpha: F.elu(x, alpha), {"alpha": 1.0}),
    "swish": (_swish, {}),
    "gelu": (lambda x: F.gelu(x), {}),
    "mish": (lambda x: F.mish(x), {}),
    "softplus": (lambda x, beta: F.softplus(x, beta), {"beta": 1.0}),
    "selu": (lambda x: F.selu(x), {}),
    "identity": (_identity, {}),
}


def _key(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"activation name must be a non-empty string, got {name!r}")
    return name.strip().lower()


def available_activations() -> list[str]:
    """Registered activation names, built-in ones first in the tutorial's order."""
    return list(_REGISTRY)


def check_activations(names) -> list[str]:
    """Lower-cased names, or a ValueError naming the unknown ones and listing the registered ones."""
    names = [str(a).lower() for a in names]
    unknown = [a for a in names if a not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown activation(s) {unknown}; registered: {', '.join(available_activations())}")
    return names


_ORIGINS: dict[str, tuple] = {}  # registered name -> (module, qualified name) of the function behind it


def _origin(obj) -> tuple:
    return (getattr(obj, "__module__", None), getattr(obj, "__qualname__", repr(obj)))


def register_activation(name: str, fn: Callable | type | None = None, *, bounded: bool = False,
                        overwrite: bool = False, **defaults: Any):
    """Register a user activation, as a call or as a decorator.

    ``fn`` is either a function ``fn(x, **params)`` or an ``nn.Module`` subclass built with
    ``cls(**params)``. ``defaults`` are the accepted parameters (read from ``fn``'s signature
    when not given). ``bounded=True`` tells the diagnosis its output lies in a finite range.

        @gradflow.register_activation("cube")
        def cube(x): return x ** 3
    """
    key = _key(name)
    # Names reach run folders, file names and the reports' HTML: letters, digits and _ . + - only.
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.+-]*", key):
        raise ValueError(f"activation name {name!r} is not accepted: use letters, digits and _ . + - "
                         "(starting with a letter or digit), e.g. 'my_relu'")

    def add(obj):
        # the same function defined again (a notebook cell run twice, a module reloaded) replaces itself;
        # a different function under a taken name is a clash
        same = _ORIGINS.get(key) == _origin(obj)
        if key in _REGISTRY and not overwrite and not same:
            raise ValueError(f"activation {key!r} is already registered; pass overwrite=True to replace it")
        if not callable(obj):
            raise TypeError(f"register_activation({key!r}) needs a function or an nn.Module class, got {obj!r}")
        params = dict(defaults) if defaults else _signature_defaults(obj)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            build = _module_builder(key, obj)
        else:
            build = _function_builder(key, obj)
        _REGISTRY[key] = _Entry(build, params, bounded)
        _ORIGINS[key] = _origin(obj)
        return obj

    return add if fn is None else add(fn)


def _signature_defaults(obj) -> dict:
    target = obj.__init__ if isinstance(obj, type) else obj
    sig = inspect.signature(target)
    names = list(sig.parameters.values())[1:]  # skip x (or self)
    return {p.name: p.default for p in names
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}


def _function_builder(key, fn):
    return lambda **params: Activation(key, fn, **params)


def _module_builder(key, cls):
    def build(**params):
        module = cls(**params)
        module.config = {"name": key, **params}  # so the run store can rebuild it
        return module
    return build


def get_activation(name: str, **params: Any) -> nn.Module:
    """A fresh activation module for ``name`` with ``params`` over the registered defaults."""
    key = _key(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; registered: {', '.join(available_activations())}")
    entry = _REGISTRY[key]
    unknown = sorted(set(params) - set(entry.defaults))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in entry.defaults.items()) or "none"
        raise ValueError(f"activation {key!r} takes no parameter {', '.join(unknown)}; accepted: {accepted}")
    for k, v in params.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"activation {key!r}: parameter {k} must be finite, got {v}")
    return entry.build(**{**entry.defaults, **params})


def activation_config(act: nn.Module) -> dict:
    """The JSON config of an activation module (registry modules and torch's own)."""
    config = getattr(act, "config", None)
    if isinstance(config, dict) and "name" in config:
        return dict(config)
    raise ValueError(f"{type(act).__name__} has no activation config; build it with "
                     "gradflow.get_activation(name) or register it with gradflow.register_activation")


def activation_from_config(config: dict) -> nn.Module:
    """Inverse of :func:`activation_config`."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"an activation config is a dict with a 'name' key, got {config!r}")
    params = {k: v for k, v in config.items() if k != "name"}
    return get_activation(config["name"], **params)


# The one answer to "is this output confined to a finite interval?", asked by the registry (built-in
# flags), the Recorder (activation modules, the op feeding the model output), the loss inspection
# (autograd nodes such as ``TanhBackward0``) and the diagnosis (the interval a bounded output maps into).
BOUNDED_OPS = {  # op name, lower case -> the interval it maps into
    "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0), "softmax": (0.0, 1.0),  # softmax: the "double softmax"
    "tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
    "clamp": (-1.0, 1.0), "clampminmax": (-1.0, 1.0),  # torch.clamp: the bounds are not in the graph; tanh-like
}
_BOUNDED_MODULES = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Softsign, nn.Hardsigmoid, nn.Softmax)


def op_name(name: str) -> str:
    """An op's plain lower-case name: autograd's ``SoftmaxBackward0`` -> ``softmax``."""
    return re.sub(r"backward\d*$", "", str(name).strip().lower())


def is_bounded(thing) -> bool:
    """True when the output lies in a finite interval: ``thing`` is an activation module, a
    registered activation name, an op name or an autograd node name (``TanhBackward0``)."""
    if isinstance(thing, nn.Module):
        if isinstance(thing, _BOUNDED_MODULES):
            return True
        config = getattr(thing, "config", None)
        thing = config.get("name") if isinstance(config, dict) else None
    if not isinstance(thing, str) or not thing.strip():
        return False
    entry = _REGISTRY.get(_key(thing))
    return bool(entry and entry.bounded) or op_name(thing) in BOUNDED_OPS


def bounded_interval(name: str) -> tuple[float, float] | None:
    """The interval a bounded op maps into, None when not known (a user's bounded activation)."""
    return BOUNDED_OPS.get(op_name(name))


for _name, (_fn, _defaults) in _BUILTINS.items():
    register_activation(_name, _fn, bounded=_name in BOUNDED_OPS, **_defaults)
