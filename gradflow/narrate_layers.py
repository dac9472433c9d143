"""Sentences about what happens inside the network, layer by layer: update:data ratios, dead units,
gradient flow (during training and at initialisation) and saturation.

Like :mod:`gradflow.narrate` (whose wording rules hold here too), each function takes plain tables
and returns sentences, tested on planted numbers; layers are named by the ``labels`` a page passes
(:func:`gradflow.style.layer_labels`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .narrate import fmt_sci, fmt_times, join_names

UPDATE_RATIO_GUIDE = 1e-3  # Karpathy's rule of thumb for std(lr·grad)/std(weight)


def update_ratio_sentences(ratios: pd.DataFrame, labels: dict, guide: float = UPDATE_RATIO_GUIDE) -> list[str]:
    """The first layer's update:data ratio against the 1e-3 guide, per activation, and the outliers.

    ratios -- columns activation, layer (recorder key), step, value (update:data ratio); step 0 has no
    update yet, so the median runs over the later recorded steps
    """
    out = []
    r = ratios[(ratios["step"] > 0) & ratios["value"].gt(0)]
    if r.empty:
        return ["No optimizer step was recorded, so there is no update:data ratio to read."]
    med = r.groupby(["activation", "layer"], sort=False)["value"].median().reset_index()
    first = med[med["layer"] == min(med["layer"], key=_order)]
    low = first[first["value"] < guide / 10]
    for row in low.itertuples():
        out.append(f"**{row.activation}**: the update:data ratio of {labels.get(row.layer, row.layer)} has a median of "
                   f"{fmt_sci(row.value)}, about {fmt_times(guide / row.value)}× below the {fmt_sci(guide)} guide, so each "
                   "step changes its weights by a tiny fraction: the first layer hardly learns.")
    healthy = first[first["value"] >= guide / 10]
    slow_starters = []
    for row in healthy.itertuples():  # a median over a whole run can hide a long slow start
        slow = _slow_start(r[(r["activation"] == row.activation) & (r["layer"] == row.layer)], guide)
        if slow:
            slow_starters.append(row.activation)
            out.append(f"**{row.activation}**: {labels.get(row.layer, row.layer)} {slow}; its median over the whole run, "
                       f"{fmt_sci(row.value)}, hides that slow start.")
    healthy = healthy[~healthy["activation"].isin(slow_starters)]  # not "healthy" in the same breath
    if len(healthy):
        lo, hi = healthy["value"].min(), healthy["value"].max()
        out.append(f"For {join_names(healthy['activation'])} the first layer's median ratio is {fmt_sci(lo)}"
                   f"{'' if lo == hi else '–' + fmt_sci(hi)}, within a factor of 10 of the healthy {fmt_sci(guide)} "
                   "(the dashed guide).")
    high = med[med["value"] > guide * 10]
    for row in high.itertuples():
        out.append(f"{row.activation}: {labels.get(row.layer, row.layer)} changes by {fmt_sci(row.value)} of its size "
                   "per step, more than 10× the guide: its weights are being rewritten quickly.")
    return out


def _slow_start(d: pd.DataFrame, guide: float) -> str:
    """"started at 2.0e-6 ... until step 2,600 (epoch 14)" when a layer's ratio stayed under a tenth of
    the guide for its first two or more recorded steps and rose above it later; "" otherwise."""
    found = _slow_stretch(d, guide)
    if found is None:
        return ""
    value, step, when = found
    return (f"started far below the guide ({fmt_sci(value)} at step {step}) and stayed under a tenth of it "
            f"({fmt_sci(guide / 10)}) until {when}: for that stretch the layer hardly learned")


def _slow_stretch(d: pd.DataFrame, guide: float):
    """(first ratio, its step, "step 2,600 (epoch 14)" where it first reached a tenth of the guide), or None."""
    d = d.sort_values("step")
    up = d[d["value"] >= guide / 10]
    if up.empty:
        return None
    before = d[d["step"] < up["step"].iloc[0]]
    epoch = up["epoch"].iloc[0] if "epoch" in up else float("nan")
    if len(before) < 2 or epoch == 1:  # a few slow steps inside the first epoch are no stretch worth a sentence
        return None
    when = f"step {int(up['step'].iloc[0]):,}" + ("" if pd.isna(epoch) else f" (epoch {int(epoch)})")
    return float(before["value"].iloc[0]), int(before["step"].iloc[0]), when


def _order(key) -> int:
    from .style import layer_order

    return layer_order(key)


def dead_unit_sentences(dead: pd.DataFrame, min_change_pp: float = 0.5) -> list[str]:
    """Where dead units are, and where they grew or shrank during training.

    dead -- columns activation, layer (display name), stage ('at initialisation' / 'after training'),
            percent (mean over seeds), seeds_with_dead (count), seeds (count)
    """
    out = []
    if dead.empty or float(dead["percent"].max()) == 0:
        return ["No layer of any of these networks has a dead unit, at initialisation or after training."]
    wide = dead.pivot_table(index=["activation", "layer"], columns="stage", values="percent", sort=False).fillna(0)
    changes: dict[str, list[str]] = {}  # one sentence per activation, its layers' changes joined
    for (act, layer), row in wide.iterrows():
        before, after = row.get("at initialisation", 0.0), row.get("after training", 0.0)
        said = changes.setdefault(act, [])
        subject = f"dead units in {layer}" if not said else f"in {layer} they"
        if after - before >= min_change_pp:
            said.append(f"{subject} grew from {before:.1f} % at initialisation to {after:.1f} % after training")
        elif before - after >= min_change_pp:
            said.append(f"{subject} fell from {before:.1f} % to {after:.1f} % (training revived "
                        f"{'all of them' if after == 0 else 'some'})")
        elif after >= 1:
            said.append(f"{layer} has {after:.1f} % dead units, about as many as at initialisation")
    seeds = int(dead["seeds"].max()) if "seeds" in dead and len(dead) else 1
    if seeds > 1 and any(changes.values()):  # page 2 shows one seed's network, so say why numbers differ
        out.append(f"These shares are means over the {seeds} seeds (page 2 counts one seed's network on fewer images, so its "
                   "numbers differ).")
    out += [f"**{act}**: {'; '.join(said)}." for act, said in changes.items() if said]
    clean = [a for a in dict.fromkeys(dead["activation"]) if float(dead[dead["activation"] == a]["percent"].max()) == 0]
    if clean:
        out.append(f"{join_names(clean)} {'has' if len(clean) == 1 else 'have'} no dead unit in any layer, before or after "
                   "training; their panels are left out.")
    return out


def _step_epoch(d: pd.DataFrame) -> str:
    """The last recorded step with its epoch, when known: "600 (epoch 4, ...)" reads where "600" does not."""
    last = d[d["step"] == d["step"].max()]
    step = int(last["step"].iloc[0])
    if "epoch" not in last or pd.isna(last["epoch"].iloc[0]):
        return str(step)
    return f"{step} (epoch {int(last['epoch'].iloc[0])}, the last recorded step)"


def _with_epoch(d: pd.DataFrame, step: int) -> str:
    """"6800 (epoch 35)" when the table knows the step's epoch, else "6800"."""
    epoch = d[d["step"] == step]["epoch"].max() if "epoch" in d else float("nan")
    return f"{int(step)}" if pd.isna(epoch) else f"{int(step)} (epoch {int(epoch)})"


