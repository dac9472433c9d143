"""Dead units: one no-grad pass over a whole input set with short-lived hooks of its own.

A unit is dead when, for every example, its derivative is below DEAD_DERIV_FRACTION of the
activation's maximum (no gradient can flow through it) or its output magnitude is below
DEAD_OUTPUT_TOL (it carries no signal); see :func:`gradflow.stats.alive_units`. The pass runs in
eval mode (dropout off, batch-norm running statistics untouched) and restores every module's mode
and removes its hooks afterwards, also when the model raises. The Recorder's own hooks skip it:
they record training forwards only, and this one runs under ``torch.no_grad()``.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import stats
from .layers import ACTIVATION, Layer, first_tensor


def check_inputs(inputs, batch_size) -> None:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"dead_units needs a tensor of inputs (N, ...), got {type(inputs).__name__}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError(f"dead_units needs at least one example; got inputs of shape {tuple(inputs.shape)}. "
                         "Pass the training inputs (N, ...) with N >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def dead_unit_pass(model: nn.Module, layers: list[Layer], inputs: torch.Tensor, batch_size: int,
                   guard=lambda fn: fn) -> dict[str, torch.Tensor]:
    """Per activation layer, which units (M, U) are dead over all of ``inputs`` (N, ...).

    ``guard`` wraps each hook (the Recorder's: a failing layer is noted, not raised)."""
    check_inputs(inputs, batch_size)
    alive: dict[str, tuple] = {}  # layer -> (passes gradient (M, U), carries signal (M, U)), OR-ed over batches

    def accumulate(lay):
        def hook(module, args, out):
            x = first_tensor(args)
            if not isinstance(out, torch.Tensor) or x is None or x.shape != out.shape:
                return
            d, peak = lay.derivative_and_max(x)
            passes, carries = stats.alive_units(lay.view(out), d, peak)
            if lay.name in alive:
                passes, carries = passes | alive[lay.name][0], carries | alive[lay.name][1]
            alive[lay.name] = (passes, carries)
        return hook

    handles = [lay.module.register_forward_hook(guard(accumulate(lay))) for lay in layers if lay.kind == ACTIVATION]
    device = next(iter(model.parameters())).device
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            for i in range(0, inputs.shape[0], batch_size):
                model(inputs[i:i + batch_size].to(device))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return {name: ~(passes & carries) for name, (passes, carries) in alive.items()}
