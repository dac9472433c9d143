"""Candidate causes about the two numbers a user sets that move every layer at once, for the ranked
alternatives (gradflow.diagnose.alternatives): the learning rate and the initial weight scale.

They reason as a person would. One learning rate moves every layer, so a layer moving at a healthy
pace says the rate is not too low (the slow layers' own gradients are small). The initial scale is
measured before the rate takes a single step, so an oversized start comes before the rate when a
net blows up. Each returns (score, one line of evidence).
"""
from __future__ import annotations

import math

from .facts import Facts
from .finding import num
from .scores import AGAINST, FOR, STRONG, UNKNOWN

HEALTHY_UPDATE = (1e-4, 1e-2)  # update:data around 1e-3 (Karpathy); a decade either way is still fine
SMALL_INIT = 0.3  # first-layer weight std below 0.3 / sqrt(fan_in): too small to carry the signal
LARGE_INIT = 3.0  # ... above 3 / sqrt(fan_in): too large


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
    return (STRONG if u < HEALTHY_UPDATE[0] else (UNKNOWN if u < 1e-3 else AGAINST)), line


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
    elif score == STRONG and "UNNORMALIZED_INPUT" in F.codes:
        # raw inputs make the first layer's gradient, its updates and the logits large at any rate:
        # normalise first, then judge the rate (case study 002: SGD lr=0.01 on raw pixels)
        score = FOR
        parts.append("but the inputs are unnormalised, which alone makes updates and losses this large")
    return score, "; ".join(parts)
