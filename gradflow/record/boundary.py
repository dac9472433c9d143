"""What crosses the model's boundary on recorded training steps, for the rules that look at the
model from outside: the input's range (raw 0-255 pixels?), the output's range and what produced it
(a softmax or tanh left on the logits?), the model's train/eval mode (model.eval() left on?), the
targets passed to rec.step() (outside the output's reach?), and a dropout-mask probe on a slice of
the first recorded batch (a keep-probability passed as p?).

The Recorder owns the hooks and calls these on recorded training forwards only; everything here is
read once, by ``Recorder.summary()``.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import quantities as Q
from ..activations import is_bounded
from ..loss_graph import node_name
from .dropout_probe import probe_dropout, probe_slice
from .layers import first_float_tensor

MIN_CLASS_BATCH = 16  # class labels per batch below this say little about the order of the data


class ModelBoundary:
    """The model's inputs, outputs, mode and targets, as seen on recorded training steps.

    scalar -- ``scalar(layer, quantity, value)`` stores one (members,) value at the current step
    """

    def __init__(self, model: nn.Module, layers, members: int, scalar):
        self.model, self.layers, self.members = model, layers, members
        self._scalar = scalar
        self._root_stacked = hasattr(model, "members")  # gradflow's batched model: dim 0 is the member
        self.mode: dict[int, bool] = {}  # recorded step -> was the model in training mode (model.train())?
        self.output: dict = {}  # what feeds the model output (bounded logits?)
        self.targets: dict = {}  # running min/max of the targets passed to rec.step()
        self.dropout_masks: list | None = None  # the probe's result (None: not probed)
        self._probe_input = None  # a slice of the first recorded batch, for the dropout-mask probe

    def on_input(self, step: int, training: bool, args, kwargs=None) -> None:
        self.mode[step] = training  # model.eval() left on while training: EVAL_MODE
        x = first_float_tensor((args, kwargs or {}))
        if x is None or not x.numel():
            return
        self._record_range(Q.INPUT_LAYER, Q.INPUT_RANGE, x)
        # the mask probe re-runs the model on a slice of one plain positional tensor: only that call shape
        single = len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor)
        if self.dropout_masks is None and self._probe_input is None and single:
            self._probe_input = probe_slice(x, self._root_stacked and x.dim() >= 3 and x.shape[0] == self.members)

    def on_output(self, y, last_activation) -> None:
        """``last_activation``: (layer, its output) of the last activation module in this forward."""
        if y is None or not y.is_floating_point() or not y.numel():
            return
        self._record_range(Q.OUTPUT_LAYER, Q.OUTPUT_RANGE, y)
        last = last_activation if last_activation is not None and last_activation[1] is y else None
        self.output.update(features=int(y.shape[-1]) if y.dim() else 1, shape=list(y.shape),
                           grad_fn=node_name(y.grad_fn) or None,
                           activation_layer=None if last is None else last[0].name)
        self.output["bounded"] = bool(is_bounded(self.output["grad_fn"]) or (last is not None and last[0].bounded))

    def _record_range(self, layer, names: dict, x):
        per_member = self._root_stacked and x.dim() >= 2 and x.shape[0] == self.members
        flat = x.detach().reshape(self.members if per_member else 1, -1).float()
        values = {"min": flat.amin(dim=1), "max": flat.amax(dim=1), "mean": flat.mean(dim=1),
                  "std": flat.std(dim=1, correction=0)}
        for stat, v in values.items():
            self._scalar(layer, names[stat], v.expand(self.members))

    def note_targets(self, targets) -> None:
        t = torch.as_tensor(targets).detach()
        if not t.numel() or t.is_complex() or t.dtype == torch.bool:
            return
        lo, hi = t.amin(), t.amax()  # kept on the device: read once, by targets_summary()
        old = self.targets
        classes = list(old.get("batch_classes", [])) if old else []
        if not t.is_floating_point() and t.dim() == 1 and t.numel() >= MIN_CLASS_BATCH:
            # how many classes this batch mixes: a loader that never shuffles a dataset stored class by
            # class (DataLoader's default on ImageFolder) feeds one class at a time (UNSHUFFLED_DATA)
            classes.append([int(t.numel()), int(torch.unique(t).numel())])  # recorded steps only: one sync
        self.targets = {"min": lo if not old else torch.minimum(old["min"], lo),
                        "max": hi if not old else torch.maximum(old["max"], hi),
                        "float": t.is_floating_point(), "shape": list(t.shape), "batch_classes": classes}

    def probe_pending(self) -> bool:
        return self._probe_input is not None

    def probe_dropout(self) -> None:
        """After the first recorded step: which units each dropout layer zeroes on the kept slice."""
        x, self._probe_input = self._probe_input, None
        try:
            self.dropout_masks = probe_dropout(self.model, self.layers, x)
        except Exception as exc:  # a model that needs more than one input, ...: no probe, not a recorder error
            self.dropout_masks = [{"skipped": f"{type(exc).__name__}: {exc}"[:200]}]

    def targets_summary(self) -> dict | None:
        return {k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in self.targets.items()} or None

