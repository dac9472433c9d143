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
#
# > **After this page you can**
# >
# > - read a sweep's grid and say which one-setting changes the seeds tell apart from luck;
# > - explain why a cell whose seeds split between chance and learning gets no interval;
# > - plan and render a sweep of your own (`gradflow sweep`, then this page).

# %% tags=["parameters"]
sweep: str = ""  # sweep name or directory (gradflow report --page 7 -p sweep NAME); empty: the newest sweep of this preset in sweeps_dir (else the newest)
sweeps_dir: str = ""  # sweeps directory; empty: $GRADFLOW_SWEEPS, else sweeps/ beside the run store
runs_dir: str = ""  # run store directory; empty: the store the sweep recorded in its plan.json
preset: str = "quick"  # report preset (the sweep itself names its own preset)
panel_axis: str = ""  # axis with one panel per value; empty means the grid axis with most values besides act
curve_slice: str = ""  # learning-curve slice: comma-joined axis:value pairs such as init:kaiming; empty: first value of each axis
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
    key, sep, value = part.replace(":", "=", 1).partition("=")  # init:kaiming and init=kaiming alike
    if not sep or key.strip() not in AXES:
        raise ValueError(f"curve_slice takes axis:value pairs joined by commas, such as init:kaiming (axes: "
                         f"{', '.join(AXES)}), got {part!r}")
    slice_items[key.strip()] = value.strip()

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from gradflow import answer_keys, exercises, narrate, narrate_pages, plots, store, sweep_results
from gradflow import notebook_helpers as nh
from gradflow import sweep_narrate as sn
from gradflow.style import PAGE_WIDTH_IN, READABLE_PT

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
nh.describe_figures()  # alt text for every figure
if not sweeps_dir:  # $GRADFLOW_SWEEPS, else beside the run store, where `gradflow sweep` puts them
    sweeps_dir = str(sweep_results.default_sweeps_dir(runs_dir or None))
path = sweep_results.find_sweep(sweep, sweeps_dir) if sweep else sweep_results.latest_sweep(sweeps_dir, preset)
MAKE_ONE = ("gradflow sweep --act relu,tanh,sigmoid --init default,kaiming --lr 1e-2,5e-2 --n-seeds 3 "
            "--preset quick")
table, ok = None, pd.DataFrame()
if path is None:
    display(Markdown(f"**No sweep found in `{sweeps_dir}`.** Make one, then render this report again:\n\n"
                     f"```\n{MAKE_ONE}\n```\n\n(`--dry-run` shows the plan first; add `--sweeps-dir {sweeps_dir}` "
                     "if you keep sweeps elsewhere.)"))
else:
    table = sweep_results.load_table(path)
    plan = sweep_results.load_plan(path)
    notes = []  # where the runs come from, and which newer sweeps this page is not showing
    store_dir = sweep_results.runs_dir_of(path, runs_dir or None, warn=notes.append)
    every = [p.name for p in sweep_results.sweeps_newest_first(sweeps_dir)]
    newer = every[:every.index(path.name)] if path.name in every else []  # skipped for being of another preset
    axes = [a for a in AXES if a in table and table[a].nunique() > 1] or ["act"]
    grid_axes = ["act", *[a for a in axes if a != "act"]]
    ok = table[table["status"] == "ok"].copy()
    seeds = plan["grid"]["seeds"]
    preview = sn.is_preview_sweep(plan)  # the plan's epochs and train subset count, not only its preset
    epochs = max((int(c["max_epochs"]) for c in plan.get("configs", []) if "max_epochs" in c), default=None)
    display(HTML(sn.sweep_callout(plan)))
    display(Markdown(f"**Sweep** `{path.name}`: {table['run'].nunique()} runs × {len(seeds)} seeds "
                     f"({', '.join(map(str, seeds))}); axes varied: {', '.join(axes)}. "
                     f"{ok['run'].nunique()} runs finished."
                     + ("" if sweep else f" Shown as the newest sweep{f' of preset {preset}' if newer else ''} in "
                        f"`{sweeps_dir}`" + (f" (newer, of other presets: {', '.join(newer[:3])})" if newer else "")
                        + "; `gradflow report --page 7 -p sweep NAME` shows another.")
                     + "".join(f" {n[0].upper()}{n[1:]}." for n in notes)))
    bad = table[table["status"] != "ok"].drop_duplicates("run")
    if len(bad):
        display(Markdown("**Not in the figures** (failed or never trained; `gradflow sweep` again retries them):\n\n"
                         + "\n".join(f"- `{r['run']}`: {r['status']}, {r['error']}" for r in bad.to_dict("records"))))

