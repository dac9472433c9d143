"""Candidate causes about the numbers a user sets that move every layer at once, for the ranked
alternatives (gradflow.diagnose.alternatives): the learning rate, the weight decay and the initial
weight scale.

They reason as a person would. One learning rate moves every layer, so a layer moving at a healthy
pace says the rate is not too low (the slow layers' own gradients are small). The initial scale is
measured before the rate takes a single step, so an oversized start comes before the rate when a
net blows up. Each returns (score, one line of evidence).
"""
from __future__ import annotations

import math

import numpy as np

from .. import quantities as Q
from .facts import Facts
from .finding import num
from .scores import AGAINST, FOR, NOT_SEEN, STRONG, UNKNOWN

HEALTHY_UPDATE = (1e-4, 1e-2)  # update:data around 1e-3 (Karpathy); a decade either way is still fine
SMALL_INIT = 0.3  # first-layer weight std below 0.3 / sqrt(fan_in): too small to carry the signal
LARGE_INIT = 3.0  # ... above 3 / sqrt(fan_in): too large
DECAYED = 0.3  # weights whose std fell below 0.3 x their first while weight decay is on: decay won
DECAY_PULL = 0.1  # ... or shrinking (below 0.8x), with a decay whose pull alone leaves under 10 % of a weight by the end


def _first_weight_scale(F: Facts):
    """(its std / 1/sqrt(fan_in), the sentence citing it), or None when not recorded."""
    if F.first_weight is None:
        return None
    layer, std, he = F.first_weight
    return std / he, (f"{F.ev.layer_title(layer)} starts with weight std {num(std)} = {num(std / he)} x "
                      f"1/sqrt(fan_in) ({num(he)})")


def small_init(F: Facts, f):
    scale = _first_weight_scale(F)
    if scale is None:
        return UNKNOWN, "weight std not recorded"
    if scale[0] >= SMALL_INIT and scale[0] < 1 and F.bounded:
        # PyTorch's default (0.58 x 1/sqrt(fan_in)) is no bug, but behind an activation whose slope is
        # below 1 every layer's weights shrink the gradient further; Kaiming's 2.4x larger start helps
        a = F.bounded[0]
        return UNKNOWN, (f"{scale[1]}: PyTorch's default scale, about 2.4x below Kaiming's; behind {F.act_name(a)}, "
                         "whose slope is below 1, larger initial weights would shrink the gradient less per layer")
    return (STRONG if scale[0] < SMALL_INIT else AGAINST), scale[1]


def large_init(F: Facts, f):
    scale = _first_weight_scale(F)
    if scale is None:
        return UNKNOWN, "weight std not recorded"
    return (STRONG if scale[0] > LARGE_INIT else AGAINST), scale[1]


def low_lr(F: Facts, f):
    u = F.update_ratio
    if u is None:
        return UNKNOWN, f"{F.lr}; update:data ratio not recorded"
    line = f"{F.lr}: median update:data ratio {num(u)} (healthy ~1e-3)"
    fast = F.fastest_update
    if u < 1e-3 and fast is not None and fast[1] >= 1e-3:  # the same rate moves one layer healthily
        return AGAINST, (f"{line}, but the same rate moves {F.ev.layer_title(fast[0])} by {num(fast[1])} per step: "
                         "the slow layers' gradients are small, not the rate")
    score = STRONG if u < HEALTHY_UPDATE[0] else (UNKNOWN if u < 1e-3 else AGAINST)
    if score == STRONG and (clip := clipped_norm(F)):
        return FOR, f"{line}; but every gradient was clipped to norm {num(clip[0])}, which alone makes the steps small"
    return score, line


