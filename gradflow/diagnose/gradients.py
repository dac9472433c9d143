"""Rules on weight gradients: vanishing or exploding flow, update:data ratio, NaN/inf."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, num, who

# Gradient flow: first vs last trainable layer's weight-gradient std (median over recorded steps).
# Healthy ReLU/tanh MLPs stay within one order of magnitude of each other; the tutorial's sigmoid
# net at initialisation is at ~1e-4 (input layer ~1e-5, output layer ~0.1).
VANISHING_RATIO = 1e-2  # two orders of magnitude smaller at the input end
EXPLODING_RATIO = 1e2  # two orders of magnitude larger at the input end


def _first_last_ratio(g: pd.DataFrame, member: int, first: str, last: str) -> pd.DataFrame | None:
    """Per recorded step, the two layers' gradient std where both are finite and non-zero."""
    gm = g[g["member"] == member].pivot_table(index="step", columns="layer", values="value")
    if first not in gm or last not in gm:
        return None
    both = gm[[first, last]].replace(0, np.nan).dropna()
    both = both[np.isfinite(both).all(axis=1)]
    return None if both.empty else both


def gradient_flow(ev: Evidence) -> list[Finding]:
    """VANISHING_GRADIENT / EXPLODING_GRADIENT from the first vs last layer's weight-gradient std."""
    params, g = ev.layers("param"), ev.quantity(Q.GRAD_STD)
    if len(params) < 2 or g.empty:
        return []
    first, last = params[0]["name"], params[-1]["name"]
    out = []
    for member, seed in ev.members(g):
        both = _first_last_ratio(g, member, first, last)
        if both is None:
            continue
        r = both[first] / both[last]
        med, s0 = float(np.exp(np.median(np.log(r)))), int(both.index[0])
        ev_ = {"first_layer": first, "last_layer": last, "ratio_median": med, "ratio_first_step": float(r.iloc[0]),
               "first_grad_std": float(both[first].iloc[0]), "last_grad_std": float(both[last].iloc[0]),
               "recorded_steps": len(r)}
        cite = (f"{first}'s weight-gradient std is {num(ev_['first_grad_std'])} against {num(ev_['last_grad_std'])} in "
                f"{last} at step {s0} (ratio {num(ev_['ratio_first_step'])}; median ratio {num(med)} over {len(r)} recorded steps)")
        if med < VANISHING_RATIO:
            acts = [a for a in ev.layers("activation") if a.get("bounded")]
            cause = (f"; the bounded activation ({acts[0]['activation']}) has a small maximum derivative "
                     f"({num((acts[0].get('max_derivative') or [float('nan')])[0])}), so each layer shrinks the gradient"
                     if acts else "")
            out.append(Finding("VANISHING_GRADIENT", "warning", first, s0,
                               f"Gradients vanish towards the input{who(member, seed)}: {cite}{cause}.", ev_,
                               "Use a ReLU-family activation (relu, leakyrelu, elu, swish), a matching initialisation "
                               "(kaiming for ReLU, xavier for tanh), or normalisation layers; check the early layers' "
                               "update:data ratio.", member, seed))
        elif med > EXPLODING_RATIO:
            out.append(Finding("EXPLODING_GRADIENT", "warning", first, s0,
                               f"Gradients grow towards the input{who(member, seed)}: {cite}.", ev_,
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), use a smaller "
                               "initialisation or normalisation layers.", member, seed))
    return out


EXPLODING_GRAD_DATA = 10.0  # a gradient ten times the weights' own scale: one SGD step rewrites them
EXPLODING_GROWTH = 1e3  # weight-gradient norm grew a thousandfold since the first recorded step


def _largest_growth(norms: pd.DataFrame):
    """(layer, growth, first step, last step) of the layer whose gradient norm grew most, above the limit."""
    growth = None
    for layer, rows in norms.groupby("layer"):
        if len(rows) >= 2:
            gr = rows["value"].iloc[-1] / rows["value"].iloc[0]
            if gr > EXPLODING_GROWTH and (growth is None or gr > growth[1]):
                growth = (layer, float(gr), int(rows["step"].iloc[0]), int(rows["step"].iloc[-1]))
    return growth


def exploding_scale(ev: Evidence) -> list[Finding]:
    """EXPLODING_GRADIENT from a gradient far larger than its weights, or a norm that grew a thousandfold."""
    out = []
    gd, gn = ev.quantity(Q.GRAD_DATA_RATIO), ev.quantity(Q.GRAD_NORM)
    for member, seed in ev.members(gd):
        d = gd[(gd["member"] == member) & np.isfinite(gd["value"])]
        big = d[d["value"] > EXPLODING_GRAD_DATA]
        growth = _largest_growth(gn[(gn["member"] == member) & np.isfinite(gn["value"]) & (gn["value"] > 0)]
                                 .sort_values("step"))
        if not big.empty:
            r = big.sort_values("step").iloc[0]
            out.append(Finding("EXPLODING_GRADIENT", "error", r["layer"], int(r["step"]),
                               f"{r['layer']}'s gradient is {num(r['value'])}x the std of its weights at step {int(r['step'])}"
                               f"{who(member, seed)} (above {EXPLODING_GRAD_DATA:g}): one optimizer step can rewrite the layer.",
                               {Q.GRAD_DATA_RATIO: float(r["value"]), "threshold": EXPLODING_GRAD_DATA},
                               "Lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), normalise inputs.",
                               member, seed))
        elif growth is not None:
            layer, gr, s0, s1 = growth
            out.append(Finding("EXPLODING_GRADIENT", "warning", layer, s1,
                               f"{layer}'s gradient norm grew {num(gr)}x between steps {s0} and {s1}{who(member, seed)}.",
                               {"growth": gr, "from_step": s0, "to_step": s1},
                               "Lower the learning rate or clip gradients; look for a diverging loss.", member, seed))
    return out


# Update:data ratio (std of the optimizer's change / std of the weight): ~1e-3 is healthy
# (Karpathy, makemore part 3). Two orders of magnitude either way is a learning-rate problem.
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1


def update_ratio(ev: Evidence) -> list[Finding]:
    """UPDATE_RATIO: a layer's median update:data ratio far from 1e-3."""
    u = ev.quantity(Q.UPDATE_DATA_RATIO)
    u = u[np.isfinite(u["value"].astype(float))]
    out = []
    for (member, layer), rows in u.groupby(["member", "layer"]):
        if (rows["value"] == 0).all():
            continue  # no optimizer step between the recorded steps (a one-batch snapshot), not a tiny one
        med = float(rows["value"].median())
        if UPDATE_RATIO_LOW <= med <= UPDATE_RATIO_HIGH:
            continue
        seed = None if pd.isna(rows["seed"].iloc[0]) else int(rows["seed"].iloc[0])
        small = med < UPDATE_RATIO_LOW
        out.append(Finding(
            "UPDATE_RATIO", "warning", layer, int(rows["step"].iloc[0]),
            f"{layer}'s update:data ratio (std of the optimizer's change / std of the weights) has median {num(med)} "
            f"(log10 {num(math.log10(med)) if med > 0 else '-inf'}) over {len(rows)} recorded steps{who(member, seed)}; "
            f"about 1e-3 is healthy: the layer {'barely moves' if small else 'is rewritten too fast'}.",
            {"median": med, "low": UPDATE_RATIO_LOW, "high": UPDATE_RATIO_HIGH, "steps": len(rows)},
            ("Raise the learning rate (or fix what makes this layer's gradient vanish)." if small else
             "Lower the learning rate, or use warm-up / gradient clipping."), int(member), seed))
    return out