# %% [markdown]
# ## Accuracy across the grid
#
# Test accuracy of each cell of the grid: the mean over seeds with its 95 % confidence interval
# (Student t over the seeds), and each seed as a small grey dot beside it. A cell whose seeds split
# between chance and learning gets no interval (it would span the axis); its dots show the split.
# One panel per value of one axis; within a panel, one colour per value of the remaining axes (one
# colour when the grid has only the two axes drawn).

# %%
if len(ok):
    display(Markdown(narrate_pages.questions(answer_keys.QUESTIONS["sweep"])))
    others = grid_axes[1:]
    panel = panel_axis if panel_axis in others else (max(others, key=lambda a: ok[a].nunique()) if others else None)
    hue = [a for a in others if a != panel]
    cells = sn.cell_table(ok, grid_axes)
    def setting_of(row):
        return ", ".join(f"{k}={row[k]}" for k in hue) or "all"

    cells["setting"] = cells.apply(setting_of, axis=1)
    ok["setting"] = ok.apply(setting_of, axis=1)
    panels = list(cells[panel].unique()) if panel else [None]
    acts = list(dict.fromkeys(ok["act"]))
    settings = list(dict.fromkeys(cells["setting"]))
    fig, axs = plt.subplots(1, len(panels), figsize=(min(4.2 * len(panels), PAGE_WIDTH_IN), 3.6), sharey=True, squeeze=False,
                            layout="constrained")
    width = 0.8 / max(len(settings), 1)
    for ax, pv in zip(axs[0], panels):
        part = cells if pv is None else cells[cells[panel] == pv]
        for j, s in enumerate(settings):
            d = part[part["setting"] == s].set_index("act").reindex(acts)
            x = np.arange(len(acts)) + (j - (len(settings) - 1) / 2) * width
            # a cell whose seeds split between chance and learning gets no interval: it would span the axis
            split = [bool(sn.is_split(c)) for _, c in d.iterrows()]  # NaN rows (no such cell) compare False
            ax.errorbar(x, 100 * d["mean"], yerr=np.where(split, np.nan, 100 * d["half"].fillna(0)), fmt="o", capsize=4,
                        ms=6, color=plt.cm.tab10(j % 10), label=s)
            for xi, act in zip(x, acts):  # every seed as a small grey dot: a split cell shows as two groups
                seeds_here = ok[(ok["act"] == act) & (ok["setting"] == s)
                                & (ok[panel].astype(str) == str(pv) if panel else True)]["test_acc"]
                spread = xi + 0.08 + 0.05 * np.arange(len(seeds_here))  # side by side: equal seeds stay countable
                ax.plot(spread, 100 * seeds_here, ".", color="0.55", ms=6, zorder=1)
        ax.set_ylim(0, 100)  # accuracy is a percentage: an interval past 0 or 100 is cut at the frame
        ax.set_xlim(-0.5, len(acts) - 0.5)  # the chance label below ends at the frame, not past it
        ax.axhline(10, color="0.5", lw=0.8, ls=":")  # chance for 10 classes: where a cell that learned nothing sits
        ax.text(len(acts) - 0.5, 11, "chance", fontsize=READABLE_PT, color="0.4", ha="right", va="bottom")
        ax.set_xticks(range(len(acts)), acts, rotation=30)
        ax.set_title(f"{panel} = {pv}" if panel else "all runs", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axs[0][0].set_ylabel("test accuracy (%), mean ± 95 % CI")
    if len(settings) > 1:
        axs[0][-1].legend(fontsize=READABLE_PT, loc="best")
    fig.suptitle("Test accuracy per cell of the grid", fontsize=11)
    plt.show()
    split_cells = int(sum(bool(sn.is_split(c)) for _, c in cells.iterrows()))
    nh.show_markdown("On a 0–100 % axis a difference of a few points is hard to see; the table below gives "
                     "each change in points and whether the seeds can tell it apart."
                     + ("" if split_cells else " No cell's seeds split between chance and learning in this sweep, "
                        "so every cell has its interval."))

# %% [markdown]
# ## What the seeds can and cannot tell apart
#
# For every pair of cells that differ in exactly one setting, the question is whether the change
# moved accuracy by more than the seed-to-seed spread: two cells are told apart when their 95 %
# intervals do not overlap (a conservative reading). A seed counts as *at chance* when its test
# accuracy is below 15 %, or below 20 % and the diagnosis flags it NOT_LEARNING (its validation
# accuracy never left chance): a seed at 15.9 % that never learned is not counted as rescued.

# %%
if len(ok):
    pairs = sn.one_setting_pairs(cells, grid_axes)
    improving = [] if preview else sn.still_improving(ok, grid_axes, epochs)  # a preview is cut short everywhere
    nh.show_markdown(narrate.heading(sn.pair_sentences(pairs, cells, grid_axes, len(seeds), preview, epochs) + improving,
                                     "this sweep"))
    if len(pairs):
        shown = pairs.sort_values(["told apart", "change (pp)"], ascending=[False, False]).head(20)
        verdict = ["no (a cell's seeds split)" if split else "yes" if told else "no (within seeds)"
                   for told, split in zip(shown["told apart"], shown["split"])]
        columns = ["axis", "from", "to", "where", "change (pp)", "told apart"]
        if cells["at_chance"].any():  # seeds at chance somewhere: show where they are
            columns += ["at chance, from", "at chance, to"]
        nh.show_table(shown.assign(**{"told apart": verdict, "change (pp)": shown["change (pp)"].round(1) + 0.0})[columns]
                      .rename(columns={"change (pp)": "change in test accuracy (percentage points)"}))
    display(Markdown(narrate_pages.answers(answer_keys.sweep_answers(pairs))))

# %% [markdown]
# ## Findings per cell
#
# How many seeds of each cell the diagnosis flagged, per finding code (`gradflow diagnose RUN`
# explains each one).

# %%
if len(ok):
    counts = sn.finding_counts(ok, grid_axes)
    if counts.shape[1]:
        rows = [sn.cell_label(dict(zip(grid_axes, k if isinstance(k, tuple) else (k,)))) for k in counts.index]
        fig, ax = plt.subplots(figsize=(4.5 + 1.1 * counts.shape[1], 1.2 + 0.3 * len(counts)), layout="constrained")
        im = ax.imshow(counts.values, cmap="Oranges", vmin=0, vmax=len(seeds), aspect="auto")
        ax.set_xticks(range(counts.shape[1]), counts.columns, rotation=30, ha="right", fontsize=READABLE_PT)
        ax.set_yticks(range(len(counts)), rows, fontsize=READABLE_PT)
        ax.grid(False)
        for (i, j), v in np.ndenumerate(counts.values):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=READABLE_PT, color="black" if v < len(seeds) else "white")
        fig.colorbar(im, ax=ax, label=f"seeds flagged (of {len(seeds)})", shrink=0.8, pad=0.02,
                     ticks=range(len(seeds) + 1))
        ax.set_title("Findings per cell: seeds flagged per code", fontsize=10)
        plt.show()
    nh.show_markdown(narrate.heading(sn.finding_sentences(counts, len(seeds), grid_axes, cells), "this sweep"))

