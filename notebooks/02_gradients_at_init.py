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
# # 2. Gradients at initialisation
#
# Before any training, put one batch of images through a fresh network, compute the loss and one
# backward pass, and look at the weight gradients of every layer (the tutorial's `visualize_gradients`
# does the same). If the first layers' gradients are orders of magnitude smaller than the last
# layer's *before training starts*, the first layers will barely move: the vanishing-gradient problem,
# visible at step 0. Every number here is measured the same way as in the training runs of the next
# pages, so "dead" and "saturated" mean the same thing everywhere.
#
# > **After this page you can**
# >
# > - spot a vanishing gradient before any training, from one batch's backward pass;
# > - explain why sigmoid's first layer gets a far smaller gradient than its output layer: slopes times weights;
# > - tell a unit that is off for one batch from a dead unit.

# %% tags=["parameters"]
activations: list = []  # activation names, e.g. relu,tanh; empty means the six of the tutorial
preset: str = "quick"  # picks data and network: tutorial or quick (FashionMNIST), smoke (synthetic, tiny net)
batch_size: int = 256  # images in the one batch the gradients come from
seed: int = 42  # seed of the fresh network's initialisation
dead_images: int = 10000  # training images over which a unit must stay dead to count as dead
deep_hidden: list = [256, 256, 256, 256, 256, 128, 128, 128, 128, 128]  # the deeper network of the tutorial
interactive: bool = True  # offer ipywidgets controls when run live in Jupyter (rendered reports stay static)

# %% tags=["validate-parameters"]
from gradflow import notebook_helpers as nh
from gradflow.activations import check_activations
from gradflow.config import TUTORIAL_ACTIVATIONS, make_config

nh.repo_root_cwd()
names = check_activations(nh.as_list(activations, "activations") or TUTORIAL_ACTIVATIONS)
preset = nh.as_preset(preset)
batch_size = nh.as_int(batch_size, "batch_size", minimum=1)
seed = nh.as_int(seed, "seed")
dead_images = nh.as_int(dead_images, "dead_images", minimum=1)
deep_hidden = [nh.as_int(h, "deep_hidden", minimum=1) for h in nh.as_list(deep_hidden, "deep_hidden", item=int)]
interactive = nh.as_bool(interactive, "interactive")
config = make_config(names[0], preset)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from gradflow import answer_keys, exercises, flow_plots, histogram_tables, narrate, narrate_init, narrate_pages, plots
from gradflow.data import FASHION_CLASSES, load
from gradflow.models import BaseNetwork
from gradflow.style import layer_labels, layer_order

nh.setup_display()
data = load(config.dataset) if config.dataset != "synthetic" else load("synthetic", seed=config.split_seed)
hidden = list(config.hidden_sizes)
nh.show_html(narrate.untrained_callout(preset, config.dataset, hidden, seed, batch_size))
nh.show_markdown(narrate_pages.CREDIT)
x, y = data.train_x[:batch_size], data.train_y[:batch_size]
dead_x = data.train_x[: min(dead_images, len(data.train_y))]

# %% [markdown]
# ## The data
#
# FashionMNIST: 28×28 grey-scale photos of clothes in 10 classes, scaled to [−1, 1] as in the
# tutorial. These are the first images of the batch every network below sees.

# %%
classes = FASHION_CLASSES if data.num_classes == 10 and data.name == "FashionMNIST" else \
    [f"class {i}" for i in range(data.num_classes)]
fig = plots.plot_sample_grid(x[:16].numpy(), y[:16].numpy(), classes, ncols=8,
                             title=f"{data.name}: the first 16 images of the batch, with their labels")

# %%
records, raw = {}, {}
for name in names:
    torch.manual_seed(seed)
    net = BaseNetwork(name, input_size=data.input_size, num_classes=data.num_classes, hidden_sizes=hidden)
    tables, summary, grads = nh.record_one_batch(net, x, y, dead_inputs=dead_x)
    records[name], raw[name] = (tables, summary), grads
labels = layer_labels({"input_size": data.input_size, "hidden_sizes": hidden, "num_classes": data.num_classes},
                      [f"layers.{i}" for i in range(2 * len(hidden) + 1)])
scalars = pd.concat([t["scalars"].assign(activation=n) for n, (t, _) in records.items()], ignore_index=True)
grad_std = scalars[scalars["quantity"] == "grad_std"].copy()
grad_std = grad_std.sort_values("layer", key=lambda c: c.map(layer_order), kind="stable")
grad_std = grad_std.assign(layer=grad_std["layer"].map(labels), grad_std=grad_std["value"])

