"""Page 3's sentences: how the activations compare in loss, in their first epochs and in test accuracy,
and the page's conclusion. Each takes the run's tables and returns text, tested without a notebook
(the wording rules are narrate.py's)."""
from __future__ import annotations

import math

import pandas as pd

from .narrate import (
    CHANCE_ACC,
    CHANCE_LOSS_10,
    final_epochs,
    fmt_pct,
    fmt_pct_span,
    fmt_sci,
    is_preview,
    join_names,
    seeds_split,
)
from .seed_intervals import single_run_half


def loss_sentences(metrics: pd.DataFrame, tolerance: float = 0.05) -> list[str]:
    """Which activations end at chance loss (ln 10 for 10 classes) and what the others reach, in nats.

    metrics -- columns activation, seed, epoch, train_loss, train_acc (, past_stop)
    """
    last = final_epochs(metrics)
    out, learned = [], []
    for name, d in last.groupby("activation", sort=False):
        loss, n = float(d["train_loss"].mean()), len(d)
        seeds = f"{n} seeds" if n > 1 else "its one seed"
        chance_mask = (d["train_loss"] - CHANCE_LOSS_10).abs() < tolerance
        at_chance = d[chance_mask]
        if len(at_chance) == n:
            out.append(f"**{name}**'s training loss ends at {loss:.2f} nats (mean of {seeds}), next to ln 10 = "
                       f"{CHANCE_LOSS_10:.2f}, the loss of guessing uniformly among 10 classes (chance): it has not "
                       "started to learn.")
        elif len(at_chance):  # the seeds disagree: a mean would describe none of them
            others = d[~chance_mask]
            out.append(f"**{name}**'s seeds end apart: {len(at_chance)} of {n} end at chance loss (ln 10 = "
                       f"{CHANCE_LOSS_10:.2f} nats) when they stop, while "
                       + join_names([f"seed {int(r.seed)} gets down to {r.train_loss:.2f}" for r in others.itertuples()])
                       + ".")
        else:
            learned.append((name, loss))
    if learned:
        lo, hi = min(v for _, v in learned), max(v for _, v in learned)
        span = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f}"
        verb = "brings" if len(learned) == 1 else "bring"
        out.append(f"{join_names([n for n, _ in learned])} {verb} the training loss down to {span} nats (chance is "
                   f"{CHANCE_LOSS_10:.2f}; mean over seeds, at each seed's last counted epoch).")
    return out


def _weakest_start(flow: pd.DataFrame | None, learners) -> dict | None:
    """Per learning activation, the typical size of its weight gradients at the first recorded step:
    the median over its layers of each layer's median |dL/dW| (flow: activation, layer, step, median
    log10 |dL/dW|); None if unknown. With SGD the step is the rate times the gradient, so the smallest
    gradients take the smallest steps."""
    if flow is None or flow.empty:
        return None
    first = flow[flow["step"] == flow["step"].min()]
    sizes = {act: 10 ** float(d["median"].median())
             for act, d in first[first["activation"].isin(list(learners))].groupby("activation")}
    return sizes if len(sizes) == len(learners) else None


