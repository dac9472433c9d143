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
# # 3. Comparing activations: training
#
# One network per activation, each trained from several seeds (independent initialisations and data
# orders) by `gradflow train`; this page reads the stored runs and trains nothing. It follows the
# tutorial's comparison and adds what the tutorial could not show with one seed and no recorder:
# confidence intervals, and what happens inside each layer while the networks train.
#
# > **After this page you can**
# >
# > - compare activations over several seeds and say which differences are more than luck (95 % intervals; page 7
# >   shows changes the seeds do tell apart);
# > - recognise a network stuck at chance from its loss (ln 10 nats) and its accuracy (10 %), and ask whether it
# >   cannot learn or was stopped too early;
# > - connect a learning curve to what happens inside the layers: gradient flow, update:data ratio, dead units.

# %% tags=["parameters"]
activations: list = []  # activation names, e.g. relu,tanh; empty means the six of the tutorial
preset: str = "quick"  # run preset: tutorial (full recipe), quick (4 epochs preview), smoke (synthetic, seconds)
seeds: list = []  # seeds per activation, e.g. 42,43,44; empty means the seeds of the preset
max_epochs: int = 0  # most epochs per run; 0 means the epochs of the preset
runs_dir: str = ""  # run store directory; empty means GRADFLOW_RUNS or checkpoints
interactive: bool = True  # offer ipywidgets controls when run live in Jupyter (rendered reports stay static)

# %% tags=["validate-parameters"]
from gradflow import notebook_helpers as nh
from gradflow.activations import check_activations
from gradflow.config import TUTORIAL_ACTIVATIONS, TUTORIAL_TEST_ACCURACY

nh.repo_root_cwd()
names = check_activations(nh.as_list(activations, "activations") or TUTORIAL_ACTIVATIONS)
preset = nh.as_preset(preset)
seeds = nh.as_list(seeds, "seeds", item=int, distinct=True)
max_epochs = nh.as_int(max_epochs, "max_epochs")
if max_epochs < 0:
    raise nh.ParameterError(f"max_epochs must be 0 (the preset's) or a positive number of epochs, got {max_epochs}")
interactive = nh.as_bool(interactive, "interactive")
runs = nh.stored_comparison(names, preset, seeds, runs_dir or None, max_epochs=max_epochs)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from gradflow import (
    answer_keys,
    flow_plots,
    histogram_tables,
    narrate,
    narrate_compare,
    narrate_findings,
    narrate_layers,
    narrate_pages,
    plots,
    seed_intervals,
)
from gradflow.style import PAGE_WIDTH_IN, READABLE_PT, layer_labels, layer_order

nh.setup_display()
run_seeds = runs[0].seeds
metrics = pd.concat([r.metrics.assign(activation=r.activation) for r in runs], ignore_index=True)
results = pd.concat([r.results.assign(activation=r.activation) for r in runs], ignore_index=True)
epochs_run = int(metrics["epoch"].max())
nh.show_html(narrate.preset_callout(preset, run_seeds, epochs_run=epochs_run,
                                    max_epochs=runs[0].config["run"]["max_epochs"],
                                    dataset=runs[0].config["run"]["dataset"],
                                    recipe=narrate.recipe_phrase(runs[0].config)))
nh.show_markdown(narrate_pages.CREDIT)
model_config = runs[0].config["model"]
labels = layer_labels(model_config, [f"layers.{i}" for i in range(2 * len(model_config["hidden_sizes"]) + 1)])
have = [r for r in runs if r.recordings is not None]
tables = {r.activation: r.recordings.tables() for r in have}
edges = {r.activation: r.recordings.edges for r in have}
flow = pd.concat([flow_plots.gradient_lines(histogram_tables.recorded_histograms(t["histograms"], edges[a]["grad_log10"],
                                                                       "grad", "log10").assign(activation=a))
                  for a, t in tables.items()], ignore_index=True) if tables else pd.DataFrame()

# %% [markdown]
# ## Learning curves
#
# The mean over the seeds; the shaded band runs from the lowest seed to the highest. A model that
# stopped early is tested at its best epoch, but it kept training with the others (they all train
# together, each on its own loss), so the curves show where it was heading. A line turns thin and faded
# from the first epoch at which one of its seeds had stopped early: from there its mean includes epochs
# that never count for that seed's test score.

