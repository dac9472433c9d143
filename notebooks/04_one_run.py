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
# # 4. One run, in depth
#
# Everything the run store holds about one run: how each seed learned, what happened inside each layer
# while it trained, which units died, and what the diagnosis says. Any stored run works (`run`
# parameter; `gradflow runs` lists them); by default the ReLU run of the preset's comparison. This
# page reads the store and trains nothing.
#
# > **After this page you can**
# >
# > - read one run's gradient flow and update:data ratio layer by layer over training;
# > - tell what a model did while it trained from what it did after its early stop, when the stacked group it
# >   trains in kept going;
# > - read the diagnosis's findings and what each code means.

# %% tags=["parameters"]
run: str = ""  # run name in the store (see gradflow runs); empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default run (used only when run is empty)
runs_dir: str = ""  # run store directory; empty means GRADFLOW_RUNS or checkpoints
interactive: bool = True  # offer ipywidgets controls when run live in Jupyter (rendered reports stay static)

# %% tags=["validate-parameters"]
from gradflow import exercises, store
from gradflow import notebook_helpers as nh

nh.repo_root_cwd()
preset = nh.as_preset(preset)
interactive = nh.as_bool(interactive, "interactive")
the_run = store.load_run(run, runs_dir or None) if run else nh.stored_comparison(["relu"], preset, [], runs_dir or None)[0]

# %%
import matplotlib.pyplot as plt
import pandas as pd

from gradflow import answer_keys, flow_plots, histogram_tables, narrate, narrate_findings, narrate_layers, narrate_pages
from gradflow.style import PAGE_WIDTH_IN, PAST_STOP_LINE, READABLE_PT, activation_style, layer_labels, layer_order

nh.setup_display()
cfg, rc = the_run.config, the_run.config["run"]
act = the_run.activation
metrics, results = the_run.metrics, the_run.results
nh.show_html(narrate.preset_callout(rc["preset"], the_run.seeds, epochs_run=int(metrics["epoch"].max()),
                                    max_epochs=rc["max_epochs"], dataset=rc["dataset"],
                                    recipe=narrate.recipe_phrase(cfg)))
labels = layer_labels(cfg["model"], [f"layers.{i}" for i in range(4 * len(cfg["model"]["hidden_sizes"]) + 2)])
linears = [labels[f"layers.{i}"] for i in range(4 * len(cfg["model"]["hidden_sizes"]) + 2)
           if f"layers.{i}" in labels and labels[f"layers.{i}"].startswith("Linear")]
nh.show_table(pd.DataFrame([
    ("activation", act),
    ("layers", ", ".join(dict.fromkeys(linears))),
    ("data", cfg["data"]["name"] + (" (synthetic stand-in)" if rc["dataset"] == "synthetic" else "")),
    ("optimizer", f"{rc['optimizer']}, learning rate {rc['lr']:g}" + (f", momentum {rc['momentum']:g}"
                                                                      if rc.get("momentum") else "")),
    ("batch size (images)", str(rc["batch_size"])),
    ("epochs", f"{nh.span_text(results['epochs_trained'])} per seed, of at most {rc['max_epochs']} (early "
               f"stopping, patience {rc['patience']}"
               + (": it cannot act within so few epochs)" if rc["patience"] >= rc["max_epochs"] else ")")
               + (f"; the group it trained with went on to epoch {int(metrics['epoch'].max())}"
                  if int(metrics['epoch'].max()) > int(results['epochs_trained'].max()) else "")),
    ("seeds", ", ".join(str(s) for s in the_run.seeds)),
    ("trained on", f"{cfg.get('device', '?')}, {cfg.get('seconds_per_epoch') or 0:.1f} s per epoch for the group of "
                   f"{cfg.get('batch', {}).get('members', 1)} models trained together as one stacked model"),
], columns=["setting", "value"]))

# %% [markdown]
# ## How each seed learned
#
# One line per seed (the run's colour, a different dash per seed). Thin faded continuations: epochs
# after the seed's early stop. The dot marks the best validation epoch, whose weights were tested.

