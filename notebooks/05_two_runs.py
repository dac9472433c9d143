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
# # Two runs side by side
#
# "The same network in two implementations behaves differently — where?" This notebook puts two runs
# from the store next to each other: which settings differ, how their learning curves differ, and, layer
# by layer, how differently their gradients are distributed (overlaid histograms on shared bins and the
# total-variation distance per layer: 0 = identical, 1 = no overlap). Then which findings differ.

# %% tags=["parameters"]
run_a: str = ""  # first run name; empty means the sigmoid run of the preset comparison
run_b: str = ""  # second run name; empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default runs (used only when a run name is empty)
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
from gradflow import store
from gradflow.config import PRESETS

if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
loaded = {}
for key, name in (("run_a", run_a), ("run_b", run_b)):
    if name:
        loaded[key] = store.load_run(name, runs_dir or None)  # the error lists the runs in the store

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from gradflow import plots
from gradflow.data import load
from gradflow.record import Recorder
from gradflow.train import compare

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
if len(loaded) < 2:
    defaults = compare(["sigmoid", "relu"], preset=preset, runs_dir=runs_dir or None, progress=False)
    loaded.setdefault("run_a", defaults[0])
    loaded.setdefault("run_b", defaults[1])
A, B = loaded["run_a"], loaded["run_b"]
labels = (f"A: {A.activation}", f"B: {B.activation}") if A.activation != B.activation else ("A", "B")
display(Markdown(f"**A** = `{A.name}`  \n**B** = `{B.name}`"))
ca, cb = A.config["run"], B.config["run"]
diff = pd.DataFrame([{"setting": k, "A": ca.get(k), "B": cb.get(k)} for k in sorted(set(ca) | set(cb))
                     if ca.get(k) != cb.get(k)])
diff if len(diff) else Markdown("The two runs have **identical settings**.")

# %% [markdown]
# ## Learning curves
#
# Mean over each run's seeds with 95 % confidence bands.

# %%
m = pd.concat([A.metrics.assign(run=labels[0]), B.metrics.assign(run=labels[1])], ignore_index=True)
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
plots.plot_learning_curves(m, "val_acc", group="run", ax=axes[0], title="Validation accuracy")
plots.plot_learning_curves(m, "train_loss", group="run", ax=axes[1], title="Training loss (nats)")
axes[0].set_ylim(0, 1)
plt.show()
pd.concat([A.results.assign(run=labels[0]), B.results.assign(run=labels[1])]).groupby("run")["test_acc"].describe()


# %% [markdown]
# ## Layer by layer: where the gradients differ
#
# Both runs' first-seed networks, at initialisation and with trained weights, see the same batch.
# Histograms share their bins; the title of each panel gives the distance between A and B.

# %%
def data_of(run):
    rc = run.config["run"]
    return load("synthetic", seed=rc["split_seed"]) if rc["dataset"] == "synthetic" else load(rc["dataset"], split_seed=rc["split_seed"])


def snapshot(run, trained):
    from gradflow.models import BaseNetwork
    seed = run.seeds[0]
    torch.manual_seed(seed)
    net = run.model(seed) if trained else BaseNetwork.from_config(run.config["model"])
    data = data_of(run)
    x, y = data.train_x[:256], data.train_y[:256]
    with Recorder(net, schedule="all") as r:
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        r.step(loss=loss)
        return r.tables(), r.summary()


distances = []
for stage, trained in (("initialisation", False), ("trained", True)):
    (ta, sa), (tb, sb) = snapshot(A, trained), snapshot(B, trained)
    for kind, scale, xlabel in (("grad", "log10", "log10 |dL/dW|"), ("act", "linear", "activation output")):
        edges = np.asarray(sa["histogram_edges"][f"{kind}_{scale}"])
        ha = plots.recorded_histograms(ta["histograms"], edges, kind, scale)
        hb = plots.recorded_histograms(tb["histograms"], edges, kind, scale)
        plots.plot_overlay(ha, hb, labels, f"{xlabel} per layer, {stage} (A vs B, one batch)", xlabel)
        plt.show()
        for layer in dict.fromkeys(ha["layer"]):
            distances.append({"stage": stage, "quantity": kind, "layer": layer,
                              "distance": plots.histogram_distance(ha[ha["layer"] == layer], hb[hb["layer"] == layer])})
dist = pd.DataFrame(distances)
dist.pivot_table(index=["quantity", "layer"], columns="stage", values="distance", sort=False).round(3)

# %% [markdown]
# ## Over training (when both runs were recorded)
#
# Distance between A's and B's weight-gradient histograms at each recorded step both runs share.

# %%
if A.recordings is not None and B.recordings is not None:
    edges = A.recordings.edges["grad_log10"]
    ha = plots.recorded_histograms(A.recordings.tables()["histograms"], edges)
    hb = plots.recorded_histograms(B.recordings.tables()["histograms"], edges)
    rows = []
    for (layer, step), da in ha.groupby(["layer", "step"]):
        db = hb[(hb["layer"] == layer) & (hb["step"] == step)]
        if len(db):
            rows.append({"layer": layer, "step": step, "distance": plots.histogram_distance(da, db)})
    over = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    for layer, d in over.groupby("layer", sort=False):
        ax.plot(d["step"], d["distance"], marker=".", label=layer)
    ax.set(ylim=(0, 1), xlabel="training step", ylabel="total-variation distance",
           title="A vs B: weight-gradient histogram distance per layer over training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    plt.show()
else:
    display(Markdown("At least one of the runs holds no recording; only the snapshots above compare them."))


# %% [markdown]
# ## Findings: what differs

# %%
def codes(run):
    return {(f.get("code"), f.get("layer")) for f in run.findings}
fa, fb = codes(A), codes(B)
display(Markdown(f"- only in A: {sorted(map(str, fa - fb)) or 'none'}\n- only in B: {sorted(map(str, fb - fa)) or 'none'}\n"
                 f"- in both: {sorted(map(str, fa & fb)) or 'none'}"))
