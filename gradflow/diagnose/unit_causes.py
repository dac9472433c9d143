"""Candidate causes about ReLU-family units that are off, for the ranked alternatives
(gradflow.diagnose.alternatives): a ReLU is flat on one side only, its negative half, so a "saturated"
or dead ReLU layer is one whose units are switched off. Whether they were off before the optimizer
took a single step tells the causes apart: off from the first recorded step is how the layer was set up
(a bias initialised far negative), off later is what training did to them (too high a learning rate).
Each returns (score, one line of evidence).
"""
from __future__ import annotations

from .. import quantities as Q
from .facts import Facts
from .scale_causes import high_lr
from .scores import NOT_SEEN, STRONG, UNKNOWN

# SATURATION's own limit for a one-sided activation: this share of units off is a layer switched off
OFF_SHARE = 0.95


def _off_at_start(F: Facts, f) -> tuple[float, int, str] | None:
    """(share of units off, the step, the layer) at the recording's first step, for the finding's worst
    layer; None when the saturation of its layers was not recorded."""
    layers = list(f.layers or ([f.layer] if f.layer else []))
    sat = F.ev.quantity(Q.SATURATION)
    if sat.empty or not layers:
        return None
    first_step = int(sat["step"].min())
    mine = sat[sat["layer"].isin(layers)]
    at_start = mine[mine["step"] == first_step]
    if at_start.empty:
        return None
    # the most switched-off layer: the one the finding is about (every ReLU layer is half off at the start)
    row = at_start.loc[at_start["value"].astype(float).idxmax()]
    return float(row["value"]), first_step, str(row["layer"])


def off_from_start(F: Facts, f):
    """Units off at the first recorded step, before training moved them: the layer's set-up did it."""
    start = _off_at_start(F, f)
    if start is None:
        return UNKNOWN, "the units' activity at the start was not recorded"
    share, step, layer = start
    line = f"{100 * share:.1f} % of the units of {F.ev.layer_title(layer)} were off at step {step}"
    if share >= OFF_SHARE:
        return STRONG, f"{line}, before training could move them"
    return NOT_SEEN, f"only {line}: training switched them off later"


def knocked_out(F: Facts, f):
    """Too high a learning rate pushes units negative for good; not when they were off from the start."""
    start = _off_at_start(F, f)
    if start is not None and start[0] >= OFF_SHARE:
        return NOT_SEEN, (f"{100 * start[0]:.1f} % of the units were already off at step {start[1]}, before any "
                          "update: not the learning rate")
    return high_lr(F, f)