# %%
style = activation_style(act)
dashes = ["-", "--", ":", "-."]
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4), layout="constrained")
for i, (seed, d) in enumerate(metrics.groupby("seed")):
    for ax, col in zip(axes, ("val_acc", "train_loss")):
        live, past = d[~d["past_stop"]], d[d["past_stop"]]
        ax.plot(live["epoch"], live[col], color=style["color"], ls=dashes[i % 4], lw=2, label=f"seed {seed}")
        if len(past):
            tail = pd.concat([live.tail(1), past])
            ax.plot(tail["epoch"], tail[col], color=style["color"], **PAST_STOP_LINE)
    best = int(results.set_index("seed").loc[seed, "best_epoch"])
    axes[0].plot([best], d.set_index("epoch").loc[[best], "val_acc"], "o", color=style["color"])
axes[0].set(title=f"Validation accuracy ({act})", xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1))
axes[1].set(title=f"Training loss ({act})", xlabel="epoch", ylabel="training loss (nats)")
axes[1].axhline(narrate.CHANCE_LOSS_10, color="0.5", lw=0.8, ls=":")
axes[1].text(metrics["epoch"].min(), narrate.CHANCE_LOSS_10 - 0.03, " chance: ln 10 = 2.30 nats", va="top", fontsize=READABLE_PT,
             color="0.4")
for ax in axes:
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=READABLE_PT)
plt.show()
nh.show_table(pd.DataFrame({
    "seed": results["seed"], "test accuracy (%)": (100 * results["test_acc"]).round(2),
    "best epoch": results["best_epoch"], "epochs trained": results["epochs_trained"],
    "stopped early at epoch": results["stopped_epoch"].map(lambda v: "–" if v is None or pd.isna(v) else int(v))}))
nh.show_markdown(narrate_pages.stopping_note(metrics))

# %% [markdown]
# ## Inside the layers while it trained
#
# Two views of the recordings, all seeds pooled. First, each layer's weight-gradient size
# (`log10 |dL/dW|`, median, with a band over the middle half) at every recorded step: light lines are
# the layers near the input, dark the output layer. A band that drops to the bottom of the axis means
# a quarter or more of that layer's gradients were exactly 0 at that step (weights whose unit and input
# were never on for the same image of the batch). Second, the update:data ratio: how much each
# optimizer step changes a layer's weights relative to their size, against the healthy 1e-3 (the
# dashed guide).

# %%
rec = the_run.recordings
tables = rec.tables() if rec is not None else None
if tables is None:
    nh.show_markdown("This run holds **no recording** (trained with `--record off`), so there is nothing to show "
                     "about its layers during training.")
else:
    flow = flow_plots.gradient_lines(histogram_tables.recorded_histograms(tables["histograms"], rec.edges["grad_log10"],
                                                               "grad", "log10").assign(activation=act))
    nh.show_markdown(narrate_pages.questions(answer_keys.QUESTIONS["layers"]))
    fig = flow_plots.plot_gradient_lines(flow, labels, "Weight-gradient size per layer (all seeds pooled)")
    plt.show()
    sc = tables["scalars"]
    ratios = sc[sc["quantity"] == "update_data_ratio"].assign(activation=act)
    fig = flow_plots.plot_update_ratios(ratios, labels, "Update:data ratio per layer (mean over seeds)")
    plt.show()
    mean_ratios = ratios.groupby(["activation", "layer", "step"], sort=False)["value"].mean().reset_index()
    every_seed_trained = int(narrate.final_epochs(metrics)["epoch"].min())  # up to the first early stop
    # the answers fold first, the page's reading after it: a reading above the fold would give the answers away
    nh.show_markdown(narrate_pages.answers(answer_keys.layer_answers(flow, mean_ratios, labels, every_seed_trained)))
    nh.show_markdown(narrate.heading(narrate_layers.gradient_flow_sentences(flow, labels)
                                     + narrate_layers.update_ratio_sentences(mean_ratios, labels)))
    if nh.live_kernel(interactive):
        flow_plots.explore_gradient_lines(flow, labels)

