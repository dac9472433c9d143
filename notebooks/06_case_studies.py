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
# # Case studies: real bugs, reproduced and diagnosed
#
# Each case starts from a question someone asked online (or a blog post about a debugging session),
# credited by what it is and its title (the sources are listed at the end). For each one you get the
# **symptom** the person saw, the **evidence**
# the stored runs hold, the **finding** gradflow's diagnosis reports, and the **fix** — with the broken run
# and the fixed run drawn side by side.
#
# The runs were trained beforehand by `gradflow train --case-studies` and stored like every other run;
# this page only reads them. The case numbers are fixed (the runs are stored under them), so one is skipped:
# case 003, the sigmoid network that "does not learn" (the blog post this tutorial itself is built on), is
# told on the *Compare activations* and *Two runs* pages, with the comparison's runs.
#
# **Predict, then look.** Before each figure, guess which run's headline number misleads (a run at
# chance, one a few points worse, a NaN loss, a perfect score), and which number would have warned you.
# Each case's answers are folded away under its figure.
#
# > **After this page you can**
# >
# > - tell a broken model from a broken loss (000: it takes tanh outputs for probabilities) or a broken metric
# >   (004: it counts pixels on the right side of 0.5);
# > - translate a dropout probability between frameworks: PyTorch's and Keras' p drops, TensorFlow 1's
# >   keep_prob keeps;
# > - explain why a hand-written function can give the same values as a built-in one and still turn its
# >   gradients NaN (0 · inf in the backward pass), and why raw 0–255 pixels still blow up its fixed version;
# > - read a diagnosis table (finding, layers, seeds) and check each finding against the curves.

# %% tags=["parameters"]
preset: str = "quick"  # which stored case-study runs to show: tutorial, quick (FashionMNIST subsets) or smoke
runs_dir: str = ""  # run store directory; empty means $GRADFLOW_RUNS or checkpoints

# %% tags=["validate-parameters"]
import os
from pathlib import Path

if Path.cwd().name == "notebooks" and (Path.cwd().parent / "pyproject.toml").is_file():
    os.chdir(Path.cwd().parent)  # checkpoints/ is found from the repository root
from gradflow.case_studies import CASE_PRESETS

if preset not in CASE_PRESETS:
    raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(CASE_PRESETS)}")

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display
from matplotlib.colors import to_hex

from gradflow import case_elu as ce
from gradflow import case_findings as cf
from gradflow import case_narrate as cn
from gradflow import notebook_helpers as nh
from gradflow.case_answers import case_answers
from gradflow.case_credits import sources_markdown
from gradflow.case_glossary import case_glossary
from gradflow.case_plots import copy_net_images, curves, keras_outputs, label_of
from gradflow.case_studies import case_callout, case_fix, case_intro, load_case_studies
from gradflow.narrate_pages import answers
from gradflow.style import PAGE_WIDTH_IN, READABLE_PT, ROLE_STYLES

# %matplotlib inline
plt.rcParams["figure.dpi"] = 90
nh.describe_figures()  # alt text for every figure
cases = load_case_studies(preset, runs_dir or None)
display(HTML(case_callout(preset)))
hexes = {role: to_hex(ROLE_STYLES[role]["color"]) for role in ("broken", "fixed", "run B")}
display(Markdown(
    f"**Colours keep their meaning on this page:** the broken run is always <span style=\"color:{hexes['broken']}\">"
    f"**vermillion, dashed, ×**</span>; a fixed run always <span style=\"color:{hexes['fixed']}\">**blue, solid, "
    f"●**</span> (a second fix: blue, dash-dot, ■); in case 000 the question's own PyTorch model is "
    f"<span style=\"color:{hexes['run B']}\">**brown**</span>. In case 004 the vermillion line is the copy-net, whose "
    "100 % is the number that misled: there the metric is broken, not the model."))
display(Markdown(
    "**What was trained.** Each case's runs train for a fixed number of epochs, without early stopping (the "
    "last epoch's weights are tested). The question's own setups are kept where they matter (network shape, "
    "optimizer, batch size); where a question used MNIST or its own images, FashionMNIST stands in."))

def show_table(df, caption=None):
    if caption:
        display(Markdown(caption))
    if not df.empty:
        display(HTML(df.style.hide(axis="index").set_properties(**{"text-align": "left"})
                     .set_table_styles([{"selector": "th", "props": "text-align: left"}]).to_html()))


def show_findings(case_id):
    """Each run's findings, grouped across seeds, with layers named as on every page."""
    for key, run in cases[case_id].items():
        t = cf.findings_table(run)
        show_table(t, f"**Findings, {label_of(case_id, key)}:**" + ("" if len(t) else " none."))