def _first_and_last_layer(d: pd.DataFrame) -> tuple[list, float, float] | None:
    """At one activation's last recorded step: (its layers in forward order, the first layer's and the
    output layer's median log10 |dL/dW|); None with fewer than two layers."""
    last = d[d["step"] == d["step"].max()]
    layers = sorted(last["layer"], key=_order)
    if len(layers) < 2:
        return None
    median = last.set_index("layer")["median"]
    return layers, float(median[layers[0]]), float(median[layers[-1]])


def gradient_flow_sentences(lines: pd.DataFrame, labels: dict) -> list[str]:
    """How much smaller the first layer's gradients are than the last layer's, at the last recorded step.

    lines -- columns activation, layer (key), step, median (log10 |gradient|), as flow_plots.gradient_lines gives
    """
    out, even = [], []
    for act, d in lines.groupby("activation", sort=False):
        ends = _first_and_last_layer(d)
        if ends is None:
            continue
        layers, first, final = ends
        gap = final - first
        early = _closing_gap(d, layers[0], layers[-1])
        if gap < 1.5 and early:  # faded at the start, caught up later: the story of a late start
            step0, gap0, closed = early
            out.append(f"**{act}**: at step {step0} the median gradient of {labels.get(layers[0], layers[0])} is "
                       f"about {fmt_times(10 ** gap0)}× smaller than that of {labels.get(layers[-1], layers[-1])}; "
                       f"the gap closes to within 10× only by step {_with_epoch(d, closed)}: its first layer started "
                       "learning late.")
        if gap >= 1.5:
            out.append(f"**{act}**: at step {_step_epoch(d)} the median gradient of "
                       f"{labels.get(layers[0], layers[0])} is {fmt_sci(10 ** first)}, about {fmt_times(10 ** gap)}× smaller than "
                       f"that of {labels.get(layers[-1], layers[-1])} ({fmt_sci(10 ** final)}): the signal fades on its "
                       "way back to the input.")
        else:
            even.append((act, 10 ** abs(gap)))
    zero = lines[(lines["step"] == lines.groupby("activation")["step"].transform("max")) & (lines["zero_share"] >= 0.1)] \
        if "zero_share" in lines else lines.iloc[0:0]
    for act, rows in zero.groupby("activation", sort=False):  # one sentence per activation, all its layers
        rows = rows.sort_values("layer", key=lambda c: c.map(_order))
        shares = join_names([f"{100 * r.zero_share:.0f} % of {labels.get(r.layer, r.layer)}'s" for r in rows.itertuples()])
        several = len(rows) > 1
        # the band is the middle half (25th-75th percentile): zeros pull it to the bottom only from 25 % on
        reach = rows["zero_share"].min() >= 0.25
        where = (f"so {'their bands reach' if several else 'its band reaches'} the bottom" if reach else
                 f"below {'their bands' if several else 'its band'} (the middle half of the values), which "
                 f"{'they do' if several else 'it does'} not pull down")
        out.append(f"{act}: at step {_step_epoch(rows)}, {shares} weight gradients are exactly 0 (or below "
                   f"1e-10), {where}: they belong to weights whose unit and input were never on for the same image of "
                   "the batch (one of the two off for the whole batch, or the two on for different images).")
    if even:
        worst = max(f for _, f in even)
        out.append(f"For {join_names([a for a, _ in even])} the first and the last layer's median gradients are within "
                   f"{fmt_times(max(worst, 1))}× of each other at the last recorded step: the signal reaches the input.")
    return out


