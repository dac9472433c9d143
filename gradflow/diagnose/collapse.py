"""NOT_LEARNING (cause ``weights_collapsed``): every weight layer shrank towards zero over the run.

A net's weights grow or stay near their initial size while it learns. Weight decay pulls each weight
towards zero by lr x weight_decay of itself per step (x 1/(1 - momentum) with SGD momentum); when that
pull outweighs the gradient, the weights collapse and the output no longer depends on the input. The
accuracy need not sit at chance for that: a tanh net under SGD lr=0.1, weight_decay=0.5 keeps ~21 %
on FashionMNIST with weights a thousandth of their start, and a ReLU net rises for two epochs before
it falls to chance, too late for the accuracy rule's three epochs at chance. Without this rule both
got no finding at all. The symptom is the weights themselves, read from the recorded weight std.
"""
from __future__ import annotations

import numpy as np

from .. import quantities as Q
from . import training
from .evidence import Evidence
from .finding import Finding, num, who
from .scale_causes import DECAYED

# The median weight layer ended below 0.3x its first std (scale_causes.DECAYED: the decay won), and every
# layer below 0.5x, the head included (it sets the logits' scale; no normalisation after it undoes a
# shrink). A learning net's weights stay near their initial size or grow; a normalised net's hidden
# weights may shrink under decay without harm (the norm rescales them), which is why every layer must.
# The tanh net above settles at 0.09x, 0.14x and 0.39x (first layer to head): decay and gradient balance
# there, with the net at 21 % where the same net without the decay reaches ~80 %.
COLLAPSED = DECAYED
EVERY_LAYER = 0.5


def _shrink_per_layer(ev: Evidence, member) -> tuple[dict, int, int] | None:
    """{layer: last/first weight std} over the weight layers of one member, with the first and last
    recorded steps; None with fewer than two recorded steps."""
    w = ev.quantity(Q.WEIGHT_STD)
    weights = [e["name"] for e in ev.weight_layers()]
    w = w[(w["member"] == member) & w["layer"].isin(weights)]
    w = w[np.isfinite(w["value"].astype(float))].sort_values("step")
    if w["step"].nunique() < 2:
        return None
    by_layer = w.groupby("layer", sort=False)["value"]
    first, last = by_layer.first().astype(float), by_layer.last().astype(float)
    keep = first > 0  # a zero-initialised weight has no start to compare with
    order = {name: i for i, name in enumerate(weights)}
    shrink = {str(k): float(last[k] / first[k]) for k in sorted(first[keep].index, key=lambda n: order[n])}
    return (shrink, int(w["step"].min()), int(w["step"].max())) if shrink else None


def _seeds_already_told(ev: Evidence) -> set:
    """Seeds whose accuracy or loss already raised NOT_LEARNING: their causes name the decay already."""
    told = set()
    for f in training.accuracy_not_learning(ev) + training.loss_not_learning(ev):
        told.add(f.seed if f.seed is not None else ev.seed_of(f.member))
    return told


def weights_collapsed(ev: Evidence) -> list[Finding]:
    """NOT_LEARNING: the weights of every layer collapsed towards zero (one finding per member)."""
    w = ev.quantity(Q.WEIGHT_STD)
    if w.empty:
        return []
    told, out = None, []
    for member, seed in ev.members(w):
        found = _shrink_per_layer(ev, member)
        if found is None:
            continue
        shrink, s0, s1 = found
        values = list(shrink.values())
        median, head = float(np.median(values)), values[-1]
        if median >= COLLAPSED or max(values) >= EVERY_LAYER:
            continue
        told = _seeds_already_told(ev) if told is None else told
        if seed in told:
            continue
        worst = min(shrink, key=shrink.get)
        rows = ev.seed_metrics(seed)
        acc = ""
        if rows is not None and "val_acc" in rows:
            v = rows["val_acc"].astype(float)
            acc = (f" Validation accuracy ends at {100 * float(v.iloc[-1]):.1f} % (best {100 * float(v.max()):.1f} %"
                   f", chance {100 / ev.num_classes:.0f} %).")
        hurt = ev.outcome(member, seed).verdict == "hurt"
        out.append(Finding(
            "NOT_LEARNING", "error" if hurt else "warning", worst, s1,
            f"The weights collapsed towards zero{who(member, seed)}: between steps {s0} and {s1} the weight std of "
            f"every weight layer fell, to {num(median)} x its first in the median layer and {num(shrink[worst])} x in "
            f"{ev.layer_title(worst)}. A learning net's weights stay near their initial size or grow; these "
            "shrank step after step, so what each step learns the next one pulls back towards zero and the "
            f"output carries less and less of the input.{acc}",
            {"cause": "weights_collapsed", "shrink": shrink, "median_shrink": median, "head_shrink": head,
             "from_step": s0, "to_step": s1, "limit": COLLAPSED},
            "Lower the weight decay (the optimizer's weight_decay, or an L2 term added to the loss by hand): "
            "1e-4 to 1e-2 is usual.", member, seed))
    return out
