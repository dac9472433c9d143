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
# # 5. Two runs side by side
#
# "The same network behaves differently in two set-ups: where?" This page puts two stored runs next to
# each other: which settings differ, how their learning differs, and, layer by layer, how differently
# their gradients are distributed. Run A is always drawn in sky blue, run B in brown, whatever their
# activations: on this page the colours name the run, not the activation (pages 1–4 drew ReLU in blue;
# here the default run A is the sigmoid run, and B the ReLU run of the preset's comparison). This page
# reads the run store and trains nothing.
#
# > **After this page you can**
# >
# > - compare two runs layer by layer with the total-variation distance between their gradient distributions;
# > - say where inside the network two set-ups differ, and whether the difference grows or fades as they train.

# %% tags=["parameters"]
run_a: str = ""  # first run name (see gradflow runs); empty means the sigmoid run of the preset comparison
run_b: str = ""  # second run name; empty means the relu run of the preset comparison
preset: str = "quick"  # preset of the default runs (used only when a run name is empty)
runs_dir: str = ""  # run store directory; empty means GRADFLOW_RUNS or checkpoints
interactive: bool = True  # offer ipywidgets controls when run live in Jupyter (rendered reports stay static)

# %% tags=["validate-parameters"]
from gradflow import exercises, store
from gradflow import notebook_helpers as nh

nh.repo_root_cwd()
preset = nh.as_preset(preset)
interactive = nh.as_bool(interactive, "interactive")
defaults = {}
if not (run_a and run_b):
    defaults = dict(zip(("a", "b"), nh.stored_comparison(["sigmoid", "relu"], preset, [], runs_dir or None)))
A = store.load_run(run_a, runs_dir or None) if run_a else defaults["a"]
B = store.load_run(run_b, runs_dir or None) if run_b else defaults["b"]

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradflow import (
    answer_keys,
    flow_plots,
    histogram_tables,
    narrate,
    narrate_findings,
    narrate_layers,
    narrate_pages,
    plots,
    seed_intervals,
)
from gradflow.style import PAGE_WIDTH_IN, layer_labels, layer_order

nh.setup_display()
for run in {A.config["run"]["preset"]: A, B.config["run"]["preset"]: B}.values():
    rc = run.config["run"]
    nh.show_html(narrate.preset_callout(rc["preset"], run.seeds, epochs_run=int(run.metrics["epoch"].max()),
                                        max_epochs=rc["max_epochs"], dataset=rc["dataset"],
                                        recipe=narrate.recipe_phrase(run.config)))
page_preset = A.config["run"]["preset"] if narrate.is_preview(A.config["run"]["preset"]) else B.config["run"]["preset"]
role = {"run A": A, "run B": B}
names = {k: f"{k}: {r.activation}" for k, r in role.items()}
labels = layer_labels(A.config["model"], [f"layers.{i}" for i in range(4 * len(A.config["model"]["hidden_sizes"]) + 2)])
ca, cb = A.config["run"], B.config["run"]


def show(v):
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else (v.get("name", str(v)) if isinstance(v, dict)
                                                                         else str(v))


diff = pd.DataFrame([{"setting": k, "run A": show(ca.get(k)), "run B": show(cb.get(k))}
                     for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)])
nh.show_markdown(f"**Run A** is `{A.name}` ({A.activation}); **run B** is `{B.name}` ({B.activation}). "
                 + ("They differ in these settings only:" if len(diff) else "Their settings are **identical**."))
if len(diff):
    nh.show_table(diff)
# what tells the runs apart in legends and sentences: the activation, or (the same activation) the settings
# that differ ("init=default" / "init=kaiming"), so no sentence reads "run A (sigmoid) ... run B (sigmoid)"
settings = diff[diff["setting"] != "activation"].head(2)
tags = {"run A": A.activation, "run B": B.activation} if A.activation != B.activation or settings.empty else {
    k: ", ".join(f"{r.setting}={r[k]}" for _, r in settings.iterrows()) for k in ("run A", "run B")}
names = {k: f"{k}: {tags[k]}" for k in role}

# %% [markdown]
# ## Learning curves
#
# Mean over each run's seeds; the shaded band runs from the lowest seed to the highest. A line turns thin and faded from the first
# epoch at which one of its seeds had stopped early: from there the mean includes epochs that never
# count for that seed's test score.

# %%
m = pd.concat([A.metrics.assign(run="run A"), B.metrics.assign(run="run B")], ignore_index=True)
fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4), layout="constrained")
plots.plot_learning_curves(m, "val_acc", group="run", ax=axes[0],
                           title=f"Validation accuracy ({names['run A']}, {names['run B']})")