def _closing_gap(d: pd.DataFrame, first_layer, last_layer) -> tuple[int, float, int] | None:
    """(first step, its gap in decades, first step the gap is below one decade) when the first and the
    last layer's median gradients start 1.5 decades or more apart and later come within 10×; else None."""
    wide = d.pivot_table(index="step", columns="layer", values="median").sort_index()
    if first_layer not in wide or last_layer not in wide or wide.empty:
        return None
    gaps = (wide[last_layer] - wide[first_layer]).dropna()
    if gaps.empty or gaps.iloc[0] < 1.5:
        return None
    closed = gaps[gaps < 1.0]
    return (int(gaps.index[0]), float(gaps.iloc[0]), int(closed.index[0])) if len(closed) else None


# ReLU does not fade for large inputs as tanh does: its zero slope is the negative side, where a unit
# is off. The recorder's saturation counts both; the sentences say which it is. (The tutorial's leaky
# ReLU has slope 0.1 there, above the saturation limit, so it never counts.)
SWITCH_OFF = {"relu": "slope 0"}
# Swish's slope also passes through 0 inside its range (at its dip), so the recorder's "saturated" (slope
# below 6 % of the largest) counts the values there too, not only those far out on its flat side.
FLAT_NOT_AT_THE_ENDS = {"swish": "for swish that means a slope near 0, around its dip at x ≈ −1.3 or far out on the "
                                 "negative side"}