# %% [markdown]
# ## Hidden-layer outputs: first and last recorded step

# %%
if tables is not None:
    h = tables["histograms"]
    steps = sorted(h[h["kind"] == "act"]["step"].unique())
    both = pd.concat([histogram_tables.recorded_histograms(h, rec.edges["act_linear"], "act", "linear", step=s)
                      .assign(when=f"step {int(s)}") for s in (steps[0], steps[-1])], ignore_index=True)
    fig = flow_plots.plot_layer_distributions(both, labels, f"{act}: hidden-layer outputs (all seeds pooled)",
                                              "activation output value (values beyond ±5 in the end bins)",
                                              group="when", ncols=2, log_y=True,
                                              xlim=flow_plots.occupied_range(both))  # both steps' values, one axis
    plt.show()
    scalars = tables["scalars"]
    std = scalars[scalars["quantity"] == "act_std"].groupby(["layer", "step"], sort=False)["value"].mean().reset_index()
    sat = scalars[scalars["quantity"] == "saturation"].groupby(["layer", "step"], sort=False)["value"].mean()
    late = narrate.past_stop_note(metrics, steps[-1], h[h["step"] == steps[-1]]["epoch"].max())
    nh.show_markdown(narrate.heading(([late] if late else []) + narrate_layers.output_spread_sentences(std, labels)
                                     + narrate_layers.saturation_change_sentences(
                                         sat.reset_index().assign(activation=act), labels)))

# %% [markdown]
# ## Dead units
#
# Counted by the trainer over a full pass of the training images, at initialisation and at the end
# (mean over seeds).

# %%
dead_rows = []
if tables is not None and len(tables["dead_units"]):
    d = tables["dead_units"]
    for stage, step in (("at initialisation", d["step"].min()), ("after training", d["step"].max())):
        for layer, g in d[d["step"] == step].groupby("layer", sort=False):
            dead_rows.append({"activation": act, "key": layer, "layer": labels.get(layer, layer), "stage": stage,
                              "percent": 100 * float(g["dead_fraction"].mean()),
                              "units": int(g["units"].iloc[0]), "dead": float(g["dead"].mean())})
dead = pd.DataFrame(dead_rows, columns=["activation", "key", "layer", "stage", "percent", "units", "dead"])
dead = dead.sort_values("key", key=lambda c: c.map(layer_order), kind="stable")
fig = flow_plots.plot_dead_units(dead, f"Dead units per layer ({act}, % of the layer's units)")
if fig is None:
    nh.show_markdown("No layer has a dead unit, at initialisation or after training.")
else:
    plt.show()
    wide = dead.pivot_table(index="layer", columns="stage", values="percent", sort=False).round(1).reset_index()
    nh.show_table(wide.rename(columns={"layer": "layer", "at initialisation": "dead at initialisation (%)",
                                       "after training": "dead after training (%)"}))

# %% [markdown]
# ## Diagnosis
#
# What `gradflow diagnose` says about this run, one row per cause (grouped across seeds and layers),
# with its likeliest causes.

# %%
found = narrate_findings.grouped_findings({act: the_run.findings}, {act: the_run.seeds}, labels)
if len(found):
    nh.show_table(found.drop(columns=["run"]))
    nh.show_markdown(narrate_findings.findings_key(found["finding"]))
else:
    nh.show_markdown("The diagnosis raises no finding for this run: every quantity it checks stayed inside its healthy "
                     "range. The conclusion below still says what changed during training.")

# %% [markdown]
# ## Conclusion

# %%
nh.show_markdown(narrate.sentences(narrate_pages.run_sentences(metrics, results, dead, len(the_run.findings),
                                                               rc["preset"])))

# %% [markdown]
# ## Try it yourself
#
# The next experiment this page invites: commands to run as written, and what to look for.

# %%
nh.show_markdown(exercises.one_run(preset))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["nats", "update:data ratio", "dead unit", "saturated"]
                                       + (["logits"] if "logit" in found.to_csv() else [])))