# %% [markdown]
# ## Learning curves of one slice
#
# One line per activation within a slice of the grid (fixed values of the other axes; the
# `curve_slice` parameter picks it): the mean over seeds, shaded over the seeds' range (lowest to highest).

# %%
if len(ok):
    chosen = {a: slice_items.get(a, str(ok[a].iloc[0])) for a in others}
    part = ok[np.logical_and.reduce([ok[a].astype(str) == v for a, v in chosen.items()])] if chosen else ok
    if part.empty:
        display(Markdown(f"No finished runs in the slice {chosen}; values on the axes: "
                         + "; ".join(f"{a}: {', '.join(map(str, ok[a].unique()))}" for a in others)))
    else:
        frames = [store.load_run(name, store_dir).metrics.assign(act=act)  # the sweep's own store
                  for name, act in part[["run", "act"]].drop_duplicates().itertuples(index=False)]
        curves = pd.concat(frames, ignore_index=True)
        where = ", ".join(f"{k} = {v}" for k, v in chosen.items()) or "all runs"
        fig = plots.plot_learning_curves(curves, metric, group="act",
                                         title=f"{sn.METRIC_NAMES[metric].capitalize()}, {where} (mean; shaded: the seeds' range)")
        plt.show()
        nh.show_markdown(narrate.heading(sn.curve_sentences(curves, metric), "this slice"))

# %% [markdown]
# ## Conclusion

# %%
if len(ok):
    capped = {} if preview else sn.capped_cells(ok, grid_axes, epochs)
    nh.show_markdown(narrate.sentences(sn.conclusion(pairs, counts, len(seeds), preview, capped)))

# %% [markdown]
# ## Try it yourself
#
# The next experiment this page invites: commands to run as written, and what to look for.

# %%
nh.show_markdown(exercises.sweep(preset))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["seed", "95 % CI", "told apart", "initialisation"]))
