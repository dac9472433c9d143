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
# # Case studies: five real bugs, reproduced and diagnosed
#
# Each story comes from a question someone asked online (see `shared/seeds/`). For each: the
# **symptom** the person saw, the **evidence** the recorder captures, the **finding**, and the **fix**,
# with the fixed run beside the broken one. Runs trained with `gradflow.train` live in the run store and
# are reused; the two stories that need a hand-written loop (a custom activation on raw pixels, an
# autoencoder) wrap that loop in `gradflow.Recorder`, as a user debugging their own network would.

# %% tags=["parameters"]
preset: str = "quick"  # run preset: tutorial (full recipe), quick (few epochs), smoke (synthetic, seconds)
train_subset: int = 10000  # training images per case study run; 0 means the whole training split
loop_steps: int = 60  # optimizer steps of the hand-written loops (stories 002 and 004)
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ and data/ are found from the repo root
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

# %matplotlib inline
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


# %% [markdown]
# ## 000 — tanh on the logits before cross-entropy
#
# **Symptom.** "My tanh network is 90 % accurate in PyTorch but stuck near 10 % in Keras." The Keras
# model ends with `Dense(10)` *followed by tanh*, then cross-entropy. Cross-entropy wants unbounded
# logits; squashed into [-1, 1], the best possible softmax probability for the right class is
# e / (e + 9/e) ≈ 0.45, so the loss can never go below about 0.80 nats and its gradient never fades.

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


# %% [markdown]
# **Evidence.** One recorded batch through each trained network: the range of the logits the loss sees.

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

# %% [markdown]
# ## 001 — dropout: probability of dropping or of keeping?
#
# **Symptom.** "The same MLP in TensorFlow and in Keras, identical everything, yet Keras is 2 % worse."
# Both used `dropout_prob = 0.7`: TensorFlow's `tf.nn.dropout(x, keep_prob)` *keeps* 70 % of the units,
# Keras's `Dropout(rate)` (like PyTorch's `nn.Dropout(p)`) *drops* 70 %. Same number, opposite meaning.

# %%
# Both configs share layer shapes, so they train together in one batched step (or load if cached).
drop_runs = train_runs([make_config("relu", preset, train_subset=subset, dropout=p) for p in (0.7, 0.3)],
                       runs_dir=where, progress=False)
pair = {"drops 70 % (Keras reading)": drop_runs[0], "keeps 70 % (TensorFlow reading)": drop_runs[1]}
fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
curves(pair, "val_acc", "Validation accuracy", axes[0])
curves(pair, "train_loss", "Training loss (nats)", axes[1])
plt.show()

# %% [markdown]
# **Evidence.** The fraction of hidden units zeroed in a training-mode forward pass, measured on each
# network, and the weight-gradient histograms of the two runs overlaid per layer (same batch, shared bins).

# %%
zeroed, hists = [], []
for label, run in pair.items():
    net = run.model(run.seeds[0]).train()
    fractions = []
    # units the dropout layer zeroed among those that reached it non-zero (ReLU zeros are not dropout's)
    hooks = [m.register_forward_hook(lambda mod, i, o, fractions=fractions: fractions.append(float(((o == 0) & (i[0] != 0)).sum() / (i[0] != 0).sum())))
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


# %% [markdown]
# ## 002 — a hand-written ELU, raw 0–255 pixels, and NaN
#
# **Symptom.** "With the built-in ELU the network learns; with my own ELU, `where(x > 0, x, exp(x) - 1)`,
# the loss goes to nothing and accuracy never improves." The inputs were raw pixel values 0–255.
# Pre-activations beyond 88 make `exp(x)` overflow to inf in float32; `where` hides it in the forward
# pass, but backward multiplies the zero gradient of the unused branch by inf: 0 · inf = NaN, and
# the NaN spreads to every weight.

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

# %% [markdown]
# **Evidence.** The recorder's first non-finite values, in forward order — where the NaN started — and
# the input range it saw.

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

# %% [markdown]
# ## 003 — sigmoid networks that stop learning
#
# **Symptom.** In the tutorial the sigmoid network stays at 10 % (chance) while every other activation
# reaches 87–89 %. Sigmoid's slope is at most 0.25 and its outputs are all positive, so each layer
# shrinks the gradient on its way back: the first layers receive almost nothing.

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

# %% [markdown]
# ## 004 — an autoencoder that scores 100 % and reconstructs nothing
#
# **Symptom.** An MLP autoencoder with a sigmoid output reports `accuracy: 1.0000` from the first
# epoch, and its reconstructions look perfect — yet the numbers are wrong. Two things lie: Keras's
# `"accuracy"` on a sigmoid output is *binary* accuracy (prediction > 0.5 equals target > 0.5), and
# `imshow` stretches whatever range an image has to full black-to-white.
#
# The minimal reproduction from the story: an identity `Linear` (no bias) followed by sigmoid, on
# black-and-white images. Every 0 pixel comes out as 0.5 and every 1 as 0.73 — all wrong, all "accurate".

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


# %% [markdown]
# **Training it.** Both autoencoders (784 → 128 → 784, Adam) trained the same number of steps on the
# same images: the broken one with a sigmoid output, the fixed one with a linear output. Binary
# accuracy (what Keras called "accuracy") and mean squared error are tracked side by side on 500 images.

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
