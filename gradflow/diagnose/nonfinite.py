"""The NaN/inf rule: where the first non-finite value of each member appeared, and what made it."""
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
            origin = (f" They are created inside the backward pass of activation {', '.join(c[0] for c in created)}: "
                      f"its forward output is finite, yet {n_out} non-finite gradient values leave it where {n_in} "
                      "arrive (e.g. exp() overflowing to inf in the unused branch of torch.where, then 0 * inf = NaN).")
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
