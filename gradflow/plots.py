"""Figures for the notebooks: each function takes tables (DataFrames or arrays), never models.

Every ``plot_*`` returns the matplotlib Figure; pass ``ax`` to draw into an existing axes where
the figure has a single panel. Panels that the reader compares share one fixed scale (shared
axes, one colour normalisation), so a difference in colour or height is a difference in data.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .histogram_tables import fractions, histogram_distance
from .style import (
    PAGE_WIDTH_IN,
    PAST_STOP_LINE,
    READABLE_PT,
    ROLE_STYLES,
    STAGE_STYLES,
    activation_style,
    text_colour,
    two_lines,
)


def colour(name: str, index: int = 0):
    """The colour of an activation (or a role: 'broken', 'fixed', 'run A', 'run B'), the same on every page."""
    return ROLE_STYLES[name]["color"] if name in ROLE_STYLES else activation_style(name)["color"]


def line_style(name: str) -> dict:
    """Colour and dash pattern of an activation or a role (``gradflow.style``)."""
    style = ROLE_STYLES.get(name) or activation_style(name)
    return {"color": style["color"], "ls": style["linestyle"]}


def _figure(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax




def _grid(n: int, ncols: int, panel=(3.2, 2.6), sharex=False, sharey=False):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width = min(panel[0], PAGE_WIDTH_IN / ncols)  # wider, the page would shrink the figure and its text
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, panel[1] * nrows), squeeze=False,
                             sharex=sharex, sharey=sharey, layout="constrained")
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# --------------------------------------------------------------------------- activations


# The formulas drawn beside each curve (mathtext). Registered activations without an entry show none.
FORMULAS = {
    # inline, not \frac: a fraction's exponents shrink to a third of the text, unreadable at page size
    "sigmoid": r"$\sigma(x)=1/(1+e^{-x})$" "\n" r"$\sigma'(x)=\sigma(x)(1-\sigma(x))\leq 1/4$",
    "tanh": r"$\tanh(x)=(e^{x}-e^{-x})/(e^{x}+e^{-x})$" "\n" r"$\tanh'(x)=1-\tanh^2(x)$",
    "relu": r"$\mathrm{relu}(x)=\max(0,x)$" "\n" r"slope 0 for $x<0$, 1 for $x>0$",
    "leakyrelu": r"$x$ if $x>0$, else $0.1x$" "\n" r"slope 0.1 for $x<0$",
    "elu": r"$x$ if $x>0$, else $e^{x}-1$" "\n" r"slope $e^{x}$ for $x<0$",
    "swish": r"$\mathrm{swish}(x)=x\,\sigma(x)$" "\n" r"smooth; below 0 for all $x<0$, lowest near $x\approx-1.3$",
    "gelu": r"$x\,\Phi(x)$ ($\Phi$: normal CDF)",
    "mish": r"$x\tanh(\ln(1+e^{x}))$",
    "softplus": r"$\ln(1+e^{x})$" "\n" r"slope $\sigma(x)$",
    "selu": r"$\lambda x$ if $x>0$, else $\lambda\alpha(e^{x}-1)$",
    "identity": r"$x$",
}


def plot_activations(curves: pd.DataFrame, ncols: int = 3, ylim=(-1.5, 3.0)):
    """One panel per activation: f(x), its autograd derivative f'(x) and the formula, same axes everywhere.

    curves -- columns activation, x, y, dy (long format)
    """
    names = list(dict.fromkeys(curves["activation"]))
    fig, axes = _grid(len(names), ncols, panel=(4.2, 3.0), sharex=True, sharey=True)
    for ax, name in zip(axes, names):
        d = curves[curves["activation"] == name]
        st = activation_style(name)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(d["x"], d["y"], color=st["color"], lw=2.2, label="f(x)")
        ax.plot(d["x"], d["dy"], color="0.2", lw=1.3, ls="--", label="f'(x), the slope")
        dead = d["dy"].to_numpy() == 0
        if dead.any():  # exact zeros of the derivative: no gradient passes there
            ax.fill_between(d["x"], ylim[0], ylim[1], where=dead, color="0.85", alpha=0.7, lw=0, label="f'(x) = 0")
        if name in FORMULAS:
            ax.text(0.03, 0.97, FORMULAS[name], transform=ax.transAxes, va="top", fontsize=10.5,
                    bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9})
        ax.set_title(name, color=text_colour(st["color"]), fontweight="bold")
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="lower right", fontsize=READABLE_PT)
    fig.supxlabel("input x (the pre-activation: a unit's weighted sum)")
    fig.supylabel("output f(x) and slope f'(x)")
    fig.suptitle("Activation functions (solid) and their slopes (dashed), same axes in every panel")
    return fig


def plot_sample_grid(images, labels, class_names, ncols: int = 8, title: str = ""):
    """A grid of input images with their class names (images (N, 28, 28) or (N, 784), any value range)."""
    images = np.asarray(images, dtype=float)
    side = int(round(math.sqrt(images[0].size)))
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.35 * ncols, 1.55 * nrows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, lab in zip(axes.ravel(), images, labels):
        ax.imshow(img.reshape(side, side), cmap="gray_r")
        ax.set_title(class_names[int(lab)], fontsize=READABLE_PT)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- histograms per layer
# The tables these draw (one row per bin, edges shared by every layer and step) are built and read
# in ``gradflow.histogram_tables``.


def plot_layer_histograms(hist: pd.DataFrame, title: str, xlabel: str, ncols: int = 5, log_y: bool = False,
                          color=None):
    """One panel per layer, same bins and same axes everywhere; bars show the fraction of values."""
    layers = list(dict.fromkeys(hist["layer"]))
    fig, axes = _grid(len(layers), ncols, panel=(2.8, 2.2), sharex=True, sharey=True)
    for ax, layer in zip(axes, layers):
        d = hist[hist["layer"] == layer].sort_values("lo")
        ax.stairs(fractions(d), np.append(d["lo"].to_numpy(), d["hi"].to_numpy()[-1]), fill=True,
                  color=color or "0.3", alpha=0.8)
        ax.set_title(str(layer), fontsize=9)
        ax.grid(alpha=0.3)
        if log_y:
            ax.set_yscale("log")
    fig.supxlabel(xlabel)
    fig.supylabel("fraction of values")
    fig.suptitle(title)
    return fig


def plot_layer_profile(frame: pd.DataFrame, value: str, ylabel: str, title: str, group: str = "activation",
                       log: bool = True, ax=None):
    """A per-layer quantity (gradient std, dead fraction, ...) as one line per group, layers on x."""
    fig, ax = _figure(ax, (7, 3.6))
    for name, d in frame.groupby(group, sort=False):
        st = ROLE_STYLES.get(name) or activation_style(name)
        # "Linear 5\n(128→10, output)": on one line the neighbouring layer names run into each other
        ax.plot(d["layer"].map(two_lines), d[value], marker=st["marker"], color=st["color"], ls=st["linestyle"],
                label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=READABLE_PT, ncol=2)
    return fig


# --------------------------------------------------------------------------- training curves


def plot_learning_curves(metrics: pd.DataFrame, metric: str = "val_acc", group: str = "activation",
                         title: str = "", ax=None, show_past_stop: bool = True):
    """Mean over seeds, one line per group, shaded over the seeds' range (lowest to highest seed).

    Why a range and not a 95 % interval: with 3 seeds a t-interval is 4.3 standard errors wide on
    each side, so where the seeds disagree (a plateau one seed has left) it draws losses and
    accuracies no seed ever had; the range shows exactly where the seeds were.

    metrics -- columns group, seed, epoch, metric, past_stop. Epochs a seed trained on only because
    the batch kept going (``past_stop``) never count for its test score: from the first such epoch of
    any seed, the mean is drawn thin and faded (``PAST_STOP_LINE``), since it then includes them.
    """
    fig, ax = _figure(ax, (7.5, 4))
    for name, d in metrics.groupby(group, sort=False):
        c, ls = line_style(name)["color"], line_style(name)["ls"]
        rows = []
        for epoch, e in d.groupby("epoch"):
            v = pd.to_numeric(e[metric], errors="coerce")
            rows.append((epoch, v.mean(), v.min(), v.max(), bool(e["past_stop"].any()) if "past_stop" in e else False,
                         bool(e["past_stop"].all()) if "past_stop" in e else False))
        s = pd.DataFrame(rows, columns=["epoch", "mean", "low", "high", "any_past", "all_past"])
        # a mean is full strength only while every seed's epochs still count
        before = s[~s["any_past"]] if show_past_stop else s[~s["all_past"]]
        ax.plot(before["epoch"], before["mean"], color=c, ls=ls, lw=2, label=str(name),
                marker="o" if len(s) == 1 else None)  # one epoch is one point: a line alone draws nothing
        if len(s) == 1:  # a band over one epoch has no width: the seeds' range as an error bar instead
            ax.errorbar(s["epoch"], s["mean"], yerr=[s["mean"] - s["low"], s["high"] - s["mean"]], color=c,
                        capsize=4, lw=1)
        else:
            ax.fill_between(s["epoch"], s["low"], s["high"], color=c, alpha=0.18, lw=0)
        if show_past_stop and s["any_past"].any():
            first = int(s.index[s["any_past"]][0])
            tail = s.iloc[max(0, first - 1):]
            ax.plot(tail["epoch"], tail["mean"], color=c, **PAST_STOP_LINE)
    ax.set_xlabel("epoch")
    epochs = sorted(metrics["epoch"].unique())
    if len(epochs) == 1:  # MaxNLocator would still tick 0.95 ... 1.05 around a single epoch
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    label = {"val_acc": "validation accuracy", "train_acc": "training accuracy", "val_loss": "validation loss (nats)",
             "train_loss": "training loss (nats)"}.get(metric, metric)
    ax.set_ylabel(label)
    ax.set_title(title or f"{label}: mean over seeds,\nshaded: their range; faded: some seed past its early stop")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=READABLE_PT, ncol=2)
    return fig


def plot_dead_units(frame: pd.DataFrame, title: str, stage: str = "stage", value: str = "percent", ax=None):
    """Dead units per layer (percent of the layer's units), bars per stage (e.g. before / after training)."""
    fig, ax = _figure(ax, (7, 3.5))
    pivot = frame.pivot_table(index="layer", columns=stage, values=value, aggfunc="mean", sort=False)
    width = 0.8 / max(1, pivot.shape[1])
    x = np.arange(len(pivot))
    for i, col in enumerate(pivot.columns):
        bars = ax.bar(x + i * width - 0.4 + width / 2, pivot[col].to_numpy(), width, label=str(col),
                      color=STAGE_STYLES.get(col, {}).get("color", ("0.65", "0.25")[i % 2]))
        ax.bar_label(bars, fmt="%.1f", fontsize=READABLE_PT)
    ax.set_xticks(x, [str(v) for v in pivot.index])
    ax.set_ylim(0, max(5.0, float(np.nanmax(pivot.to_numpy())) * 1.25 if pivot.size else 5.0))
    ax.set_xlabel("layer")
    ax.set_ylabel("dead units (% of layer)")
    ax.set_title(title)
    ax.legend(fontsize=READABLE_PT)
    ax.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------- two runs


def plot_overlay(hist_a: pd.DataFrame, hist_b: pd.DataFrame, labels: tuple[str, str], title: str, xlabel: str,
                 ncols: int = 3, roles: tuple[str, str] = ("run A", "run B"), layer_names: dict | None = None,
                 distances: dict | None = None):
    """Per layer, the two runs' histograms overlaid on the same bins, with their distance in the title.

    roles -- the role colours of A and B (``gradflow.style.ROLE_STYLES``): ('broken', 'fixed') on a case study
    distances -- layer -> the TV distance to print, when it is measured on more than is drawn (bins with no
                 place on a log axis, such as exact zeros); default: the distance of the drawn bins
    """
    colours = [ROLE_STYLES[r]["color"] for r in roles]
    layer_names = layer_names or {}
    layers = list(dict.fromkeys(list(hist_a["layer"]) + list(hist_b["layer"])))
    # five layers in one row made a figure wider than the page, which the browser shrank, text and all;
    # three columns of this width fit PAGE_WIDTH_IN, so the text shows at the size it is set in
    ncols = max(1, min(ncols, len(layers)))
    fig, axes = _grid(len(layers), ncols, panel=(3.6, 2.6), sharex=True, sharey=True)
    for ax, layer in zip(axes, layers):
        da = hist_a[hist_a["layer"] == layer].sort_values("lo")
        db = hist_b[hist_b["layer"] == layer].sort_values("lo")
        for d, lab, c in ((da, labels[0], colours[0]), (db, labels[1], colours[1])):
            if len(d):
                ax.stairs(fractions(d), np.append(d["lo"].to_numpy(), d["hi"].to_numpy()[-1]), fill=True,
                          alpha=0.45, color=c, label=lab)
        tv = (distances or {}).get(layer, histogram_distance(da, db))
        ax.set_title(f"{layer_names.get(layer, layer)}\nTV distance {tv:.2f}", fontsize=READABLE_PT + 1)
        ax.tick_params(labelsize=READABLE_PT)
        ax.grid(alpha=0.3)
    for i, ax in enumerate(axes):
        if i + ncols >= len(layers):  # no panel below this one: it shows its own x tick labels
            ax.tick_params(labelbottom=True)
    # the legend goes into the grid's first empty cell (five layers in three columns leave one), where it
    # covers no data; a full grid keeps it in the first panel
    handles, names = axes[0].get_legend_handles_labels()
    spare = [a for a in fig.axes if not a.get_visible()]
    if spare:
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend(handles, names, loc="center", fontsize=READABLE_PT)
    else:
        axes[0].legend(fontsize=READABLE_PT)
    fig.supxlabel(xlabel, fontsize=READABLE_PT + 2)
    fig.supylabel("fraction of values", fontsize=READABLE_PT + 2)
    fig.suptitle(title, fontsize=READABLE_PT + 3)
    return fig


def findings_table(findings: list) -> pd.DataFrame:
    """Findings (dicts or Findings) as a table: one row per cause, where and in how many seeds it was
    seen, and its likeliest causes."""
    from .diagnose.alternatives import likely_causes
    from .diagnose.finding import scope
    from .diagnose.grouping import as_grouped
    cols = ["severity", "code", "layers", "seen in", "step", "message", "suggestion", "likely causes"]
    rows = [{"severity": f.severity, "code": f.code, "layers": ", ".join(f.layers or ([f.layer] if f.layer else [])),
             "seen in": scope(f), "step": f.step, "message": f.message, "suggestion": f.suggestion,
             "likely causes": likely_causes(f)} for f in as_grouped(findings)]
    return pd.DataFrame(rows, columns=cols)
