"""The recorder's every-step NaN/Inf check, run inside a captured training step.

A replayed CUDA graph runs no Python, so the recorder's hooks (which hand each step's activations
and weight gradients to its sentinel) do not fire on replayed steps. This feed taps the same
tensors while the step is captured -- the graph's own static activations and gradients -- and
calls the recorder's sentinel on them inside the capture, with the step and epoch as device
tensors set before each replay. The sentinel folds the norms into its "first non-finite step"
state on the device (record/sentinel.py), so a replayed step checks exactly what an eager step
checks: every activation layer's output, every weight gradient and the loss, per member.
"""
from __future__ import annotations

import contextlib

import torch

from .record.layers import PARAM


class SentinelFeed:
    def __init__(self, recorder, device):
        self.sentinel = recorder.sentinel
        self.layers = recorder.layers
        self.step = torch.zeros((), dtype=torch.long, device=device)
        self.epoch = torch.zeros((), dtype=torch.long, device=device)

    def before_replay(self, step: int, epoch: int) -> None:
        """The step's number and epoch, written on the device (a fill kernel: no copy, no sync)."""
        self.step.fill_(int(step))
        self.epoch.fill_(int(epoch))

    @contextlib.contextmanager
    def taps(self):
        """Collect, for one step, the first training output of each activation layer (forward order)
        and each weight gradient (in the recorder's layer order), as the recorder's hooks do."""
        acts, grads, handles = [], {}, []

        def on_output(lay):
            def hook(module, args, out):
                if isinstance(out, torch.Tensor) and torch.is_grad_enabled() and all(a[0] is not lay for a in acts):
                    acts.append((lay, out))
            return hook

        def on_grad(lay):
            def hook(param):
                grads[lay.name] = param.grad
            return hook

        for lay in self.layers:
            if lay.kind == PARAM:
                handles.append(lay.param.register_post_accumulate_grad_hook(on_grad(lay)))
            else:
                handles.append(lay.module.register_forward_hook(on_output(lay)))
        tapped = {"acts": acts, "grads": grads}
        try:
            yield tapped
        finally:
            for h in handles:
                h.remove()
        tapped["grads"] = [(lay, grads[lay.name]) for lay in self.layers
                           if lay.kind == PARAM and grads.get(lay.name) is not None]

    def check(self, tapped: dict, losses: torch.Tensor) -> None:
        self.sentinel.check(self.step, self.epoch, tapped["acts"], tapped["grads"], losses)