# %% [markdown]
# ## How big are the gradients, layer by layer?

# %%
asked = answer_keys.init_questions(names, len(hidden))
if asked:
    nh.show_markdown(narrate_pages.questions(asked))
fig = plots.plot_layer_profile(grad_std, "grad_std", "std of the weight gradient dL/dW (log scale)",
                               f"Weight-gradient size per layer at initialisation (one batch of {batch_size})")

# %%
zeros = pd.DataFrame([{"activation": n, "layer": labels[k], "zeros": int((g == 0).sum()), "weights": g.numel()}
                      for n, gs in raw.items() for k, g in gs.items()])
slopes = {n: max(max(e["max_derivative"]) for e in summary["layers"] if e.get("max_derivative"))
          for n, (_, summary) in records.items()}  # largest slope the recorder probed, per activation
sizes = [data.input_size, *hidden, data.num_classes]
if asked:
    nh.show_markdown(narrate_pages.answers(answer_keys.init_answers(grad_std, hidden_layers=len(hidden))))
nh.show_markdown(narrate.heading(narrate_init.init_gradient_sentences(grad_std, zeros, sizes, slopes), paragraphs=True))

# %% [markdown]
# ## The whole distribution, two views
#
# **Magnitude view**: `log10 |dL/dW|` of every weight, one panel per activation, the layers overlaid
# (light: near the input; dark: the output layer). A curve further left means smaller gradients.
# A gradient of exactly 0 has no logarithm: those are counted in the panel's note instead of being
# drawn as a bar.

# %%
edges = np.asarray(records[names[0]][1]["histogram_edges"]["grad_log10"])
mag, notes = [], {}
for n, gs in raw.items():
    parts = []
    for k, g in gs.items():
        a = g.abs().numpy()
        nz = a[a > 0]
        mag.append(flow_plots.long_histogram(np.log10(nz), edges, activation=n, layer=k))
        if (a == 0).any():
            parts.append(f"{labels[k].split(' (')[0]}: {int((a == 0).sum()):,} exactly 0")
    notes[n] = "\n".join(parts) if parts else "no gradient is exactly 0"
mag = pd.concat(mag, ignore_index=True)
fig = flow_plots.plot_layer_distributions(mag, labels, "Weight-gradient magnitudes at initialisation",
                                          "log10 |dL/dW| (per weight)", notes=notes, xlim=(-10, 0))

# %% [markdown]
# **Signed view**: the same gradients divided by their layer's standard deviation, so every layer's
# *shape* is visible on one axis (the magnitude view above gives the sizes). A symmetric bell means
# the layer's weights are pushed up and down alike; a lopsided or spiky shape means most weights
# get pushed the same way, or not at all (the spike at 0).

# %%
signed_edges = np.linspace(-5, 5, 81)
signed = []
for n, gs in raw.items():
    for k, g in gs.items():
        v = g.numpy()
        sd = v.std()
        signed.append(flow_plots.long_histogram(v / sd if sd > 0 else v, signed_edges, activation=n, layer=k))
signed = pd.concat(signed, ignore_index=True)
fig = flow_plots.plot_layer_distributions(signed, labels, "Weight-gradient shapes at initialisation (scaled per layer)",
                                          "dL/dW divided by the layer's standard deviation", log_y=True)

# %%
if nh.live_kernel(interactive):
    import ipywidgets as widgets

    @widgets.interact(activation=names, layer=[(labels[k], k) for k in raw[names[0]]])
    def one_layer(activation, layer):
        g = raw[activation][layer].numpy()
        fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
        ax.hist(np.log10(np.abs(g[g != 0])), bins=edges, color="0.3")
        ax.set(xlabel="log10 |dL/dW|", ylabel="weights", title=f"{activation}, {labels[layer]}: "
               f"{int((g == 0).sum()):,} of {g.size:,} exactly 0")
        plt.show()

# %% [markdown]
# ## What the hidden layers output
#
# The values each hidden layer passes on, for the same batch (the recorder's histogram, shared bins).
# Values piled up at ±1 for tanh, or at 0 and 1 for sigmoid, would be saturated values; ReLU's spike at
# 0 is units that are off for that image.

# %%
act_edges = np.asarray(records[names[0]][1]["histogram_edges"]["act_linear"])
acts = pd.concat([histogram_tables.recorded_histograms(t["histograms"], act_edges, "act", "linear").assign(activation=n)
                  for n, (t, _) in records.items()], ignore_index=True)