def conclude(case_id, note=None, then=None):
    """A case's ending: its findings, (a note on them,) what the runs show, (more, from ``then()``,) the fix."""
    show_findings(case_id)
    if note:
        display(Markdown(note))
    display(Markdown(cn.what_this_shows(case_id, cases[case_id])))
    if then is not None:
        then()
    display(Markdown(case_fix(case_id)))


def check_predictions(case_id):
    """The page's prompt answered for one case, from its runs, folded away until clicked."""
    display(Markdown(answers(case_answers(case_id, cases[case_id]))))


# %% [markdown]
# ## 000 — tanh at the output: one network, two losses

# %%
display(Markdown(case_intro("000")))

# %% [markdown]
# To reproduce it, one network — the question's PyTorch model, 784 → 128 → 64 → 10 with tanh after every
# layer, **the output included** — is trained three times from the same initial weights, changing only the
# loss: Keras' `categorical_crossentropy` as Keras computes it (outputs divided by their sum, clipped to
# [1e-7, 1 − 1e-7], then −Σ y·log p), PyTorch's `cross_entropy` on the same tanh outputs, and the fix.

# %%
fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH_IN - 0.3, 4), layout="constrained")  # its labels reach past the frame
curves(cases["000"], "000", "val_acc", axes[0], "Validation accuracy", "share of images right", chance=0.1, ylim=(0, 1))
axes[0].legend(fontsize=READABLE_PT, loc="center right")
keras_outputs(cases["000"]["keras"], axes[1], axes[2])
plt.show()
check_predictions("000")

# %% [markdown]
# **Evidence and finding.** The diagnosis reads the recorded loss graph and output range of each run.

# %%
conclude("000")

# %% [markdown]
# ## 001 — dropout: the probability of dropping, or of keeping?

# %%
display(Markdown(case_intro("001")))

# %% [markdown]
# The question's network (four ReLU layers of 256 units, each followed by dropout, Adam 1e-3, batch 100)
# trained with `p = 0.7`, the keep-probability carried over unchanged, and with `p = 0.3`, what was meant.
# Both train together in the project's batched trainer.

# %%
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4), layout="constrained")
curves(cases["001"], "001", "val_acc", axes[0], "Validation accuracy (dropout off)", "share of images right", chance=0.1,
       ylim=(0, 1))
curves(cases["001"], "001", "train_acc", axes[1], "Training accuracy (dropout on)", "share of images right", chance=0.1,
       ylim=(0, 1))
axes[0].legend(fontsize=READABLE_PT, loc="center right")  # above the chance line and its label, below the curves
plt.show()
check_predictions("001")

# %% [markdown]
# **Evidence and finding.** The recorder sees every dropout module's `p`; the diagnosis flags any above 0.5.

# %%
conclude("001")

# %% [markdown]
# ## 002 — a hand-written ELU, raw 0–255 pixels, and NaN

# %%
display(Markdown(case_intro("002")))

# %% [markdown]
# The question's network: 8 fully connected layers of 128 units with the hand-written ELU, Keras' default
# initialisation (Glorot uniform), SGD with learning rate 0.01, batch 64. (Its last layer also had a sigmoid
# feeding `categorical_crossentropy`, a separate problem; the first three runs leave it out so that one thing
# changes at a time.) Four runs: the broken one on raw 0–255 pixels; **both** fixes from the answer (fix 1
# divides the pixels by 255, fix 2 keeps the raw 0–255 pixels and clamps the argument of `exp`); and the
# question's own working model, the built-in ELU with its sigmoid output and Keras' loss, on raw pixels,
# which the question says "learns a little" (see *Why did the question's built-in ELU learn* at the end).
#
# **Three ELUs, side by side.** The hand-written ELU, fix 2 and PyTorch's built-in `F.elu`, evaluated here
# (not read from the runs) at a few inputs x: each one's value, and its slope dy/dx as autograd computes it
# in the backward pass.

# %%
elus = ce.elu_values()
show_table(ce.elu_table(elus))
display(Markdown(ce.elu_reading(elus) + " " + ce.raw_sizes(cases["002"]["raw"])))

# %%
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.6), layout="constrained")
curves(cases["002"], "002", "val_acc", axes[0], "Validation accuracy", "share of images right", chance=0.1, ylim=(0, 1))
curves(cases["002"], "002", "train_loss", axes[1], "Training loss (mean over each epoch)", "cross-entropy (nats)")
axes[1].set_ylim(bottom=0)
# four runs: a legend inside a panel would cover the fixes' lines; below both panels it covers nothing
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=READABLE_PT)
plt.show()
check_predictions("002")

