"""Sentences computed from a run's tables: what this run shows, in words a student can check.

Every function takes plain tables or numbers and returns text (Markdown), so it is tested
without a notebook: plant a run whose numbers you know, check the sentence says them. The
notebooks only display what these return. Wording rules kept everywhere:

- say the number, its unit and what it is compared with ("2.30 nats, ln 10: chance for 10 classes");
- a preview preset (fewer epochs than the recipe) never ranks activations and never sets its
  accuracies beside the tutorial's table; with one seed nothing can be told apart, and we say so;
- layers are named by :func:`gradflow.style.layer_label`.
"""
from __future__ import annotations

import html
import math

import pandas as pd

from .diagnose.finding import round_number
from .seed_intervals import single_run_half

CHANCE_LOSS_10 = math.log(10)  # cross-entropy of a uniform guess over 10 classes, in nats
RECIPE_EPOCHS = 50  # the tutorial's recipe: at most 50 epochs with early stopping
CHANCE_ACC = 0.15  # a 10-class run whose accuracy stays below this has not left chance (10 %)
RANKING_PRESETS = ("tutorial",)  # presets whose numbers may be ranked and set beside the tutorial's


def is_preview(preset: str) -> bool:
    """A preview preset runs fewer epochs than the recipe: its numbers are a first look, not results."""
    return preset not in RANKING_PRESETS


def seeds_split(lowest: float, highest: float) -> bool:
    """Some seeds at chance and some above it (accuracies as fractions): a mean and its interval
    then describe no single run, so pages say the split instead of averaging it."""
    return lowest < CHANCE_ACC <= highest


def fmt_pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f} %"


def fmt_pct_span(lo: float, hi: float) -> str:
    """"74.0 %–78.0 %", or one number where both read the same."""
    a, b = fmt_pct(lo), fmt_pct(hi)
    return a if a == b else f"{a}–{b}"


def fmt_sci(x: float) -> str:
    """1.2e-05 -> '1.2 × 10⁻⁵' is hard to type; keep '1.2e-5', readable and searchable."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_times(x: float) -> str:
    """A ratio said the way people say it: '3', '8.5', '110', '6,200' (two significant digits from 10 on)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.1f}".removesuffix(".0") if x < 10 else round_number(x)


