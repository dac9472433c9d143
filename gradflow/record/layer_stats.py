"""What a recorded step computes per layer: the weight, gradient and update statistics of each
trainable layer (after ``rec.step()``), and the output and gradient statistics of each activation
(in its forward hook, and in tensor hooks on the backward pass that follows).

Every value is a small device tensor (one number per member) handed to the recorder's buffer, which
moves them to the CPU in batches; nothing here reads a value back.
"""
from __future__ import annotations

from functools import partial

import torch

from .. import quantities as Q
from .. import stats


class LayerStatistics:
    """The per-layer reductions of recorded steps, written into ``buffer`` as scalars and histograms."""

    def __init__(self, buffer, workspace: stats.Workspace, histograms: bool, guard):
        self.buffer, self.workspace, self.histograms, self.guard = buffer, workspace, histograms, guard

    def total_grad_norm(self, model, step: int, epoch: int) -> None:
        """All gradients' joint norm, as clip_grad_norm_ measures it: a norm that is the same at every
        recorded step is a clipped one (max_norm), which the diagnosis weighs against a slow layer."""
        grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
        if grads:
            total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g).float() for g in grads]))
            self.buffer.scalar(step, epoch, Q.MODEL_LAYER, Q.GRAD_NORM_TOTAL, total)

    def parameters(self, layers, grads: dict, before: dict, missing: dict, step: int, epoch: int) -> None:
        """Each trainable layer's gradient and weight statistics; ``before``: the weights before the
        optimizer step (for the update:data ratio); ``missing``: layer -> steps without a gradient."""
        for lay in layers:
            g = grads.get(lay.name)
            if g is None:  # unused in forward, detached, or grads cleared before rec.step()
                missing.setdefault(lay.name, []).append(step)
                continue
            gv, wv = lay.view(g.detach()), lay.view(lay.param.detach())
            pre = before.get(lay.name)
            ref = wv if pre is None else lay.view(pre)
            g_std, w_std = stats.std(gv), stats.std(ref)  # computed once, shared with the ratios
            lay.note_role(ref, w_std)  # weight / norm / constant-init, for the ratio rules (once)
            scalar = partial(self.buffer.scalar, step, epoch, lay.name)  # (quantity, value)
            scalar(Q.GRAD_NORM, stats.norm(gv))
            scalar(Q.GRAD_STD, g_std)
            scalar(Q.GRAD_MEAN, stats.mean(gv))
            scalar(Q.WEIGHT_STD, w_std)
            scalar(Q.GRAD_DATA_RATIO, stats.grad_data_ratio(gv, ref, g_std, w_std))
            if ref.dim() >= 3 and ref.shape[1] > 1:  # a weight with units: are they all copies of each other?
                scalar(Q.UNIT_SPREAD, stats.unit_spread(wv))
            if pre is not None:
                scalar(Q.UPDATE_DATA_RATIO, stats.update_data_ratio(wv, ref, w_std, self.workspace))
            self.buffer.histograms(step, epoch, lay.name, Q.GRAD, gv, self.histograms)

    def activation(self, lay, x, out, step: int, epoch: int) -> None:
        """An activation's output moments, histograms and saturation (from its input ``x``), and hooks
        on the gradients that will flow through it in this step's backward pass."""
        o = lay.view(out.detach())
        self.buffer.scalar(step, epoch, lay.name, Q.ACT_MEAN, stats.mean(o))
        self.buffer.scalar(step, epoch, lay.name, Q.ACT_STD, stats.std(o))
        self.buffer.histograms(step, epoch, lay.name, Q.ACT, o, self.histograms)
        if x is not None and x.is_floating_point() and x.shape == out.shape:
            d, peak = lay.derivative_and_max(x)
            self.buffer.scalar(step, epoch, lay.name, Q.SATURATION, stats.saturation(d, peak, workspace=self.workspace))
        if out.requires_grad:
            out.register_hook(self.guard(self._gradient_hook(lay, Q.ACT_GRAD_OUT_NONFINITE, step, epoch)))
        if x is not None and x.requires_grad:
            x.register_hook(self.guard(self._gradient_hook(lay, Q.ACT_GRAD_IN_NONFINITE, step, epoch)))

    def _gradient_hook(self, lay, nonfinite_quantity, step, epoch):
        """The gradient at the activation's output (its std and non-finite count) or at its input (the
        non-finite count: more there than at the output means the activation's backward made them).
        ``step``/``epoch``: the backward runs before rec.step() moves on."""
        def hook(g):
            gv = lay.view(g.detach())
            if nonfinite_quantity == Q.ACT_GRAD_OUT_NONFINITE:
                self.buffer.scalar(step, epoch, lay.name, Q.ACT_GRAD_STD, stats.std(gv))
            self.buffer.scalar(step, epoch, lay.name, nonfinite_quantity, stats.nonfinite_count(gv, self.workspace))
        return hook
