"""Figures of what happens inside the network during training, made to be read in a minute.

Gradient flow is drawn as lines, not heat maps: per layer, the median of log10 |gradient| at each
recorded step with the band between the 25th and 75th percentiles, one small panel per
activation, all panels on the same axes. Points sit only at recorded steps (no value is carried
past the last one). Layers are coloured from light (input) to dark (output) on one sequential
scale, so "the first layer" has the same shade in every panel; activations are told apart by the
panel title, and their own colour (``gradflow.style``) frames the title.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import (
    GUIDE_COLOR,
    PAGE_WIDTH_IN,
    READABLE_PT,
    STAGE_STYLES,
    activation_style,
    layer_order,
    layer_shades,
    text_colour,
    two_lines,
)


def title_colour(name) -> str | tuple:
    """An activation's own colour for its panel title; plain black for other groupings ('step 64')."""
    return "black" if " " in str(name) else text_colour(activation_style(name)["color"])


def layer_colours(keys) -> dict:
    """One shade per layer, light (input side) to dark (output side), the same in every panel
    (``gradflow.style.layer_shades``)."""
    keys = sorted(dict.fromkeys(keys), key=layer_order)
    return dict(zip(keys, layer_shades(len(keys))))


def _quantile(edges_lo: np.ndarray, edges_hi: np.ndarray, counts: np.ndarray, q: float) -> float:
    """Quantile of a binned distribution, linear inside the bin; -inf when it falls in the underflow bin."""
    total = counts.sum()
    if total <= 0:
        return float("nan")
    cum = np.cumsum(counts) / total
    i = int(np.searchsorted(cum, q))
    i = min(i, len(counts) - 1)
    if i == 0:
        return float("-inf")  # below the lowest edge: exact zeros and |g| < 1e-10
    below = cum[i - 1]
    share = (q - below) / max(cum[i] - below, 1e-12)
    return float(edges_lo[i] + share * (edges_hi[i] - edges_lo[i]))


def gradient_lines(hist: pd.DataFrame, group: str = "activation") -> pd.DataFrame:
    """Per (group, layer, step): 25th/50th/75th percentile of log10 |gradient| and the share below 1e-10.

    hist -- long bin table from ``histogram_tables.recorded_histograms`` (log10 scale), with a ``group`` column;
    its first bin per (layer, step) is the underflow bin (exact zeros included)
    """
    rows = []
    keys = [k for k in (group, "layer", "step") if k in hist]
    for key, d in hist.groupby(keys, sort=False):
        d = d.sort_values("lo")
        lo, hi, c = d["lo"].to_numpy(), d["hi"].to_numpy(), d["count"].to_numpy(float)
        total = c.sum()
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(q25=_quantile(lo, hi, c, 0.25), median=_quantile(lo, hi, c, 0.5), q75=_quantile(lo, hi, c, 0.75),
                   zero_share=float(c[0] / total) if total else float("nan"), epoch=int(d["epoch"].iloc[0]))
        rows.append(row)
    return pd.DataFrame(rows)


def plot_gradient_lines(lines: pd.DataFrame, labels: dict, title: str, group: str = "activation", ncols: int = 3,
                        ylim=None):
    """Small multiples: one panel per activation, one line per layer (median, band = middle half).

    ylim -- default: whole decades around every panel's data, the same for all panels
    """
    if ylim is None:
        finite = pd.concat([lines["q25"], lines["q75"]]).replace(-np.inf, np.nan).dropna()
        ylim = (math.floor(finite.min()) - 0.5, math.ceil(finite.max()) + 0.3) if len(finite) else (-10, 0)
    fig, panels, shades = _layer_panels(lines, group, ncols)
    for ax, _name, d in panels:
        for layer in sorted(dict.fromkeys(d["layer"]), key=layer_order):
            e = d[d["layer"] == layer].sort_values("step")
            x = e["step"].to_numpy() + 1  # log axis: step 0 sits at 1
            low = np.maximum(e["q25"].to_numpy(), ylim[0])
            ax.fill_between(x, low, e["q75"].to_numpy(), color=shades[layer], alpha=0.18, lw=0)
            ax.plot(x, np.maximum(e["median"].to_numpy(), ylim[0]), color=shades[layer], marker="o", ms=3, lw=1.6,
                    label=labels.get(layer, layer))
        ax.set_ylim(*ylim)
    return _finish(fig, "training step + 1 (log scale; points at the recorded steps only)",
                   "log10 |dL/dW| (median, band: middle half)", title)


