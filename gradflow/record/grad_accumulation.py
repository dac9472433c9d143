"""Gradients that pile up across steps: ``optimizer.zero_grad()`` missing from the loop.

A tensor hook on each trainable layer's main parameter runs with each new gradient *before* it is
added to ``.grad``. After a recorded rec.step(), the check is armed on the first layer (in
registration order) that the optimizer moved in that step; at the next backward, if that layer's
``.grad`` still holds a non-zero gradient, the previous step's gradient was never cleared and the
new one is added on top of it. Legitimate micro-batch accumulation (several backwards, then
``optimizer.step()``, then ``zero_grad()``) is not flagged: the weights move only at the step, and
``.grad`` is cleared before the next backward; several backwards between two rec.step() calls
without an optimizer step never arm the check either. A layer left out of the optimizer (its
gradient piles up, legitimately unused) never moves, so it is never the one checked.
Cost: a weight comparison or two per recorded step and one norm at the backward that follows it,
for the first MAX_CHECKS recorded steps. The tensor hook exists only while the check is armed (from
the recorded step to the next backward): a hook on every parameter at every backward would cost a
Python call each, on every step.
"""
from __future__ import annotations

import torch

from .layers import Layer

MAX_CHECKS = 32  # enough to be sure either way; a long run recorded every step stays small in the summary


class StaleGradCheck:
    def __init__(self, layers: list[Layer], guard=lambda fn: fn):
        self.layers = layers  # the parameter layers, in registration order
        self.guard = guard  # the recorder's "a failing statistic never breaks training" wrapper
        self.armed: tuple[Layer, int] | None = None  # (layer, step whose first backward is checked)
        self.handle = None  # the armed layer's tensor hook
        self.layer_name: str | None = None  # the layer checked (the first armed one, kept for the summary)
        self.checks: list[tuple] = []  # (step, layer, stale norm (M,), new norm (M,)), tensors until summary()

    def _on_gradient(self, grad: torch.Tensor) -> None:
        lay, step = self.armed
        self.disarm()
        old = lay.param.grad
        new = _norms(lay, grad)
        stale = torch.zeros_like(new) if old is None else _norms(lay, old)
        self.checks.append((step, lay.name, stale, new))

    def arm(self, step: int, before: dict) -> None:
        """Called by rec.step() on recorded steps with the parameters' copies from before the optimizer step."""
        self.disarm()
        if len(self.checks) >= MAX_CHECKS:
            return
        for lay in self.layers:
            b = before.get(lay.name)
            if b is not None and not torch.equal(b, lay.param.detach()):
                self.armed = (lay, step + 1)
                self.handle = lay.param.register_hook(self.guard(self._on_gradient))
                self.layer_name = self.layer_name or lay.name
                return

    def disarm(self) -> None:
        """Remove the hook (the check fired, a new one is armed, or the recorder closes)."""
        self.armed = None
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def summary(self) -> dict:
        rows = []
        for step, layer, stale, new in self.checks:
            for m, (s, n) in enumerate(zip(stale.tolist(), new.tolist())):
                rows.append({"step": step, "layer": layer, "member": m, "stale_norm": s, "new_norm": n})
        return {"layer": self.layer_name, "checks": rows}


def _norms(lay: Layer, t: torch.Tensor) -> torch.Tensor:
    v = lay.view(t.detach())
    return v.reshape(v.shape[0], -1).float().norm(dim=1)
