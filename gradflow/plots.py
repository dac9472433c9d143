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
from matplotlib.colors import LogNorm

# One colour per activation, stable across every figure and notebook.
_PALETTE = plt.get_cmap("tab10").colors
_KNOWN = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish", "gelu", "mish", "softplus", "selu", "identity")


def colour(name: str, index: int = 0):
    """A stable colour for an activation (or any label) name."""
    key = str(name).split("-")[0].lower()
    if key in _KNOWN:
        return _PALETTE[_KNOWN.index(key) % len(_PALETTE)]
    return _PALETTE[(index + len(_KNOWN)) % len(_PALETTE)]


def _figure(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _grid(n: int, ncols: int, panel=(3.2, 2.6), sharex=False, sharey=False):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), squeeze=False,
                             sharex=sharex, sharey=sharey, layout="constrained")
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def t_quantile_95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for n samples (n - 1 degrees of freedom); no scipy needed."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
    dof = n - 1
    if dof < 1:
        return float("nan")
    if dof in table:
        return table[dof]
    below = max(k for k in table if k <= dof) if dof <= 30 else None
    return table[below] if below else 1.96


def mean_ci(values) -> tuple[float, float, int]:
    """Mean and half-width of the 95 % confidence interval of the mean (t distribution)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    if len(v) == 1:
        return float(v[0]), float("nan"), 1
    return float(v.mean()), float(t_quantile_95(len(v)) * v.std(ddof=1) / math.sqrt(len(v))), len(v)


# --------------------------------------------------------------------------- activations


def plot_activations(curves: pd.DataFrame, ncols: int = 4, ylim=(-1.5, 3.0)):
    """One panel per activation: f(x) and its autograd derivative f'(x), all on the same axes limits.

    curves -- columns activation, x, y, dy (long format)
    """
    names = list(dict.fromkeys(curves["activation"]))
    fig, axes = _grid(len(names), ncols, sharex=True, sharey=True)
    for i, (ax, name) in enumerate(zip(axes, names)):
        d = curves[curves["activation"] == name]
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(d["x"], d["y"], color=colour(name, i), lw=2, label="f(x)")
        ax.plot(d["x"], d["dy"], color="0.25", lw=1.3, ls="--", label="f'(x) (autograd)")
        dead = d["dy"].to_numpy() == 0
        if dead.any():  # exact zeros of the derivative: no gradient passes there
            ax.fill_between(d["x"], ylim[0], ylim[1], where=dead, color="#ffcdd2", alpha=0.5, lw=0, label="f' = 0")
        ax.set_title(name)
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.supxlabel("input x (pre-activation, dimensionless)")
    fig.supylabel("output f(x) and slope f'(x)")
    fig.suptitle("Activation functions and their derivatives (same axes in every panel)")
    return fig


# --------------------------------------------------------------------------- histograms per layer
# A histogram table is long format: one row per bin, columns ``layer``, ``lo``, ``hi``, ``count``
# (plus ``time`` for histograms over training, plus any grouping column). Bin edges are shared by
# every layer and step, so rows line up and counts can be compared directly.


def _fractions(d: pd.DataFrame) -> np.ndarray:
    c = d["count"].to_numpy(dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def recorded_histograms(histograms: pd.DataFrame, edges, kind: str = "grad", scale: str = "log10",
                        layers=None, step=None, seeds=None) -> pd.DataFrame:
    """Recorder histogram rows (``counts`` arrays, layout of ``gradflow.stats``) -> long bin table.

    Counts are summed over members/seeds (they share edges, so sums are exact). The underflow and
    overflow counts become one extra bin below and above the edges (for log10 histograms the
    underflow bin holds exact zeros, e.g. the gradients of dead units); NaN/inf counts are dropped
    here and shown by the diagnosis instead. Returns columns layer, step, epoch, lo, hi, count.
    """
    edges = np.asarray(edges, dtype=float)
    h = histograms[(histograms["kind"] == kind) & (histograms["scale"] == scale)]
    if layers is not None:
        h = h[h["layer"].isin(list(layers))]
    if step is not None:
        h = h[h["step"] == step]
    if seeds is not None:
        h = h[h["seed"].isin(list(seeds))]
    width = edges[1] - edges[0]
    lo = np.concatenate([[edges[0] - width], edges])  # underflow, interior bins, overflow
    hi = np.concatenate([edges, [edges[-1] + width]])
    frames = []
    for (layer, st, ep), d in h.groupby(["layer", "step", "epoch"], sort=False):
        counts = np.sum(np.stack(list(d["counts"])), axis=0)[: len(edges) + 1]
        frames.append(pd.DataFrame({"layer": layer, "step": st, "epoch": ep, "lo": lo, "hi": hi, "count": counts}))
    if not frames:
        return pd.DataFrame(columns=["layer", "step", "epoch", "lo", "hi", "count"])
    return pd.concat(frames, ignore_index=True)


def plot_layer_histograms(hist: pd.DataFrame, title: str, xlabel: str, ncols: int = 5, log_y: bool = False,
                          color=None):
    """One panel per layer, same bins and same axes everywhere; bars show the fraction of values."""
    layers = list(dict.fromkeys(hist["layer"]))
    fig, axes = _grid(len(layers), ncols, panel=(2.8, 2.2), sharex=True, sharey=True)
    for ax, layer in zip(axes, layers):
        d = hist[hist["layer"] == layer].sort_values("lo")
        ax.stairs(_fractions(d), np.append(d["lo"].to_numpy(), d["hi"].to_numpy()[-1]), fill=True,
                  color=color or _PALETTE[0], alpha=0.8)
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
    for i, (name, d) in enumerate(frame.groupby(group, sort=False)):
        ax.plot(d["layer"].astype(str), d[value], marker="o", color=colour(name, i), label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return fig


# --------------------------------------------------------------------------- training curves


def plot_learning_curves(metrics: pd.DataFrame, metric: str = "val_acc", group: str = "activation",
                         title: str = "", ax=None, show_past_stop: bool = True):
    """Mean over seeds with a 95 % confidence band, one line per group.

    metrics -- columns group, seed, epoch, metric, past_stop. Epochs a seed trained on only because
    the batch kept going (``past_stop``) are drawn dashed: the curve continued past early stopping.
    """
    fig, ax = _figure(ax, (7.5, 4))
    for i, (name, d) in enumerate(metrics.groupby(group, sort=False)):
        c = colour(name, i)
        rows = []
        for epoch, e in d.groupby("epoch"):
            m, h, _ = mean_ci(e[metric])
            rows.append((epoch, m, h, bool(e["past_stop"].any()) if "past_stop" in e else False,
                         bool(e["past_stop"].all()) if "past_stop" in e else False))
        s = pd.DataFrame(rows, columns=["epoch", "mean", "half", "any_past", "all_past"])
        before = s[~s["all_past"]]
        ax.plot(before["epoch"], before["mean"], color=c, lw=2, label=str(name))
        low, high = s["mean"] - s["half"].fillna(0), s["mean"] + s["half"].fillna(0)
        if metric.endswith("acc"):  # an interval for a few seeds can overshoot what accuracy can be
            low, high = low.clip(0, 1), high.clip(0, 1)
        elif metric.endswith("loss"):
            low = low.clip(lower=0)
        ax.fill_between(s["epoch"], low, high, color=c, alpha=0.18, lw=0)
        if show_past_stop and s["any_past"].any():
            first = int(s.index[s["any_past"]][0])
            tail = s.iloc[max(0, first - 1):]
            ax.plot(tail["epoch"], tail["mean"], color=c, lw=1.5, ls="--")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    label = {"val_acc": "validation accuracy", "train_acc": "training accuracy", "val_loss": "validation loss (nats)",
             "train_loss": "training loss (nats)"}.get(metric, metric)
    ax.set_ylabel(label)
    ax.set_title(title or f"{label}: mean over seeds, 95 % CI band; dashed = past early stopping")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return fig


def accuracy_table(results: pd.DataFrame, group: str = "activation", reference: dict | None = None) -> pd.DataFrame:
    """Test accuracy per group: mean ± 95 % CI over seeds, next to a reference (e.g. the tutorial's)."""
    rows = []
    for name, d in results.groupby(group, sort=False):
        m, h, n = mean_ci(d["test_acc"])
        row = {group: name, "seeds": n, "mean test acc (%)": round(100 * m, 2),
               "± 95 % CI (pp)": round(100 * h, 2) if math.isfinite(h) else float("nan"),
               "min (%)": round(100 * d["test_acc"].min(), 2), "max (%)": round(100 * d["test_acc"].max(), 2)}
        if reference is not None:
            ref = reference.get(name)
            row["tutorial, 1 seed (%)"] = round(100 * ref, 2) if ref is not None else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index(group)


def distinguishable(table: pd.DataFrame) -> tuple[list, list]:
    """Pairs whose 95 % intervals do / do not overlap (a conservative reading of the seeds)."""
    names = list(table.index)
    apart, overlap = [], []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ma, ha = table.loc[a, "mean test acc (%)"], table.loc[a, "± 95 % CI (pp)"]
            mb, hb = table.loc[b, "mean test acc (%)"], table.loc[b, "± 95 % CI (pp)"]
            if not (math.isfinite(ha) and math.isfinite(hb)):
                overlap.append((a, b))
            elif ma - ha > mb + hb or mb - hb > ma + ha:
                apart.append((a, b) if ma > mb else (b, a))
            else:
                overlap.append((a, b))
    return apart, overlap


# --------------------------------------------------------------------------- gradient flow over training


def plot_flow_heatmap(hist: pd.DataFrame, title: str, ylabel: str, time: str = "step", ncols: int = 5,
                      vmin: float = 1e-4, vmax: float = 1.0, row: str | None = None):
    """The "colorful dimension": per layer, x = training time, y = histogram bin, colour = fraction.

    One logarithmic colour scale (vmin..vmax, fraction of values in a bin) for every panel, so a
    layer that looks dimmer really has its values spread thinner, never a per-panel rescale.
    row -- a column of ``hist`` (e.g. 'activation'): one row of layer panels per value, one figure.
    """
    layers = list(dict.fromkeys(hist["layer"]))
    rows = list(dict.fromkeys(hist[row])) if row else [None]
    if row:
        fig, axes = plt.subplots(len(rows), len(layers), figsize=(2.6 * len(layers) + 1, 2.0 * len(rows) + 0.8),
                                 squeeze=False, sharex=True, sharey=True, layout="constrained")
        cells = [(ax, r, layer) for axrow, r in zip(axes, rows) for ax, layer in zip(axrow, layers)]
    else:
        fig, flat = _grid(len(layers), ncols, panel=(2.9, 2.4), sharex=True, sharey=True)
        cells = [(ax, None, layer) for ax, layer in zip(flat, layers)]
    norm = LogNorm(vmin=vmin, vmax=vmax)
    image = None
    for ax, r, layer in cells:
        d = hist[(hist["layer"] == layer) & ((hist[row] == r) if row else True)]
        ax.set_title(f"{r}: {layer}" if row else str(layer), fontsize=8)
        if d.empty:
            continue
        times = np.sort(d[time].unique())
        edges = np.sort(np.unique(np.concatenate([d["lo"].to_numpy(), d["hi"].to_numpy()])))
        grid = np.full((len(edges) - 1, len(times)), np.nan)
        for j, t in enumerate(times):
            e = d[d[time] == t].sort_values("lo")
            grid[np.searchsorted(edges, e["lo"].to_numpy()), j] = _fractions(e)
        grid = np.where(grid > 0, grid, np.nan)  # empty bins stay white instead of the darkest colour
        t_edges = np.append(times, times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1))
        image = ax.pcolormesh(t_edges, edges, grid, norm=norm, cmap="viridis", shading="flat")
    if image is not None:
        fig.colorbar(image, ax=[c[0] for c in cells], label="fraction in bin (one log scale)", shrink=0.8)
    fig.supxlabel(f"training {time}")
    fig.supylabel(ylabel)
    fig.suptitle(title)
    return fig


