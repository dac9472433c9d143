# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A sweep: settings × seeds
#
# A grid of settings (activation × initialisation × learning rate × ...) trained with several seeds
# each by `gradflow sweep`, read from the sweep's one table (`results.parquet`). Which settings
# differ by more than the seeds do, which do not, what the diagnosis found in each cell of the grid,
# and how a chosen slice of it learned.

# %% tags=["parameters"]
sweep: str = ""  # sweep name or directory; empty means the newest sweep in sweeps_dir
sweeps_dir: str = ""  # sweeps directory; empty: $GRADFLOW_SWEEPS, else beside the run store, else ./sweeps
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints
preset: str = "quick"  # report preset (the sweep itself names its own preset)
panel_axis: str = ""  # axis with one panel per value; empty means the grid axis with most values besides act
curve_slice: str = ""  # learning-curve slice: comma-joined pairs such as init:kaiming (written with an equals sign); empty: first value of each axis
metric: str = "val_acc"  # learning-curve metric: val_acc, train_acc, val_loss or train_loss

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and sweeps/ are found from the repo root
from gradflow.config import PRESETS
from gradflow.sweep_grid import AXES

if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
if metric not in ("val_acc", "train_acc", "val_loss", "train_loss"):
    raise ValueError(f"unknown metric {metric!r}; accepted: val_acc, train_acc, val_loss, train_loss")
if panel_axis and panel_axis not in AXES:
    raise ValueError(f"unknown panel_axis {panel_axis!r}; accepted: {', '.join(AXES)}")
slice_items = {}
for part in filter(None, (p.strip() for p in curve_slice.split(","))):
    key, sep, value = part.partition("=")
    if not sep or key.strip() not in AXES:
        raise ValueError(f"curve_slice takes axis=value pairs joined by commas (axes: {', '.join(AXES)}), got {part!r}")
    slice_items[key.strip()] = value.strip()

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from gradflow import notebook_helpers as nh
from gradflow import plots, store, sweep_results

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
if not sweeps_dir:  # $GRADFLOW_SWEEPS, else beside the run store (as `make train` puts them), else ./sweeps
    store_dir = runs_dir or os.environ.get("GRADFLOW_RUNS", "")
    sweeps_dir = (os.environ.get("GRADFLOW_SWEEPS") or (str(Path(store_dir).parent / "sweeps") if store_dir else "")
                  or str(sweep_results.default_sweeps_dir()))
path = sweep_results.find_sweep(sweep, sweeps_dir) if sweep else sweep_results.latest_sweep(sweeps_dir)
MAKE_ONE = ("gradflow sweep --act relu,tanh,sigmoid --init default,kaiming --lr 1e-2,5e-2 --n-seeds 3 "
            "--preset quick")
table = None
if path is None:
    display(Markdown(f"**No sweep found in `{sweeps_dir}`.** Make one, then render this report again:\n\n"
                     f"```\n{MAKE_ONE}\n```\n\n(`--dry-run` shows the plan first; add `--sweeps-dir {sweeps_dir}` "
                     "if you keep sweeps elsewhere.)"))
else:
    table = sweep_results.load_table(path)
    plan = sweep_results.load_plan(path)
    axes = [a for a in AXES if a in table and table[a].nunique() > 1] or ["act"]
    ok = table[table["status"] == "ok"].copy()
    seeds = plan["grid"]["seeds"]
    display(Markdown(f"**Sweep** `{path}`: {table['run'].nunique()} runs × {len(seeds)} seeds "
                     f"({', '.join(map(str, seeds))}); axes varied: {', '.join(axes)}. "
                     f"{ok['run'].nunique()} runs finished."))
    bad = table[table["status"] != "ok"].drop_duplicates("run")
    if len(bad):
        display(Markdown("**Not in the figures** (failed or never trained; `gradflow sweep` again retries them):\n\n"
                         + "\n".join(f"- `{r['run']}`: {r['status']}, {r['error']}" for r in bad.to_dict("records"))))

