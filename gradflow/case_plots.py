"""The case-study page's figures: each run in its role's colour, per-epoch curves that say where a
run's mean leaves seeds out (NaN), Keras' tanh outputs, and the copy-net's images drawn twice.

Every function draws into axes it is given (or returns its figure), so the page only lays panels
out and the tests draw them on stored runs without a notebook.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .case_narrate import nan_seeds, samples
from .case_studies import case
from .style import GUIDE_COLOR, READABLE_PT, ROLE_STYLES

ROLE_STYLE = {"broken": ROLE_STYLES["broken"], "fixed": ROLE_STYLES["fixed"], "asked": ROLE_STYLES["run B"]}
SECOND_FIX = {**ROLE_STYLES["fixed"], "linestyle": "-.", "marker": "s"}


def epoch_axis(epochs) -> str:
    """The x label of a per-epoch plot: it explains epoch 0 only where an epoch 0 is drawn (the batched
    trainer records none, and epoch 0 has no training loss)."""
    return "epoch (0 = before training)" if 0 in {int(e) for e in epochs} else "epoch"


def style_of(case_id: str, key: str) -> dict:
    """Role colours: a case's second fixed run keeps the fixed colour with another dash and marker."""
    variants = case(case_id).variants
    v = next(v for v in variants if v.key == key)
    fixed = [w.key for w in variants if w.role == "fixed"]
    return SECOND_FIX if v.role == "fixed" and fixed.index(key) > 0 else ROLE_STYLE[v.role]


def label_of(case_id: str, key: str) -> str:
    return next(v.label for v in case(case_id).variants if v.key == key)


def _seed_list(seeds) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _nan_notes(case_id: str, key: str, run, column: str, mean) -> tuple[list[str], list[str]]:
    """What a run's line leaves out: (notes drawn in the panel, remarks for the title). A line that
    becomes NaN stops; a mean that drops NaN seeds covers fewer seeds than the others; an accuracy
    stays finite on NaN weights, so a mean may include seeds that broke."""
    label = label_of(case_id, key)
    nan_epochs = mean.index[~np.isfinite(mean.to_numpy(dtype=float)) & (mean.index > 0)]  # epoch 0: no training loss
    if len(nan_epochs):
        return [f"{label}:\nNaN from epoch {nan_epochs[0]}, not drawn"], []
    trained = run.metrics[run.metrics["epoch"] > 0]
    lost = nan_seeds(run, column)
    if lost:
        kept = sorted(int(s) for s in trained["seed"].unique() if int(s) not in lost)
        return ([f"{label}:\n{_seed_list(lost)} NaN, left out of its mean"],
                [f"{label.split(':')[0]}'s line: {_seed_list(kept)} only"])
    if "train_loss" in trained and column != "train_loss":
        broke = nan_seeds(run)
        if broke and len(broke) < trained["seed"].nunique():  # a mean of broken and learning seeds
            return [f"{label.split(':')[0]}: its mean includes {_seed_list(broke)},\nat chance with NaN weights"], []
    return [], []