plots.plot_learning_curves(m, "train_loss", group="run", ax=axes[1], title="Training loss")
axes[0].set_ylim(0, 1)
axes[1].axhline(narrate.CHANCE_LOSS_10, color="0.5", lw=0.8, ls=":")
plt.show()
res = pd.concat([A.results.assign(run="run A"), B.results.assign(run="run B")], ignore_index=True)
summary = seed_intervals.accuracy_summary(res, group="run")
table = seed_intervals.accuracy_display(summary, group="run", with_ci=min(len(A.seeds), len(B.seeds)) > 1)
table.insert(1, "activation", [A.activation, B.activation])
nh.show_table(table)

# %% [markdown]
# ## Layer by layer: where the gradients differ
#
# Each layer's weight-gradient magnitudes (`log10 |dL/dW|`, all seeds pooled, the recorder's shared
# bins) for A and B overlaid, at the first and the last recorded step both runs share. The panel title
# gives the total-variation (TV) distance: 0 = identical distributions, 1 = no overlap. Gradients of
# exactly 0 have no logarithm, so they are not drawn; the distance counts them, and so does the table
# below (its last two columns).

# %%
distances, over = [], []
if A.recordings is not None and B.recordings is not None:
    nh.show_markdown(narrate_pages.questions(answer_keys.QUESTIONS["two_runs"]))
if A.recordings is None or B.recordings is None:
    nh.show_markdown("At least one of the runs holds no recording, so their layers cannot be compared.")
else:
    edges = A.recordings.edges["grad_log10"]
    ha = histogram_tables.recorded_histograms(A.recordings.tables()["histograms"], edges)
    hb = histogram_tables.recorded_histograms(B.recordings.tables()["histograms"], edges)
    shared = sorted(set(ha["step"]) & set(hb["step"]))
    for stage, step in (("first recorded step", shared[0]), ("last recorded step", shared[-1])):
        da, db = ha[ha["step"] == step], hb[hb["step"] == step]
        at_step = {}  # layer -> TV distance over every gradient, the exact zeros (not drawn) included
        for layer in sorted(dict.fromkeys(da["layer"]), key=layer_order):
            la, lb = da[da["layer"] == layer], db[db["layer"] == layer]
            ia, ib = la[la["lo"] >= edges[0]], lb[lb["lo"] >= edges[0]]  # the exact zeros have no logarithm
            at_step[layer] = histogram_tables.histogram_distance(la, lb)
            distances.append({"stage": f"step {int(step)}", "quantity": "grad", "layer": labels.get(layer, layer),
                              "distance": at_step[layer],
                              "median_a": histogram_tables.histogram_median(ia), "median_b": histogram_tables.histogram_median(ib),
                              "zero_a": 100 * la[la["lo"] < edges[0]]["count"].sum() / max(1, la["count"].sum()),
                              "zero_b": 100 * lb[lb["lo"] < edges[0]]["count"].sum() / max(1, lb["count"].sum())})
        inside = {"a": (da["lo"] >= edges[0]) & (da["hi"] <= edges[-1]), "b": (db["lo"] >= edges[0]) & (db["hi"] <= edges[-1])}
        plots.plot_overlay(da[inside["a"]], db[inside["b"]], (names["run A"], names["run B"]), f"Weight gradients per layer, step {int(step)} "
                           f"({stage})", "log10 |dL/dW| (per weight)", layer_names=labels, distances=at_step)
        plt.show()
    for (layer, step), da in ha[ha["step"].isin(shared)].groupby(["layer", "step"]):
        db = hb[(hb["layer"] == layer) & (hb["step"] == step)]
        over.append({"layer": layer, "step": step, "distance": histogram_tables.histogram_distance(da, db)})
if distances:  # the last shared step can come after early stopping ended some of the seeds
    m_both = pd.concat([A.metrics.assign(run="run A"), B.metrics.assign(run="run B")], ignore_index=True)
    late = narrate.past_stop_note(m_both, shared[-1], ha[ha["step"] == shared[-1]]["epoch"].max(), group="run")
    if late:
        nh.show_markdown(late)
dist = pd.DataFrame(distances, columns=["stage", "quantity", "layer", "distance", "median_a", "median_b", "zero_a",
                                       "zero_b"])
