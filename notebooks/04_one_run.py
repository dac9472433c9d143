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
# # One run, in depth
#
# Everything the run store holds about one run: its configuration, every seed's learning curves, test
# results, gradient flow over training (when recorded), dead units, and the diagnosis. Any model the
# store holds works; by default the ReLU run of the preset's comparison.

# %% tags=["parameters"]
run: str = ""  # run name in the store (see: gradflow runs); empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default run (used only when run is empty)
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
if run:
    the_run = store.load_run(run, runs_dir or None)  # the error lists the runs in the store

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from gradflow import plots
from gradflow.data import load
from gradflow.models import BaseNetwork
from gradflow.record import Recorder
from gradflow.train import compare

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
if not run:
    the_run = compare(["relu"], preset=preset, runs_dir=runs_dir or None, progress=False)[0]
cfg = the_run.config
label = f"{the_run.name}, {cfg['data']['name']}"
display(Markdown(f"**Run** `{the_run.name}` — activation **{the_run.activation}**, data **{cfg['data']['name']}**, "
                 f"seeds {the_run.seeds}, trained on {cfg.get('device')} ({cfg.get('created', '?')})"))
pd.Series({k: v for k, v in cfg["run"].items()}, name="setting").to_frame()

# %% [markdown]
# ## Learning curves, every seed
#
# Solid up to each seed's early stop, dashed after it (the batch kept training; those epochs never
# count for the test score). Dots mark the best validation epoch, whose weights were tested.

# %%
m = the_run.metrics.assign(activation=the_run.activation)
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
for i, (seed, d) in enumerate(m.groupby("seed")):
    c = plt.get_cmap("tab10")(i)
    for ax, col in zip(axes, ("val_acc", "train_loss")):
        live, past = d[~d["past_stop"]], d[d["past_stop"]]
        ax.plot(live["epoch"], live[col], color=c, lw=2, label=f"seed {seed}")
        if len(past):
            ax.plot(pd.concat([live.tail(1), past])["epoch"], pd.concat([live.tail(1), past])[col], color=c, ls="--")
    best = the_run.results.set_index("seed").loc[seed, "best_epoch"]
    axes[0].plot([best], d.set_index("epoch").loc[[best], "val_acc"], "o", color=c)
axes[0].set(title=f"Validation accuracy ({label})", xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
axes[1].set(title=f"Training loss ({label})", xlabel="epoch", ylabel="cross-entropy (nats)")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.show()
the_run.results

# %% [markdown]
# ## Gradient flow over training
#
# Weight-gradient magnitudes per layer over training steps (one shared colour scale), then the
# update:data ratio per layer with the 1e-3 guide line.

# %%
rec = the_run.recordings
if rec is None:
    display(Markdown("This run holds **no recording** (trained with `record='off'`), so only the "
                     "snapshots below are available."))
else:
    tables = rec.tables()
    h = plots.recorded_histograms(tables["histograms"], rec.edges["grad_log10"], "grad", "log10")
    if len(h):
        plots.plot_flow_heatmap(h, f"Weight-gradient magnitude over training ({label})", "log10 |dL/dW|")
        plt.show()
    a = plots.recorded_histograms(tables["histograms"], rec.edges["act_linear"], "act", "linear")
    if len(a):
        plots.plot_flow_heatmap(a, f"Activation values over training ({label})", "activation output")
        plt.show()
    sc = tables["scalars"]
    plots.plot_ratio_over_time(sc[sc["quantity"] == "update_data_ratio"], f"Update:data ratio per layer ({label})")
    plt.show()

# %% [markdown]
# ## Snapshot: one batch through the network at initialisation and after training
#
# Weight-gradient histograms (shared log bins) for the first seed, from a fresh network built the way
# the trainer built it and from the best trained weights, on the same batch of training images.

# %%
rc = cfg["run"]
data = load("synthetic", seed=rc["split_seed"]) if rc["dataset"] == "synthetic" else load(rc["dataset"], split_seed=rc["split_seed"])
seed = the_run.seeds[0]
torch.manual_seed(seed)
nets = {"initialisation": BaseNetwork.from_config(cfg["model"]), "trained": the_run.model(seed)}
x, y = data.train_x[: rc["batch_size"]], data.train_y[: rc["batch_size"]]
snap, dead_rows = {}, []
for stage, net in nets.items():
    with Recorder(net, schedule="all") as r:
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        r.step(loss=loss)
        d = r.dead_units(data.train_x[:10000])
        snap[stage] = (r.tables(), r.summary())
    dead_rows += [{"layer": row.layer, "stage": stage, "percent": 100 * row.dead_fraction} for row in d.itertuples()]
edges = np.asarray(snap["trained"][1]["histogram_edges"]["grad_log10"])
hi = plots.recorded_histograms(snap["initialisation"][0]["histograms"], edges)
ht = plots.recorded_histograms(snap["trained"][0]["histograms"], edges)
plots.plot_overlay(hi, ht, ("initialisation", "trained"), f"Weight gradients on one batch, seed {seed} ({label})",
                   "log10 |dL/dW| (per weight)")
plt.show()
plots.plot_dead_units(pd.DataFrame(dead_rows), f"Dead units per layer, seed {seed} ({label})")
plt.show()

# %% [markdown]
# ## Diagnosis
#
# The findings stored with the run when it was trained, then the diagnosis re-run on the stored
# recording and metrics with this version's rules.

# %%
stored = plots.findings_table(the_run.findings)
display(stored if len(stored) else Markdown("No findings stored with this run."))
try:
    from gradflow.diagnose import diagnose
except ImportError:
    diagnose = None
if diagnose is not None:
    t = plots.findings_table(diagnose(the_run))
    display(Markdown("**Diagnosis now** (this gradflow's rules, from the run's recording and metrics):"))
    display(t if len(t) else Markdown("The diagnosis finds nothing wrong."))