def curves(runs: dict, case_id: str, column: str, ax, title: str, ylabel: str, chance=None, ylim=None):
    """One line per run of a case: the mean over seeds of ``column`` per epoch (epoch 0 = before
    training, where stored). runs -- {variant key: Run}, as load_case_studies gives them."""
    notes, drawn, partial = [], set(), []
    for key, run in runs.items():
        m = run.metrics.groupby("epoch")[column].mean()
        ok = np.isfinite(m.to_numpy(dtype=float))
        st = style_of(case_id, key)
        drawn |= set(m.index[ok])
        ax.plot(m.index[ok], m[ok], color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
                label=label_of(case_id, key), lw=2)
        said, remarks = _nan_notes(case_id, key, run, column, m)
        notes += [(st["color"], text) for text in said]
        partial += remarks
    # two lines each, on the right: at the top of a loss panel, where the curves have fallen; in the middle of
    # an accuracy panel, below the curves that learned and above those at chance
    top = 0.72 if column.endswith("acc") else 0.95
    for i, (colour, text) in enumerate(notes):
        ax.text(0.98, top - 0.15 * i, text, transform=ax.transAxes, ha="right", va="top", color=colour,
                fontsize=READABLE_PT)
    if chance is not None:
        ax.axhline(chance, color=GUIDE_COLOR, ls=":", lw=1)
        # at the right end: the curves' first-epoch markers sit at the left end of the line
        # under the line: a broken run's curve lies on it, and nothing scores below chance
        ax.annotate("chance (10 %)", (ax.get_xlim()[1], chance), color=GUIDE_COLOR, fontsize=READABLE_PT, ha="right",
                    va="top", xytext=(-4, -3), textcoords="offset points")
    # a mean over fewer seeds than the other lines is said where nobody misses it, in the title
    ax.set(title=title + "".join(f"\n({p})" for p in partial), xlabel=epoch_axis(drawn), ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)


def keras_outputs(keras_run, values_ax, sums_ax):
    """Case 000: the Keras model's tanh outputs after training, and their sum per image (what Keras
    divides by to make them 'probabilities'), from the arrays the run stored."""
    arrays = samples(keras_run)
    seed = keras_run.seeds[0]
    values, sums = arrays[f"output_values_seed{seed}"], arrays[f"row_sums_seed{seed}"]
    broken = ROLE_STYLES["broken"]["color"]
    values_ax.hist(values, bins=40, range=(-1, 1), color=broken, alpha=0.8)
    values_ax.axvspan(-1, 0, color="0.85", zorder=0)
    values_ax.set(title="Keras model: its tanh outputs\nafter training", xlabel="output value (tanh, in [-1, 1])",
                  ylabel=f"count ({len(sums)} test images × {len(values) // len(sums)} outputs)")
    values_ax.annotate("negative:\nnot a probability", (-0.5, 0.97), xycoords=("data", "axes fraction"),
                       ha="center", va="top", fontsize=READABLE_PT)  # mid-band: the tall bars stand at -1 and 0
    sums_ax.hist(sums, bins=40, color=broken, alpha=0.8)
    sums_ax.axvline(0, color=GUIDE_COLOR, ls=":")
    sums_ax.set(title="…and their sum per image\n(what Keras divides by)", xlabel="sum of the 10 outputs",
                ylabel="images")


def copy_net_images(copy_run, auto_run, n_images: int = 4):
    """Case 004: targets, the untrained copy-net's outputs as imshow draws them by default (each picture
    stretched to its own darkest and brightest value) and on a fixed 0–1 scale, then both trained
    models on the fixed scale; one row each. Returns the figure."""
    a_copy, a_auto = samples(copy_run), samples(auto_run)
    side = int(round(np.sqrt(a_copy["targets"].shape[1])))
    before = a_copy[f"before_seed{copy_run.seeds[0]}"]
    fixed_scale = {"vmin": 0, "vmax": 1}
    panels = [("target", a_copy["targets"], fixed_scale),
              ("copy-net, untrained,\nimshow default", before, {}),
              ("copy-net, untrained,\nvmin=0, vmax=1", before, fixed_scale),
              ("copy-net, trained,\nvmin=0, vmax=1", a_copy[f"outputs_seed{copy_run.seeds[0]}"], fixed_scale),
              ("autoencoder, trained,\nvmin=0, vmax=1", a_auto[f"outputs_seed{auto_run.seeds[0]}"], fixed_scale)]
    fig, axes = plt.subplots(len(panels), n_images, figsize=(8, 10.5), layout="constrained")
    for row, (title, images, scale) in zip(axes, panels):
        for j, ax in enumerate(row):
            im = ax.imshow(images[j].reshape(side, side), cmap="gray", **scale)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(title, fontsize=READABLE_PT)
        fig.colorbar(im, ax=row, shrink=0.8, label="pixel value")
    return fig