def slow_start_sentences(metrics: pd.DataFrame, gap: float = 0.10, flow: pd.DataFrame | None = None) -> list[str]:
    """Among the activations that learn, the one that starts clearly slowest (its first-epoch validation
    accuracy ``gap`` or more below every other's), and where it stands at the end: a slow start is
    something the curves show but early epochs must not be read as a ranking. With ``flow`` (the
    gradient lines, flow_plots.gradient_lines), why: its weight gradients are the smallest at the start.

    metrics -- columns activation, seed, epoch, val_acc (, past_stop)
    """
    last = final_epochs(metrics)
    # only the seeds that end above chance: a seed still on its plateau is not "starting slowly"
    ended_up = last[last["val_acc"] >= CHANCE_ACC][["activation", "seed"]]
    kept = metrics.merge(ended_up, on=["activation", "seed"])
    if kept.empty:
        return []
    first_epoch = kept[kept["epoch"] == kept["epoch"].min()]
    learners = first_epoch.groupby("activation", sort=False)["val_acc"].mean().sort_values()
    if len(learners) < 3 or learners.iloc[1] - learners.iloc[0] < gap:
        return []
    end = last.merge(ended_up, on=["activation", "seed"]).groupby("activation", sort=False)["val_acc"].mean()
    slowest, others = learners.index[0], learners.iloc[1:]
    others_end = end[others.index]
    kept_seeds = sorted(int(x) for x in ended_up.loc[ended_up["activation"] == slowest, "seed"])
    n_kept = len(kept_seeds)
    if n_kept < int((last["activation"] == slowest).sum()):  # some of its seeds never left chance: name the others
        who = f"**{slowest}**'s seed{'s' if n_kept > 1 else ''} {join_names(kept_seeds)}"
        verb, its = ("start", "their") if n_kept > 1 else ("starts", "its")
    else:
        who, verb, its = f"**{slowest}**", "starts", "its"
    it_is = "they are" if its == "their" else "it is"
    mean = " (mean over seeds)" if n_kept > 1 else ""
    start_gap, end_gap = others.min() - learners.iloc[0], others_end.min() - end[slowest]
    where = f"at {fmt_pct(end[slowest])} against {fmt_pct_span(others_end.min(), others_end.max())}"
    if end_gap <= 0.005:
        ends = (f"At the last counted epoch {it_is} at {fmt_pct(end[slowest])}, the others at "
                f"{fmt_pct_span(others_end.min(), others_end.max())}: a slow start is not where a network ends.")
    elif end_gap < start_gap / 2:
        ends = (f"At the last counted epoch {it_is} still behind, {where}, but the gap to the nearest shrank from "
                f"{100 * start_gap:.1f} to {100 * end_gap:.1f} points.")
    else:
        ends = f"At the last counted epoch {it_is} still behind, {where}: the gap has not closed in these epochs."
    return [f"Of the seeds that end above chance, {who} {verb} slowest: after epoch "
            f"{int(first_epoch['epoch'].min())} {its} validation accuracy is {fmt_pct(learners.iloc[0])}{mean}, "
            f"against {fmt_pct_span(others.min(), others.max())} for the other activations (means over their "
            f"seeds). {ends}"] \
        + _why_slow(slowest, _weakest_start(flow, learners.index))


def _seed_count(n: int) -> str:
    return "one seed" if n == 1 else f"{n} seeds"


def _why_slow(slowest: str, sizes: dict | None) -> list[str]:
    rest = [v for a, v in (sizes or {}).items() if a != slowest]
    if not rest or sizes[slowest] >= min(rest) / 1.5:  # only when its gradients are clearly the smallest
        return []
    return [f"Why: at the first recorded step its weight gradients are the smallest of these activations (typical "
            f"size {fmt_sci(sizes[slowest])}, the median over its layers, against {fmt_sci(min(rest))} to "
            f"{fmt_sci(max(rest))} for the others), and with SGD a smaller gradient takes a smaller step; page 2 "
            "shows the same order before any training."]


# --------------------------------------------------------------------------- test accuracy