# %% [markdown]
# ## Accuracy across the grid
#
# Test accuracy of each cell of the grid: the mean over seeds with its 95 % confidence interval
# (Student t over the seeds). One panel per value of one axis; within a panel, one colour per
# value of the remaining axes.

# %%
def label(row, keys):
    return ", ".join(f"{k}={row[k]}" for k in keys) or "all"


if table is not None and len(ok):
    others = [a for a in axes if a != "act"]
    panel = panel_axis if panel_axis in others else (max(others, key=lambda a: ok[a].nunique()) if others else None)
    hue = [a for a in others if a != panel]
    ok["setting"] = ok.apply(lambda r: label(r, hue), axis=1)
    cells = (ok.groupby(["act", *others], sort=False)["test_acc"].apply(lambda s: plots.mean_ci(s.tolist()))
             .apply(pd.Series).set_axis(["mean", "half", "n"], axis=1).reset_index())
    cells["setting"] = cells.apply(lambda r: label(r, hue), axis=1)
    panels = list(cells[panel].unique()) if panel else [None]
    acts = list(dict.fromkeys(ok["act"]))
    settings = list(dict.fromkeys(cells["setting"]))
    fig, axs = plt.subplots(1, len(panels), figsize=(min(4.2 * len(panels), 16), 3.6), sharey=True, squeeze=False,
                            layout="constrained")
    width = 0.8 / max(len(settings), 1)
    for ax, pv in zip(axs[0], panels):
        part = cells if pv is None else cells[cells[panel] == pv]
        for j, s in enumerate(settings):
            d = part[part["setting"] == s].set_index("act").reindex(acts)
            x = np.arange(len(acts)) + (j - (len(settings) - 1) / 2) * width
            ax.errorbar(x, 100 * d["mean"], yerr=100 * d["half"].fillna(0), fmt="o", capsize=3, ms=4,
                        color=plt.cm.tab10(j % 10), label=s)
        ax.set_xticks(range(len(acts)), acts, rotation=30)
        ax.set_title(f"{panel} = {pv}" if panel else "all runs", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axs[0][0].set_ylabel("test accuracy (%), mean ± 95 % CI")
    if len(settings) > 1:
        axs[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("Test accuracy per cell of the grid", fontsize=11)
    plt.show()

# %% [markdown]
# ## What the seeds can and cannot tell apart
#
# For every pair of cells that differ in exactly one setting, the question is whether the change
# moved accuracy by more than the seed-to-seed spread: two cells are told apart when their 95 %
# intervals do not overlap (a conservative reading). The sentences below are computed from the table.

# %%
if table is not None and len(ok):
    keyed = cells.set_index(["act", *others])
    names = list(keyed.index.names)
    rows = []
    for a_key, a in keyed.iterrows():
        for b_key, b in keyed.iterrows():
            a_t, b_t = (a_key if isinstance(a_key, tuple) else (a_key,)), (b_key if isinstance(b_key, tuple) else (b_key,))
            diff = [i for i, (x, y) in enumerate(zip(a_t, b_t)) if x != y]
            if len(diff) != 1 or a_t >= b_t:
                continue
            axis = names[diff[0]]
            apart = np.isfinite(a["half"]) and np.isfinite(b["half"]) and \
                (a["mean"] - a["half"] > b["mean"] + b["half"] or b["mean"] - b["half"] > a["mean"] + a["half"])
            rest = ", ".join(f"{n}={v}" for i, (n, v) in enumerate(zip(names, a_t)) if i != diff[0])
            rows.append({"axis": axis, "from": a_t[diff[0]], "to": b_t[diff[0]], "where": rest,
                         "change (pp)": round(100 * (b["mean"] - a["mean"]), 2), "told apart": bool(apart)})
    pairs = pd.DataFrame(rows)
    lines = []
    for axis, d in pairs.groupby("axis", sort=False):
        told = d[d["told apart"]]
        line = (f"- **{axis}**: {len(told)} of {len(d)} one-setting changes are told apart by {len(seeds)} seeds")
        if len(told):
            big = told.loc[told["change (pp)"].abs().idxmax()]
            line += (f"; the largest: {big['from']} → {big['to']} ({big['where']}) changes accuracy by "
                     f"{big['change (pp)']:+.2f} points")
        hidden = d[~d["told apart"]]
        if len(hidden):
            widest = hidden.loc[hidden["change (pp)"].abs().idxmax()]
            line += (f". Not told apart, though the means differ by up to {abs(widest['change (pp)']):.2f} points "
                     f"({widest['from']} vs {widest['to']}, {widest['where']}): within the seeds' spread")
        lines.append(line + ".")
    display(Markdown("\n".join(lines) if lines else "The grid has one cell: nothing to compare."))
    if len(pairs):
        shown = pairs.sort_values(["told apart", "change (pp)"], ascending=[False, False]).head(20)
        nh.show_table(shown.assign(**{"told apart": shown["told apart"].map({True: "yes", False: "no (within seeds)"})}))

# %% [markdown]
# ## Findings per cell
#
# How many seeds of each cell the diagnosis flagged, per finding code (`gradflow diagnose RUN`
# explains each one).

# %%
if table is not None and len(ok):
    ok["cell"] = ok.apply(lambda r: label(r, others) if others else r["act"], axis=1)
    long = ok.assign(code=ok["finding_codes"].fillna("").str.split(",")).explode("code")
    long = long[long["code"].astype(bool)]
    if long.empty:
        display(Markdown("No findings in any cell."))
    else:
        every_cell = pd.MultiIndex.from_frame(ok[["act", "cell"]].drop_duplicates())  # cells without findings too
        counts = long.groupby(["act", "cell", "code"]).size().unstack("code", fill_value=0).reindex(every_cell,
                                                                                                 fill_value=0)
        counts.index = [f"{a} | {c}" if others else a for a, c in counts.index]
        fig, ax = plt.subplots(figsize=(4.5 + 1.1 * counts.shape[1], 1.2 + 0.3 * len(counts)), layout="constrained")
        im = ax.imshow(counts.values, cmap="Oranges", vmin=0, vmax=len(seeds), aspect="auto")
        ax.set_xticks(range(counts.shape[1]), counts.columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(counts)), counts.index, fontsize=8)
        for (i, j), v in np.ndenumerate(counts.values):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="black" if v < len(seeds) else "white")
        fig.colorbar(im, ax=ax, label=f"seeds flagged (of {len(seeds)})", shrink=0.8, pad=0.02)
        ax.set_title("Findings per cell: seeds flagged per code", fontsize=10)
        plt.show()

# %% [markdown]
# ## Learning curves of one slice
#
# One line per activation within a slice of the grid (fixed values of the other axes; the
# `curve_slice` parameter picks it): the mean over seeds with a 95 % band.

# %%
if table is not None and len(ok):
    chosen = {a: slice_items.get(a, str(ok[a].iloc[0])) for a in others}
    part = ok[np.logical_and.reduce([ok[a].astype(str) == v for a, v in chosen.items()])] if chosen else ok
    if part.empty:
        display(Markdown(f"No finished runs in the slice {chosen}; values on the axes: "
                         + "; ".join(f"{a}: {', '.join(map(str, ok[a].unique()))}" for a in others)))
    else:
        frames = [store.load_run(name, runs_dir or None).metrics.assign(act=act)
                  for name, act in part[["run", "act"]].drop_duplicates().itertuples(index=False)]
        fig = plots.plot_learning_curves(pd.concat(frames, ignore_index=True), metric, group="act",
                                         title=f"{metric}: " + (", ".join(f"{k}={v}" for k, v in chosen.items())
                                                                or "all runs") + " (mean, 95 % band)")
        plt.show()
