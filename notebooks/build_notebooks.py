"""Build the report notebooks (``notebooks/*.ipynb``) from the cell sources below.

Run ``python notebooks/build_notebooks.py`` after editing a notebook here; the .ipynb files it
writes carry no outputs, so they diff cleanly and run by hand in Jupyter or under papermill.

Cell format: ``# %% md`` starts a markdown cell, ``# %%`` a code cell, ``# %% tags=a,b`` a code
cell with tags. Every notebook has a ``parameters`` cell (typed defaults with a comment each, so
``papermill --help-notebook`` documents them) followed by a ``validate-parameters`` cell that
fails early with a clear message.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOK_SOURCES: dict[str, str] = {}  # name -> cell sources, filled in below


# Opened by hand, Jupyter starts the kernel in notebooks/; runs and data live at the repo root
# (papermill already runs there), so every notebook moves there before reading anything.
ROOT_PRELUDE = """import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
"""


def parse(text: str) -> list:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        body = "\n".join(lines).strip("\n")
        if kind is None or not body:
            return
        if kind == "md":
            cells.append(nbformat.v4.new_markdown_cell(body))
        else:
            if "validate-parameters" in tags:
                body = ROOT_PRELUDE + body
            cells.append(nbformat.v4.new_code_cell(body, metadata={"tags": tags} if tags else {}))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            head = line[4:].strip()
            kind, tags, lines = ("md" if head == "md" else "code"), [], []
            if head.startswith("tags="):
                tags = [t.strip() for t in head[5:].split(",") if t.strip()]
        else:
            lines.append(line)
    flush()
    return cells


def build(name: str, text: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(text)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids so rebuilding an unchanged notebook changes nothing
        cell["id"] = f"{name[:2]}-{i:02d}"
    nbformat.validate(nb)
    path = HERE / f"{name}.ipynb"
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path


# =========================================================================== notebook sources
NOTEBOOK_SOURCES["01_activation_functions"] = r'''
# %% md
# Activation functions and their derivatives

Every activation registered in `gradflow`, drawn with its derivative. The derivative comes from
autograd, the same numbers backpropagation multiplies into every gradient that flows through a
layer: where it is near 0 the layer *saturates* and gradients vanish, where it is exactly 0 over a
whole interval a unit can *die* (no gradient ever reaches its weights again).
# %% tags=parameters
activations: list = []  # activation names to draw; [] draws every registered activation
x_min: float = -5.0  # left end of the input range (pre-activation value)
x_max: float = 5.0  # right end of the input range
points: int = 1001  # samples on the input range
# %% tags=validate-parameters
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
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from gradflow import plots
from gradflow.activations import is_bounded

%matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole


def curves(name):
    x = torch.linspace(x_min, x_max, int(points), dtype=torch.float64, requires_grad=True)
    y = gradflow.get_activation(name)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise, so the gradient of the sum is f'(x)
    return pd.DataFrame({"activation": name, "x": x.detach().numpy(), "y": y.detach().numpy(), "dy": dy.numpy()})


table = pd.concat([curves(n) for n in names], ignore_index=True)
# %% md
## f(x) and f'(x)

Solid: the activation; dashed: its derivative; red band: inputs where the derivative is exactly 0.
All panels share the same axes, so slopes can be compared between panels.
# %%
fig = plots.plot_activations(table)
# %% md
## Properties at a glance

- **saturates** — the slope falls below 0.05 at the left or right end of the range: large
  pre-activations there pass (almost) no gradient back.
- **zero-centred** — the mean output for standard-normal inputs; far from 0 (sigmoid's 0.5) shifts
  every next layer's inputs to one sign, so all its weight gradients share a sign.
- **dead region** — the fraction of the range where the slope is exactly 0 (ReLU's negative half).
- **max slope** — above 1 the activation can amplify gradients, well below 1 it shrinks them layer after layer.
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
# %% md
Sigmoid is the odd one out: its slope is at most 0.25, so every sigmoid layer multiplies the
gradient by a quarter or less before it reaches the layer below, and its outputs are all positive.
That is why the deep sigmoid network in the next notebooks barely learns.
# %% md
## Environment
# %%
import platform
import sys

print(f"python {platform.python_version()} at {sys.executable}")
print(f"gradflow {gradflow.__version__}, torch {torch.__version__}")
'''

NOTEBOOK_SOURCES["02_gradients_at_init"] = r'''
# %% md
# Gradients at initialisation

A fresh `BaseNetwork` per activation, one batch of training images, one backward pass, no training.
This is the tutorial's `visualize_gradients`: if the weight gradients of the first layers are orders
of magnitude smaller than those of the last layer *before any training*, the first layers will barely
move — the vanishing-gradient problem, visible at step 0.
# %% tags=parameters
activations: list = []  # activation names; [] means the six activations of the tutorial
preset: str = "quick"  # run preset that decides data and network ('smoke': synthetic data, tiny net)
batch_size: int = 256  # images in the one batch the gradients come from
seed: int = 42  # seed of the fresh network's initialisation
dead_images: int = 10000  # training images used to call a unit dead (output 0 for all of them)
# %% tags=validate-parameters
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
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gradflow import plots
from gradflow.activations import is_bounded
from gradflow.data import load

%matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
data = load(config.dataset) if config.dataset != "synthetic" else load("synthetic", seed=config.split_seed)
print(f"data: {data.name} ({data.source}); network: {data.input_size} -> {list(config.hidden_sizes)} -> {data.num_classes}")
# %% md
One batch, the same images for every activation; each network starts from the same seed. Gradient
magnitudes are binned on one shared log scale (`log10 |dL/dW|`), so panels and activations compare
directly.
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
    for i, (pre, out) in outputs.items():
        h = histogram(out.flatten().numpy(), ACT_EDGES)
        h["layer"] = f"act {i + 1}"
        act_hist.append(h)
    with torch.no_grad():  # dead units over many images; saturation on the batch
        n = min(int(dead_images), len(data.train_y))
        alive = {}
        for i, m in enumerate(acts):
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
# %% md
## Weight-gradient magnitude per layer, every activation

The standard deviation of each layer's weight gradient. A line that climbs steeply from left (input)
to right (output) means the early layers receive a tiny fraction of the learning signal.
# %%
fig = plots.plot_layer_profile(grad_std, "grad_std", "std of dL/dW (log scale)",
                               f"Weight-gradient size per layer at initialisation ({data.name}, one batch of {batch_size})")
# %% md
## Per-layer weight-gradient histograms

One row of panels per activation, bins of `log10 |dL/dW|` shared by all panels.
# %%
for name in names:
    fig = plots.plot_layer_histograms(results[name][0], f"{name}: weight gradients at initialisation ({data.name})",
                                      "log10 |dL/dW| (per weight)", color=plots.colour(name))
    plt.show()
# %% md
## Per-layer activation histograms

What each hidden layer outputs on the batch. Piles at the ends of a bounded activation's range are
saturated units; a spike at exactly 0 for ReLU is units that are off for those inputs.
# %%
for name in names:
    fig = plots.plot_layer_histograms(results[name][1], f"{name}: hidden-layer outputs at initialisation ({data.name})",
                                      "activation output value", color=plots.colour(name), log_y=True)
    plt.show()
# %% md
## Dead and saturated units

*Dead*: output exactly 0 for every one of the first `dead_images` training images, so its incoming
weights never receive a gradient. *Saturated values*: for bounded activations, the share of
pre-activations where the slope is below 0.05.
# %%
units.pivot_table(index="layer", columns="activation", values="dead (%)", sort=False)
# %%
units.pivot_table(index="layer", columns="activation", values="saturated values (%)", sort=False)
# %% md
## Diagnosis
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
'''

NOTEBOOK_SOURCES["03_compare_activations"] = r'''
# %% md
# Comparing activations

One run per activation, each with several seeds (independent initialisations and data orders),
trained together or loaded from the run store when it already holds them. With several seeds we
can say which differences are real and which are noise — the tutorial used one seed and said so.
# %% tags=parameters
activations: list = []  # activation names; [] means the six activations of the tutorial
preset: str = "quick"  # run preset: tutorial (full recipe), quick (few epochs), smoke (synthetic, seconds)
seeds: list = []  # seeds per activation; [] means the seeds of the preset
max_epochs: int = 0  # most epochs per run; 0 means the epochs of the preset
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints
# %% tags=validate-parameters
import gradflow
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

%matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
runs = compare(names, preset=preset, seeds=list(seeds) or None, runs_dir=runs_dir or None, progress=False,
               max_epochs=max_epochs or None)
data_name = runs[0].config["data"]["name"]
label = f"preset {preset}, {data_name}, {len(runs[0].seeds)} seeds"
metrics = pd.concat([r.metrics.assign(activation=r.activation, run=r.name) for r in runs], ignore_index=True)
results = pd.concat([r.results.assign(activation=r.activation, run=r.name) for r in runs], ignore_index=True)
pd.DataFrame([r.summary() for r in runs])[["run", "activation", "seeds", "epochs_trained", "seconds_per_epoch", "device"]]
# %% md
## Learning curves

Mean validation accuracy over seeds with a 95 % confidence band. Solid: epochs before a seed's early
stop. **Dashed: the curve continued past the early-stopping point** — all models of a comparison
train in one batched step, so epochs after a seed stopped were still recorded (its reported test
accuracy uses its best epoch before the stop).
# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained")
plots.plot_learning_curves(metrics, "val_acc", ax=axes[0], title=f"Validation accuracy ({label})")
plots.plot_learning_curves(metrics, "train_loss", ax=axes[1], title=f"Training loss ({label})")
axes[0].set_ylim(0, 1)
plt.show()
# %% md
## Test accuracy: mean ± 95 % CI over seeds

Next to the tutorial's single-seed numbers (FashionMNIST, full recipe; the comparison is only
meaningful for the `tutorial` preset on FashionMNIST).
# %%
table = plots.accuracy_table(results, reference=TUTORIAL_TEST_ACCURACY)
display(table)
apart, overlap = plots.distinguishable(table)
fmt = lambda pairs, sep: "; ".join(f"{a} {sep} {b}" for a, b in pairs) or "none"
display(Markdown(
    f"**What {len(runs[0].seeds)} seeds can tell apart** (95 % intervals that do not overlap): {fmt(apart, '>')}.\n\n"
    f"**What they cannot** (intervals overlap, the ranking could flip with other seeds): {fmt(overlap, 'vs')}."))
# %% md
## Gradient flow over training

Per layer, how the distribution of weight-gradient magnitudes moves during training ("colorful
dimension": x = step, y = `log10 |gradient|` bin, colour = share of the layer's gradients in that
bin). One colour scale for every panel and activation.
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
# %% md
## Update:data ratios

How big each optimizer step is relative to the weights it changes: `std(lr·grad) / std(weight)` per
layer, log10, over training. About 1e-3 (dashed line) is the usual healthy size; far below, the layer
barely learns; far above, it is being rewritten every step.
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
# %% md
## Dead units before and after training

A unit is dead when, over the whole training split, it passes no gradient (derivative ≈ 0) or
carries no signal (output ≈ 0). The trainer counts them at initialisation and on the best weights;
runs without a recording are counted here on their first seed.
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
# %% md
## Findings per run
# %%
for r in runs:
    display(Markdown(f"**{r.activation}** (`{r.name}`)"))
    f = plots.findings_table(r.findings)
    display(f if len(f) else Markdown("no findings recorded for this run"))
'''

NOTEBOOK_SOURCES["04_one_run"] = r'''
# %% md
# One run, in depth

Everything the run store holds about one run: its configuration, every seed's learning curves, test
results, gradient flow over training (when recorded), dead units, and the diagnosis. Any model the
store holds works; by default the ReLU run of the preset's comparison.
# %% tags=parameters
run: str = ""  # run name in the store (see: gradflow runs); empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default run (used only when run is empty)
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints
# %% tags=validate-parameters
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

%matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
if not run:
    the_run = compare(["relu"], preset=preset, runs_dir=runs_dir or None, progress=False)[0]
cfg = the_run.config
label = f"{the_run.name}, {cfg['data']['name']}"
display(Markdown(f"**Run** `{the_run.name}` — activation **{the_run.activation}**, data **{cfg['data']['name']}**, "
                 f"seeds {the_run.seeds}, trained on {cfg.get('device')} ({cfg.get('created', '?')})"))
pd.Series({k: v for k, v in cfg["run"].items()}, name="setting").to_frame()
# %% md
## Learning curves, every seed

Solid up to each seed's early stop, dashed after it (the batch kept training; those epochs never
count for the test score). Dots mark the best validation epoch, whose weights were tested.
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
# %% md
## Gradient flow over training

Weight-gradient magnitudes per layer over training steps (one shared colour scale), then the
update:data ratio per layer with the 1e-3 guide line.
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
# %% md
## Snapshot: one batch through the network at initialisation and after training

Weight-gradient histograms (shared log bins) for the first seed, from a fresh network built the way
the trainer built it and from the best trained weights, on the same batch of training images.
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
# %% md
## Diagnosis

The findings stored with the run when it was trained, then the diagnosis re-run on the stored
recording and metrics with this version's rules.
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
'''

NOTEBOOK_SOURCES["05_two_runs"] = r'''
# %% md
# Two runs side by side

"The same network in two implementations behaves differently — where?" This notebook puts two runs
from the store next to each other: which settings differ, how their learning curves differ, and, layer
by layer, how differently their gradients are distributed (overlaid histograms on shared bins and the
total-variation distance per layer: 0 = identical, 1 = no overlap). Then which findings differ.
# %% tags=parameters
run_a: str = ""  # first run name; empty means the sigmoid run of the preset comparison
run_b: str = ""  # second run name; empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default runs (used only when a run name is empty)
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints
# %% tags=validate-parameters
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

%matplotlib inline
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
# %% md
## Learning curves

Mean over each run's seeds with 95 % confidence bands.
# %%
m = pd.concat([A.metrics.assign(run=labels[0]), B.metrics.assign(run=labels[1])], ignore_index=True)
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
plots.plot_learning_curves(m, "val_acc", group="run", ax=axes[0], title="Validation accuracy")
plots.plot_learning_curves(m, "train_loss", group="run", ax=axes[1], title="Training loss (nats)")
axes[0].set_ylim(0, 1)
plt.show()
pd.concat([A.results.assign(run=labels[0]), B.results.assign(run=labels[1])]).groupby("run")["test_acc"].describe()
# %% md
## Layer by layer: where the gradients differ

Both runs' first-seed networks, at initialisation and with trained weights, see the same batch.
Histograms share their bins; the title of each panel gives the distance between A and B.
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
# %% md
## Over training (when both runs were recorded)

Distance between A's and B's weight-gradient histograms at each recorded step both runs share.
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
# %% md
## Findings: what differs
# %%
def codes(run):
    return {(f.get("code"), f.get("layer")) for f in run.findings}
fa, fb = codes(A), codes(B)
display(Markdown(f"- only in A: {sorted(map(str, fa - fb)) or 'none'}\n- only in B: {sorted(map(str, fb - fa)) or 'none'}\n"
                 f"- in both: {sorted(map(str, fa & fb)) or 'none'}"))
'''

NOTEBOOK_SOURCES["06_case_studies"] = r'''
# %% md
# Case studies: five real bugs, reproduced and diagnosed

Each story comes from a question someone asked online (see `shared/seeds/`). For each: the
**symptom** the person saw, the **evidence** the recorder captures, the **finding**, and the **fix**,
with the fixed run beside the broken one. Runs trained with `gradflow.train` live in the run store and
are reused; the two stories that need a hand-written loop (a custom activation on raw pixels, an
autoencoder) wrap that loop in `gradflow.Recorder`, as a user debugging their own network would.
# %% tags=parameters
preset: str = "quick"  # run preset: tutorial (full recipe), quick (few epochs), smoke (synthetic, seconds)
train_subset: int = 10000  # training images per case study run; 0 means the whole training split
loop_steps: int = 60  # optimizer steps of the hand-written loops (stories 002 and 004)
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints
# %% tags=validate-parameters
from gradflow.config import PRESETS, make_config

if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
if int(train_subset) < 0:
    raise ValueError(f"train_subset must be 0 (all) or a positive number of images, got {train_subset}")
if int(loop_steps) < 1:
    raise ValueError(f"loop_steps must be at least 1, got {loop_steps}")
base = make_config("relu", preset)
subset = None if base.dataset == "synthetic" or int(train_subset) == 0 else int(train_subset)
if subset is not None and subset < base.batch_size:
    raise ValueError(f"train_subset must hold at least one batch ({base.batch_size} images), got {train_subset}")
# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

import gradflow
from gradflow import plots
from gradflow.data import load
from gradflow.record import Recorder
from gradflow.train import compare, train_runs

%matplotlib inline
plt.rcParams["figure.dpi"] = 90
pd.set_option("display.max_colwidth", 300)  # findings are sentences: show them whole
data = load("synthetic", seed=base.split_seed) if base.dataset == "synthetic" else load(base.dataset, split_seed=base.split_seed)
where = runs_dir or None
print(f"data: {data.name}; preset {preset}; {subset or len(data.train_y)} training images per case run")

try:  # the rule-based diagnosis, when this gradflow has it
    from gradflow.diagnose import diagnose
except ImportError:
    diagnose = None


def findings_of(source):
    """Findings of a recording or run, as a table (empty when the diagnosis is unavailable)."""
    if diagnose is None:
        return plots.findings_table(getattr(source, "findings", []))
    return plots.findings_table(diagnose(source))


def show_findings(source, title, snapshot=False):
    """snapshot: one recorded batch with no optimizer step, so there is no update to judge."""
    t = findings_of(source)
    if snapshot and len(t):
        t = t[t["code"] != "UPDATE_RATIO"].reset_index(drop=True)
    display(Markdown(f"**Findings, {title}:**"))
    display(t if len(t) else Markdown("none"))


def curves(runs_by_label, metric, title, ax):
    m = pd.concat([r.metrics.assign(case=lab) for lab, r in runs_by_label.items()], ignore_index=True)
    plots.plot_learning_curves(m, metric, group="case", ax=ax, title=title)
# %% md
## 000 — tanh on the logits before cross-entropy

**Symptom.** "My tanh network is 90 % accurate in PyTorch but stuck near 10 % in Keras." The Keras
model ends with `Dense(10)` *followed by tanh*, then cross-entropy. Cross-entropy wants unbounded
logits; squashed into [-1, 1], the best possible softmax probability for the right class is
e / (e + 9/e) ≈ 0.45, so the loss can never go below about 0.80 nats and its gradient never fades.
# %%
# Trained one after the other: an extra layer on the output cannot share a batched step.
broken = train_runs([make_config("relu", preset, train_subset=subset, output_act="tanh")], runs_dir=where, progress=False)[0]
fixed = train_runs([make_config("relu", preset, train_subset=subset)], runs_dir=where, progress=False)[0]
floor = -math.log(math.e / (math.e + (data.num_classes - 1) / math.e))
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
curves({"broken: tanh on logits": broken, "fixed: plain logits": fixed}, "train_loss", "Training loss (nats)", axes[0])
axes[0].axhline(floor, color="k", ls=":", label=f"floor with logits in [-1, 1]: {floor:.2f}")
axes[0].legend(fontsize=8)
curves({"broken: tanh on logits": broken, "fixed: plain logits": fixed}, "val_acc", "Validation accuracy", axes[1])
axes[1].set_ylim(0, 1)
plt.show()
# %% md
**Evidence.** One recorded batch through each trained network: the range of the logits the loss sees.
# %%
def one_batch(net, x, y, loss_fn=F.cross_entropy):
    with Recorder(net, schedule="all") as rec:
        net.train()
        loss = loss_fn(net(x), y)
        loss.backward()
        rec.step(loss=loss)
    return rec


x, y = data.train_x[:256], data.train_y[:256]
rows = []
for name, run in (("broken", broken), ("fixed", fixed)):
    rec = one_batch(run.model(run.seeds[0]), x, y)
    sc = rec.tables()["scalars"]
    out = sc[sc["layer"] == "<output>"].set_index("quantity")["value"]
    rows.append({"case": name, "logit min": out.get("output_min"), "logit max": out.get("output_max"),
                 "test acc (%)": round(100 * run.results["test_acc"].mean(), 2)})
    show_findings(rec, name, snapshot=True)
display(pd.DataFrame(rows).set_index("case").round(3))
display(Markdown("**Finding.** The logits are confined to [-1, 1] by a bounded activation on the output layer. "
                 "**Fix:** feed cross-entropy the raw output of the last `Linear` (the fixed run)."))
# %% md
## 001 — dropout: probability of dropping or of keeping?

**Symptom.** "The same MLP in TensorFlow and in Keras, identical everything, yet Keras is 2 % worse."
Both used `dropout_prob = 0.7`: TensorFlow's `tf.nn.dropout(x, keep_prob)` *keeps* 70 % of the units,
Keras's `Dropout(rate)` (like PyTorch's `nn.Dropout(p)`) *drops* 70 %. Same number, opposite meaning.
# %%
# Both configs share layer shapes, so they train together in one batched step (or load if cached).
drop_runs = train_runs([make_config("relu", preset, train_subset=subset, dropout=p) for p in (0.7, 0.3)],
                       runs_dir=where, progress=False)
pair = {"drops 70 % (Keras reading)": drop_runs[0], "keeps 70 % (TensorFlow reading)": drop_runs[1]}
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
curves(pair, "val_acc", "Validation accuracy", axes[0])
curves(pair, "train_loss", "Training loss (nats)", axes[1])
plt.show()
# %% md
**Evidence.** The fraction of hidden units zeroed in a training-mode forward pass, measured on each
network, and the weight-gradient histograms of the two runs overlaid per layer (same batch, shared bins).
# %%
zeroed, hists = [], []
for label, run in pair.items():
    net = run.model(run.seeds[0]).train()
    fractions = []
    # units the dropout layer zeroed among those that reached it non-zero (ReLU zeros are not dropout's)
    hooks = [m.register_forward_hook(lambda mod, i, o: fractions.append(float(((o == 0) & (i[0] != 0)).sum() / (i[0] != 0).sum())))
             for m in net.modules() if isinstance(m, nn.Dropout)]
    rec = one_batch(net, x, y)
    for h in hooks:
        h.remove()
    zeroed.append({"run": label, "configured p": run.config["run"]["dropout"],
                   "units zeroed in training (%)": round(100 * np.mean(fractions), 1),
                   "test acc (%)": round(100 * run.results["test_acc"].mean(), 2)})
    hists.append(plots.recorded_histograms(rec.tables()["histograms"], np.asarray(rec.summary()["histogram_edges"]["grad_log10"])))
display(pd.DataFrame(zeroed).set_index("run"))
plots.plot_overlay(hists[0], hists[1], tuple(pair), "Weight gradients per layer, one batch", "log10 |dL/dW|")
plt.show()
display(Markdown("**Finding.** One network drops 70 % of its units, the other 30 %: the recorder sees the "
                 "dropout modules' `p` and the zeroed fraction. **Fix:** translate keep-probabilities "
                 "(`p = 1 - keep_prob`) when porting between frameworks."))
# %% md
## 002 — a hand-written ELU, raw 0–255 pixels, and NaN

**Symptom.** "With the built-in ELU the network learns; with my own ELU, `where(x > 0, x, exp(x) - 1)`,
the loss goes to nothing and accuracy never improves." The inputs were raw pixel values 0–255.
Pre-activations beyond 88 make `exp(x)` overflow to inf in float32; `where` hides it in the forward
pass, but backward multiplies the zero gradient of the unused branch by inf: 0 · inf = NaN, and
the NaN spreads to every weight.
# %%
@gradflow.register_activation("naive_elu", overwrite=True)
def naive_elu(x):
    return torch.where(x > 0, x, torch.exp(x) - 1)  # exp evaluated everywhere, also where x > 88


def elu_loop(inputs, steps, act="naive_elu"):
    torch.manual_seed(0)
    net = gradflow.BaseNetwork(act, input_size=inputs.shape[1], num_classes=data.num_classes, hidden_sizes=[128] * 8)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    losses = []
    # Every 10th step in full; the recorder still checks every step for NaN/inf (cheaply).
    with Recorder(net, every=10) as rec:
        for s in range(steps):
            i = (s * 64) % (len(inputs) - 64)
            loss = F.cross_entropy(net(inputs[i:i + 64]), data.train_y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss)
            losses.append(float(loss.detach()))
    return rec, losses


pixels01 = (data.train_x[:20000] + 1) / 2  # back to [0, 1]
raw = pixels01 * 255  # what the question fed the network
rec_raw, loss_raw = elu_loop(raw, int(loop_steps))
rec_fix, loss_fix = elu_loop(pixels01, int(loop_steps))
fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
ax.plot(loss_raw, label="broken: raw 0–255 inputs", color="C3")
ax.plot(loss_fix, label="fixed: inputs scaled to [0, 1]", color="C2")
nan_steps = [i for i, v in enumerate(loss_raw) if not math.isfinite(v)]
if nan_steps:
    ax.axvline(nan_steps[0], color="C3", ls=":", label=f"loss is NaN from step {nan_steps[0]}")
ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats)", title="Hand-written ELU, 8 x 128 MLP (NaN is not drawn)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()
# %% md
**Evidence.** The recorder's first non-finite values, in forward order — where the NaN started — and
the input range it saw.
# %%
nf = rec_raw.tables()["nonfinite"]
display(nf.head(8) if len(nf) else Markdown("no non-finite values recorded"))
sc = rec_raw.tables()["scalars"]
inp = sc[(sc["layer"] == "<input>") & (sc["step"] == 0)].set_index("quantity")["value"]
display(Markdown(f"Input range at step 0: {inp.get('input_min', float('nan')):.0f} to {inp.get('input_max', float('nan')):.0f}."))
show_findings(rec_raw, "raw inputs")
show_findings(rec_fix, "scaled inputs")
display(Markdown("**Finding.** Non-finite gradients appear first in the hand-written activation's backward "
                 "pass, on unnormalised inputs. **Fix:** normalise the inputs (as here), or evaluate `exp` "
                 "only where it is needed: `torch.exp(torch.clamp(x, max=0)) - 1`."))
# %% md
## 003 — sigmoid networks that stop learning

**Symptom.** In the tutorial the sigmoid network stays at 10 % (chance) while every other activation
reaches 87–89 %. Sigmoid's slope is at most 0.25 and its outputs are all positive, so each layer
shrinks the gradient on its way back: the first layers receive almost nothing.
# %%
sig, relu = compare(["sigmoid", "relu"], preset=preset, runs_dir=where, progress=False)
fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
curves({"broken: sigmoid": sig, "fixed: relu": relu}, "val_acc", "Validation accuracy (the comparison runs)", ax)
ax.set_ylim(0, 1)
plt.show()
rows = []
for name, run in (("sigmoid", sig), ("relu", relu)):
    torch.manual_seed(run.seeds[0])
    rec = one_batch(gradflow.BaseNetwork.from_config(run.config["model"]), x, y)
    sc = rec.tables()["scalars"]
    g = sc[sc["quantity"] == "grad_std"][["layer", "value"]].assign(activation=name)
    rows.append(g)
    show_findings(rec, f"{name} at initialisation", snapshot=True)
gs = pd.concat(rows)
plots.plot_layer_profile(gs, "value", "std of dL/dW (log scale)", "Weight-gradient size per layer at initialisation")
plt.show()
display(Markdown("**Finding.** Vanishing gradients from sigmoid saturation: the input layer's gradients are "
                 "orders of magnitude below the output layer's. **Fix:** a non-saturating activation (ReLU "
                 "family), or normalisation between layers; with more patience than 7 epochs the sigmoid "
                 "network does eventually start to learn."))
# %% md
## 004 — an autoencoder that scores 100 % and reconstructs nothing

**Symptom.** An MLP autoencoder with a sigmoid output reports `accuracy: 1.0000` from the first
epoch, and its reconstructions look perfect — yet the numbers are wrong. Two things lie: Keras's
`"accuracy"` on a sigmoid output is *binary* accuracy (prediction > 0.5 equals target > 0.5), and
`imshow` stretches whatever range an image has to full black-to-white.

The minimal reproduction from the story: an identity `Linear` (no bias) followed by sigmoid, on
black-and-white images. Every 0 pixel comes out as 0.5 and every 1 as 0.73 — all wrong, all "accurate".
# %%
images = (pixels01[:2000] > 0.5).float()  # black-and-white pictures, like the story's line drawings


def binary_accuracy(pred, target):
    return float(((pred > 0.5) == (target > 0.5)).float().mean())


identity = nn.Linear(784, 784, bias=False)
with torch.no_grad():
    identity.weight.copy_(torch.eye(784))
ae_broken = nn.Sequential(identity, nn.Sigmoid())
with torch.no_grad():
    out = ae_broken(images)
display(pd.DataFrame([{"model": "identity + sigmoid", "binary accuracy": binary_accuracy(out, images),
                       "mean squared error": float(F.mse_loss(out, images)),
                       "largest pixel error": float((out - images).abs().max())}]).set_index("model"))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
for ax, (img, title, kw) in zip(axes, ((images[0], "target", dict(vmin=0, vmax=1)),
                                         (out[0], "output, imshow default (auto-scaled)", {}),
                                         (out[0], "output, vmin=0, vmax=1 (fixed)", dict(vmin=0, vmax=1)))):
    im = ax.imshow(img.reshape(28, 28), cmap="gray", **kw)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.8, label="pixel value")
fig.suptitle("The same output drawn twice: auto-scaling makes 0.5 black and 0.73 white")
plt.show()
# %% md
**Training it.** Both autoencoders (784 → 128 → 784, Adam) trained the same number of steps on the
same images: the broken one with a sigmoid output, the fixed one with a linear output. Binary
accuracy (what Keras called "accuracy") and mean squared error are tracked side by side on 500 images.
# %%
def ae_loop(output_act, steps):
    torch.manual_seed(0)
    layers = [nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 784)] + ([output_act] if output_act else [])
    net = nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    hist = []
    with Recorder(net, every=25) as rec:
        for s in range(steps):
            i = (s * 64) % (len(images) - 64)
            batch = images[i:i + 64]
            pred = net(batch)
            loss = F.mse_loss(pred, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss)
            with torch.no_grad():
                p = net(images[:500])
            hist.append({"step": s, "mse": float(F.mse_loss(p, images[:500])), "binary accuracy": binary_accuracy(p, images[:500])})
    return net, rec, pd.DataFrame(hist)


net_b, rec_b, h_b = ae_loop(nn.Sigmoid(), 4 * int(loop_steps))
net_f, rec_f, h_f = ae_loop(None, 4 * int(loop_steps))
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), layout="constrained")
for h, lab, c in ((h_b, "broken: sigmoid output", "C3"), (h_f, "fixed: linear output", "C2")):
    axes[0].plot(h["step"], h["binary accuracy"], color=c, label=lab)
    axes[1].plot(h["step"], h["mse"], color=c, label=lab)
axes[0].set(title="Binary 'accuracy' (what Keras reported)", xlabel="step", ylabel="fraction of pixels", ylim=(0, 1.02))
axes[1].set(title="Mean squared error (what matters)", xlabel="step", ylabel="MSE (pixel units²)", yscale="log")
for ax in axes:
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
plt.show()
with torch.no_grad():
    rb, rf = net_b(images[:4]), net_f(images[:4])
fig, axes = plt.subplots(3, 4, figsize=(8, 6.4), layout="constrained")
for j in range(4):
    for i, (img, lab) in enumerate(((images[j], "target"), (rb[j], "sigmoid output"), (rf[j], "linear output"))):
        axes[i, j].imshow(img.reshape(28, 28), cmap="gray", vmin=0, vmax=1)  # one fixed scale for every panel
        axes[i, j].set_title(lab, fontsize=8)
        axes[i, j].axis("off")
fig.suptitle(f"Reconstructions after {4 * int(loop_steps)} steps, all drawn with vmin=0, vmax=1")
plt.show()
end_b, end_f = h_b.iloc[-1], h_f.iloc[-1]
display(Markdown(f"After {len(h_b)} steps: sigmoid output — binary accuracy {end_b['binary accuracy']:.3f}, "
                 f"MSE {end_b['mse']:.4f}; linear output — binary accuracy {end_f['binary accuracy']:.3f}, "
                 f"MSE {end_f['mse']:.4f}. Binary accuracy only asks which side of 0.5 a pixel is on; "
                 "the MSE says how far it is from its target."))
show_findings(rec_b, "sigmoid-output autoencoder")
show_findings(rec_f, "linear-output autoencoder")
display(Markdown("**Finding.** The metric and the picture were both misleading: binary accuracy ignores how far "
                 "each pixel is from its target, and `imshow` auto-scales. **Fix:** measure reconstruction "
                 "error (MSE) and always draw images with a fixed `vmin`/`vmax`."))
'''

#@@SOURCES@@

def main() -> None:
    for name, text in NOTEBOOK_SOURCES.items():
        print("wrote", build(name, text))


if __name__ == "__main__":
    main()