# %%
nh.show_markdown(narrate_pages.stopping_note(metrics))
nh.show_markdown(narrate_pages.questions(answer_keys.QUESTIONS["curves"]))
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.2), layout="constrained")
plots.plot_learning_curves(metrics, "val_acc", ax=axes[0], title="Validation accuracy")
plots.plot_learning_curves(metrics, "train_loss", ax=axes[1], title="Training loss")
axes[0].set_ylim(0, 1)
axes[0].axhline(0.1, color="0.5", lw=0.8, ls=":")
axes[1].axhline(narrate.CHANCE_LOSS_10, color="0.5", lw=0.8, ls=":")
# under the line: a run stuck at chance (sigmoid) draws its curve right on it
axes[1].text(1, narrate.CHANCE_LOSS_10 - 0.03, " chance: ln 10 = 2.30 nats", va="top", fontsize=READABLE_PT, color="0.4")
plt.show()
loss_text = narrate_compare.loss_sentences(metrics) + narrate_compare.slow_start_sentences(metrics, flow=flow)
plateau = narrate_findings.plateau_story(metrics[metrics["activation"] == "sigmoid"], results[results["activation"] == "sigmoid"],
                                         patience=runs[0].config["run"]["patience"]) \
    if "sigmoid" in names and not narrate.is_preview(preset) else ""
nh.show_markdown(narrate_pages.answers(answer_keys.curve_answers(results, metrics, plateau_told=bool(plateau),
                                                                preview=narrate.is_preview(preset))))
nh.show_markdown(narrate.heading(loss_text + ([plateau] if plateau else [])))

# %% [markdown]
# ## Test accuracy
#
# Each seed's best-validation checkpoint, tested on the 10,000 test images.

# %%
summary = seed_intervals.accuracy_summary(results)
preview = narrate.is_preview(preset)
nh.show_table(seed_intervals.accuracy_display(summary, reference=None if preview else TUTORIAL_TEST_ACCURACY,
                                     with_ci=len(run_seeds) > 1))
apart, _ = seed_intervals.distinguishable(summary)
acc_text = narrate_compare.accuracy_sentences(summary, preset, apart, None if preview else TUTORIAL_TEST_ACCURACY)
nh.show_markdown(narrate.heading(acc_text))

# %% [markdown]
# ## Gradient flow over training
#
# For each layer, the median size of its weight gradients (`log10 |dL/dW|`, all seeds pooled) at every
# recorded step, with a band over the middle half of the values. Light lines are the layers near the
# input, dark the output layer. All panels share their axes. A band that drops to the bottom of the
# axis means a quarter or more of that layer's gradients were exactly 0 at that step. Step 0 is each
# run's first shuffled training batch, and the gap is read from medians, so it differs from page 2's,
# which used the first 256 training images and the gradients' std: the same kind of gap, from
# another batch.

# %%
flow_text = []
if flow.empty:
    nh.show_markdown("These runs hold no recordings (trained with `--record off`), so there is no gradient flow "
                     "over training to show. Retrain with recording on.")
else:
    fig = flow_plots.plot_gradient_lines(flow, labels, "Weight-gradient size per layer during training")
    plt.show()
    flow_text = narrate_layers.gradient_flow_sentences(flow, labels)
    nh.show_markdown(narrate.heading(flow_text))
    if nh.live_kernel(interactive):
        flow_plots.explore_gradient_lines(flow, labels)

# %% [markdown]
# ## Update:data ratio
#
# How much each optimizer step changes a layer's weights relative to their size (log10, mean over
# seeds). About 1e-3 (dashed guide) is the usual healthy size; far below, the layer barely learns.

# %%
ratios = pd.concat([t["scalars"][t["scalars"]["quantity"] == "update_data_ratio"].assign(activation=a)
                    for a, t in tables.items()], ignore_index=True) if tables else pd.DataFrame()
ratio_text = []
if len(ratios):
    fig = flow_plots.plot_update_ratios(ratios, labels, "Update:data ratio per layer during training")
    plt.show()
    mean_ratios = ratios.groupby(["activation", "layer", "step", "epoch"], sort=False)["value"].mean().reset_index()
    ratio_text = narrate_layers.update_ratio_sentences(mean_ratios, labels)
    nh.show_markdown(narrate.heading(ratio_text))

# %% [markdown]
# ## What the hidden layers output after training
#
# The tutorial's last look: each hidden layer's outputs at the last recorded step (all seeds pooled),
# layers overlaid on the recorder's shared bins. Piles at the ends of sigmoid's and tanh's ranges are
# saturated values. Each bin holds its left edge, so a unit whose output is exactly 1 (float32 rounds
# tanh(x) to 1 from x ≈ 9) is drawn in the bin from 1.0 to 1.1, just past the end of tanh's range.

