"""The NaN/inf rules: where the first non-finite value of each member appeared, and what made it;
and the steps a gradient scaler skipped because their gradients were non-finite."""
from __future__ import annotations

import pandas as pd

from .. import quantities as Q
from .evidence import Evidence
from .finding import Finding, who


def _created_in_backward(at: pd.DataFrame) -> list[tuple[str, int, int]]:
    """Activations whose backward lets out more non-finite values than came in, with a finite
    forward output: they create them. (layer, values out, values in) each."""
    created = []
    for r in at[at["where"] == Q.ACTIVATION_GRAD_IN_LOC].itertuples(index=False):
        came_in = at[(at["layer"] == r.layer) & (at["where"] == Q.ACTIVATION_GRAD_OUT_LOC)]["count"]
        n_in = int(came_in.iloc[0]) if len(came_in) else 0
        if r.count > n_in >= 0 and at[(at["layer"] == r.layer) & (at["where"] == Q.ACTIVATION_LOC)].empty:
            created.append((r.layer, int(r.count), n_in))
    return created


def nonfinite(ev: Evidence) -> list[Finding]:
    """NONFINITE: the first step with a NaN/inf, the first place in forward (then backward) order."""
    if ev.tables is None:
        return []
    nf, out = ev.tables["nonfinite"], []
    for member, seed in ev.members(nf):
        rows = nf[nf["member"] == member]
        step = int(rows["step"].min())
        at = rows[rows["step"] == step]  # already in order: forward pass (forward order), then backward pass
        first = at.iloc[0]
        created = _created_in_backward(at)
        origin = ""
        if created:
            layer, n_out, n_in = created[0]
            where = ", ".join(c[0] for c in created)
            many = len(created) > 1
            whose = "the first one's" if many else "its"
            # "the activation at Linear 3": gradflow's trainer records each activation under the layer it follows
            origin = (f" They are created inside the backward pass of the activation{'s' if many else ''} at {where}: "
                      f"{whose} forward output is finite, yet going backwards through it the gradient gains "
                      f"non-finite values ({n_in} come in from the layer above, {n_out} go out), so the activation's "
                      "own derivative made them (e.g. exp() overflowing to inf in the unused branch of torch.where, "
                      "then 0 * inf = NaN).")
        what = Q.LOCATIONS.get(first["where"], first["where"])
        count = int(first["count"])
        counted = f" ({count} values)" if count > 0 else ""
        phase = ("in the forward pass" if first["phase"] == "forward"
                 else "the forward pass was finite; it arose in the backward pass")
        out.append(Finding(
            "NONFINITE", "error", first["layer"], step,
            f"First NaN/inf at step {step}, epoch {int(first['epoch'])}{who(member, seed)}: the {what} of "
            f"{ev.layer_title(first['layer'])}{counted}, the first layer in forward order with a non-finite value "
            f"({phase}).{origin}",
            {"step": step, "layer": first["layer"], "where": first["where"], "count": count,
             "at_step": {f"{r.layer}:{r.where}": int(r.count) for r in at.itertuples(index=False)},
             "created_by": [c[0] for c in created]},
            "Normalise the inputs (e.g. pixels to [0, 1] or [-1, 1]); clamp the argument of exp/log in hand-written "
            "activations (exp(min(x, 0)) - 1 for ELU) or use torch's built-in version; lower the learning rate; clip "
            "gradients.", member, seed))
    return out


# A gradient scaler skips a few steps while it calibrates its scale (its first guess, 65536, is too
# high for most models) and now and then later; skipping more than this share of the steps means the
# model overflows float16 (or makes NaN) on most batches, and those steps train nothing.
SKIPPED_WARN_SHARE = 0.25


def skipped_steps(ev: Evidence) -> list[Finding]:
    """SKIPPED_STEPS: the optimizer skipped the steps whose gradients were non-finite and took the
    others (the Recorder kept those sightings apart: record/sentinel.py), as torch.amp.GradScaler does."""
    s = (ev.summary or {}).get("skipped_steps") or {}
    if not s.get("skipped_by_scaler"):
        return []
    n = int(s["steps"])
    total = int((ev.summary or {}).get("steps") or n + int(s.get("optimizer_steps") or 0))
    share = n / max(total, 1)
    place = s.get("first_place") or {}
    what = f"the {Q.LOCATIONS.get(place.get('where'), place.get('where'))} of {ev.layer_title(place.get('layer'))}"
    where = ("" if not place.get("layer") else
             f"; at step {place.get('step')} the first was in the forward pass, {what}" if place.get("phase") == "forward"
             else f"; at step {place.get('step')} the first the backward pass reached was {what}")
    span = f"step {s['first']}" if n == 1 else f"steps {s['first']} to {s['last']}"
    message = (f"The optimizer skipped {n} of {total} steps ({span}), each with NaN/inf gradients{where}; every "
               "step it took had finite ones. A gradient scaler (torch.amp.GradScaler) does this in mixed "
               "precision: it skips a step whose float16 gradients overflowed and lowers its scale.")
    warn = share > SKIPPED_WARN_SHARE
    if warn:
        message += (f" {100 * share:.0f} % of the steps trained nothing: more than a scaler's calibration, the "
                    "model overflows (or makes NaN) on most batches.")
        suggestion = ("Find what overflows float16: the place named above; keep that layer or the loss in "
                      "float32 (autocast(enabled=False) around it), or train in bfloat16.")
    else:
        message += " A few skips while the scale settles are by design: the weights stayed finite."
        suggestion = "Nothing to fix for a few skips; if they keep coming, see which layer overflows float16."
    return [Finding("SKIPPED_STEPS", "warning" if warn else "info", place.get("layer") or Q.MODEL_LAYER,
                    int(s["first"]), message,
                    {"skipped": n, "steps": total, "share": share, "first": s["first"], "last": s["last"],
                     "layer": place.get("layer"), "where": place.get("where")}, suggestion)]