# %% [markdown]
# **Evidence.** Where the first NaN appeared, and the input range each run saw, from the stored recordings.
# "First" reads the layers in forward order, input to output; the text below the findings says where the
# NaN was created.

# %%
rows = []
for key, run in cases["002"].items():
    nf = cn.first_nonfinite(run)
    sc = run.recordings.tables()["scalars"]
    inp = sc[(sc["layer"] == "<input>") & (sc["step"] == 0)].groupby("quantity")["value"]  # over every seed
    rows.append({"run": label_of("002", key),
                 "input range at step 0": f"{inp.min()['input_min']:.0f} to {inp.max()['input_max']:.0f}",
                 "first NaN/inf (forward order)": "none" if nf is None else
                 f"step {nf['step']}, {cn.layer_label(run.config, nf['layer'])}"})
show_table(pd.DataFrame(rows))


def builtin_elu():
    """Fix 2 is the built-in ELU: why it can still end in NaN here, and why the question's built-in ELU learned."""
    display(Markdown(ce.builtin_story(cases["002"])))
    show_table(ce.growth_table(cases["002"]), "**The first steps, fix 2 against fix 1 and the question's model:** "
               "the weight gradient of "
               "Linear 1 in multiples of the spread (std) of its weights, per seed, at the first recorded steps "
               "(NaN: from that seed's first NaN on).")
    display(Markdown(ce.question_note(cases["002"])))


conclude("002", then=builtin_elu)

# %% [markdown]
# ## 004 — a copy-net that scores 100 % while its outputs are far from its inputs

# %%
display(Markdown(case_intro("004")))

# %% [markdown]
# The blog's images were black-and-white line drawings, so here the FashionMNIST images are made
# black-and-white (pixels above 0.5 become 1, the rest 0). Two models, both ending in a sigmoid — the
# right choice for targets in [0, 1] — both trained with mean squared error and Adam: the blog's
# "copy-net" (one layer with identity weights and no bias, then sigmoid: every black pixel comes out as
# sigmoid(0) = 0.5, every white one as sigmoid(1) = 0.73), and an autoencoder in the shape of the keras.io
# example the blog started from (one hidden ReLU layer), with a 128-unit bottleneck for these 784-pixel images
# (keras.io: 32; the blog: a tenth of its 4,096 pixels).

# %%
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4), layout="constrained")
curves(cases["004"], "004", "val_binary_acc", axes[0], "Binary accuracy (what Keras reported as \"accuracy\")",
       "share of pixels on the right side of 0.5", ylim=(0, 1.02))
curves(cases["004"], "004", "val_loss", axes[1], "Mean squared error (what matters)", "mean squared error (pixels on a 0–1 scale)")
axes[1].set_ylim(bottom=0)
axes[0].legend(fontsize=READABLE_PT, loc="lower right")
plt.show()

# %% [markdown]
# **Evidence: the same outputs, drawn twice.** Top: four test targets. Then the untrained copy-net's
# outputs (binary accuracy 100 %) as `imshow` draws them by default — stretched to the darkest and brightest
# value of each picture, so 0.5 looks black and 0.73 white — and the same outputs on a fixed 0–1 scale, where
# they are grey. Last, both models after training, on the fixed scale.

# %%
copy_net_images(cases["004"]["copy"], cases["004"]["autoencoder"])
plt.show()
check_predictions("004")

# %%
conclude("004", "The diagnosis raises no warning here, and rightly: a sigmoid output with mean squared error "
                 "on [0, 1] targets is sound, gradients flow, nothing is NaN. Given the targets (`rec.step(loss, "
                 "targets=...)`), it adds a note (*info*) on how to read such a model: its 'accuracy' is binary "
                 "accuracy and `imshow` rescales each image. The bug is in how the result was *measured*, which no "
                 "gradient statistic can see.")

# %% [markdown]
# ## Conclusion
#
# None of these bugs crashes. Three showed up, to the person who hit them, as a number that looks plausible
# (10 %, 2 % worse, 100 % accuracy); the fourth as a loss that "approaches zero", which the answer traced to
# NaN weights. Each cause sits one layer below: what a loss takes its inputs to mean, what a framework's
# parameter means, what `exp` does to a large number, what a metric actually counts.

# %%
show_table(cf.summary_table(cases), "**The four cases at a glance** (test accuracy; 004 on the validation "
           "images, first in the binary accuracy that misled, then in the error that does not):")

# %% [markdown]
# ## Glossary

# %%
findings_text = " ".join(cf.findings_table(run).to_string() for runs in cases.values() for run in runs.values())
display(Markdown(case_glossary(findings_text)))

# %% [markdown]
# ## Sources

# %%
display(Markdown(sources_markdown()))