def _layer_panels(frame: pd.DataFrame, group: str, ncols: int):
    """Small multiples sharing both axes: (figure, [(axis, group name, its rows)], colour per layer)."""
    groups = list(dict.fromkeys(frame[group]))
    ncols = max(1, min(ncols, len(groups)))
    nrows = math.ceil(len(groups) / ncols)
    width = min(4.3, PAGE_WIDTH_IN / ncols) if len(groups) > 1 else 7.5  # a lone panel gets the room a reader needs
    height = 3.0 if len(groups) > 1 else 3.8  # a lone panel: room for its y label's length
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    panels = []
    for ax, name in zip(axes.ravel(), groups):
        ax.set_title(str(name), color=title_colour(name), fontweight="bold")
        ax.set_xscale("log")
        panels.append((ax, name, frame[frame[group] == name]))
    return fig, panels, layer_colours(frame["layer"])


def _finish(fig, xlabel: str, ylabel: str, title: str):
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=READABLE_PT, title="layer (input → output)")
    fig.supxlabel(xlabel)
    fig.supylabel(ylabel)
    fig.suptitle(title)
    return fig


def plot_update_ratios(ratios: pd.DataFrame, labels: dict, title: str, group: str = "activation", ncols: int = 3,
                       guide: float = 1e-3, ylim=(-7, -1)):
    """log10 update:data ratio per layer over recorded steps, one panel per activation, with the guide."""
    r = ratios[(ratios["step"] > 0) & ratios["value"].gt(0)]
    r = r.groupby([group, "layer", "step"], sort=False)["value"].mean().reset_index()
    fig, panels, shades = _layer_panels(r, group, ncols)
    for ax, _name, d in panels:
        for layer in sorted(dict.fromkeys(d["layer"]), key=layer_order):
            e = d[d["layer"] == layer].sort_values("step")
            ax.plot(e["step"], np.log10(e["value"]), color=shades[layer], marker="o", ms=3, label=labels.get(layer, layer))
        # named in the legend, not written on the axes, where the late curves run over it
        ax.axhline(math.log10(guide), color=GUIDE_COLOR, ls="--", lw=1, label=f"guide {guide:g} (healthy)")
        ax.set_ylim(*ylim)
    return _finish(fig, "training step (log scale; recorded steps only)", "log10 update:data ratio", title)


def plot_dead_units(dead: pd.DataFrame, title: str, group: str = "activation", ncols: int = 3):
    """Dead units (% of the layer) at initialisation and after training, only for groups that have any.

    dead -- columns group, layer (display name, forward order), stage, percent. Groups with no dead
    unit anywhere are left out (say so in the text); returns None when none has any.
    """
    keep = [g for g in dict.fromkeys(dead[group]) if float(dead[dead[group] == g]["percent"].max()) > 0]
    if not keep:
        return None
    ncols = max(1, min(ncols, len(keep)))
    nrows = math.ceil(len(keep) / ncols)
    most_layers = max(dead.groupby(group)["layer"].nunique())
    width = max(4.6, 0.85 * most_layers)  # room for each layer's two-line name under its bars
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(width * ncols, PAGE_WIDTH_IN), 3.2 * nrows), sharey=True,
                             squeeze=False,
                             layout="constrained")
    for ax in axes.ravel()[len(keep):]:
        ax.set_visible(False)
    top = max(2.0, float(dead["percent"].max()) * 1.3)
    stages = [s for s in STAGE_STYLES if s in set(dead["stage"])]
    for ax, name in zip(axes.ravel(), keep):
        d = dead[dead[group] == name]
        layers = list(dict.fromkeys(d["layer"]))
        x = np.arange(len(layers))
        width = 0.8 / max(1, len(stages))
        for i, stage in enumerate(stages):
            s = d[d["stage"] == stage].set_index("layer").reindex(layers)
            bars = ax.bar(x + (i - (len(stages) - 1) / 2) * width, s["percent"].fillna(0), width,
                          color=STAGE_STYLES[stage]["color"], label=stage)
            ax.bar_label(bars, fmt="%.1f", fontsize=READABLE_PT)
        ax.set_xticks(x, [two_lines(lay) for lay in layers], fontsize=READABLE_PT)
        ax.set_ylim(0, top)
        ax.set_title(str(name), color=title_colour(name), fontweight="bold")
        ax.grid(axis="x", visible=False)
    axes.ravel()[0].set_ylabel("dead units (% of the layer's units)")
    axes.ravel()[0].legend(fontsize=READABLE_PT)
    fig.suptitle(title)
    return fig


