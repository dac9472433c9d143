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
# # 1. Activation functions and their slopes
#
# A neural network layer computes a weighted sum of its inputs and passes it through an
# **activation function**. Backpropagation multiplies every gradient that flows back through a layer
# by the activation's **slope** (its derivative) at that unit's input. So the slope decides how much
# learning signal reaches the layers below: where it is near 0 the unit is *saturated* and gradients
# vanish; where it is exactly 0 over a whole range a unit can *die*.
#
# This page draws the six activations of the tutorial with their slopes (computed by autograd, the
# same numbers backpropagation uses) and reads off what each does to a gradient.
#
# > **After this page you can**
# >
# > - read an activation's slope off its graph and say what it does to a gradient passing back through a layer;
# > - work out why four sigmoid layers shrink a gradient at least 256-fold from their slopes alone;
# > - tell a saturated value (slope below 6 % of the activation's largest) from a dead unit (no gradient or no
# >   output for every image checked).

# %% tags=["parameters"]
activations: list = []  # activation names to draw, e.g. relu,tanh; empty means the six of the tutorial, all means every registered one
x_min: float = -5.0  # left end of the input range (pre-activation value)
x_max: float = 5.0  # right end of the input range
points: int = 1001  # samples on the input range

# %% tags=["validate-parameters"]
import gradflow
from gradflow import notebook_helpers as nh
from gradflow.activations import check_activations
from gradflow.config import TUTORIAL_ACTIVATIONS

nh.repo_root_cwd()
wanted = nh.as_list(activations, "activations")
names = gradflow.available_activations() if wanted == ["all"] else check_activations(wanted or TUTORIAL_ACTIVATIONS)
x_min, x_max = nh.as_float(x_min, "x_min"), nh.as_float(x_max, "x_max")
points = nh.as_int(points, "points", minimum=3)
if not x_min < x_max:
    raise nh.ParameterError(f"x_min must be below x_max, got x_min={x_min}, x_max={x_max}")

# %%
import pandas as pd
import torch

from gradflow import answer_keys, exercises, narrate, narrate_pages, plots

nh.setup_display()
nh.show_markdown(narrate_pages.CREDIT)


def curves(name):
    x = torch.linspace(x_min, x_max, points, dtype=torch.float64, requires_grad=True)
    y = gradflow.get_activation(name)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise, so the gradient of the sum is f'(x)
    return pd.DataFrame({"activation": name, "x": x.detach().numpy(), "y": y.detach().numpy(), "dy": dy.numpy()})


table = pd.concat([curves(n) for n in names], ignore_index=True)

# %% [markdown]
# ## The functions and their slopes
#
# %%
nh.show_markdown(narrate_pages.questions(answer_keys.QUESTIONS["slopes"]))
fig = plots.plot_activations(table)

# %% [markdown]
# Solid: the activation f(x); dashed: its slope f'(x); grey band: inputs where the slope is exactly 0.
# All panels share the same axes, so slopes compare between panels.
#
# ## Properties at a glance

# %%
z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
rows = []
for name, d in table.groupby("activation", sort=False):
    dy = d["dy"].to_numpy()
    rows.append({"activation": name, "max_slope": float(dy.max()), "left_slope": float(dy[0]),
                 "right_slope": float(dy[-1]), "dead_share": float((dy == 0).mean()),
                 "mean_out": float(gradflow.get_activation(name)(z).mean())})
props = pd.DataFrame(rows)
nh.show_table(pd.DataFrame({
    "activation": props["activation"],
    "largest slope": props["max_slope"].round(3),
    f"slope at x = {x_min:g}": props["left_slope"].round(4),
    f"slope at x = {x_max:g}": props["right_slope"].round(4),
    "range with slope exactly 0 (%)": (100 * props["dead_share"]).round(1),
    "mean output for x ~ N(0, 1)": props["mean_out"].round(3),
}))

# %%
nh.show_markdown(narrate_pages.answers(answer_keys.slope_answers(props, table)))
nh.show_markdown(narrate.heading(narrate_pages.activation_sentences(props), "this page"))

# %% [markdown]
# ## Conclusion
#
# A gradient reaching the first layer of a deep network has been multiplied by one slope per layer
# (and by each layer's weights, a factor the next page measures).
# Slopes well below 1 (sigmoid's are at most 0.25) shrink it geometrically with depth; slopes of
# exactly 0 (ReLU's negative half) stop it entirely for that unit. The next page measures both
# effects in a real network before any training; the pages after it show what they do to learning.

# %% [markdown]
# ## Try it yourself

# %%
nh.show_markdown(exercises.activation_functions("quick"))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["saturated", "dead unit"]))

# %% [markdown]
# ## Environment

# %%
import platform

print(f"python {platform.python_version()}, torch {torch.__version__}, gradflow {gradflow.__version__}")