# %%
if tables:
    trained, last_seen = [], (0, float("nan"))
    for a, t in tables.items():
        h = t["histograms"]
        last = h[(h["kind"] == "act")]["step"].max()
        last_seen = max(last_seen, (last, h[(h["kind"] == "act") & (h["step"] == last)]["epoch"].max()))
        trained.append(histogram_tables.recorded_histograms(h, edges[a]["act_linear"], "act", "linear", step=last)
                       .assign(activation=a))
    fig = flow_plots.plot_layer_distributions(pd.concat(trained, ignore_index=True), labels,
                                              "Hidden-layer outputs at the last recorded step",
                                              "activation output value (values beyond ±5 in the end bins)", log_y=True,
                                              own_x=True)
    plt.show()
    sat = pd.concat([t["scalars"][t["scalars"]["quantity"] == "saturation"].assign(activation=a)
                     for a, t in tables.items()], ignore_index=True)
    sat = sat.groupby(["activation", "layer", "step"], sort=False)["value"].mean().reset_index()
    late = narrate.past_stop_note(metrics, *last_seen)
    nh.show_markdown(narrate.heading(([late] if late else []) + narrate_layers.saturation_change_sentences(sat, labels)))

# %% [markdown]
# ## Dead units at initialisation and after training
#
# A unit is dead when, over a full pass of the training images, it passes no gradient or carries no
# signal. The trainer counts them at initialisation and at the end; the bars are the mean over seeds.

# %%
dead_rows = []
for a, t in tables.items():
    d = t["dead_units"]
    if d.empty:
        continue
    first, last = d["step"].min(), d["step"].max()
    for stage, step in (("at initialisation", first), ("after training", last)):
        s = d[d["step"] == step]
        for layer, g in s.groupby("layer", sort=False):
            dead_rows.append({"activation": a, "key": layer, "layer": labels.get(layer, layer), "stage": stage,
                              "percent": 100 * float(g["dead_fraction"].mean()), "seeds": len(g)})  # a row per seed
dead = pd.DataFrame(dead_rows, columns=["activation", "key", "layer", "stage", "percent", "seeds"])
dead = dead.sort_values("key", key=lambda c: c.map(layer_order), kind="stable")
dead = dead.sort_values("activation", key=lambda c: c.map(names.index), kind="stable")
fig = flow_plots.plot_dead_units(dead, "Dead units per layer (% of the layer's units, mean over seeds)")
if fig is not None:
    plt.show()
dead_text = narrate_layers.dead_unit_sentences(dead)
nh.show_markdown(narrate.heading(dead_text))

# %% [markdown]
# ## Findings
#
# What `gradflow diagnose` says about each run, one row per cause (grouped across seeds and layers),
# with how many seeds show it and its likeliest causes.

# %%
found = narrate_findings.grouped_findings({r.activation: r.findings for r in runs}, {r.activation: r.seeds for r in runs},
                                 labels)
if len(found):
    nh.show_table(found)
    nh.show_markdown(narrate_findings.findings_key(found["finding"]))
else:
    nh.show_markdown("The diagnosis raises no finding for any of these runs.")

# %% [markdown]
# ## Conclusion

# %%
lesson = narrate_findings.plateau_lesson(metrics[metrics["activation"] == "sigmoid"],
                                     results[results["activation"] == "sigmoid"]) if plateau else ""
stuck = [r.activation for r in summary.itertuples() if r.max_pct < 100 * narrate.CHANCE_ACC]
why_stuck = narrate_layers.stuck_story(stuck, flow, mean_ratios, preview_epochs=int(metrics["epoch"].max())
                                       if preview else None) if len(ratios) else ""
if not why_stuck and plateau and len(ratios):  # learned, late: the same sections, joined into why it was late
    stopped = int((results[results["activation"] == "sigmoid"]["test_acc"] < narrate.CHANCE_ACC).sum())
    why_stuck = narrate_layers.slow_start_story("sigmoid", flow, mean_ratios, stopped)
nh.show_markdown(narrate_compare.conclusion_compare(preset, loss_text, ratio_text, dead_text, lesson, acc_text, flow_text,
                                            why_stuck))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["nats", "seed", "95 % CI", "update:data ratio", "dead unit", "saturated"]
                                       + (["logits"] if "logit" in found.to_csv() else [])))