def explore_gradient_lines(lines: pd.DataFrame, labels: dict, group: str = "activation"):
    """Live Jupyter only: pick an activation and a layer, see its gradient distribution's percentiles over steps."""
    import ipywidgets as widgets
    from IPython.display import display

    acts = list(dict.fromkeys(lines[group]))
    layers = sorted(dict.fromkeys(lines["layer"]), key=layer_order)
    pick_act = widgets.Dropdown(options=acts, description="activation")
    pick_layer = widgets.Dropdown(options=[(labels.get(k, k), k) for k in layers], description="layer")
    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            d = lines[(lines[group] == pick_act.value) & (lines["layer"] == pick_layer.value)].sort_values("step")
            fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
            st = activation_style(pick_act.value)
            ax.fill_between(d["step"] + 1, d["q25"], d["q75"], color=st["color"], alpha=0.2)
            ax.plot(d["step"] + 1, d["median"], color=st["color"], ls=st["linestyle"], marker="o")
            ax.set(xscale="log", ylim=(-10, 0), xlabel="training step + 1", ylabel="log10 |dL/dW|",
                   title=f"{pick_act.value}, {labels.get(pick_layer.value, pick_layer.value)}")
            plt.show()

    pick_act.observe(draw, "value")
    pick_layer.observe(draw, "value")
    display(widgets.HBox([pick_act, pick_layer]), out)
    draw()


def plot_layer_distributions(hist: pd.DataFrame, labels: dict, title: str, xlabel: str, group: str = "activation",
                             ncols: int = 3, notes: dict | None = None, log_y: bool = False, xlim=None,
                             own_x: bool = False):
    """Per activation one panel, the layers' histograms overlaid as outlines (light = input side).

    hist  -- long bin table (group, layer, lo, hi, count) on shared bins; the y axis is the fraction of
             the layer's values per bin
    notes -- {group: text} written in the panel (e.g. how many gradients are exactly 0)
    own_x -- each panel's x axis spans only the bins where its own histograms have values (the bins stay
             the shared ones); the x label says so. For activations of different ranges side by side:
             on one shared ±5 axis sigmoid's [0, 1] and tanh's [-1, 1] are slivers nobody can read.
    """
    groups = list(dict.fromkeys(hist[group]))
    ncols = max(1, min(ncols, len(groups)))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(4.3, PAGE_WIDTH_IN / ncols) * ncols, 2.8 * nrows + 0.7),
                             sharex=not own_x,
                             sharey=True, squeeze=False, layout="constrained")
    shades = layer_colours(hist["layer"])
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax, name in zip(axes.ravel(), groups):
        d = hist[hist[group] == name]
        for layer in sorted(dict.fromkeys(d["layer"]), key=layer_order):
            e = d[d["layer"] == layer].sort_values("lo")
            c = e["count"].to_numpy(float)
            frac = c / c.sum() if c.sum() > 0 else c
            ax.stairs(frac, np.append(e["lo"].to_numpy(), e["hi"].to_numpy()[-1]), color=shades[layer], lw=1.6,
                      label=labels.get(layer, layer))
        if notes and notes.get(name):
            ax.text(0.02, 0.97, notes[name], transform=ax.transAxes, va="top", fontsize=READABLE_PT,
                    bbox={"facecolor": "white", "edgecolor": "0.85", "alpha": 0.9})
        ax.set_title(str(name), color=title_colour(name), fontweight="bold")
        if log_y:
            ax.set_yscale("log")
        if own_x:
            ax.set_xlim(*occupied_range(d))
        elif xlim:
            ax.set_xlim(*xlim)
    handles, names = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=READABLE_PT,
               title="layer (input → output)")
    # panels that look alike but span different ranges must say so, or [0, 1] reads as wide as [-1, 5]
    fig.supxlabel(f"{xlabel}; each panel's x axis spans its own values" if own_x else xlabel)
    fig.supylabel("fraction of the layer's values")
    fig.suptitle(title)
    return fig


def occupied_range(bins: pd.DataFrame, pad: float = 0.04) -> tuple[float, float]:
    """x limits around the bins that hold any value (every layer of one panel), padded by ``pad`` of the
    span so an outline at the edge does not vanish into the frame; a log y axis shows even tiny bins,
    so any nonzero count counts."""
    held = bins[(bins["count"] > 0) & np.isfinite(bins["lo"]) & np.isfinite(bins["hi"])]
    if held.empty:
        held = bins[np.isfinite(bins["lo"]) & np.isfinite(bins["hi"])]
    lo, hi = float(held["lo"].min()), float(held["hi"].max())
    margin = pad * (hi - lo)
    return lo - margin, hi + margin


def long_histogram(values, edges, **columns) -> pd.DataFrame:
    """A long bin table of ``values`` on ``edges`` (values outside the edges are left out and should be counted
    by the caller, e.g. exact zeros on a log axis)."""
    counts, _ = np.histogram(np.asarray(values, float), bins=edges)
    return pd.DataFrame({**columns, "lo": edges[:-1], "hi": edges[1:], "count": counts})
