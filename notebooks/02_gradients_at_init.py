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
# # Gradients at initialisation
#
# A fresh `BaseNetwork` per activation, one batch of training images, one backward pass, no training.
# This is the tutorial's `visualize_gradients`: if the weight gradients of the first layers are orders
# of magnitude smaller than those of the last layer *before any training*, the first layers will barely
# move — the vanishing-gradient problem, visible at step 0.

# %% tags=["parameters"]
activations: list = []  # activation names; [] means the six activations of the tutorial
preset: str = "quick"  # run preset that decides data and network ('smoke': synthetic data, tiny net)
batch_size: int = 256  # images in the one batch the gradients come from
seed: int = 42  # seed of the fresh network's initialisation
dead_images: int = 10000  # training images used to call a unit dead (output 0 for all of them)

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
import gradflow
from gradflow.activations import check_activations
from gradflow.config import PRESETS, TUTORIAL_ACTIVATIONS, make_config

names = check_activations(activations or TUTORIAL_ACTIVATIONS)
if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
if int(batch_size) < 1 or int(dead_images) < 1:
    raise ValueError(f"batch_size and dead_images must be positive, got {batch_size} and {dead_images}")
config = make_config(names[0], preset)

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gradflow import plots
from gradflow.activations import is_bounded
from gradflow.data import load

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
data = load(config.dataset) if config.dataset != "synthetic" else load("synthetic", seed=config.split_seed)
print(f"data: {data.name} ({data.source}); network: {data.input_size} -> {list(config.hidden_sizes)} -> {data.num_classes}")

# %% [markdown]
# One batch, the same images for every activation; each network starts from the same seed. Gradient
# magnitudes are binned on one shared log scale (`log10 |dL/dW|`), so panels and activations compare
# directly.

# %%
GRAD_EDGES = np.linspace(-9, 0, 46)  # log10 |gradient|: 1e-9 .. 1
ACT_EDGES = np.linspace(-2, 4, 61)  # activation outputs


def histogram(values, edges):
    v = np.clip(values, edges[0], edges[-1])  # out-of-range values land in the end bins, never vanish
    counts, _ = np.histogram(v, bins=edges)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts})


def inspect(name):
    torch.manual_seed(seed)
    net = gradflow.BaseNetwork(name, input_size=data.input_size, num_classes=data.num_classes,
                               hidden_sizes=list(config.hidden_sizes))
    acts = [m for m in net.layers if not isinstance(m, torch.nn.Linear)]
    outputs = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: outputs.__setitem__(i, (inp[0].detach(), out.detach())))
             for i, m in enumerate(acts)]
    x, y = data.train_x[:batch_size], data.train_y[:batch_size]
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    grads, act_hist, summary = [], [], []
    for i, lin in enumerate(net.linears):
        g = lin.weight.grad.flatten().numpy()
        h = histogram(np.log10(np.abs(g) + 1e-30), GRAD_EDGES)
        h["layer"] = f"layer {i + 1}"
        grads.append(h)
        summary.append({"activation": name, "layer": f"layer {i + 1}", "grad_std": float(g.std())})
    for i, (_pre, out) in outputs.items():
        h = histogram(out.flatten().numpy(), ACT_EDGES)
        h["layer"] = f"act {i + 1}"
        act_hist.append(h)
    with torch.no_grad():  # dead units over many images; saturation on the batch
        n = min(int(dead_images), len(data.train_y))
        alive = {}
        for m in acts:
            m._forward_hooks.clear()
        hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: alive.__setitem__(i, alive.get(i, 0) + (out != 0).sum(0)))
                 for i, m in enumerate(acts)]
        for s in range(0, n, 2500):
            net(data.train_x[s:min(n, s + 2500)])
        for h in hooks:
            h.remove()
    units = []
    for i, m in enumerate(acts):
        pre, out = outputs[i]
        x1 = pre.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(m(x1).sum(), x1)
        saturated = float((slope.abs() < 0.05).float().mean()) if is_bounded(name) else 0.0
        units.append({"activation": name, "layer": f"act {i + 1}", "units": out.shape[1],
                      "dead units": int((alive[i] == 0).sum()),
                      "dead (%)": round(100 * float((alive[i] == 0).float().mean()), 2),
                      "saturated values (%)": round(100 * saturated, 2)})
    return pd.concat(grads), pd.concat(act_hist), summary, units


results = {name: inspect(name) for name in names}
grad_std = pd.DataFrame([row for r in results.values() for row in r[2]])
units = pd.DataFrame([row for r in results.values() for row in r[3]])

# %% [markdown]
# ## Weight-gradient magnitude per layer, every activation
#
# The standard deviation of each layer's weight gradient. A line that climbs steeply from left (input)
# to right (output) means the early layers receive a tiny fraction of the learning signal.

# %%
fig = plots.plot_layer_profile(grad_std, "grad_std", "std of dL/dW (log scale)",
                               f"Weight-gradient size per layer at initialisation ({data.name}, one batch of {batch_size})")

# %% [markdown]
# ## Per-layer weight-gradient histograms
#
# One row of panels per activation, bins of `log10 |dL/dW|` shared by all panels.

# %%
for name in names:
    fig = plots.plot_layer_histograms(results[name][0], f"{name}: weight gradients at initialisation ({data.name})",
                                      "log10 |dL/dW| (per weight)", color=plots.colour(name))
    plt.show()

# %% [markdown]
# ## Per-layer activation histograms
#
# What each hidden layer outputs on the batch. Piles at the ends of a bounded activation's range are
# saturated units; a spike at exactly 0 for ReLU is units that are off for those inputs.

# %%
for name in names:
    fig = plots.plot_layer_histograms(results[name][1], f"{name}: hidden-layer outputs at initialisation ({data.name})",
                                      "activation output value", color=plots.colour(name), log_y=True)
    plt.show()

# %% [markdown]
# ## Dead and saturated units
#
# *Dead*: output exactly 0 for every one of the first `dead_images` training images, so its incoming
# weights never receive a gradient. *Saturated values*: for bounded activations, the share of
# pre-activations where the slope is below 0.05.

# %%
units.pivot_table(index="layer", columns="activation", values="dead (%)", sort=False)

# %%
units.pivot_table(index="layer", columns="activation", values="saturated values (%)", sort=False)

# %% [markdown]
# ## Diagnosis

# %%
lines = []
for name, d in grad_std.groupby("activation", sort=False):
    first, last = d["grad_std"].iloc[0], d["grad_std"].iloc[-1]
    ratio = first / last if last > 0 else float("nan")
    verdict = ("VANISHING: the input layer gets less than 1 % of the output layer's gradient"
               if ratio < 1e-2 else "healthy: gradients reach the input layer")
    dead = units[(units["activation"] == name)]["dead units"].sum()
    lines.append(f"- **{name}**: input-layer / output-layer gradient std = {ratio:.1e} → {verdict}; "
                 f"{dead} dead unit(s) in all hidden layers")
from IPython.display import Markdown

Markdown("\n".join(lines))
