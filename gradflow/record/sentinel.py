"""The NaN/Inf sentinel: the first step, layer and place where a non-finite value appeared.

Two sources feed one log of first sightings per (member, layer, where):
- every step (``nonfinite_check='every_step'``), one norm per hooked tensor and member: a norm is
  non-finite iff some element is. Ordinary layers' norms are fused into one ``_foreach_norm``
  call; nothing is read back until the buffer flushes, so the step is not synced;
- on recorded steps, the exact counts the histograms' last bin holds (``*_nonfinite`` quantities)
  and whole-model values (input/output range, loss) that are themselves NaN/inf.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import stats
from ..quantities import (
    ACTIVATION_LOC,
    GRAD_LOC,
    LOCATION_OF_COUNT,
    LOCATION_OF_VALUE,
    LOSS_LOC,
    MODEL_LAYER,
    WHOLE_MODEL_LAYERS,
)

UNKNOWN_COUNT = -1  # a norm says "some value is NaN/inf", not how many


class NonfiniteLog:
    """First sighting per (member, layer, where) -> (step, epoch, count)."""

    def __init__(self):
        self.first: dict = {}

    def note(self, member, layer, where, step, epoch, count):
        key = (int(member), layer, where)
        old = self.first.get(key)
        # an earlier step wins; at the same step an exact count replaces a norm's "unknown"
        if old is None or step < old[0] or (step == old[0] and old[2] < 0 <= count):
            self.first[key] = (int(step), int(epoch), int(count))

    def note_chunk(self, chunk: pd.DataFrame):
        """Non-finite counts and non-finite whole-model values in a flushed scalar table."""
        bad = chunk[chunk["quantity"].isin(list(LOCATION_OF_COUNT)) & (chunk["value"] > 0)]
        for r in bad.itertuples(index=False):
            self.note(r.member, r.layer, LOCATION_OF_COUNT[r.quantity], r.step, r.epoch, int(r.value))
        whole = chunk[chunk["layer"].isin(WHOLE_MODEL_LAYERS) & ~np.isfinite(chunk["value"])]
        for r in whole.itertuples(index=False):
            self.note(r.member, r.layer, LOCATION_OF_VALUE.get(r.quantity, r.quantity), r.step, r.epoch,
                      UNKNOWN_COUNT)


class Sentinel:
    """Per-step norms of the step's activations, weight gradients and loss, checked at flush time."""

    def __init__(self, members: int, log: NonfiniteLog):
        self.members, self.log = members, log
        self._pending: list = []  # (step, epoch, layout tuple, tensor (K,))

    def __len__(self) -> int:
        return len(self._pending)

    def check(self, step, epoch, activations, grads, loss):
        """``activations``: [(layer, output)]; ``grads``: [(layer, gradient)]; ``loss``: tensor or None."""
        layout, values, single, single_layout = [], [], [], []
        tensors = [(ACTIVATION_LOC, lay, out) for lay, out in activations]
        tensors += [(GRAD_LOC, lay, g) for lay, g in grads]
        for where, lay, t in tensors:
            if lay.stacked:  # one norm per member
                values.append(stats.norm(lay.view(t.detach())))
                layout.append((where, lay.name, lay.members))
            else:  # ordinary layers: gathered into one fused _foreach_norm call below
                single.append(t.detach())
                single_layout.append((where, lay.name, 1))
        if single:
            if len({(t.dtype, t.device) for t in single}) == 1:
                norms = torch.stack(torch._foreach_norm(single)).float()
            else:  # mixed precision or devices: one norm each
                norms = torch.stack([torch.linalg.vector_norm(t.float()) for t in single])
            values.insert(0, norms.to(values[0].device) if values else norms)
            layout = single_layout + layout
        if isinstance(loss, torch.Tensor):
            v = loss.detach().reshape(-1).float()
            values.append(v)
            layout.append((LOSS_LOC, MODEL_LAYER, v.numel()))
        if values:
            self._pending.append((step, epoch, tuple(layout), torch.cat(values)))

    def flush(self):
        if not self._pending:
            return
        pend, self._pending = self._pending, []
        flat = torch.cat([v for *_, v in pend]).cpu().numpy()
        start = 0
        for step, epoch, layout, v in pend:
            vals = flat[start:start + v.numel()]
            start += v.numel()
            if np.isfinite(vals).all():
                continue
            i = 0
            for where, layer, m in layout:
                for member in range(m):
                    if not np.isfinite(vals[i + member]):
                        shared_loss = where == LOSS_LOC and m != self.members  # one loss for all members
                        self.log.note(-1 if shared_loss else member, layer, where, step, epoch, UNKNOWN_COUNT)
                i += m