def rate_for_layer(F: Facts, f):
    """UPDATE_RATIO: is this layer's learning rate off? Likely only when no other layer moves at a
    healthy rate with the same optimizer (one rate for all, unless this layer has a group of its own)."""
    if f.evidence.get("cause") == "stalled":
        return UNKNOWN, f"update:data {num(f.evidence.get('best_ratio'))} at its best: the rate was fine then"
    med = f.evidence.get("median", f.evidence.get("median_max"))  # one layer, or every layer (all_small)
    if med is None:
        return UNKNOWN, f"{F.lr}; this layer's update:data ratio not recorded"
    line = f"{F.lr}; this layer's median update:data {num(med)}"
    fast = F.fastest_update
    if med < 1e-3 and fast is not None and fast[0] != f.layer and fast[1] >= 1e-3:
        moves = f"{line}, while the same optimizer moves {F.ev.layer_title(fast[0])} by {num(fast[1])}"
        if F.ev.run_config.get("lr"):  # gradflow's own trainer: one parameter group, one rate for every layer
            return AGAINST, f"{moves}: one rate for every layer, so this layer's gradient is what is small"
        return UNKNOWN, f"{moves}: only a param group of its own would give this layer another rate"
    if f.evidence.get("cause") == "large" and "UNNORMALIZED_INPUT" in F.codes:
        # raw inputs make this layer's gradient and so its steps large at any rate (case study 002: SGD lr=0.01 on
        # 0-255 pixels trains once they are scaled): the inputs first, the rate after
        return UNKNOWN, f"{line}, but the inputs are unnormalised, which alone makes the steps this large"
    return FOR, line


def high_lr(F: Facts, f):
    u, trend = F.update_ratio, F.loss_trend
    rising = trend is not None and math.isfinite(trend[1]) and trend[1] > trend[0] * 1.05
    diverged = "DIVERGING" in F.codes or (trend is not None and not math.isfinite(trend[1]))
    parts = [F.lr]
    if u is not None:
        parts.append(f"median update:data ratio {num(u)} (healthy ~1e-3)")
    if trend is not None:
        parts.append(f"loss {num(trend[0])} -> {num(trend[1])}")
    score = UNKNOWN if u is None and trend is None else AGAINST
    if (u is not None and u > HEALTHY_UPDATE[1]) or diverged:
        score = STRONG
    elif rising:
        score = FOR
    scale = _first_weight_scale(F)
    if score == STRONG and scale is not None and scale[0] > LARGE_INIT:
        # the weights were oversized before the rate took a single step; a start that large blows up
        # as a high rate does, so the rate comes after the initialisation
        score = FOR
        parts.append(f"but {scale[1]}: oversized before any step")
    elif score == STRONG and (decay := weight_decay_shrink(F)) and decay[1] < DECAYED:
        # weights pulled towards zero make every update large next to them: the decay, not the rate
        score = FOR
        parts.append(f"but weight_decay={decay[0]:g} shrinks the weights, which alone makes that ratio large")
    elif score >= FOR and {"BOUNDED_OUTPUT", "NOT_LOG_PROBABILITIES"} & set(F.codes) and (u is None or u <= HEALTHY_UPDATE[1]):
        # a loss that misreads the outputs rises, and its gradients blow up, at any rate (case study 000:
        # Keras' log of tanh outputs under Adam lr=1e-3); with updates no larger than healthy, the rate is not shown
        score = UNKNOWN
        parts.append("but the loss misreads the model's outputs, which alone makes it rise, at a healthy update size")
    elif score >= FOR and "ACCUMULATING_GRADIENT" in F.codes:
        # a .grad never cleared sums every step's gradient: the step grows each step at any rate, and a
        # healthy SGD lr=0.01 diverges from that alone (review b01): the missing zero_grad() comes first
        score = FOR
        parts.append("but .grad is never cleared (ACCUMULATING_GRADIENT), which alone makes the steps grow")
    elif score == STRONG and "UNNORMALIZED_INPUT" in F.codes:
        # raw inputs make the first layer's gradient, its updates and the logits large at any rate:
        # normalise first, then judge the rate (case study 002: SGD lr=0.01 on raw pixels)
        score = FOR
        parts.append("but the inputs are unnormalised, which alone makes updates and losses this large")
    return score, "; ".join(parts)


def _decay_pull(o: dict, wd: float) -> float | None:
    """What weight decay alone leaves of a weight after the run's steps: SGD shrinks it by
    lr x wd / (1 - momentum) per step, AdamW by lr x wd (None: Adam's L2 is rescaled per weight)."""
    lr, steps = o.get("lr_first"), o.get("steps")
    if not lr or not steps or o.get("name") not in ("SGD", "AdamW"):
        return None
    per_step = lr * wd / (1 - (o.get("momentum") or 0.0)) if o["name"] == "SGD" else lr * wd
    return 0.0 if per_step >= 1 else math.exp(steps * math.log1p(-per_step))


