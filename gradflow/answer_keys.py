"""Answer keys: each page's "Predict, then look" questions answered from the page's own numbers.

A page asks before a figure (:func:`gradflow.narrate_pages.questions`) and folds the answers away
after it (:func:`gradflow.narrate_pages.answers`), so a student predicts first and an instructor has
the key. Every answer is computed from the tables the page draws, never written in advance: a
different preset or seed changes the answer with the figure. Each function returns the Markdown
answers in the order of its questions, and :data:`QUESTIONS` holds the questions themselves, so a
page and its key cannot drift apart.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .histogram_tables import NEAR_TIE_TV, near_top
from .narrate import CHANCE_ACC, CHANCE_LOSS_10, final_epochs, fmt_pct, fmt_sci, fmt_times, join_names
from .style import layer_order

QUESTIONS = {
    "slopes": ["Which activation's largest slope is the smallest, and what happens to a gradient that passes "
               "through four layers of it?",
               "Which activations have a slope of exactly 0 somewhere?"],
    "init_sigmoid": ["Sigmoid's slope is at most 0.25. How much smaller do you expect its first layer's gradients "
                     "to be than its last layer's, with {layers} sigmoid layers in between?"],
    "init_relu": ["Will ReLU's gradients shrink towards the input too?"],
    "curves": ["From pages 1 and 2: which activation do you expect to learn slowest, and why?",
               "What loss does a network have that guesses uniformly among 10 classes?"],
    "layers": ["Which layer will get the smallest weight gradients (the typical size, median |dL/dW|, as the "
               "figure below draws it), and will the first layer's gap to the output layer grow or shrink as the "
               "network trains?",
               "Will the first layer's update:data ratio sit near the healthy 1e-3, or far below it?"],
    "two_runs": ["In which layer will the two runs' weight gradients differ most, at the start and at the end? "
                 "Will the runs grow more alike as they train?"],
    "sweep": ["Which one-setting change (for example default → kaiming initialisation for one activation) will "
              "move test accuracy most, and can the seeds tell it apart from luck?"],
}


# --------------------------------------------------------------------------- 01: the functions


def _slope_zeros(curves: pd.DataFrame) -> dict:
    """activation -> the x where its slope changes sign (swish's dip), for those whose slope does."""
    out = {}
    for act, d in curves.groupby("activation", sort=False):
        dy, x = d["dy"].to_numpy(), d["x"].to_numpy()
        flips = np.flatnonzero(dy[:-1] * dy[1:] < 0)
        if len(flips):
            out[act] = float(x[flips[0]])
    return out


def slope_answers(props: pd.DataFrame, curves: pd.DataFrame) -> list[str]:
    """Page 1, from its properties table (activation, max_slope, dead_share) and the drawn curves
    (activation, x, dy)."""
    smallest = float(props["max_slope"].min())
    tied = props[props["max_slope"] <= smallest + 1e-6]["activation"].tolist()  # relu and tanh both peak at 1
    four = smallest ** 4
    first = (f"{join_names([f'**{a}**' for a in tied])}, whose slope is at most {smallest:.2f}. Through four such layers "
             f"the slopes alone multiply a gradient by {fmt_sci(four) if four < 0.01 else f'{four:.2g}'} or less; the "
             "weights add a factor of their own (page 2).")
    dead = props[props["dead_share"] > 0]
    parts = [f"**{r.activation}** is 0 on a whole range ({100 * r.dead_share:.0f} % of the drawn inputs)"
             for r in dead.itertuples()]
    crossing = {a: x for a, x in _slope_zeros(curves).items() if a not in set(dead["activation"])}
    parts += [f"**{a}**'s slope is exactly 0 at one point, x ≈ {x:.1f}, where it turns negative: one point cannot "
              "kill a unit" for a, x in crossing.items()]
    rest = len(props) - len(dead) - len(crossing)
    second = ("; ".join(parts) + "." + (" The others never reach 0, though their slopes get small for very large or "
                                        "very negative inputs." if rest else "")
              if parts else "None of those drawn: every one keeps some slope everywhere.")
    return [first, second]


# --------------------------------------------------------------------------- 02: gradients at initialisation


def _first_over_last(grad_std: pd.DataFrame, activation: str) -> float:
    d = grad_std[grad_std["activation"] == activation]["grad_std"]
    return float(d.iloc[0] / d.iloc[-1])


def init_answers(grad_std: pd.DataFrame, hidden_layers: int) -> list[str]:
    """Page 2: the first layer's gradient std over the output layer's, for sigmoid and ReLU where drawn.
    grad_std -- activation, layer (forward order), grad_std; hidden_layers -- activation layers passed."""
    out = []
    acts = set(grad_std["activation"])
    if "sigmoid" in acts:
        ratio, bound = _first_over_last(grad_std, "sigmoid"), 0.25 ** hidden_layers
        out.append(f"The slopes alone shrink it at least {1 / bound:,.0f}-fold (0.25^{hidden_layers} = {fmt_sci(bound)}). "
                   f"Measured: {fmt_sci(ratio)}, {fmt_times(1 / ratio)}× smaller"
                   + (", because each layer's weights shrink the gradient as well (the paragraph under the figure "
                      "works it out)." if ratio < bound / 3 else ", close to what the slopes predict."))
    if "relu" in acts:
        ratio = _first_over_last(grad_std, "relu")
        out.append(f"Yes, but far less: ReLU's first layer gets {ratio:.2g} of the output layer's gradient std "
                   f"({fmt_times(1 / ratio)}× smaller). The slopes take nothing from units that are on (slope 1); the "
                   "weights and the units that are off shrink the signal passing back. This ratio even hides part of "
                   "that: a weight's gradient is the signal times the layer's input, and ReLU's last hidden layer "
                   "outputs small values at initialisation, so the output layer's own gradient is small too."
                   if ratio < 1 else
                   f"No: ReLU's first layer gets {fmt_times(ratio)}× the output layer's gradient std.")
    return out


def init_questions(activations, hidden_layers: int) -> list[str]:
    """Page 2's questions for the activations it draws (each answer needs its activation)."""
    layers = {4: "four"}.get(hidden_layers, str(hidden_layers))
    return ([q.format(layers=layers) for q in QUESTIONS["init_sigmoid"]] if "sigmoid" in activations else []) + \
        (QUESTIONS["init_relu"] if "relu" in activations else [])


# --------------------------------------------------------------------------- 03: training curves


def curve_answers(results: pd.DataFrame, metrics: pd.DataFrame, plateau_told: bool = False,
                  preview: bool = False) -> list[str]:
    """Page 3: which activation starts slowest, which seeds ended at chance, and the loss of a uniform guess.
    results -- activation, seed, test_acc; metrics -- activation, seed, epoch, val_acc, train_loss, past_stop;
    plateau_told -- the page tells the plateau story under the figure (the tutorial recipe only);
    preview -- a few epochs of the recipe's 50."""
    epoch1 = metrics[metrics["epoch"] == metrics["epoch"].min()]
    start = epoch1.groupby("activation", sort=False)["val_acc"].mean().sort_values()
    first = ("Pages 1 and 2 point at **sigmoid**: a slope of at most 0.25 per layer and small weights leave its first "
             "layer with a tiny gradient, so the layers near the input hardly move at first.")
    if len(start) > 1:
        others = start.iloc[1:]
        first += (f" Here **{start.index[0]}** starts slowest: after epoch {int(epoch1['epoch'].min())} its validation "
                  f"accuracy is {fmt_pct(start.iloc[0])} (mean over seeds), the others' "
                  f"{fmt_pct(others.min())}–{fmt_pct(others.max())}.")
    parts = []
    for act, d in results[results["test_acc"] < CHANCE_ACC].groupby("activation", sort=False):
        all_seeds = results[results["activation"] == act]
        learned = all_seeds[all_seeds["test_acc"] >= CHANCE_ACC]["test_acc"]
        who = f"the one {act} seed" if len(all_seeds) == 1 else f"{len(d)} of {len(all_seeds)} {act} seeds"
        parts.append(f"{who} ended at chance (test accuracy "
                     f"{fmt_pct(d['test_acc'].max())} or less)"
                     + (f", the other{'s' if len(learned) > 1 else ''} reached {join_names([fmt_pct(a) for a in learned])}"
                        if len(learned) else ""))
    if parts:
        first += (" " + "; ".join(parts)[0].upper() + "; ".join(parts)[1:] + ". "
                  + ("Ending at chance is not the same as being unable to learn: the story below the figure follows those seeds past "
                     "their early stop." if plateau_told else
                     "A preview's few epochs cannot tell whether they would have left it." if preview else ""))
    last = final_epochs(metrics)
    near = last[(last["train_loss"] - CHANCE_LOSS_10).abs() < 0.05].groupby("activation", sort=False).size()
    seeds = last.groupby("activation", sort=False).size()
    on_line = [f"{n} of {seeds[a]} {a} seeds" for a, n in near.items()]
    second = (f"ln 10 = {CHANCE_LOSS_10:.2f} nats: a uniform guess gives the right class probability 1/10, and the "
              "cross-entropy is −ln(1/10). It is the dotted line in the loss panel"
              + (f"; {join_names(on_line)} ended their own training on it." if on_line else
                 "; every seed's training loss ended below it."))
    return [first, second]


# --------------------------------------------------------------------------- 04: one run's layers


def _against_output(gap: float) -> str:
    """gap -- the output layer's median gradient over the first layer's."""
    if 1 / 1.5 <= gap <= 1.5:
        return f"about the size of the output layer's ({fmt_times(max(gap, 1 / gap))}× apart)"
    return (f"{fmt_times(gap)}× smaller than the output layer's" if gap > 1 else
            f"{fmt_times(1 / gap)}× larger than the output layer's")


def _before_any_stop(d: pd.DataFrame, last_epoch: int) -> int:
    """The last recorded step in an epoch every seed still trained for (the whole run when none stopped)."""
    inside = d[d["epoch"] <= last_epoch]
    return int((inside if len(inside) else d)["step"].max())


def layer_answers(flow: pd.DataFrame, mean_ratios: pd.DataFrame, labels: dict, last_epoch: int) -> list[str]:
    """Page 4: which layer gets the smallest gradients, at the start and before the first early stop, and
    whether the first layer's update:data ratio sits near 1e-3.

    flow -- layer, step, epoch, median (log10 |dL/dW|); mean_ratios -- layer, step, value (mean over seeds);
    last_epoch -- the last epoch every seed trained for itself (the earliest early stop)."""
    start, late = int(flow["step"].min()), _before_any_stop(flow, last_epoch)
    order = sorted(dict.fromkeys(flow["layer"]), key=layer_order)
    said = []
    for step in (start, late):
        at = flow[flow["step"] == step].set_index("layer")["median"]
        said.append((step, labels.get(at.idxmin(), at.idxmin()), 10 ** (at[order[-1]] - at[order[0]])))
    (s0, low0, gap0), (s1, low1, gap1) = said
    epoch = int(flow[flow["step"] == s1]["epoch"].iloc[0])
    when = ("the last recorded step before any seed stopped early" if flow["epoch"].max() > last_epoch else
            "the last recorded step")
    trend = ("The gap shrank." if gap1 < gap0 / 1.5 else "The gap grew." if gap1 > gap0 * 1.5 else
             "The gap stayed about the same.")
    first = (f"At step {s0} the layer with the smallest median gradient (exact zeros included) is {low0}, and the first layer's gradient "
             f"is {_against_output(gap0)}. At step {s1} (epoch {epoch}, {when}) the smallest is in {low1}, and "
             f"the first layer's is {_against_output(gap1)}. {trend} (Medians of |gradient| over all seeds, as the "
             "figure draws them; page 2's ratios are of the gradients' std on one seed's batch, so they differ.)")
    # the figure draws steps from 1 on (a log axis): step 0's ratio, before momentum builds up, is not drawn
    ratio = mean_ratios[(mean_ratios["layer"] == order[0]) & (mean_ratios["step"] > 0)
                        & (mean_ratios["step"] <= s1)]["value"]
    if ratio.empty:
        return [first]
    typical = float(ratio.median())
    where = ("within 10× of the healthy 1e-3" if 1e-4 <= typical <= 1e-2 else
             f"{fmt_times(1e-3 / typical)}× below the healthy 1e-3: the layer barely learns" if typical < 1e-4 else
             f"{fmt_times(typical / 1e-3)}× above the healthy 1e-3: each step rewrites much of the layer")
    second = (f"The first layer's median ratio over the recorded steps up to {s1} is {fmt_sci(typical)}, {where}. "
              f"Its first drawn point (step 1) is at {fmt_sci(float(ratio.iloc[0]))}.")
    return [first, second]


# --------------------------------------------------------------------------- 05: two runs


def two_run_answers(dist: pd.DataFrame) -> list[str]:
    """Page 5: in which layer the two runs' gradients differ most, at the first and the last shared step.
    dist -- stage ("step N"), layer (display name), distance (TV)."""
    out = []
    stages = list(dict.fromkeys(dist["stage"]))
    for stage in stages:
        d = dist[dist["stage"] == stage]
        ranked = d.sort_values("distance", ascending=False)
        top, bottom = ranked.iloc[0], ranked.iloc[-1]
        near = near_top(ranked)
        if len(near) > 1:
            out.append(f"At {stage} the layers lie between {bottom['distance']:.2f} and {top['distance']:.2f}; the "
                       f"most different, {join_names([f'{r.layer} ({r.distance:.2f})' for r in near.itertuples()])}, are "
                       f"within {NEAR_TIE_TV:g} of each other: too close to name one.")
        else:
            out.append(f"At {stage}: **{top['layer']}** (TV distance {top['distance']:.2f}); the closest is "
                       f"{bottom['layer']} ({bottom['distance']:.2f}).")
    if len(stages) == 2:
        first, last = (dist[dist["stage"] == s]["distance"].mean() for s in stages)
        way = "more different" if last > first else "more alike"
        # an average over a few layers moves by a few hundredths on its own: a small change is said as one
        trend = ("about as different as they started" if abs(last - first) < 0.05 else
                 f"a little {way} (a change this small, averaged over the layers, may be noise)"
                 if abs(last - first) < 0.15 else way)
        out[-1] += (f" Averaged over the layers the distance goes from {first:.2f} to {last:.2f}: the runs grew "
                    f"{trend}.")
    return [" ".join(out)]


# --------------------------------------------------------------------------- 07: a sweep


def _pair_sentence(top) -> str:
    at_chance = top["_chance"] if "_chance" in top and top["_chance"][0] != top["_chance"][1] else None
    verdict = ("and the seeds tell it apart" if top["told apart"] else
               "but a cell's seeds split between chance and learning, so no interval can judge it (the grey "
               "dots show the split)" if top["split"] else "yet the seeds cannot tell it apart from luck")
    if at_chance:
        verdict += f"; counted as seeds at chance, it goes from {top['at chance, from']} to {top['at chance, to']}"
    where = "" if top["where"] == "–" else f", where {top['where']}"
    return f"{top['axis']} from {top['from']} to {top['to']}{where}: {top['change (pp)']:+.1f} percentage points, {verdict}."


def sweep_answers(pairs: pd.DataFrame) -> list[str]:
    """Page 7: the one-setting change that moved test accuracy most, then, for each other setting the grid
    varies, that setting's largest change, and whether the seeds tell each apart.
    pairs -- sweep_narrate.one_setting_pairs."""
    if pairs.empty:
        return ["This grid has no two cells that differ in one setting only, so there is nothing to compare."]
    biggest = pairs["change (pp)"].abs()
    top = pairs.loc[biggest.idxmax()]
    out = [f"The largest: {_pair_sentence(top)}"]
    for axis in dict.fromkeys(pairs["axis"]):
        if axis != top["axis"]:
            d = pairs[pairs["axis"] == axis]
            out.append(f"The largest {axis} change: {_pair_sentence(d.loc[d['change (pp)'].abs().idxmax()])}")
    told = int(pairs["told apart"].sum())
    return [" ".join(out) + f" Of all {len(pairs)} one-setting changes in the table, the seeds tell {told} apart."]