def accuracy_sentences(table: pd.DataFrame, preset: str, apart: list, reference: dict | None = None) -> list[str]:
    """What the test accuracies say, honestly for the preset and the number of seeds.

    table -- columns activation, seeds, mean (%), half-width (pp), as built by seed_intervals.accuracy_summary
    apart -- pairs (better, worse) whose 95 % intervals do not overlap
    """
    n = int(table["seeds"].min()) if len(table) else 0
    chance = [r.activation for r in table.itertuples() if r.max_pct < 100 * CHANCE_ACC]
    split = [r for r in table.itertuples() if seeds_split(r.min_pct / 100, r.max_pct / 100)]
    out = []
    if chance:
        out.append(f"{join_names(chance)} {'is' if len(chance) == 1 else 'are'} at about 10 %, chance for 10 classes.")
    for r in split:
        out.append(f"**{r.activation}**'s seeds split: the lowest ends at {r.min_pct:.1f} % (chance), the highest at "
                   f"{r.max_pct:.1f} %, so its mean of {r.mean_pct:.1f} % describes no single run, and the table gives "
                   "it no interval; read the learning curves for its story.")
    odd = set(chance) | {r.activation for r in split}
    if is_preview(preset):
        rest = table[~table["activation"].isin(odd)]
        if len(rest):
            out.append(f"{'The others' if odd else 'They'} reach {rest['mean_pct'].min():.1f}–"
                       f"{rest['mean_pct'].max():.1f} % after this "
                       "preview's epochs; that spread is not a ranking (early epochs favour whichever starts "
                       "fastest, and the full recipe trains up to 50 epochs).")
            behind = [b for a, b in apart if a not in odd and b not in odd]
            if behind:  # intervals apart on a preview: the seeds agree on where it is now, not on where it ends
                out.append(f"Where two intervals do not overlap ({join_names(sorted(set(behind)))} below another), the "
                           "seeds agree that it is behind after these epochs; whether it ends behind is a question "
                           "for the full recipe.")
        return out
    if n < 2:
        out.append("With one seed per activation nothing can be told apart: there is no spread to compare a "
                   "difference with.")
        return out
    rest = table[~table["activation"].isin(odd)]
    apart_here = [(a, b) for a, b in apart if a not in odd and b not in odd]
    if apart_here:
        out.append(f"With {n} seeds, the 95 % intervals separate: " + "; ".join(f"{a} > {b}" for a, b in apart_here)
                   + ".")
    overlapping = [a for a in rest["activation"] if not any(a in pair for pair in apart_here)]
    if len(overlapping) > 1:
        span = rest[rest["activation"].isin(overlapping)]["mean_pct"]
        out.append(f"{join_names(overlapping)} end within {span.max() - span.min():.2f} points of each other "
                   f"({span.min():.2f}–{span.max():.2f} %) and their intervals overlap: {n} seeds cannot rank them, "
                   "as the tutorial warned about its single seed.")
    if reference:
        # the tutorial's number is one run: compare it with where one run of ours lands, not with the
        # (narrower) interval of our mean
        one_run = {a.activation: single_run_half(a.half_pp, a.seeds) for a in rest.itertuples()}
        inside = [a.activation for a in rest.itertuples() if a.activation in reference
                  and abs(100 * reference[a.activation] - a.mean_pct) <= one_run[a.activation]]
        if inside:
            out.append(f"The tutorial's result is one run, so it is compared with where one run of ours lands (the "
                       f"95 % range for a single seed, {math.sqrt(n + 1):.0f}× as wide as the interval of the mean "
                       f"with {n} seeds): it lies inside that range for {join_names(inside)}.")
        for a in rest.itertuples():  # say where it does not, rather than leave it out
            if a.activation in reference and a.activation not in inside and math.isfinite(a.half_pp):
                ref, lo, hi = (100 * reference[a.activation], a.mean_pct - one_run[a.activation],
                               a.mean_pct + one_run[a.activation])
                out.append(f"For {a.activation} the tutorial's result lies {'above' if ref > hi else 'below'} even the "
                           f"range for a single seed of ours ({ref:.2f} % against {lo:.2f}–{hi:.2f} %): a recipe or "
                           "library difference, or a rare draw.")
        for r in split:
            if reference.get(r.activation, 1.0) < CHANCE_ACC:
                out.append(f"The tutorial's {100 * reference[r.activation]:.1f} % for {r.activation} is one seed's "
                           "draw of this split, most likely a seed that stopped on the plateau.")
    return out


def conclusion_compare(preset: str, loss_text: list[str], ratio_text: list[str], dead_text: list[str],
                       plateau: str = "", accuracy_text: list[str] = (), flow_text: list[str] = (),
                       why_stuck: str = "") -> str:
    """The page's conclusion: the lead sentence per topic, and what the preset allows one to say.

    plateau   -- one sentence (narrate_findings.plateau_lesson), not the section's whole story
    why_stuck -- narrate_layers.stuck_story: the sections' numbers joined into a cause; when given it
                 replaces the loss and ratio sentences it would repeat word for word
    """
    parts = []
    chance = [s for s in loss_text if "ln 10" in s and "disagree" not in s]
    late = [s for s in flow_text if "started learning late" in s]
    low = [s for s in ratio_text if "below the" in s]
    if why_stuck:
        parts.append(why_stuck)
    else:
        parts += chance[:1] + (late or low)[:1]
        grew = [s for s in dead_text if "grew" in s]
        parts += grew[:1]
    if plateau:
        parts.append(plateau)
    if is_preview(preset):
        parts.append("These are the shapes after a preview's few epochs: which layer, which direction. Which "
                     "activation ends best is a question for the full recipe with several seeds "
                     "(`make report PRESET=tutorial`).")
    else:
        ranked = [s for s in accuracy_text if "cannot rank" in s or "intervals separate" in s]
        parts.extend(ranked or ["Accuracy differences between the activations that learn are judged by their 95 % "
                                "intervals above; where they overlap, these seeds cannot rank them."])
    return "\n\n".join(parts)