fig = flow_plots.plot_layer_distributions(acts, labels, "Hidden-layer outputs at initialisation",
                                          "activation output value (values beyond ±5 in the end bins)", log_y=True,
                                          own_x=True)
plt.show()
centres = narrate_init.output_centre_sentences(acts)
if centres:
    nh.show_markdown(narrate.heading(centres))

# %% [markdown]
# ## Dead and saturated units
#
# *Dead*: the unit passes no gradient or carries no signal for every one of the training images it is
# checked on (by default the first 10,000 training images). *Saturated*: the share of the batch's values where the slope is below 6 % of the
# activation's largest slope (for ReLU that is its flat negative side). Both are the recorder's
# definitions, used on every page.

# %%
unit_rows = []
for n, (t, _) in records.items():
    d = t["dead_units"].set_index("layer")
    sat = t["scalars"][t["scalars"]["quantity"] == "saturation"].set_index("layer")["value"]
    for k in sorted(d.index, key=layer_order):
        unit_rows.append({"activation": n, "layer": labels[k], "units": int(d.loc[k, "units"]),
                          "dead_pct": 100 * float(d.loc[k, "dead_fraction"]), "saturated_pct": 100 * float(sat.get(k, 0))})
units = pd.DataFrame(unit_rows)
nh.show_table(units.pivot_table(index="layer", columns="activation", values="saturated_pct", sort=False)
              .reset_index().rename(columns={"layer": "values with slope below 6 % of its largest (%): saturated (sigmoid, tanh, elu's negative side), off (relu), near the dip (swish)"}), digits=3)
nh.show_markdown(narrate.heading(narrate_init.saturation_sentences(units)))

# %% [markdown]
# ## A deeper network: where ReLU units die
#
# The tutorial's second experiment: ten hidden layers (`deep_hidden`), still at initialisation, dead
# units counted over the same images. Why depth kills ReLU units before any training: with PyTorch's
# default weights each ReLU layer shrinks its signal (the mean square of its outputs falls about 6× per
# layer: the weights scale it by 1/3, ReLU keeps half), while every unit's bias keeps its random size
# (up to ±1/sqrt(fan_in)). After a few layers the bias outweighs the signal, and a unit whose bias is
# negative is off for every image.

# %%
deep_rows = []
deep_labels = layer_labels({"input_size": data.input_size, "hidden_sizes": deep_hidden,
                            "num_classes": data.num_classes}, [f"layers.{i}" for i in range(2 * len(deep_hidden) + 1)])
for n in names:
    torch.manual_seed(seed)
    net = BaseNetwork(n, input_size=data.input_size, num_classes=data.num_classes, hidden_sizes=deep_hidden)
    t, _, _ = nh.record_one_batch(net, x, y, dead_inputs=dead_x)
    for row in t["dead_units"].itertuples():
        deep_rows.append({"activation": n, "key": row.layer, "layer": deep_labels[row.layer], "dead_pct":
                          100 * row.dead_fraction, "stage": "at initialisation", "percent": 100 * row.dead_fraction})
deep = pd.DataFrame(deep_rows).sort_values("key", key=lambda c: c.map(layer_order), kind="stable")
deep = deep.sort_values("activation", key=lambda c: c.map(names.index), kind="stable")
fig = flow_plots.plot_dead_units(deep, f"Dead units per layer of the {len(deep_hidden)}-layer network, at initialisation",
                                 ncols=2)
plt.show()
nh.show_markdown(narrate.heading(narrate_init.deep_dead_sentences(deep)))

# %% [markdown]
# ## Conclusion
#
# At initialisation, before any learning, the activation already decides how much gradient reaches each
# layer. With sigmoid the first layer receives a tiny fraction of the output layer's gradient, because
# each sigmoid slope passes back at most a quarter and each layer's initial weights shrink it further;
# tanh and the ReLU family keep the layers within about 10× of each other. ReLU's exact zeros
# come from weights whose two units were never on for the same image of the batch; units off for a
# whole batch are a minority of a layer's units in the shallow network; in a deep one, up to about half
# of a layer's units can start dead. The next pages train these networks and
# show what the difference does.

# %% [markdown]
# ## Try it yourself
#
# The next experiment this page invites: commands to run as written, and what to look for.

# %%
nh.show_markdown(exercises.gradients_at_init(preset))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["dead unit", "saturated", "initialisation"]))