def saturation_change_sentences(sat: pd.DataFrame, labels: dict, threshold_pct: float = 10.0) -> list[str]:
    """Saturated share per layer at the first and last recorded step (recorder's 'saturation').

    sat -- columns activation, layer (key), step, value (fraction, mean over seeds)
    """
    out, calm = [], []
    for act, d in sat.groupby("activation", sort=False):
        first, last = d[d["step"] == d["step"].min()], d[d["step"] == d["step"].max()]
        top = last.loc[last["value"].idxmax()]
        start = first[first["layer"] == top["layer"]]["value"]
        start = float(start.iloc[0]) if len(start) else float("nan")
        if act in SWITCH_OFF and 100 * top["value"] < threshold_pct:
            calm.append(act)
        elif act in SWITCH_OFF:  # its flat negative side counts as saturated (slope ~0): say what the number is
            out.append(f"{act}: at step {int(top['step'])}, {100 * top['value']:.0f} % of the outputs after "
                       f"{labels.get(top['layer'], top['layer'])} are exactly 0 (step 0: {100 * start:.0f} %): their input "
                       f"was negative, where the unit is off ({SWITCH_OFF[act]}; the recorder counts these with the "
                       "saturated values). A unit off for some images is not dead: a dead unit is off for every image.")
        elif 100 * top["value"] >= threshold_pct:
            out.append(f"**{act}**: at step {int(top['step'])}, {100 * top['value']:.0f} % of "
                       f"{labels.get(top['layer'], top['layer'])}'s values are saturated (step 0: {100 * start:.0f} %)"
                       + (f": {FLAT_NOT_AT_THE_ENDS[act]}." if act in FLAT_NOT_AT_THE_ENDS else "."))
        else:
            calm.append(act)
    if calm:
        out.append(f"{join_names(calm)}: no layer has {threshold_pct:.0f} % or more of its values saturated at the last "
                   "recorded step.")
    return out


def output_spread_sentences(std: pd.DataFrame, labels: dict, min_ratio: float = 1.5) -> list[str]:
    """How much wider (or narrower) the hidden layers' outputs became between the first and the last
    recorded step: the histograms' change, in the std the recorder keeps per layer.

    std -- columns layer (key), step, value (the outputs' std, mean over seeds)
    """
    if std is None or len(std) == 0 or std["step"].nunique() < 2:
        return []
    first_step, last_step = int(std["step"].min()), int(std["step"].max())
    first = std[std["step"] == first_step].set_index("layer")["value"]
    last = std[std["step"] == last_step].set_index("layer")["value"]
    ratio = (last / first).dropna()
    ratio = ratio[(ratio > 0) & np.isfinite(ratio)]
    if ratio.empty:
        return []
    grew = sorted(ratio[ratio >= min_ratio].index, key=_order)
    if not grew:
        low = ratio.idxmin()
        if ratio[low] <= 1 / min_ratio:
            return [f"From step {first_step} to step {last_step} the outputs of {labels.get(low, low)} narrowed "
                    f"{fmt_times(1 / ratio[low])}× (std {first[low]:.2g} → {last[low]:.2g})."]
        return [f"From step {first_step} to step {last_step} no hidden layer's outputs became {min_ratio:g}× wider "
                "or narrower: training moved them little."]
    top = ratio.idxmax()
    text = (f"From step {first_step} to step {last_step} the outputs of {labels.get(top, top)} spread out "
            f"{fmt_times(ratio[top])}× (std {first[top]:.2g} → {last[top]:.2g})")
    others = [labels.get(k, k) for k in grew if k != top]
    return [text + (f"; {join_names(others)} widened by {min_ratio:g}× or more too." if others else ".")
            + " Learning made the layers' outputs larger and more varied than the initialisation set them."]


def distance_trend_sentences(over: pd.DataFrame, labels: dict, min_change: float = 0.15) -> list[str]:
    """How the two runs' per-layer difference moved during training: the layer whose TV distance
    changed most between the first and the last shared recorded step, and the steadiest one.

    over -- columns layer (key), step, distance (TV, 0 same .. 1 disjoint), one row per shared recorded step
    """
    if over is None or len(over) == 0 or over["step"].nunique() < 2:
        return []
    rows = []
    for layer, d in over.groupby("layer", sort=False):
        d = d.sort_values("step")
        rows.append((layer, float(d["distance"].iloc[0]), float(d["distance"].iloc[-1]),
                     float(d["distance"].min()), float(d["distance"].max())))
    first, last = int(over["step"].min()), int(over["step"].max())
    moved = max(rows, key=lambda r: abs(r[2] - r[1]))
    if abs(moved[2] - moved[1]) < min_change:
        return [f"Over training every layer's distance stays within {min_change:.2f} of where it started at "
                f"step {first}: the runs differ in the same places from the first step to the last."]
    way = "more alike" if moved[2] < moved[1] else "further apart"
    out = [f"Over training the runs' gradients in {labels.get(moved[0], moved[0])} grew {way}: TV distance "
           f"{moved[1]:.2f} at step {first}, {moved[2]:.2f} at step {last}, the largest change of any layer."]
    steady = min((r for r in rows if r[0] != moved[0]), key=lambda r: r[4] - r[3], default=None)
    if steady is not None and steady[4] - steady[3] <= 0.1:
        how = "the runs differ there from the first step on" if steady[3] >= 0.5 else "the runs stay alike there"
        out.append(f"{labels.get(steady[0], steady[0])} stays between {steady[3]:.2f} and {steady[4]:.2f} "
                   f"throughout: {how}.")
    return out


