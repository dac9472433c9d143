"""Gradients that pile up across steps: ``optimizer.zero_grad()`` missing from the loop.

A tensor hook on one trainable parameter runs with each new gradient *before* it is added to
``.grad``. After a recorded rec.step() in which the optimizer moved that parameter, the check is
armed for the next backward: if ``.grad`` still holds a non-zero gradient then, the previous
step's gradient was never cleared and the new one is added on top of it. Legitimate micro-batch
accumulation (several backwards, then ``optimizer.step()``, then ``zero_grad()``) is not flagged:
the weights move only at the step, and ``.grad`` is cleared before the next backward; several
backwards between two rec.step() calls without an optimizer step never arm the check either.
Cost: one weight comparison per recorded step and one norm at the backward that follows it, for
the first MAX_CHECKS recorded steps.
"""
from __future__ import annotations

import torch

from .layers import Layer

MAX_CHECKS = 32  # enough to be sure either way; a long run recorded every step stays small in the summary


class StaleGradCheck:
    def __init__(self, lay: Layer):
        self.lay = lay
        self.armed_for: int | None = None  # the step whose first backward is checked
        self.checks: list[tuple] = []  # (step, stale norm (M,), new norm (M,)), tensors until summary()

    def register(self):
        return self.lay.param.register_hook(self.on_gradient)

    def arm(self, step: int, before: torch.Tensor | None) -> None:
        """Called by rec.step() on recorded steps with the parameter's copy from before the optimizer step."""
        if len(self.checks) >= MAX_CHECKS:
            return
        moved = before is not None and not torch.equal(before, self.lay.param.detach())
        self.armed_for = step + 1 if moved else None

    def on_gradient(self, grad: torch.Tensor) -> None:
        if self.armed_for is None:
            return
        step, self.armed_for = self.armed_for, None
        old = self.lay.param.grad
        new = self._norms(grad)
        stale = torch.zeros_like(new) if old is None else self._norms(old)
        self.checks.append((step, stale, new))

    def _norms(self, t: torch.Tensor) -> torch.Tensor:
        v = self.lay.view(t.detach())
        return v.reshape(v.shape[0], -1).float().norm(dim=1)

    def summary(self) -> dict:
        rows = []
        for step, stale, new in self.checks:
            for m, (s, n) in enumerate(zip(stale.tolist(), new.tolist())):
                rows.append({"step": step, "member": m, "stale_norm": s, "new_norm": n})
        return {"layer": self.lay.name, "checks": rows}
