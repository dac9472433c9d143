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

CHANCE_LOSS_10 = math.log(10)  # cross-entropy of a uniform guess over 10 classes, in nats
UPDATE_RATIO_GUIDE = 1e-3  # Karpathy's rule of thumb for std(lr·grad)/std(weight)
RECIPE_EPOCHS = 50  # the tutorial's recipe: at most 50 epochs with early stopping
RANKING_PRESETS = ("tutorial",)  # presets whose numbers may be ranked and set beside the tutorial's


def is_preview(preset: str) -> bool:
    """A preview preset runs fewer epochs than the recipe: its numbers are a first look, not results."""
    return preset not in RANKING_PRESETS


def fmt_pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f} %"


def fmt_sci(x: float) -> str:
    """1.2e-05 -> '1.2 × 10⁻⁵' is hard to type; keep '1.2e-5', readable and searchable."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def seeds_phrase(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"one seed ({seeds[0]})"
    return f"{len(seeds)} seeds ({', '.join(str(s) for s in seeds)})"


def preset_callout(preset: str, seeds, epochs_run: int | None = None, max_epochs: int | None = None,
                   dataset: str = "fashion_mnist") -> str:
    """The box at the top of every page: what preset this is, and for a preview what it cannot tell.

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
                "does not set its accuracies beside the tutorial's table. Use it to see the shapes (which layer, "
                "which direction); for results, render with <code>make report PRESET=tutorial</code>.")
        if len(seeds) == 1:
            body += " With one seed nothing can be told apart: there is no spread to compare a difference with."
        colour, background = "#D55E00", "#fff4e5"
    else:
        title = f"Results: the “{preset}” preset (the tutorial's recipe)"
        body = (f"Trained with the tutorial's recipe ({run}, early stopping with patience 7, best-validation "
                f"checkpoint tested) on {seeds_phrase(seeds)}. Differences are judged with 95 % confidence "
                "intervals over the seeds.")
        colour, background = "#0173B2", "#eaf4fb"
    return (f'<div class="gradflow-callout" style="border-left:6px solid {colour};background:{background};'
            f'padding:0.6em 1em;margin:0.5em 0 1em 0"><b>{html.escape(title)}.</b> {body}</div>')


def heading(text: str) -> str:
    """The 'What this run shows' paragraph's Markdown, from a list of sentences or one string."""
    return f"**What this run shows.** {text}"