def stuck_story(stuck: list[str], flow: pd.DataFrame, ratios: pd.DataFrame, guide: float = UPDATE_RATIO_GUIDE,
                preview_epochs: int | None = None) -> str:
    """The conclusion's one sentence per activation that never left chance, joining what the page's
    sections measured into a cause: the gradient fades on its way to the first layer, so that layer's
    weights barely move. Empty when the recordings do not show a fade (then the sections speak alone).

    flow   -- flow_plots.gradient_lines (activation, layer key, step, median log10 |dL/dW|)
    ratios -- activation, layer key, step, value (update:data ratio, mean over seeds)
    preview_epochs -- a preview's epochs: a few epochs at chance say nothing of "never" (the full recipe's
                      sigmoid leaves chance after about 20), so the sentence says how long it was watched
    """
    out = []
    for act in stuck:
        ends = _first_and_last_layer(flow[flow["activation"] == act]) if len(flow) else None
        if ends is None:
            continue
        fade = 10 ** (ends[2] - ends[1])
        if not np.isfinite(fade) or fade < 10:
            continue
        r = ratios[(ratios["activation"] == act) & (ratios["step"] > 0) & ratios["value"].gt(0)] if len(ratios) else ratios
        r = r[r["layer"] == min(r["layer"], key=_order)]["value"].median() if len(r) else float("nan")
        moves = (f"; over the run, each step changed that layer's weights by a median {fmt_sci(r)} of their size, "
                 f"{fmt_times(guide / r)}× below the healthy {fmt_sci(guide)}" if np.isfinite(r) and r < guide / 10 else "")
        stayed = (f"did not leave chance in these {preview_epochs} epochs" if preview_epochs else "never left chance")
        out.append(f"**{act}** {stayed}, and the recordings show a cause: at the last recorded step its first "
                   f"layer's gradients are about {fmt_times(fade)}× smaller than its output layer's{moves}. The layers "
                   + ("near the input had hardly started to learn; whether and when they would is a question for the "
                      "full recipe. " if preview_epochs else "near the input never learn features; ")
                   + "Page 2 showed the same fade before any training.")
    return " ".join(out)


def slow_start_story(act: str, flow: pd.DataFrame, ratios: pd.DataFrame, stopped: int = 0,
                     guide: float = UPDATE_RATIO_GUIDE) -> str:
    """The conclusion's sentence for an activation that learned late: its first layer's gradient started
    far below the output layer's, and that layer's weights barely moved until a step the page names.
    Empty unless both sections show it (then they speak alone).

    flow    -- flow_plots.gradient_lines (activation, layer key, step, median log10 |dL/dW|)
    ratios  -- activation, layer key, step, epoch, value (update:data ratio, mean over seeds)
    stopped -- how many of its seeds early stopping ended at chance (the plateau story tells when)
    """
    d = flow[flow["activation"] == act] if len(flow) else flow
    ends = _first_and_last_layer(d) if len(d) else None
    early = _closing_gap(d, ends[0][0], ends[0][-1]) if ends else None
    r = ratios[(ratios["activation"] == act) & (ratios["step"] > 0) & ratios["value"].gt(0)] if len(ratios) else ratios
    slow = _slow_stretch(r[r["layer"] == min(r["layer"], key=_order)], guide) if len(r) else None
    if early is None or slow is None:
        return ""
    step0, gap0, _ = early
    text = (f"**{act}** learned late, and the recordings say why: at step {step0} its first layer's gradients were "
            f"about {fmt_times(10 ** gap0)}× smaller than its output layer's, and until {slow[2]} each step changed "
            f"that layer's weights by less than a tenth of the healthy {fmt_sci(guide)}")
    if stopped:
        text += (f". Early stopping judged {'those seeds' if stopped > 1 else 'that seed'} on validation accuracy "
                 "while the layers near the input had hardly started")
    return text + "."
