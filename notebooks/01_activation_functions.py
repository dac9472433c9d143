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
# # Activation functions and their derivatives
#
# Every activation registered in `gradflow`, drawn with its derivative. The derivative comes from
# autograd, the same numbers backpropagation multiplies into every gradient that flows through a
# layer: where it is near 0 the layer *saturates* and gradients vanish, where it is exactly 0 over a
# whole interval a unit can *die* (no gradient ever reaches its weights again).

# %% tags=["parameters"]
activations: list = []  # activation names to draw; [] draws every registered activation
x_min: float = -5.0  # left end of the input range (pre-activation value)
x_max: float = 5.0  # right end of the input range
points: int = 1001  # samples on the input range

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
import gradflow

registered = gradflow.available_activations()
names = list(activations) or registered
unknown = [a for a in names if str(a).lower() not in registered]
if unknown:
    raise ValueError(f"unknown activation(s) {unknown}; registered: {', '.join(registered)}")
if not (x_min < x_max):
    raise ValueError(f"x_min must be below x_max, got x_min={x_min}, x_max={x_max}")
if int(points) < 3:
    raise ValueError(f"points must be at least 3, got {points}")
names = [str(a).lower() for a in names]

# %%

import matplotlib.pyplot as plt
import pandas as pd
import torch

from gradflow import plots
from gradflow.activations import is_bounded

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole


def curves(name):
    x = torch.linspace(x_min, x_max, int(points), dtype=torch.float64, requires_grad=True)
    y = gradflow.get_activation(name)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise, so the gradient of the sum is f'(x)
    return pd.DataFrame({"activation": name, "x": x.detach().numpy(), "y": y.detach().numpy(), "dy": dy.numpy()})


table = pd.concat([curves(n) for n in names], ignore_index=True)

# %% [markdown]
# ## f(x) and f'(x)
#
# Solid: the activation; dashed: its derivative; red band: inputs where the derivative is exactly 0.
# All panels share the same axes, so slopes can be compared between panels.

# %%
fig = plots.plot_activations(table)

# %% [markdown]
# ## Properties at a glance
#
# - **saturates** — the slope falls below 0.05 at the left or right end of the range: large
#   pre-activations there pass (almost) no gradient back.
# - **zero-centred** — the mean output for standard-normal inputs; far from 0 (sigmoid's 0.5) shifts
#   every next layer's inputs to one sign, so all its weight gradients share a sign.
# - **dead region** — the fraction of the range where the slope is exactly 0 (ReLU's negative half).
# - **max slope** — above 1 the activation can amplify gradients, well below 1 it shrinks them layer after layer.

# %%
z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
rows = []
for name, d in table.groupby("activation", sort=False):
    dy = d["dy"].to_numpy()
    rows.append({
        "activation": name,
        "bounded": is_bounded(name),
        f"slope at x={x_min:g}": round(float(dy[0]), 4),
        f"slope at x={x_max:g}": round(float(dy[-1]), 4),
        "saturates": ", ".join(s for s, v in (("left", dy[0]), ("right", dy[-1])) if abs(v) < 0.05) or "no",
        "mean f(z), z~N(0,1)": round(float(gradflow.get_activation(name)(z).mean()), 3),
        "dead region (% of range)": round(100 * float((dy == 0).mean()), 1),
        "max slope": round(float(dy.max()), 3),
    })
props = pd.DataFrame(rows).set_index("activation")
props

# %% [markdown]
# Sigmoid is the odd one out: its slope is at most 0.25, so every sigmoid layer multiplies the
# gradient by a quarter or less before it reaches the layer below, and its outputs are all positive.
# That is why the deep sigmoid network in the next notebooks barely learns.

# %% [markdown]
# ## Environment

# %%
import platform
import sys

print(f"python {platform.python_version()} at {sys.executable}")
print(f"gradflow {gradflow.__version__}, torch {torch.__version__}")
