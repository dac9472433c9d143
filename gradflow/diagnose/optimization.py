"""Rules on what the optimizer does with the gradients: a layer left out of it, or no layer moving at
all (NOT_UPDATED), a step size that decays to nothing mid-run (UPDATE_RATIO, cause ``stalled``),
gradients never cleared between steps (ACCUMULATING_GRADIENT), and a model in which only the
normalisation layers can learn (ONLY_NORM_TRAINABLE)."""
from __future__ import annotations

import numpy as np

from .. import quantities as Q
from ..quantities import is_norm_type
from .evidence import Evidence
from .finding import Finding, num, who
from .units import copied_layers

# NOT_UPDATED needs this many recorded steps with an exactly unchanged weight: one could be a step
# the optimizer skipped on purpose (warm-up from zero, a GradScaler skipping an inf step).
NOT_UPDATED_MIN_STEPS = 2


def not_updated(ev: Evidence) -> list[Finding]:
    """NOT_UPDATED: a layer with gradients whose weights never change while other layers' do."""
    u, g = ev.quantity(Q.UPDATE_DATA_RATIO), ev.quantity(Q.GRAD_NORM)
    u = u[np.isfinite(u["value"].astype(float))]
    # a layer whose units are all copies changes uniformly: std(change) is 0 though every weight moved
    copies = copied_layers(ev.quantity(Q.UNIT_SPREAD))
    out = []
    for member, seed in ev.members(u):
        um, gm = u[u["member"] == member], g[g["member"] == member]
        moving = set(um.loc[um["value"] > 0, "layer"])
        if not moving:  # nothing moved at all: a loop without optimizer.step(), or a few probing backwards
            out += _nothing_moved(ev, member, seed, um, gm)
            continue
        for layer, rows in um.groupby("layer", sort=False):
            if layer in moving or len(rows) < NOT_UPDATED_MIN_STEPS or (int(member), layer) in copies:
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


# The learning rate decays to nothing: the step per unit of gradient (update:data over grad:data) falls
# this far below its best, the update itself below UPDATE_RATIO's "barely moves" limit, at every
# recorded step from some point on, and that tail covers this share of the run. A cosine schedule that
# ends at 0 spends ~2 % of its run 1000x below its peak, a step decay x0.1 at 30/60/90 of 100 epochs
# the last 10 %: neither is flagged. A scheduler written for epochs but stepped per batch is.
STALL_DROP = 1e-3
STALL_UPDATE = 1e-5
STALL_SHARE = 0.25
STALL_FALLING = 1e-2  # a last moving step this far below the best, then only zeros: the update underflowed


def stalled_updates(ev: Evidence) -> list[Finding]:
    """UPDATE_RATIO (cause stalled): a layer whose steps shrank to nothing while its gradient did not.
    Computed once per evidence: ``gradients.update_ratio`` reads it too, to leave those layers to it."""
    return ev.once("stalled_updates", lambda: _stalled_updates(ev))