if len(dist):
    nh.show_table(pd.DataFrame({"layer": dist["layer"], "step": dist["stage"].str.removeprefix("step "),
                                "TV distance (0 same, 1 disjoint)": dist["distance"].round(2),
                                "median nonzero |dL/dW|, run A": [narrate.fmt_sci(10 ** v) for v in dist["median_a"]],
                                "median nonzero |dL/dW|, run B": [narrate.fmt_sci(10 ** v) for v in dist["median_b"]],
                                "run A gradients exactly 0 (%)": dist["zero_a"].round(1),
                                "run B gradients exactly 0 (%)": dist["zero_b"].round(1)}))
if len(dist) and nh.live_kernel(interactive):  # live Jupyter: the same overlay at any recorded step
    import ipywidgets as widgets

    @widgets.interact(step=widgets.SelectionSlider(options=[int(s) for s in shared], description="step"))
    def overlay_at(step):
        da, db = ha[ha["step"] == step], hb[hb["step"] == step]
        every = {layer: histogram_tables.histogram_distance(da[da["layer"] == layer], db[db["layer"] == layer])
                 for layer in dict.fromkeys(da["layer"])}
        plots.plot_overlay(da[da["lo"] >= edges[0]], db[db["lo"] >= edges[0]], (names["run A"], names["run B"]),
                           f"Weight gradients per layer, step {step}", "log10 |dL/dW| (per weight)",
                           layer_names=labels, distances=every)
        plt.show()

# %% [markdown]
# ## Over training
#
# The TV distance between A's and B's gradient distributions per layer at every recorded step.

# %%
if over:
    over = pd.DataFrame(over)
    shades = flow_plots.layer_colours(over["layer"])
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    for layer in sorted(dict.fromkeys(over["layer"]), key=layer_order):
        d = over[over["layer"] == layer].sort_values("step")
        ax.plot(np.asarray(d["step"]) + 1, d["distance"], marker="o", ms=3, color=shades[layer],
                label=labels.get(layer, layer))
    ax.set(xscale="log", ylim=(0, 1), xlabel="training step + 1 (log scale; recorded steps only)",
           ylabel="TV distance, A vs B", title="How different the two runs' weight gradients are, per layer")
    ax.legend(fontsize=plots.READABLE_PT, loc="center left", bbox_to_anchor=(1.01, 0.5), title="layer (input → output)")
    plt.show()
trend = narrate_layers.distance_trend_sentences(over if len(over) else None, labels)
if len(dist):
    nh.show_markdown(narrate_pages.answers(answer_keys.two_run_answers(dist)))
rates = tuple(r.config["run"].get("lr") for r in (A, B))
nh.show_markdown(narrate.heading(narrate_pages.two_run_sentences(summary, dist, page_preset, rates) + trend, "these runs"))

# %% [markdown]
# ## Findings: what differs

# %%
found = narrate_findings.grouped_findings({"run A": A.findings, "run B": B.findings}, {"run A": A.seeds, "run B": B.seeds},
                                 labels)
if len(found):
    keys = {r: set(found[found["run"] == r]["finding"]) for r in role}  # one row per cause: compare by code
    found["in"] = [("both runs" if f in keys["run A"] and f in keys["run B"] else f"{r} only")
                   for r, f in zip(found["run"], found["finding"])]
    # one narrow column says whose finding it is and whether the other run has it too
    shown = found.assign(run=[f"{r.removeprefix('run ')}\u00a0{'only' if i.endswith('only') else '(both)'}"
                              for r, i in zip(found["run"], found["in"])])
    nh.show_table(shown[["run", "severity", "finding", "layers", "seeds", "what it says (worst seed)",
                         narrate_findings.CAUSES_COLUMN]])
    nh.show_markdown(narrate_findings.findings_key(found["finding"]))
else:
    nh.show_markdown("The diagnosis raises no finding for either run.")

# %% [markdown]
# ## Conclusion

# %%
# a run whose seeds early stopping ended on their plateau: what they did when trained on (page 3 tells it whole)
stalled = [] if narrate.is_preview(page_preset) else [narrate_findings.plateau_lesson(r.metrics, r.results, r.activation)
                                                      for r in (A, B)]
nh.show_markdown(narrate.sentences(narrate_pages.two_run_conclusion(summary, dist, found, page_preset,
                                                                    (tags["run A"], tags["run B"]))
                                   + [s for s in stalled if s]))

# %% [markdown]
# ## Try it yourself
#
# The next experiment this page invites: commands to run as written, and what to look for.

# %%
nh.show_markdown(exercises.two_runs(preset))

# %% [markdown]
# ## Glossary

# %%
nh.show_markdown(narrate_pages.glossary(["TV distance", "95 % CI", "seed", "initialisation"]
                                       + (["logits"] if "logit" in found.to_csv() else [])))
