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
# # Comparing activations
#
# One run per activation, each with several seeds (independent initialisations and data orders),
# trained together or loaded from the run store when it already holds them. With several seeds we
# can say which differences are real and which are noise — the tutorial used one seed and said so.

# %% tags=["parameters"]
activations: list = []  # activation names; [] means the six activations of the tutorial
preset: str = "quick"  # run preset: tutorial (full recipe), quick (few epochs), smoke (synthetic, seconds)
seeds: list = []  # seeds per activation; [] means the seeds of the preset
max_epochs: int = 0  # most epochs per run; 0 means the epochs of the preset
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
from gradflow.activations import check_activations
from gradflow.config import PRESETS, TUTORIAL_ACTIVATIONS, TUTORIAL_TEST_ACCURACY

if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 0:
    raise ValueError(f"max_epochs must be 0 (the preset's) or a positive number of epochs, got {max_epochs!r}")

names = check_activations(activations or TUTORIAL_ACTIVATIONS)
if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds must be distinct integers, got {seeds!r}")

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from gradflow import plots
from gradflow.train import compare

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
runs = compare(names, preset=preset, seeds=list(seeds) or None, runs_dir=runs_dir or None, progress=False,
               max_epochs=max_epochs or None)
data_name = runs[0].config["data"]["name"]
label = f"preset {preset}, {data_name}, {len(runs[0].seeds)} seeds"
metrics = pd.concat([r.metrics.assign(activation=r.activation, run=r.name) for r in runs], ignore_index=True)
results = pd.concat([r.results.assign(activation=r.activation, run=r.name) for r in runs], ignore_index=True)
pd.DataFrame([r.summary() for r in runs])[["run", "activation", "seeds", "epochs_trained", "seconds_per_epoch", "device"]]

# %% [markdown]
# ## Learning curves
#
# Mean validation accuracy over seeds with a 95 % confidence band. Solid: epochs before a seed's early
# stop. **Dashed: the curve continued past the early-stopping point** — all models of a comparison
# train in one batched step, so epochs after a seed stopped were still recorded (its reported test
# accuracy uses its best epoch before the stop).

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained")
plots.plot_learning_curves(metrics, "val_acc", ax=axes[0], title=f"Validation accuracy ({label})")
plots.plot_learning_curves(metrics, "train_loss", ax=axes[1], title=f"Training loss ({label})")
axes[0].set_ylim(0, 1)
plt.show()

# %% [markdown]
# ## Test accuracy: mean ± 95 % CI over seeds
#
# Next to the tutorial's single-seed numbers (FashionMNIST, full recipe; the comparison is only
# meaningful for the `tutorial` preset on FashionMNIST).

# %%
table = plots.accuracy_table(results, reference=TUTORIAL_TEST_ACCURACY)
display(table)
apart, overlap = plots.distinguishable(table)
def fmt(pairs, sep):
    return "; ".join(f"{a} {sep} {b}" for a, b in pairs) or "none"
display(Markdown(
    f"**What {len(runs[0].seeds)} seeds can tell apart** (95 % intervals that do not overlap): {fmt(apart, '>')}.\n\n"
    f"**What they cannot** (intervals overlap, the ranking could flip with other seeds): {fmt(overlap, 'vs')}."))

# %% [markdown]
# ## Gradient flow over training
#
# Per layer, how the distribution of weight-gradient magnitudes moves during training ("colorful
# dimension": x = step, y = `log10 |gradient|` bin, colour = share of the layer's gradients in that
# bin). One colour scale for every panel and activation.

# %%
have = [r for r in runs if r.recordings is not None]
if not have:
    display(Markdown("**These runs hold no recordings** (trained with `record='off'` or by an older gradflow), "
                     "so there is no gradient flow over training to show. Retrain with recording on."))
flows = [plots.recorded_histograms(r.recordings.tables()["histograms"], r.recordings.edges["grad_log10"],
                                   "grad", "log10").assign(activation=r.activation) for r in have]
