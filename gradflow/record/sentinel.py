"""The NaN/Inf sentinel: the first step, layer and place where a non-finite value appeared.

Two sources feed one log of first sightings per (member, layer, where):
- every step (``nonfinite_check='every_step'``), one norm per hooked tensor and member: a norm is
  non-finite iff some element is. Ordinary layers' norms are fused into one ``_foreach_norm``
  call. The norms are folded on the device into "first non-finite step" (and its epoch) per
  slot (member, layer, where) -- a handful of elementwise kernels, nothing read back -- and the
  host reads that state once per epoch (and on flush). Folding keeps exactly what the log keeps
  (the first step per member, layer and where; the count of a norm is unknown anyway), so the
  NONFINITE finding sees the same first place; only the per-step norms are no longer kept. The
  step and epoch may be device tensors, so the check can run inside a captured CUDA graph. On the
  CPU, where reading a value back costs nothing, one plain sum per tensor clears a clean step
  first (half a norm's cost), and the norms and the fold run only for a step that is not;
- on recorded steps, the exact counts the histograms' last bin holds (``*_nonfinite`` quantities)
  and whole-model values (input/output range, loss) that are themselves NaN/inf.

Steps on which no optimizer stepped the model (the Recorder's optimizer watch says so) are kept
apart: a gradient scaler (``torch.amp.GradScaler``) skips ``optimizer.step()`` exactly when the
gradients hold inf/NaN, which mixed precision does by design while it calibrates its scale. When
every such step had non-finite values and the optimizer did step on the others, those sightings are
the scaler's skipped steps, reported as such (``skipped_steps``), not as NONFINITE; otherwise (a
loop that calls rec.step() per micro-batch, or never steps a torch optimizer) they join the others.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import stats
from ..quantities import (
    ACTIVATION_LOC,
    BACKWARD_LOCATIONS,
    GRAD_LOC,
    LOCATION_OF_COUNT,
    LOCATION_OF_VALUE,
    LOSS_LOC,
    MODEL_LAYER,
    WHOLE_MODEL_LAYERS,
)

UNKNOWN_COUNT = -1  # a norm says "some value is NaN/inf", not how many


UNSTEPPED_KEPT = 10_000  # steps without an optimizer step remembered; more is not a scaler's calibration


def _keep_first(first: dict, key, step, epoch, count) -> None:
    old = first.get(key)
    # an earlier step wins; at the same step an exact count replaces a norm's "unknown"
    if old is None or step < old[0] or (step == old[0] and old[2] < 0 <= count):
        first[key] = (int(step), int(epoch), int(count))


class NonfiniteLog:
    """First sighting per (member, layer, where) -> (step, epoch, count), kept apart for the steps
    on which no optimizer stepped the model (``unstepped``)."""

    def __init__(self):
        self.first: dict = {}
        self.first_unstepped: dict = {}
        self.unstepped: set[int] = set()  # rec.step() indices without an optimizer step (up to UNSTEPPED_KEPT)
        self.unstepped_count = 0
        self.keep_apart = False  # decided by Sentinel.settle(): the unstepped sightings are a scaler's skips

    def mark_unstepped(self, step: int) -> None:
        self.unstepped_count += 1
        if len(self.unstepped) < UNSTEPPED_KEPT:
            self.unstepped.add(int(step))

    def note(self, member, layer, where, step, epoch, count):
        _keep_first(self.first_unstepped if int(step) in self.unstepped else self.first,
                    (int(member), layer, where), step, epoch, count)

    def sightings(self) -> dict:
        """The first sightings the nonfinite table holds: the unstepped ones too, unless they are kept apart."""
        if self.keep_apart:
            return self.first
        merged = dict(self.first)
        for key, (step, epoch, count) in self.first_unstepped.items():
            _keep_first(merged, key, step, epoch, count)
        return merged

    def note_chunk(self, chunk: pd.DataFrame):
        """Non-finite counts and non-finite whole-model values in a flushed scalar table."""
        bad = chunk[chunk["quantity"].isin(list(LOCATION_OF_COUNT)) & (chunk["value"] > 0)]
        for r in bad.itertuples(index=False):
            self.note(r.member, r.layer, LOCATION_OF_COUNT[r.quantity], r.step, r.epoch, int(r.value))
        # the loss and the input/output ranges; a non-finite joint gradient norm is told by the layers' own counts
        whole = chunk[chunk["layer"].isin(WHOLE_MODEL_LAYERS) & chunk["quantity"].isin(list(LOCATION_OF_VALUE))
                      & ~np.isfinite(chunk["value"])]
        for r in whole.itertuples(index=False):
            self.note(r.member, r.layer, LOCATION_OF_VALUE.get(r.quantity, r.quantity), r.step, r.epoch,
                      UNKNOWN_COUNT)


def _all_finite_on_cpu(activations, grads, loss) -> bool:
    """True when every tensor is on the CPU and finite. A sum is non-finite iff some element is (or
    the values are too large for float32 to add up, and then the exact check runs and decides), and
    a plain sum reads memory twice as fast as a norm here; reading it back costs nothing on a CPU."""
    tensors = [t for _, t in activations] + [t for _, t in grads]
    if isinstance(loss, torch.Tensor):
        tensors.append(loss)
    if any(t.device.type != "cpu" or t.is_complex() for t in tensors):
        return False  # a GPU is not asked: a read-back would wait for it every step (complex: the norms)
    with torch.no_grad():
        return math.isfinite(sum(t.sum(dtype=torch.float32).item() for t in tensors))  # fp16 would overflow


EPOCH_BITS = 20  # a sighting is coded as step << EPOCH_BITS | epoch: the smallest code is the first step
NONE_SEEN = torch.iinfo(torch.long).max


class _FirstBad:
    """Device state of one layout: per slot, the code of the first step with a non-finite norm.

    Steps only grow, so "first" is a running minimum: one where() and one in-place minimum per
    step (the cheapest fold measured on the CPU; a masked fill of step and epoch cost twice that)."""

    def __init__(self, layout: tuple, values: torch.Tensor):
        self.layout = layout
        self.code = torch.full(values.shape, NONE_SEEN, dtype=torch.long, device=values.device)

    def fold(self, step, epoch, values: torch.Tensor) -> None:
        code = step * (1 << EPOCH_BITS) + epoch  # an int, or a 0-dim device tensor inside a graph
        torch.minimum(self.code, torch.where(torch.isfinite(values), NONE_SEEN, code), out=self.code)

    def sightings(self):
        """(slot, step, epoch) of every slot that saw a non-finite value (reads the state back)."""
        codes = self.code.cpu().numpy()
        for i in np.flatnonzero(codes != NONE_SEEN):
            yield int(i), int(codes[i]) >> EPOCH_BITS, int(codes[i]) & ((1 << EPOCH_BITS) - 1)


class Sentinel:
    """Per-step norms of the step's activations, weight gradients and loss, folded on the device."""

    def __init__(self, members: int, log: NonfiniteLog):
        self.members, self.log = members, log
        # (layout, unstepped) -> first-bad state (a layout is stable per model); the steps without an
        # optimizer step fold apart, so a skipped step cannot hide a later sighting in the same place
        self._state: dict[tuple, _FirstBad] = {}
        self._epoch = None  # the epoch of the last check: a new one reads the state back
        self._unstepped_bad = None  # device count of unstepped steps with a non-finite value

    def __len__(self) -> int:
        return 0  # nothing accumulates between flushes: the state has a fixed size

    def check(self, step, epoch, activations, grads, loss, unstepped: bool = False, all_grads=()):
        """``activations``: [(layer, output)]; ``grads``: [(layer, gradient)]; ``loss``: tensor or None.
        ``step``/``epoch``: ints, or 0-dim long tensors on the device (inside a CUDA graph).
        ``unstepped``: no optimizer stepped the model on this step (the log was told, mark_unstepped);
        ``all_grads``: then every parameter's gradient, biases too, as a gradient scaler checks them."""
        if not isinstance(epoch, torch.Tensor) and epoch != self._epoch:
            if self._epoch is not None:
                self.flush()  # once per epoch: one small read, after the epoch's last step
            self._epoch = epoch
        extra = list(all_grads) if unstepped else []
        if not isinstance(step, torch.Tensor) and _all_finite_on_cpu(
                activations, [*grads, *((None, g) for g in extra)], loss):
            return
        layout, values = self._norms(activations, grads, loss)
        if unstepped:
            self._count_unstepped(values, extra)
        if not values:
            return
        v = torch.cat(values)
        state = self._state.get((layout, unstepped))
        if state is None:
            if v.is_cuda and torch.cuda.is_current_stream_capturing():  # its -1 fill would replay every step
                raise RuntimeError("the sentinel's state for these layers must exist before a CUDA graph is "
                                   "captured: run one eager step with the same layers first")
            state = self._state[(layout, unstepped)] = _FirstBad(layout, v)
        state.fold(step, epoch, v)

    def _count_unstepped(self, values: list, all_grads: list) -> None:
        """One more step without an optimizer step that held a non-finite value (or not): counted on
        the device, read once when the recording is settled."""
        sums = [g.detach().float().sum().reshape(1) for g in all_grads] + [v.reshape(-1) for v in values]
        if not sums:
            return
        sums = [t.to(sums[0].device) for t in sums]
        if self._unstepped_bad is None:
            self._unstepped_bad = torch.zeros((), dtype=torch.long, device=sums[0].device)
        self._unstepped_bad += (~torch.isfinite(torch.cat(sums))).any()

    def settle(self, model_steps: int, order: dict | None = None) -> dict | None:
        """Decide whether the steps without an optimizer step are a gradient scaler's skips: the model's
        optimizer stepped on other steps, and every step it did not take had a non-finite value.
        Returns what the summary says of them (None when there were none)."""
        self.flush()
        log, n = self.log, self.log.unstepped_count
        if not n:
            return None
        bad = int(self._unstepped_bad) if self._unstepped_bad is not None else 0
        log.keep_apart = bool(model_steps) and bad == n <= UNSTEPPED_KEPT
        kept = sorted(log.unstepped)
        order = order or {}
        def first_reached(kv):  # the earliest step; the forward pass in its order, then the backward pass in its own
            (_, layer, where), (step, _, _) = kv
            backward = where in BACKWARD_LOCATIONS
            at = order.get(layer, 1 << 30)
            return step, backward, -at if backward else at
        place = min(log.first_unstepped.items(), key=first_reached, default=None)
        return {"steps": n, "nonfinite": bad, "optimizer_steps": int(model_steps), "skipped_by_scaler": log.keep_apart,
                "first": kept[0], "last": kept[-1], "places": len(log.first_unstepped),
                "first_place": None if place is None else {"layer": place[0][1], "where": place[0][2], "step": place[1][0],
                                                           "phase": "backward" if place[0][2] in BACKWARD_LOCATIONS
                                                           else "forward"}}

    def _norms(self, activations, grads, loss):
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
        values = [v.float() for v in values]  # bf16 norms join float32 ones
        return tuple(layout), values

    def flush(self):
        """Read every layout's state (one small copy each) and note its first sightings in the log
        (which keeps a step without an optimizer step apart by its step)."""
        for state in self._state.values():
            slots = [(where, layer, member, m) for where, layer, m in state.layout for member in range(m)]
            for i, step, epoch in state.sightings():
                where, layer, member, m = slots[i]
                shared_loss = where == LOSS_LOC and m != self.members  # one loss for all members
                self.log.note(-1 if shared_loss else member, layer, where, step, epoch, UNKNOWN_COUNT)