def weight_decay_shrink(F: Facts) -> tuple[float, float, str] | None:
    """(weight decay, median last/first weight std over the weight layers, the sentence), or None
    when the decay or the weights were not recorded. Decay shrinks every weight by lr x wd per step
    (x 1/(1 - momentum) with SGD momentum); when that outpaces the gradient the weights go to zero."""
    o, run = F.optimizer or {}, F.ev.run_config
    # a stored recipe's own weight_decay first; a plain loop's run config (case studies) may not say, the watch does
    wd = run["weight_decay"] if run.get("lr") and run.get("weight_decay") is not None else o.get("weight_decay")
    q = F.ev.quantity(Q.WEIGHT_STD)
    q = q[q["layer"].isin([e["name"] for e in F.ev.weight_layers()])]
    if wd is None or q.empty:
        return None
    by_layer = q.sort_values("step").groupby("layer")["value"]
    first, last = by_layer.first().astype(float), by_layer.last().astype(float)
    keep = first > 0
    if not keep.any():
        return None
    shrink = float((last[keep] / first[keep]).median())
    line = f"weight_decay={float(wd):g} ({F.lr}): the weights' std went to {num(shrink)} x its first"
    pull = _decay_pull(o, float(wd)) if wd else None
    if pull is not None and pull < DECAY_PULL and shrink < 0.8:
        # the last recorded step can come long before the end; the decay's own pull says where it leads
        line += f" by step {int(q['step'].max())}, and the decay alone leaves {num(pull)} of it after {o['steps']} steps"
        shrink = min(shrink, pull)
    return float(wd), shrink, line


def strong_weight_decay(F: Facts, f):
    decay = weight_decay_shrink(F)
    if decay is None:
        return UNKNOWN, "weight decay not recorded"
    wd, shrink, line = decay
    if wd == 0:
        return NOT_SEEN, "no weight decay"
    return (STRONG if shrink < DECAYED else AGAINST), line


def l2_in_loss(F: Facts, f):
    """Weights that collapse with no weight decay in the optimizer: a penalty on them in the loss
    (loss + lam * sum(w ** 2), the hand-written twin of weight decay) is what else pulls every weight down."""
    decay = weight_decay_shrink(F)
    if decay is None:
        return UNKNOWN, "the optimizer's weight decay was not recorded"
    wd, shrink, line = decay
    if wd == 0:
        return FOR, f"the optimizer has no weight decay, yet the weights' std went to {num(shrink)} x its first"
    return (AGAINST if shrink < DECAYED else UNKNOWN), f"{line}: the optimizer's own decay"


CLIP_SPREAD = 1e-3  # a joint gradient norm that varies less than this (relative) over the steps is clipped


def clipped_norm(F: Facts) -> tuple[float, int] | None:
    """(max_norm, recorded steps) when the model's joint gradient norm is the same at every recorded
    step from 3 on (clip_grad_norm_ leaves it exactly at max_norm; a free gradient's norm wanders);
    None when it varies or was not recorded (stacked members, recordings from before diagnosis 10)."""
    v = F.ev.quantity(Q.GRAD_NORM_TOTAL)["value"].astype(float).to_numpy()
    if len(v) < 3 or not (v > 0).all():
        return None
    median = float(np.median(v))
    return (median, len(v)) if (v.max() - v.min()) <= CLIP_SPREAD * median else None


def tiny_clipping(F: Facts, f):
    """Gradients clipped every step to a norm so small that the steps are tiny whatever the rate."""
    if F.ev.config.get("training_step"):  # gradflow's own step (eager or graph): it has no clipping to set
        return NOT_SEEN, "gradflow's own training step never clips gradients"
    clip = clipped_norm(F)
    if clip is None:
        v = F.ev.quantity(Q.GRAD_NORM_TOTAL)["value"]
        if v.empty:
            return UNKNOWN, "the joint gradient norm was not recorded"
        return NOT_SEEN, f"the joint gradient norm varies ({num(float(v.min()))} to {num(float(v.max()))}): no clipping seen"
    norm, steps = clip
    u = F.update_ratio
    line = (f"the joint gradient norm is {num(norm)} at every recorded step ({steps} of {steps}): "
            f"clip_grad_norm_(max_norm={num(norm)})")
    if u is not None and u < HEALTHY_UPDATE[0]:
        return STRONG, f"{line} with {F.lr} moves the weights by {num(u)} of their size per step"
    return AGAINST, f"{line}, and the weights still move at a healthy pace" if u is not None else line
