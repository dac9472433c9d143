"""Rules on what the optimizer does with the gradients: a layer left out of it (NOT_UPDATED),
gradients never cleared between steps (ACCUMULATING_GRADIENT), and a model in which only the
normalisation layers can learn (ONLY_NORM_TRAINABLE)."""
from __future__ import annotations

import re

import numpy as np

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, num, who

# NOT_UPDATED needs this many recorded steps with an exactly unchanged weight: one could be a step
# the optimizer skipped on purpose (warm-up from zero, a GradScaler skipping an inf step).
NOT_UPDATED_MIN_STEPS = 2


def not_updated(ev: Evidence) -> list[Finding]:
    """NOT_UPDATED: a layer with gradients whose weights never change while other layers' do."""
    u, g = ev.quantity(Q.UPDATE_DATA_RATIO), ev.quantity(Q.GRAD_NORM)
    u = u[np.isfinite(u["value"].astype(float))]
    out = []
    for member, seed in ev.members(u):
        um, gm = u[u["member"] == member], g[g["member"] == member]
        moving = set(um.loc[um["value"] > 0, "layer"])
        if not moving:
            continue  # nothing moved at all: a one-batch snapshot, or no optimizer step between records
        for layer, rows in um.groupby("layer", sort=False):
            if layer in moving or len(rows) < NOT_UPDATED_MIN_STEPS:
                continue
            grads = gm[(gm["layer"] == layer) & gm["step"].isin(rows["step"])]["value"].astype(float)
            if not (grads > 0).any():
                continue  # no gradient either: NO_GRADIENT / dead-unit territory, not the optimizer
            title = ev.layer_title(layer)
            others = sorted(moving)
            out.append(Finding(
                "NOT_UPDATED", "warning", layer, int(rows["step"].iloc[0]),
                f"{title} receives gradients (norm up to {num(float(grads.max()))}) but its weights did not change at "
                f"all over {len(rows)} recorded optimizer steps{who(member, seed)}, while {len(others)} other "
                f"layer(s) did (e.g. {ev.layer_title(others[0])}): it is not in the optimizer's parameters (an "
                "optimizer built on part of the model, or before this layer was added), or its learning rate is 0.",
                {"steps": [int(s) for s in rows["step"]], "max_grad_norm": float(grads.max()),
                 "moving_layers": others},
                "Build the optimizer on model.parameters() (or add this layer's parameters to it); if the layer is "
                "meant to stay fixed, freeze it with requires_grad_(False) so no gradient is computed for it.",
                int(member), seed))
    return out


# ACCUMULATING_GRADIENT: one stale check could be a deliberate pattern we do not know; two or more,
# every one of them stale, are the missing zero_grad() beyond doubt.
ACCUMULATING_ERROR_CHECKS = 2


def accumulating_gradient(ev: Evidence) -> list[Finding]:
    """ACCUMULATING_GRADIENT: .grad still held the previous step's gradient at the next backward."""
    info = (ev.summary or {}).get("stale_grad") or {}
    checks = info.get("checks") or []
    out = []
    for member in sorted({c["member"] for c in checks}):
        mine = [c for c in checks if c["member"] == member]
        stale = [c for c in mine if c["stale_norm"] > 0]
        if not stale:
            continue
        seed = ev.seed_of(member)
        last, layer = stale[-1], stale[0].get("layer") or info.get("layer")
        ratio = last["stale_norm"] / last["new_norm"] if last["new_norm"] > 0 else float("inf")
        sure = len(stale) >= ACCUMULATING_ERROR_CHECKS and len(stale) == len(mine)
        out.append(Finding(
            "ACCUMULATING_GRADIENT", "error" if sure else "warning", layer, int(stale[0]["step"]),
            f"At {len(stale)} of {len(mine)} checked steps{who(member, seed)}, {ev.layer_title(layer)}'s .grad still "
            f"held the gradient of earlier steps when backward() ran again after an optimizer step (at step "
            f"{last['step']}: {num(ratio)}x the size of the new gradient): optimizer.zero_grad() is missing, so each "
            "step adds its gradient to all earlier ones. The growing sum acts like a learning rate that rises every "
            "step, and looks like exploding gradients.",
            {"stale_checks": len(stale), "checks": len(mine), "stale_to_new": ratio,
             "steps": [int(c["step"]) for c in stale]},
            "Call optimizer.zero_grad() once per step, before loss.backward() (to accumulate over micro-batches on "
            "purpose, call it after optimizer.step()).", member, seed))
    return out


_NORM_TYPE = re.compile(r"Norm", re.IGNORECASE)  # BatchNorm1d, LayerNorm, GroupNorm, RMSNorm, StackedBatchNorm...


def only_norm_trainable(ev: Evidence) -> list[Finding]:
    """ONLY_NORM_TRAINABLE: every trainable layer is a normalisation layer, the others are frozen."""
    s = ev.summary or {}
    trainable = [e for e in s.get("layers", []) if e["kind"] == "param"]
    frozen = {n: t for n, t in (s.get("frozen_types") or {}).items() if not _NORM_TYPE.search(t)}
    if not trainable or not frozen or not all(_NORM_TYPE.search(e.get("type") or "") for e in trainable):
        return []
    names = [e["name"] for e in trainable]
    frozen_titles = [f"{t} `{n}`" for n, t in list(frozen.items())[:4]] + (["..."] if len(frozen) > 4 else [])
    return [Finding(
        "ONLY_NORM_TRAINABLE", "warning", names[0], None,
        f"The only trainable parameters are normalisation layers' scales and shifts "
        f"({', '.join(ev.layer_title(n) for n in names[:4])}{', ...' if len(names) > 4 else ''}); "
        f"{len(frozen)} layer(s) with weights are frozen ({', '.join(frozen_titles)}). Such a model can only rescale features it cannot change, and learns far less than the same "
        "model with its weights trainable: usually a freezing loop that caught more than the trunk.",
        {"trainable": names, "frozen": list(frozen)},
        "Unfreeze the layers that should learn (at least the classifier head): requires_grad_(True) on them, "
        "and pass their parameters to the optimizer.")]