if flows:
    plots.plot_flow_heatmap(pd.concat(flows, ignore_index=True),
                            f"Weight-gradient magnitude over training ({label}, all seeds pooled)",
                            "log10 |dL/dW|", row="activation")
    plt.show()

# %% [markdown]
# ## Update:data ratios
#
# How big each optimizer step is relative to the weights it changes: `std(lr·grad) / std(weight)` per
# layer, log10, over training. About 1e-3 (dashed line) is the usual healthy size; far below, the layer
# barely learns; far above, it is being rewritten every step.

# %%
if have:
    ncols = min(3, len(have))
    nrows = -(-len(have) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(have):]:
        ax.set_visible(False)
    for i, (ax, r) in enumerate(zip(axes.ravel(), have)):
        sc = r.recordings.tables()["scalars"]
        plots.plot_ratio_over_time(sc[sc["quantity"] == "update_data_ratio"], r.activation, ax=ax)
        if i:
            ax.get_legend().remove()
    fig.suptitle(f"Update:data ratio per layer ({label}; mean over seeds)")
    plt.show()

# %% [markdown]
# ## Dead units before and after training
#
# A unit is dead when, over the whole training split, it passes no gradient (derivative ≈ 0) or
# carries no signal (output ≈ 0). The trainer counts them at initialisation and on the best weights;
# runs without a recording are counted here on their first seed.

# %%
import torch

from gradflow.data import load
from gradflow.models import BaseNetwork
from gradflow.record import Recorder


def counted_dead(r):
    """Dead-unit rows (layer, stage, dead, units, percent) from the recording, or counted now."""
    rec = r.recordings
    d = rec.tables()["dead_units"] if rec is not None else None
    if d is not None and d["step"].nunique() >= 2:
        first, last = d["step"].min(), d["step"].max()
        d = d[d["step"].isin([first, last])].assign(stage=lambda t: np.where(t["step"] == first, "initialisation", "trained"))
        d = d.groupby(["stage", "layer"], sort=False)[["dead", "units"]].mean().reset_index()  # mean over seeds
        return d.assign(percent=100 * d["dead"] / d["units"])
    rc = r.config["run"]
    data = load("synthetic", seed=rc["split_seed"]) if rc["dataset"] == "synthetic" else load(rc["dataset"], split_seed=rc["split_seed"])
    torch.manual_seed(r.seeds[0])  # the trainer builds each member right after manual_seed(seed)
    rows = []
    for stage, net in (("initialisation", BaseNetwork.from_config(r.config["model"])), ("trained", r.model(r.seeds[0]))):
        with Recorder(net) as probe:
            for row in probe.dead_units(data.train_x).itertuples():
                rows.append({"stage": stage, "layer": row.layer, "dead": row.dead, "units": row.units,
                             "percent": 100 * row.dead_fraction})
    return pd.DataFrame(rows)


dead = pd.concat([counted_dead(r).assign(activation=r.activation) for r in runs], ignore_index=True)
ncols = min(3, len(runs))
nrows = -(-len(runs) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.2 * nrows), sharey=True, squeeze=False, layout="constrained")
for ax in axes.ravel()[len(runs):]:
    ax.set_visible(False)
for ax, r in zip(axes.ravel(), runs):
    plots.plot_dead_units(dead[dead["activation"] == r.activation], r.activation, ax=ax)
top = max(5.0, float(dead["percent"].max()) * 1.25)
for ax in axes.ravel():
    ax.set_ylim(0, top)  # one scale for all panels
fig.suptitle(f"Dead units per layer (% of layer, mean over seeds; {label})")
plt.show()
dead.pivot_table(index=["activation", "layer"], columns="stage", values="dead", sort=False).round(1)

# %% [markdown]
# ## Findings per run

# %%
for r in runs:
    display(Markdown(f"**{r.activation}** (`{r.name}`)"))
    f = plots.findings_table(r.findings)
    display(f if len(f) else Markdown("no findings recorded for this run"))