def seeds_phrase(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"one seed ({seeds[0]})"
    return f"{len(seeds)} seeds ({', '.join(str(s) for s in seeds)})"


def recipe_phrase(config: dict) -> str:
    """The optimizer and the batches of a stored run, with its steps per epoch, so a reader can turn the
    pages' step numbers into epochs: "SGD (learning rate 0.01, momentum 0.9), batches of 256 of the
    50,000 training images: 195 steps per epoch". Empty when the config does not say."""
    run, sizes = config.get("run") or {}, (config.get("data") or {}).get("sizes") or {}
    n, batch = run.get("train_subset") or sizes.get("train"), run.get("batch_size")
    if not (batch and run.get("optimizer")):
        return ""
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(run["optimizer"], run["optimizer"])
    settings = [f"learning rate {run['lr']:g}"] if run.get("lr") else []
    if run.get("momentum") and run["optimizer"] == "sgd":
        settings.append(f"momentum {run['momentum']:g}")
    if not n:  # a plan's config: no data sizes
        return f"{name} ({', '.join(settings)}), batches of {batch}"
    steps = int(n) // int(batch)  # the last partial batch is dropped, as in the tutorial
    text = f"{name} ({', '.join(settings)}), batches of {batch} of the {int(n):,} training images: {steps} steps per epoch"
    epochs = run.get("max_epochs")
    if epochs and steps * int(epochs) < 1000:  # a preview never reaches step 1,000: give its own last step
        return text + f", so {int(epochs)} epochs are {steps * int(epochs):,} steps"
    return text + f", so step 1,000 falls in epoch {1000 // steps + 1}"


def preset_callout(preset: str, seeds, epochs_run: int | None = None, max_epochs: int | None = None,
                   dataset: str = "fashion_mnist", recipe: str = "") -> str:
    """The box at the top of every page: what preset this is, and for a preview what it cannot tell.

    recipe -- recipe_phrase(config): the optimizer and steps per epoch, said at the end
    Returns an HTML block (it renders in Jupyter and in the exported HTML alike).
    """
    seeds = list(seeds)
    run = f"{epochs_run} epoch{'s' if epochs_run != 1 else ''}" if epochs_run else (
        f"at most {max_epochs} epochs" if max_epochs else "its epochs")
    if is_preview(preset):
        title = f"Preview: the “{preset}” preset"
        body = (f"These models trained for {run}, against the tutorial recipe's up to {RECIPE_EPOCHS} epochs "
                f"with early stopping, on {seeds_phrase(seeds)}"
                f"{' of a synthetic stand-in data set, not FashionMNIST' if dataset == 'synthetic' else ''}. "
                "Early epochs favour whatever starts fastest, so this page does <b>not rank activations</b> and "
                "does not set its accuracies beside the tutorial's table. A short run is hardest on what starts "
                "slowly: an activation still at chance after these epochs may leave it later (sigmoid does, in "
                "some seeds, in the full recipe), and gaps of a few points between the others can close. Use it "
                "to see the shapes (which layer, which direction); for results, render with "
                "<code>make report PRESET=tutorial</code>.")
        if len(seeds) == 1:
            body += " With one seed nothing can be told apart: there is no spread to compare a difference with."
    else:
        title = f"Results: the “{preset}” preset (the tutorial's recipe)"
        body = (f"Trained with the tutorial's recipe ({run}, early stopping with patience 7, best-validation "
                f"checkpoint tested) on {seeds_phrase(seeds)}. Differences are judged with 95 % confidence "
                "intervals over the seeds.")
    if recipe:
        body += f" Training: {html.escape(recipe)}."
    return callout_html(title, body, preview=is_preview(preset))


def callout_html(title: str, body: str, preview: bool) -> str:
    """The page-top box: orange for a preview, blue for results (``body`` is HTML)."""
    colour, background = ("#D55E00", "#fff4e5") if preview else ("#0173B2", "#eaf4fb")
    return (f'<div class="gradflow-callout" style="border-left:6px solid {colour};background:{background};'
            f'padding:0.6em 1em;margin:0.5em 0 1em 0"><b>{html.escape(title)}.</b> {body}</div>')


def untrained_callout(preset: str, dataset: str, hidden_sizes, seed: int, batch: int) -> str:
    """The box at the top of a page that trains nothing (networks at initialisation)."""
    data = "a synthetic stand-in data set (not FashionMNIST)" if dataset == "synthetic" else "FashionMNIST"
    body = (f"This page trains nothing: it looks at fresh networks (hidden layers {list(hidden_sizes)}, PyTorch's "
            f"default initialisation, seed {seed}) on one batch of {batch} training images of {data}. The "
            f"“{preset}” preset only picks the data and the network's size, so these numbers are the same for the "
            "preview and the full recipe" + (" on FashionMNIST." if dataset == "synthetic" else "."))
    return (f'<div class="gradflow-callout" style="border-left:6px solid #999;background:#f4f4f4;'
            f'padding:0.6em 1em;margin:0.5em 0 1em 0"><b>Before training.</b> {body}</div>')


def heading(text, what: str = "this run", paragraphs: bool = False) -> str:
    """The 'What this run shows' paragraph's Markdown, from a list of sentences or one string
    (``paragraphs``: each item of the list a paragraph of its own, for items that are long stories)."""
    if not isinstance(text, str):
        text = "\n\n".join(s for s in text if s) if paragraphs else sentences(text)
    verb = "show" if what.startswith(("these ", "both ")) else "shows"  # "what these runs show"
    return f"**What {what} {verb}.** {text}"


def sentences(items) -> str:
    return " ".join(s for s in items if s)


def layer_text(text: str, labels: dict) -> str:
    """Replace recorder keys (``layers.0``) in a message with the layer names of :mod:`gradflow.style`."""
    import re

    return re.sub(r"layers\.\d+", lambda m: labels.get(m.group(0), m.group(0)), str(text))


# --------------------------------------------------------------------------- training curves


def final_epochs(metrics: pd.DataFrame, group: str = "activation") -> pd.DataFrame:
    """Per (group, seed): the last epoch the seed trained for itself (not past its early stop)."""
    live = metrics[~metrics["past_stop"].astype(bool)] if "past_stop" in metrics else metrics
    keys = [k for k in (group, "seed") if k in live]
    return live.sort_values("epoch").groupby(keys, sort=False).tail(1)


def past_stop_note(metrics: pd.DataFrame, step: int, epoch: int, group: str = "activation") -> str:
    """A figure at a late step shows models that early stopping had already ended, if any: the batch
    trained them on, so the figure is where training was heading, not the checkpoints tested. ""
    when every model was still counting at ``epoch``.

    metrics -- columns seed, epoch, past_stop (and ``group`` when several runs share the page)
    """
    if "past_stop" not in metrics or pd.isna(epoch):
        return ""
    keys = [k for k in (group, "seed") if k in metrics]
    last = final_epochs(metrics, group)
    models = metrics.groupby(keys, sort=False).ngroups
    stopped = last[last["epoch"] < int(epoch)]
    if stopped.empty:
        return ""
    lo, hi = int(stopped["epoch"].min()), int(stopped["epoch"].max())
    which = f"all {models} of these models" if len(stopped) == models else f"{len(stopped)} of these {models} models"
    return (f"Step {int(step):,} is in epoch {int(epoch)}, after early stopping had ended {which} ({f'at epoch {lo}' if lo == hi else f'between epochs {lo} and {hi}'}). They kept training with the rest of their stacked group, so at this "
            "step the figure shows where training was heading, not the checkpoints that were tested (each model's "
            "best validation epoch).")


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
                       + _join([f"seed {int(r.seed)} gets down to {r.train_loss:.2f}" for r in others.itertuples()])
                       + ".")
        else:
            learned.append((name, loss))
    if learned:
        lo, hi = min(v for _, v in learned), max(v for _, v in learned)
        span = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f}"
        verb = "brings" if len(learned) == 1 else "bring"
        out.append(f"{_join([n for n, _ in learned])} {verb} the training loss down to {span} nats (chance is "
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
    first_epoch = metrics[metrics["epoch"] == metrics["epoch"].min()]
    start = first_epoch.groupby("activation", sort=False)["val_acc"].mean()
    last = final_epochs(metrics)
    end = last.groupby("activation", sort=False)["val_acc"].mean()
    learners = start[[end.get(a, 0.0) >= CHANCE_ACC for a in start.index]].sort_values()
    if len(learners) < 3 or learners.iloc[1] - learners.iloc[0] < gap:
        return []
    slowest, others = learners.index[0], learners.iloc[1:]
    others_end = end[others.index]
    # where its seeds split, the mean of the end mixes seeds at chance in: say where the learners got
    mine = last[last["activation"] == slowest]["val_acc"]
    left = mine[mine >= CHANCE_ACC]
    ends = (f"its {len(left) if len(left) > 1 else 'one'} seed{'s' if len(left) > 1 else ''} that left chance {'are' if len(left) > 1 else 'is'} at "
            f"{fmt_pct(left.mean())}" if len(left) < len(mine) else f"it is at {fmt_pct(end[slowest])}")
    return [f"Among the activations that end above chance, **{slowest}** starts slowest: after epoch {int(first_epoch['epoch'].min())} "
            f"its validation accuracy is {fmt_pct(learners.iloc[0])} (mean over seeds), against "
            f"{fmt_pct_span(others.min(), others.max())} for the others. At the last counted epoch {ends}, the others "
            f"at {fmt_pct_span(others_end.min(), others_end.max())}: a slow start is not where a network ends."] \
        + _why_slow(slowest, _weakest_start(flow, learners.index))


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
        out.append(f"{_join(chance)} {'is' if len(chance) == 1 else 'are'} at about 10 %, chance for 10 classes.")
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
                out.append(f"Where two intervals do not overlap ({_join(sorted(set(behind)))} below another), the "
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
        out.append(f"{_join(overlapping)} end within {span.max() - span.min():.2f} points of each other "
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
                       f"with {n} seeds): it lies inside that range for {_join(inside)}.")
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
                           "draw of this split: a seed that stopped on the plateau.")
    return out


def _join(names) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


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