def _stalled_updates(ev: Evidence) -> list[Finding]:
    u, g = ev.quantity(Q.UPDATE_DATA_RATIO), ev.quantity(Q.GRAD_DATA_RATIO)
    total = int((ev.summary or {}).get("steps") or 0)
    weights = {e["name"] for e in ev.weight_layers()}
    u = u[u["layer"].isin(weights) & np.isfinite(u["value"].astype(float))]
    both = u.merge(g[["member", "layer", "step", "value"]], on=["member", "layer", "step"], suffixes=("", "_grad"))
    watched = _low_lr_share(ev)  # the optimizer's own rate, every step: a short run's tail needs no 2nd point
    out = []
    for (member, layer), rows in both.groupby(["member", "layer"], sort=False):
        rows = rows.sort_values("step")
        upd, grad = rows["value"].astype(float).to_numpy(), rows["value_grad"].astype(float).to_numpy()
        moving = (upd > 0) & (grad > 0)
        if moving.sum() < 2 or total <= 0:
            continue
        per_grad = np.where(moving, upd / np.where(grad > 0, grad, 1.0), np.nan)  # step per unit of gradient
        best = int(np.nanargmax(per_grad))
        stalled = (upd == 0) | ((upd < STALL_UPDATE) & (per_grad <= STALL_DROP * per_grad[best]))
        first = len(stalled)
        while first > 0 and stalled[first - 1]:
            first -= 1  # the stalled tail: every recorded step from `first` on
        steps = rows["step"].to_numpy()
        share = (total - steps[first]) / total if first < len(stalled) else 0.0
        if watched is not None and watched >= STALL_SHARE:
            share, enough = max(share, watched), 1  # the watch saw the rate itself low on that many steps
        else:
            enough = 2
        if first >= len(stalled) or first <= best or len(stalled) - first < enough or share < STALL_SHARE:
            continue  # no tail, or too short
        # the last step that still moved: in the tail, or (a tail of zeros, the update underflowed) just
        # before it, already far down -- zeros after a healthy step are rec.step() per micro-batch
        last = int(np.flatnonzero(moving)[-1])
        if last < first and not (upd[last] < STALL_UPDATE and per_grad[last] <= STALL_FALLING * per_grad[best]):
            continue
        seed = ev.seed_of(int(member))
        out.append(Finding(
            "UPDATE_RATIO", "warning", layer, int(steps[first]),
            f"{ev.layer_title(layer)} stopped moving{who(int(member), seed)}: from step {steps[first]} on, each "
            + (f"optimizer step changes it by {num(upd[last])} times the std of its weights or less"
               if last >= first else f"optimizer step leaves it unchanged (by step {steps[last]} the change was "
               f"down to {num(upd[last])} times the std of its weights)")
            + f", against {num(upd[best])} at step {steps[best]}, though its gradient is still {num(grad[last] / grad[best])} "
            f"times what it was then (grad:data). The step per unit of gradient fell "
            f"{num(per_grad[best] / per_grad[last])}-fold{'' if last >= first else f' by step {steps[last]}, then to 0'}"
            ": the learning rate decayed to almost nothing, for "
            f"{round(100 * share)} % of the {total} steps"
            + (" (the optimizer's own learning rate was below 1/1000 of its first on that many)."
               if watched is not None and watched >= STALL_SHARE else "."),
            {"cause": "stalled", "from_step": int(steps[first]), "best_step": int(steps[best]),
             "best_ratio": float(upd[best]), "last_ratio": float(upd[last]),
             "drop": float(per_grad[best] / per_grad[last]), "share": share},
            "Check the learning rate late in training (optimizer.param_groups[0]['lr']): step an epoch-based "
            "scheduler (StepLR, MultiStepLR, ExponentialLR) once per epoch, not once per batch, or give it a "
            "step size counted in batches.", int(member), seed))
    return out


def _low_lr_share(ev: Evidence) -> float | None:
    """The share of steps on which the one optimizer the Recorder watched ran below 1/1000 of its first
    learning rate (None: not watched, or several optimizers)."""
    seen = (((ev.summary or {}).get("optimizer_watch") or {}).get("optimizers")) or []
    if len(seen) != 1 or not seen[0].get("lr_first") or not seen[0].get("steps"):
        return None
    return int(seen[0].get("low_lr_steps", 0)) / int(seen[0]["steps"])


# No layer moves at all: a training loop (this many rec.step() calls, this many recorded steps) whose
# weights never change is not learning. Fewer are a probe (gradients of a few batches, no optimizer on
# purpose: the reports' gradients-at-initialisation page records one backward).
NOTHING_MOVED_MIN_LOOP = 20
NOTHING_MOVED_MIN_STEPS = 3


