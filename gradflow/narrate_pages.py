"""Page-level text: the glossary, credit, questions, and the sentences of pages 01, 04 and 05.

Like :mod:`gradflow.narrate`, every builder takes tables and returns Markdown, so the tests can
plant numbers and check the words.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from .histogram_tables import NEAR_TIE_TV, near_top
from .narrate import (
    CHANCE_LOSS_10,
    final_epochs,
    fmt_pct,
    fmt_sci,
    fmt_times,
    is_preview,
    join_names,
    seeds_split,
)
from .stats import SATURATION_DERIV_FRACTION

TUTORIAL_URL = ("https://uvadlc-notebooks.readthedocs.io/en/latest/tutorial_notebooks/tutorial3/"
                "Activation_Functions.html")
CREDIT = (f"This set follows Phillip Lippe's UvA Deep Learning tutorial 3, [“Activation Functions”]({TUTORIAL_URL}) "
          "(same network, data and training recipe), re-measured with several seeds and per-layer recordings.")

GLOSSARY = {
    "update:data ratio": "how much one optimizer step changes a layer's weights, relative to their size: "
                         "std(weight after − weight before) / std(weight). About 1e-3 is the usual healthy size "
                         "(Karpathy); far below, the layer barely learns.",
    "dead unit": "a hidden unit that, for every training image checked, either passes no gradient back (its slope "
                 "is below 1e-4 of the activation's largest slope: the weights into it stop learning) or outputs "
                 "nothing (|output| < 1e-6: it tells the next layer nothing, and the weights out of it get no "
                 "gradient). Training can revive it when earlier layers move its inputs. Counted on a pass over "
                 "training images (pages 2–4 say how many).",
    "saturated": "a value where the activation's slope is below 6 % of its largest slope (for tanh that is "
                 "|tanh(x)| > 0.97): almost no gradient passes back through it. For ReLU these pages count "
                 "its flat negative side the same way; there the unit is off, which is not saturation in the tanh "
                 "sense (ReLU never fades for large inputs).",
    "TV distance": "total-variation distance between two histograms on the same bins: half the summed absolute "
                   "difference of their fractions. 0 = identical, 1 = no overlap. It stops at 1 however far apart "
                   "two histograms that do not overlap lie, so the pages give the ratio of their medians for how "
                   "far.",
    "nats": "the unit of cross-entropy loss with the natural logarithm; guessing uniformly among 10 classes "
            f"costs ln 10 = {CHANCE_LOSS_10:.2f} nats.",
    "seed": "the number that fixes a run's random initialisation, data order and (where a network has dropout) "
            "dropout masks. Several seeds show how much of a difference is luck.",
    "95 % CI": "the 95 % confidence interval of the mean over seeds (Student t). Two activations whose intervals "
               "do not overlap differ by more than seed-to-seed luck; overlapping intervals can still differ, these "
               "seeds just cannot show it.",
    "logits": "the network's raw output scores, one per class, before a softmax turns them into probabilities. "
              "PyTorch's cross-entropy takes the logits and applies the (log-)softmax itself.",
    "initialisation": "how the weights are drawn before training. *default*: PyTorch's nn.Linear, uniform in "
                      "±1/sqrt(fan_in) (fan_in: the layer's inputs). *kaiming* (He et al., 2015): uniform in "
                      "±sqrt(6/fan_in), about 2.4× larger, chosen so ReLU layers keep the signal's size from layer "
                      "to layer.",
    "told apart": "two cells of a sweep whose 95 % confidence intervals do not overlap: the setting moved accuracy "
                  "by more than seed-to-seed luck. A conservative reading: overlapping intervals can still differ, "
                  "these seeds just cannot show it.",
}


def glossary(terms) -> str:
    """A short glossary of the terms a page uses (Markdown list)."""
    return "\n".join(f"- **{t}**: {GLOSSARY[t]}" for t in terms)


def questions(items) -> str:
    """'Predict, then look' questions, answered by the figure that follows."""
    if len(items) == 1:
        return f"**Predict, then look.** {items[0]}"
    return "**Predict, then look.** " + " ".join(f"({i}) {q}" for i, q in enumerate(items, 1))


def answers(items) -> str:
    """The answers to a section's questions, in the same order, folded away so a reader predicts first.

    An HTML ``<details>`` block that stays closed until clicked, in the rendered page and in Jupyter. Its
    Markdown is turned into HTML here (mistune, which nbconvert uses too): a Markdown renderer closes an
    HTML block at its first blank line, so Markdown left inside ``<details>`` would end up outside it.
    """
    import mistune

    listed = items[0] if len(items) == 1 else "\n".join(f"{i}. {a}" for i, a in enumerate(items, 1))
    body = mistune.html(listed).strip().replace("\n\n", "\n")
    return f"<details class=\"answers\"><summary>Check your predictions</summary>\n{body}\n</details>"


# --------------------------------------------------------------------------- 01: activation functions


def stopping_note(metrics: pd.DataFrame) -> str:
    """What the faded continuations mean when a seed stopped early; that there are none when no seed did
    (a preview's few epochs end before early stopping's patience runs out), so a reader does not look for them."""
    if "past_stop" not in metrics or metrics["past_stop"].any():
        return ""
    epochs = int(metrics["epoch"].max())
    return (f"*In these runs no seed stopped early: every seed trained all {epochs} epochs, so no line turns thin "
            "and every epoch counts.*")


def activation_sentences(props: pd.DataFrame) -> list[str]:
    """From the properties table (activation, max_slope, left_slope, right_slope, dead_share, mean_out)."""
    out = []
    small = props[props["max_slope"] < 0.5]
    for r in small.itertuples():
        out.append(f"**{r.activation}**'s slope is at most {r.max_slope:.2f}: on its way back through a "
                   f"{r.activation} layer the gradient is multiplied by that slope, {r.max_slope:.2f} or less, so four "
                   f"such layers alone shrink it to {fmt_sci(r.max_slope ** 4)} or less. Each layer's weights multiply "
                   "in a factor of their own, which can be larger or smaller than 1 (page 2 measures both).")
    # the recorder's definition of saturated (stats.SATURATION_DERIV_FRACTION), so one word keeps one number
    limit = SATURATION_DERIV_FRACTION * props["max_slope"]
    flat = props[(props["left_slope"].abs() < limit) & (props["right_slope"].abs() < limit)]
    if len(flat):
        one = len(flat) == 1
        out.append(f"{join_names(flat['activation'])} flatten{'s' if one else ''} out on both sides: at x = ±5 "
                   f"{'its' if one else 'their'} slope is below {100 * SATURATION_DERIV_FRACTION:.0f} % of its largest, "
                   f"so large inputs saturate {'it' if one else 'them'}.")
    # one-sided: flat for large negative inputs only (ELU, swish); ReLU's exact-zero side is told below
    left = props[(props["left_slope"].abs() < limit) & (props["right_slope"].abs() >= limit) & (props["dead_share"] == 0)]
    if len(left):
        one = len(left) == 1
        out.append(f"{join_names(left['activation'])} flatten{'s' if one else ''} out on the negative side only: at x = −5 "
                   f"{'its' if one else 'their'} slope is below {100 * SATURATION_DERIV_FRACTION:.0f} % of its largest, "
                   "so a unit whose input is far below 0 passes back almost nothing; positive inputs never saturate "
                   f"{'it' if one else 'them'}.")
    dead = props[props["dead_share"] > 0]
    for r in dead.itertuples():
        # ReLU's flat half is every negative input; a clamp's is both ends: say where, from the slopes at ±5
        where = ("all negative inputs" if r.right_slope != 0 else "large inputs of either sign" if r.left_slope == 0
                 else "large positive inputs")
        stays = "negative" if where == "all negative inputs" else "there"
        out.append(f"{r.activation}'s slope is exactly 0 on {100 * r.dead_share:.0f} % of the range ({where}): a "
                   f"unit whose input stays {stays} gets no gradient at all, it can die.")
    positive = props[props["mean_out"] > 0.3]
    if len(positive):
        parts = [f"{r.activation} ({r.mean_out:.2f})" for r in positive.itertuples()]
        milder = [f"{r.activation} ({r.mean_out:.2f})" for r in props[props["mean_out"].between(0.05, 0.3)].itertuples()]
        out.append(f"For standard-normal inputs the mean output is far from 0 for {join_names(parts)}"
                   + (f", and smaller but still positive for {join_names(milder)}" if milder else "")
                   + ": the next layer's inputs are mostly positive, which pushes its weight gradients towards "
                   "one sign (where no output is negative, as with sigmoid and relu, all the weights into one unit "
                   "get gradients of the same sign from each image). From any one image those weights can then only all "
                   "grow or all shrink together; summed over a batch this softens, but reaching a mix of signs still "
                   "tends to take a zig-zag of many steps: one reason a network of such units learns more slowly.")
    steep = props[props["max_slope"] > 1.0]
    for r in steep.itertuples():  # above 1 a slope could grow a gradient layer by layer: say how far it can
        out.append(f"{r.activation}'s largest slope, {r.max_slope:.2f}, is a little above 1: through four such layers "
                   f"it could grow a gradient by at most {r.max_slope ** 4:.2f}×, and only for the inputs near its "
                   "steepest point: a slope this close to 1 does not make gradients explode (large weights "
                   "can, page 2).")
    return out


# (02, gradients at initialisation: gradflow.narrate_init)


# --------------------------------------------------------------------------- 04: one run


def run_sentences(metrics: pd.DataFrame, results: pd.DataFrame, dead: pd.DataFrame, n_findings: int,
                  preset: str) -> list[str]:
    """What one run did. dead -- layer (display), stage, percent (mean over seeds)."""
    out = []
    last = final_epochs(metrics)
    loss = float(last["train_loss"].mean())
    acc = results["test_acc"]
    lo, hi = int(last["epoch"].min()), int(last["epoch"].max())
    epochs = (f"{hi} epoch{'s' if hi != 1 else ''}" if lo == hi else
              f"{lo}–{hi} epochs (each seed's early stop), mean over seeds:")
    if abs(loss - CHANCE_LOSS_10) < 0.05:
        out.append(f"After {epochs} the training loss is {loss:.2f} nats, ln 10: the network still guesses.")
    else:
        out.append(f"After {epochs} the training loss is {loss:.2f} nats (chance: {CHANCE_LOSS_10:.2f}) and the test "
                   f"accuracy {fmt_pct(acc.mean())}"
                   + (f" (seeds from {fmt_pct(acc.min())} to {fmt_pct(acc.max())})" if len(acc) > 1 else "") + ".")
    changes = dead_change_sentences(dead)
    out += changes
    if n_findings == 0:
        if changes:
            from .diagnose.units import DEAD_WARNING  # the diagnosis owns its threshold
            out.append("The diagnosis raises no finding: these changes stay below its thresholds (a DEAD_UNITS "
                       f"warning starts at {100 * DEAD_WARNING:.0f} % of a layer, and is only a note when the run learns "
                       "all the same).")
        else:
            out.append("The diagnosis raises no finding, and dead units did not change.")
    if is_preview(preset):
        out.append("This is a preview: a longer run can change all of these numbers.")
    return out


def dead_change_sentences(dead: pd.DataFrame, min_change_pp: float = 0.5) -> list[str]:
    out = []
    if dead.empty:
        return out
    wide = dead.pivot_table(index="layer", columns="stage", values="percent", sort=False).fillna(0)
    for layer, row in wide.iterrows():
        before, after = row.get("at initialisation", 0.0), row.get("after training", 0.0)
        if abs(after - before) >= min_change_pp:
            verb = "rose" if after > before else "fell"
            out.append(f"Dead units in {layer} {verb} from {before:.1f} % at initialisation to {after:.1f} % after "
                       "training.")
    return out


# --------------------------------------------------------------------------- 05: two runs


def two_run_sentences(summary: pd.DataFrame, distances: pd.DataFrame, preset: str,
                      learning_rates: tuple | None = None) -> list[str]:
    """summary -- run, mean_pct, half_pp, seeds; distances -- stage, quantity, layer (display), distance;
    learning_rates -- (run A's, run B's), when known: a smaller gradient means a smaller step only at one rate."""
    out = []
    a, b = summary.iloc[0], summary.iloc[1]
    split = [r for r in (a, b) if "min_pct" in r and seeds_split(r.min_pct / 100, r.max_pct / 100)]
    for r in (a, b):
        ci = f" ± {r.half_pp:.1f}" if math.isfinite(r.half_pp) else ""
        n = int(r.seeds)
        if any(r is x for x in split):  # seeds at chance and seeds that learned: the mean is no run's number
            out.append(f"{_upper_first(r['run'])}'s {n} seeds split: from {r.min_pct:.1f} % (chance) to "
                       f"{r.max_pct:.1f} %, so its mean of {r.mean_pct:.1f} % describes none of them.")
            continue
        out.append(f"{_upper_first(r['run'])}: test accuracy {r.mean_pct:.1f} %{ci} over {n} seed{'s' if n != 1 else ''}"
                   + (" (chance)" if r.mean_pct < 15 else "") + ".")
    if split and len(split) == 1:
        s_run, other = split[0], (b if split[0] is a else a)
        if other.min_pct > s_run.max_pct:
            out.append(f"Every seed of {other['run']} ({other.min_pct:.1f} % and up) beats the best seed of "
                       f"{s_run['run']} ({s_run.max_pct:.1f} %).")
    elif not is_preview(preset) and math.isfinite(a.half_pp) and math.isfinite(b.half_pp):
        apart = abs(a.mean_pct - b.mean_pct) > a.half_pp + b.half_pp
        out.append("Their 95 % intervals do not overlap: the difference is larger than seed-to-seed luck." if apart
                   else "Their 95 % intervals overlap: these seeds cannot tell the two apart.")
    if len(distances):
        d = distances[distances["quantity"] == "grad"]
        if len(d):
            top = d.loc[d["distance"].idxmax()]
            near = near_top(d[d["stage"] == top["stage"]])
            if len(near) < 2:
                out.append(f"Their gradients differ most in {top['layer']} ({top['stage']}): TV distance "
                           f"{top['distance']:.2f}, where 0 is identical and 1 no overlap.")
            else:  # a near tie: name every close layer, none as "the" most different
                out.append(f"Their gradients differ most in {join_names(near['layer'])} ({top['stage']}): TV "
                           f"distances {join_names([f'{v:.2f}' for v in near['distance']])}, within "
                           f"{NEAR_TIE_TV:g} of each other, too close to call one the most different (0 is "
                           "identical, 1 no overlap).")
            out.extend(_which_way([r for _, r in (near if len(near) > 1 else near.head(1)).iterrows()],
                                  learning_rates))
            low = d[d["stage"] == top["stage"]]["distance"].min()
            out.append(f"The least different layer at that stage has a TV distance of {low:.2f}.")
    return out


def _which_way(rows: list, learning_rates: tuple | None = None) -> list[str]:
    """Which way run A's gradients differ from run B's in the most different layer(s), and by how much
    (from the histograms' medians of log10 |dL/dW|): the TV distance says *that* they differ, not
    which run's are larger -- two tied layers may differ in opposite directions."""
    parts = []
    for r in rows:
        a, b = r.get("median_a"), r.get("median_b")
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or abs(a - b) < 0.3:
            continue
        where = "There" if len(rows) == 1 else f"In {r['layer']}"
        shown_a, shown_b = fmt_sci(10 ** a), fmt_sci(10 ** b)
        # the factor of the numbers as printed, so a reader who divides them gets the page's factor
        factor = max(float(shown_a), float(shown_b)) / min(float(shown_a), float(shown_b))
        parts.append(f"{where}, run A's gradients are typically about {fmt_times(factor)}× "
                     f"{'smaller' if a < b else 'larger'} than run B's (median of the nonzero |dL/dW|, "
                     f"{shown_a} against {shown_b})")
    if not parts:
        return []
    lr_a, lr_b = learning_rates or (None, None)
    step = ("At the same learning rate a smaller gradient takes a smaller step" if lr_a is None or lr_a == lr_b else
            f"The runs' learning rates differ ({lr_a:g} and {lr_b:g}), so a smaller gradient need not take a smaller "
            "step")
    return ["; ".join(parts[:1] + [p[0].lower() + p[1:] for p in parts[1:]]) + f". {step}; how far each layer's "
            "step moves its weights is the update:data ratio (page 4)."]


def _upper_first(text: str) -> str:
    """'run A' opening a sentence reads 'Run A' ('run A'.capitalize() would give 'Run a')."""
    return text[:1].upper() + text[1:]


def _seeds_inline(cell: str) -> str:
    """A findings table's seeds cell inside a parenthesis: "2 of 3 seeds (seeds 42, 43)" becomes
    "seeds 42 and 43" (no parenthesis in a parenthesis); "3 of 3 seeds" stays."""
    m = re.fullmatch(r"\d+ of (\d+) seeds? \((seeds?) ([\d, ]+)\)", cell)
    return f"{m.group(2)} {join_names(m.group(3).split(', '))}" if m else cell


def _few_layers(layers: str) -> str:
    """A findings row's layers for a sentence: named when one or two, else counted."""
    names = layers.split("; ")
    return layers if len(names) <= 2 else f"{len(names)} layers"


def two_run_conclusion(summary: pd.DataFrame, distances: pd.DataFrame, found: pd.DataFrame, preset: str,
                       tags: tuple[str, str]) -> list[str]:
    """The page's conclusion: what separates the two runs, in outcome, layers and findings.

    tags -- what names each run beside "run A"/"run B": its activation, or the settings that differ
    """
    out = []
    a, b = summary.iloc[0], summary.iloc[1]
    names = {"run A": f"run A ({tags[0]})", "run B": f"run B ({tags[1]})"}
    stuck = [r for r in (a, b) if r.mean_pct < 15]
    split = [r for r in (a, b) if "min_pct" in r and seeds_split(r.min_pct / 100, r.max_pct / 100)]
    if split:
        out.append(" ".join(f"The seeds of {names[r['run']]} split between chance ({r.min_pct:.1f} %) and "
                            f"{r.max_pct:.1f} %." for r in split))
        rest = [r for r in (a, b) if not any(r is x for x in split)]
        out.extend(f"{_upper_first(names[r['run']])} reaches {r.mean_pct:.1f} %." for r in rest)
    elif len(stuck) == 1:
        other = b if stuck[0] is a else a
        out.append(f"{_upper_first(names[stuck[0]['run']])} stays at chance ({stuck[0].mean_pct:.1f} %) while "
                   f"{names[other['run']]} reaches {other.mean_pct:.1f} %.")
    elif not stuck:
        out.append(f"Both runs learn: {names['run A']} {a.mean_pct:.1f} %, {names['run B']} {b.mean_pct:.1f} % test "
                   "accuracy.")
    if len(distances):
        d = distances[distances["quantity"] == "grad"]
        top = d.loc[d["distance"].idxmax()]
        near = near_top(d[d["stage"] == top["stage"]])
        if len(near) > 1:
            out.append(f"Inside the network the largest differences are in {join_names(near['layer'])} at "
                       f"{top['stage']} (TV distances {join_names([f'{v:.2f}' for v in near['distance']])}, a near "
                       "tie).")
        else:
            out.append(f"Inside the network the largest difference is in {top['layer']} at {top['stage']} (TV "
                       f"distance {top['distance']:.2f}).")
    if len(found) and "in" in found:
        only = found[found["in"] != "both runs"]
        for run, d in only.groupby("run", sort=False):
            parts = [f"{r.finding} ({_few_layers(r.layers)}, {_seeds_inline(r.seeds)})" for r in d.itertuples()]
            out.append(f"Only {names[run]} gets {join_names(parts)}.")
    if is_preview(preset):
        out.append("A preview shows where the runs differ, not which set-up is better in the end: compare the full "
                   "recipe's runs for that.")
    return out
