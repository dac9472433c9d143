"""Sentences computed from a run's tables: the shared wording rules, number formats and callouts
(page 3's comparisons are narrate_compare.py; the inside of the network narrate_layers.py).

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

from .config import PRESETS
from .diagnose.finding import round_number

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
        total = steps * int(epochs)
        return text + (f", so {int(epochs)} epochs are {total:,} steps" if int(epochs) != 1 else
                       f", so its one epoch is {total:,} step{'s' if total != 1 else ''}")
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
                "slowly: an activation still at chance after these epochs may leave it later (sigmoid does in "
                "the full recipe: its seeds leave chance after about 15–20 epochs, if early stopping lets them), gaps "
                "of a few points between the others can close, "
                "and a trend inside the network (dead units growing, say) can reverse. Use it "
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
            f"default initialisation, seed {seed}) on one batch of {batch} training images of {data}. On this page "
            f"a preset only picks the data and the network's size, and both presets pick the same, so these numbers "
            f"are the same in the {PRESETS['quick']['max_epochs']}-epoch preview (quick) and the full recipe (tutorial)"
            + (" on FashionMNIST." if dataset == "synthetic" else "."))
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


def join_names(names) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""