def plot_ratio_over_time(frame: pd.DataFrame, title: str, time: str = "step", value: str = "value",
                         guide: float = 1e-3, ax=None, ylim=(-6, 0)):
    """log10 of the update:data ratio per layer over training, with the 1e-3 guide line (Karpathy)."""
    fig, ax = _figure(ax, (7.5, 4))
    layers = list(dict.fromkeys(frame["layer"]))
    cmap = plt.get_cmap("viridis")
    for i, layer in enumerate(layers):
        d = frame[frame["layer"] == layer].groupby(time)[value].mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            ax.plot(d.index, np.log10(d.to_numpy()), color=cmap(i / max(1, len(layers) - 1)), label=str(layer))
    ax.axhline(math.log10(guide), color="k", ls="--", lw=1, label=f"guide {guide:g}")
    ax.set_ylim(*ylim)
    ax.set_xlabel(f"training {time}")
    ax.set_ylabel("log10(std(lr·grad) / std(weight))")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_dead_units(frame: pd.DataFrame, title: str, stage: str = "stage", value: str = "percent", ax=None):
    """Dead units per layer (percent of the layer's units), bars per stage (e.g. before / after training)."""
    fig, ax = _figure(ax, (7, 3.5))
    pivot = frame.pivot_table(index="layer", columns=stage, values=value, aggfunc="mean", sort=False)
    width = 0.8 / max(1, pivot.shape[1])
    x = np.arange(len(pivot))
    for i, col in enumerate(pivot.columns):
        bars = ax.bar(x + i * width - 0.4 + width / 2, pivot[col].to_numpy(), width, label=str(col),
                      color=_PALETTE[i % len(_PALETTE)])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, [str(v) for v in pivot.index])
    ax.set_ylim(0, max(5.0, float(np.nanmax(pivot.to_numpy())) * 1.25 if pivot.size else 5.0))
    ax.set_xlabel("layer")
    ax.set_ylabel("dead units (% of layer)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------- two runs


def histogram_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Total-variation distance (0 = identical, 1 = disjoint) between two histograms on shared bins."""
    merged = a[["lo", "count"]].merge(b[["lo", "count"]], on="lo", how="outer", suffixes=("_a", "_b")).fillna(0)
    pa, pb = merged["count_a"].to_numpy(float), merged["count_b"].to_numpy(float)
    if pa.sum() == 0 or pb.sum() == 0:
        return float("nan")
    return float(0.5 * np.abs(pa / pa.sum() - pb / pb.sum()).sum())


def plot_overlay(hist_a: pd.DataFrame, hist_b: pd.DataFrame, labels: tuple[str, str], title: str, xlabel: str,
                 ncols: int = 5):
    """Per layer, the two runs' histograms overlaid on the same bins, with their distance in the title."""
    layers = list(dict.fromkeys(list(hist_a["layer"]) + list(hist_b["layer"])))
    fig, axes = _grid(len(layers), ncols, panel=(2.9, 2.3), sharex=True, sharey=True)
    for ax, layer in zip(axes, layers):
        da = hist_a[hist_a["layer"] == layer].sort_values("lo")
        db = hist_b[hist_b["layer"] == layer].sort_values("lo")
        for d, lab, c in ((da, labels[0], _PALETTE[0]), (db, labels[1], _PALETTE[1])):
            if len(d):
                ax.stairs(_fractions(d), np.append(d["lo"].to_numpy(), d["hi"].to_numpy()[-1]), fill=True,
                          alpha=0.45, color=c, label=lab)
        ax.set_title(f"{layer}  (TV {histogram_distance(da, db):.2f})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.supxlabel(xlabel)
    fig.supylabel("fraction of values")
    fig.suptitle(title)
    return fig


def findings_table(findings: list) -> pd.DataFrame:
    """Findings (dicts or objects with code/severity/layer/message/suggestion) as a table."""
    cols = ["severity", "code", "layer", "step", "message", "suggestion"]
    rows = []
    for f in findings or []:
        get = f.get if isinstance(f, dict) else (lambda k, default=None, f=f: getattr(f, k, default))
        rows.append({c: get(c, "") for c in cols})
    return pd.DataFrame(rows, columns=cols)