def _nothing_moved(ev: Evidence, member, seed, um, gm) -> list[Finding]:
    """NOT_UPDATED for the whole model: no layer changed between backward() and rec.step(). Whether the
    weights differ from one recorded step to the next tells the causes apart: they never do when the
    optimizer never steps; they do between two adjacent steps when it steps right after rec.step()
    (the loop's order); they do only across longer gaps with rec.step() once per micro-batch."""
    steps = sorted(set(int(s) for s in um["step"]))
    grads = gm[gm["step"].isin(steps)]["value"].astype(float)
    if len(steps) < NOTHING_MOVED_MIN_STEPS or int((ev.summary or {}).get("steps") or 0) < NOTHING_MOVED_MIN_LOOP \
            or not (grads > 0).any():
        return []
    w = ev.quantity(Q.WEIGHT_STD)
    w = w[(w["member"] == member) & w["step"].isin(steps)]
    between = bool((w.groupby("layer")["value"].nunique() > 1).any())  # the weights move between records
    span = f"{len(steps)} recorded steps ({steps[0]}-{steps[-1]}){who(member, seed)}"
    if between:
        # rec.step() once per micro-batch with accumulation (the README allows it) also moves the weights
        # only between records; rec.step() before optimizer.step() moves them between two adjacent steps
        by_step = w.pivot_table(index="step", columns="layer", values="value")
        pairs = [s for s in steps if s + 1 in by_step.index and s in by_step.index]
        if not any((by_step.loc[s] != by_step.loc[s + 1]).any() for s in pairs):
            return []
        return [Finding(
            "NOT_UPDATED", "warning", Q.MODEL_LAYER, steps[0],
            f"No layer's weights changed between backward() and rec.step() at any of {span}, yet they differ from "
            "one recorded step to the next: rec.step() runs before optimizer.step(). Training is not affected, but "
            "the recording misses each step's update (every update:data ratio reads 0).",
            {"cause": "recorded_before_step", "steps": steps, "max_grad_norm": float(grads.max())},
            "Call rec.step() after optimizer.step(), once per training step.", member, seed)]
    return [Finding(
        "NOT_UPDATED", "error", Q.MODEL_LAYER, steps[0],
        f"No layer's weights changed at all over {span}, although they receive gradients (norm up to "
        f"{num(float(grads.max()))}): the model does not train. optimizer.step() is never called, the optimizer "
        "holds another model's parameters (built before this model was created again), or every learning rate is 0.",
        {"cause": "no_optimizer_step", "steps": steps, "max_grad_norm": float(grads.max())},
        "Call optimizer.step() after loss.backward() in every step (then rec.step()); build the optimizer on "
        "this model's parameters, after the model; check the learning rate of every parameter group.", member, seed)]


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
        layer = stale[0].get("layer") or info.get("layer")
        sized = [c for c in stale if c["new_norm"] > 0]  # a zero new gradient (dead units) gives no ratio
        last = (sized or stale)[-1]
        ratio = last["stale_norm"] / last["new_norm"] if last["new_norm"] > 0 else float("inf")
        size = (f"{num(ratio)}x the size of the new gradient" if sized else
                "while the new gradient was zero")
        sure = len(stale) >= ACCUMULATING_ERROR_CHECKS and len(stale) == len(mine)
        out.append(Finding(
            "ACCUMULATING_GRADIENT", "error" if sure else "warning", layer, int(stale[0]["step"]),
            f"At {len(stale)} of {len(mine)} checked steps{who(member, seed)}, {ev.layer_title(layer)}'s .grad still "
            f"held the gradient of earlier steps when backward() ran again after an optimizer step (at step "
            f"{last['step']}: {size}): optimizer.zero_grad() is missing, so each "
            "step adds its gradient to all earlier ones. The growing sum acts like a learning rate that rises every "
            "step, and looks like exploding gradients.",
            {"stale_checks": len(stale), "checks": len(mine), "stale_to_new": ratio,
             "steps": [int(c["step"]) for c in stale]},
            "Call optimizer.zero_grad() once per step, before loss.backward() (to accumulate over micro-batches on "
            "purpose, call it after optimizer.step()).", member, seed))
    return out


def only_norm_trainable(ev: Evidence) -> list[Finding]:
    """ONLY_NORM_TRAINABLE: every trainable layer is a normalisation layer, the others are frozen."""
    s = ev.summary or {}
    trainable = [e for e in s.get("layers", []) if e["kind"] == "param"]
    frozen = {n: t for n, t in (s.get("frozen_types") or {}).items() if not is_norm_type(t)}
    if not trainable or not frozen or not all(is_norm_type(e.get("type")) for e in trainable):
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
