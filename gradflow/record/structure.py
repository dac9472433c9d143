"""What the diagnosis needs to know about the model's structure, as JSON: the hooked layers in
forward order (with each activation's probed maximum derivative and boundedness), the dropout
modules and their probabilities, the training forwards run in eval mode, and the model's declared
number of classes."""
from __future__ import annotations

import torch
from torch import nn

from ..quantities import ROOT_LAYER
from .layers import PARAM, Layer, activation_name, member_activation_names


class ForwardOrder:
    """Where each hooked layer first ran in a training forward: its position (the order of the layer
    tables) and whether it ran inside a torch.no_grad() block of that forward, where it can never get
    a gradient (NO_GRADIENT says so)."""

    def __init__(self):
        self.position: dict[str, int] = {}
        self.without_grad: set[str] = set()
        self.in_training_forward = False  # inside a model forward that began with gradients on

    def note(self, name: str, grad_on: bool) -> None:
        if name in self.position or not (grad_on or self.in_training_forward):
            return  # placed already, or a forward outside training (validation, a dead-unit pass)
        self.position[name] = len(self.position)
        if not grad_on:
            self.without_grad.add(name)


def describe_layers(layers: list[Layer], order: dict[str, int]) -> list[dict]:
    """The hooked layers, sorted by first use in a training forward (never used: last)."""
    out = []
    for lay in layers:
        entry = {"name": lay.name, "kind": lay.kind, "type": type(lay.module).__name__,
                 "order": order.get(lay.name), "members": lay.members}
        if lay.kind == PARAM:
            entry.update(param=lay.param_name, shape=list(lay.param.shape), role=lay.role, init_rms=lay.init_rms)
        else:
            entry.update(activation=activation_name(lay.module), activations=member_activation_names(lay.module),
                         bounded=lay.bounded,
                         flat_both_sides=lay.flat_both_sides,
                         max_derivative=None if lay.max_deriv is None else [float(v) for v in lay.max_deriv.tolist()])
        out.append(entry)
    out.sort(key=lambda e: (e["order"] is None, e["order"] if e["order"] is not None else 0))
    return out


def is_dropout(m: nn.Module) -> bool:
    """torch's dropouts (Dropout, Dropout1d/2d/3d, AlphaDropout) and modules that declare
    ``is_dropout = True`` (gradflow's StackedDropout, whose ``p`` is one probability per member)."""
    return isinstance(m, nn.modules.dropout._DropoutNd) or getattr(m, "is_dropout", False) is True


def is_mode_dependent(m: nn.Module) -> bool:
    """Modules that compute something else in eval mode: dropout (off) and batch normalisation with
    running statistics (used instead of the batch's, and no longer updated); gradflow's stacked
    batch norm declares ``is_batch_norm = True``."""
    if is_dropout(m) or getattr(m, "is_batch_norm", False) is True:
        return True
    return isinstance(m, nn.modules.batchnorm._NormBase) and bool(m.track_running_stats)


def train_mode(mode: dict[int, bool], model: nn.Module) -> dict:
    """``mode``: recorded step -> the model's ``.training`` in that step's training forward. The
    steps that ran in eval mode, and the modules that then compute something else."""
    eval_steps = [step for step, training in mode.items() if not training]
    return {"recorded": len(mode), "eval_count": len(eval_steps), "eval_steps": eval_steps[:20],
            "modules": [{"layer": n or ROOT_LAYER, "type": type(m).__name__}
                        for n, m in model.named_modules() if is_mode_dependent(m)]}


def find_dropout(model: nn.Module) -> list[dict]:
    found = []
    for n, m in model.named_modules():
        if not is_dropout(m):
            continue
        ps = getattr(m, "p", None)
        ps = ps.reshape(-1).tolist() if isinstance(ps, torch.Tensor) else [ps]
        for member, p in enumerate(ps):
            if isinstance(p, (int, float)):
                found.append({"layer": n or ROOT_LAYER, "p": float(p), "type": type(m).__name__,
                              "member": member if len(ps) > 1 else None})
    return found


def module_types(model: nn.Module, names: list[str]) -> dict[str, str]:
    """The class name of each named module (the frozen ones: is anything but normalisation trainable?)."""
    mods = {n or ROOT_LAYER: m for n, m in model.named_modules()}
    return {n: type(mods[n]).__name__ for n in names if n in mods}


def num_classes(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    return config.get("num_classes") if isinstance(config, dict) else None
