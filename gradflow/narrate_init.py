"""What page 2 says about a fresh network, before any training: how much smaller the first layer's
gradients are than the output layer's and why (the slopes, the weights, the layers' inputs), where
the bounded activations' outputs sit, which values are saturated or off, and where a deeper
network's ReLU units start dead."""
from __future__ import annotations

import math

import pandas as pd

from .histogram_tables import median_bin
from .narrate import fmt_sci, fmt_times, join_names
from .narrate_layers import SWITCH_OFF
from .quantities import GRAD_STD


def _weights_factor(sizes: list[int]) -> tuple[float, float, float]:
    """(product, smallest, largest) of what each Linear between the output and the first layer
    multiplies the gradient by at PyTorch's default initialisation: weights uniform in
    ±1/sqrt(fan_in) have variance 1/(3 fan_in), so W^T delta has sqrt(fan_out / (3 fan_in)) x delta's std."""
    factors = [math.sqrt(sizes[k] / (3 * sizes[k - 1])) for k in range(2, len(sizes))]
    return math.prod(factors), min(factors), max(factors)


def _slope_and_weights(ratio: float, slope: float | None, sizes: list[int] | None) -> str:
    """Why a bounded activation's first layer gets even less than its slope alone allows (page 1's
    slope^layers): the weights of each layer on the way back shrink the gradient too."""
    if slope is None or not sizes or len(sizes) < 3 or not 0 < slope < 1:
        return ""
    bound = slope ** (len(sizes) - 2)
    if ratio >= bound / 3:
        return ""
    weights, lo, hi = _weights_factor(sizes)
    return (f" That is {fmt_times(bound / ratio)}× below the {fmt_sci(bound)} its slope alone allows (at most "
            f"{slope:.2f} per layer, page 1): on the way back each Linear layer also multiplies the gradient by its "
            f"weights, about sqrt(fan_out / (3·fan_in)) at PyTorch's default initialisation ({lo:.2f} to {hi:.2f} "
            f"here). Slopes {fmt_sci(bound)} × weights {fmt_sci(weights)} ≈ {fmt_sci(bound * weights)}, the same order "
            f"as the {fmt_sci(ratio)} measured. (A weight's gradient is also multiplied by its layer's input: "
            "sigmoid's outputs sit near 0.5 in every layer, so that factor changes little here; tanh's and ReLU's "
            "outputs shrink from layer to layer, so the output layer's inputs are small and their first layer keeps "
            "a larger share.) Larger initial weights (Kaiming, page 7) shrink the gradient less at every layer.")


def _smaller_everywhere(grad_std: pd.DataFrame, acts: list[str], reference: str = "relu",
                        at_least: float = 2.0) -> list[str]:
    """An activation whose gradients are several times smaller than ReLU's in every layer (swish: its slope
    near 0 is 0.5 and its output there about half its input): a smaller start, not a vanishing one."""
    if reference not in acts:
        return []
    table = grad_std.pivot_table(index="layer", columns="activation", values=GRAD_STD, sort=False)
    table = table.iloc[:-1] if len(table) > 2 else table  # the hidden layers: the output layer has no activation
    out = []
    for act in acts:
        if act == reference:
            continue
        factor = table[reference] / table[act]
        if (factor >= at_least).all():
            out.append(f"{act}'s gradients are {fmt_times(factor.min())}–{fmt_times(factor.max())}× smaller than "
                       f"{reference}'s in every hidden layer: the signal does reach its input layer, but each step "
                       "starts smaller (page 3's learning curves show whether that slows its first epoch).")
    return out


def init_gradient_sentences(grad_std: pd.DataFrame, zeros: pd.DataFrame | None = None, sizes: list[int] | None = None,
                            slopes: dict | None = None) -> list[str]:
    """At initialisation: the first layer's gradient std relative to the output layer's, and exact zeros.

    grad_std -- columns activation, layer (display name, forward order), grad_std
    zeros    -- columns activation, layer, zeros (count), weights (count)
    sizes    -- the network's widths, input to output (default initialisation), and slopes, activation ->
                largest slope: with both, a vanishing gradient is compared with what the slopes alone allow
    """
    out, fine = [], []
    for act, d in grad_std.groupby("activation", sort=False):
        first, last = float(d[GRAD_STD].iloc[0]), float(d[GRAD_STD].iloc[-1])
        ratio = first / last if last > 0 else float("nan")
        if ratio < 1e-2:
            out.append(f"**{act}**: the first layer's gradients are {fmt_sci(ratio)} of the output layer's "
                       f"(std {fmt_sci(first)} against {fmt_sci(last)}): vanishing before any training."
                       + _slope_and_weights(ratio, (slopes or {}).get(act), sizes))
        else:
            fine.append((act, ratio))
    if fine:
        lo, hi = min(r for _, r in fine), max(r for _, r in fine)
        out.append(f"For {join_names([a for a, _ in fine])} the first layer's gradient std is {lo:.2g}"
                   f"{'' if lo == hi else f' to {hi:.2g}'} of the output layer's: the signal reaches the input layer.")
        out.extend(_smaller_everywhere(grad_std, [a for a, _ in fine]))
    if zeros is not None and len(zeros):
        for act, z in zeros[zeros["zeros"] > 0].groupby("activation", sort=False):
            parts = [f"{r.zeros:,} of {r.weights:,} in {r.layer}" for r in z.itertuples()]
            output_zeros = bool(z["layer"].astype(str).str.contains("output").any())
            out.append(f"{act}: some weights get a gradient of exactly 0 ({join_names(parts)}). A weight's gradient is the "
                       "sum, over the batch's images, of the gradient at the unit it feeds times its input, so it is "
                       "exactly 0 when in every image one of the two was off: the unit it feeds was off for every "
                       "image, or the unit feeding it was, or the two were never on for the same image"
                       + (" (the output layer's zeros are all of the second kind: its own units have no activation, so only "
                          "an input that was off for every image gives a 0)."
                          if output_zeros else ".")
                       + " Off for every image of one batch is not yet dead: the dead-unit count below checks many more "
                         "images, and a unit that any of them switches on is not dead.")
    return out


# where a bounded activation's slope is largest (its output there), and that slope
STEEPEST = {"sigmoid": (0.5, 0.25), "tanh": (0.0, 1.0)}


def output_centre_sentences(acts: pd.DataFrame) -> list[str]:
    """Where the bounded activations' outputs sit at initialisation, against where their slope is
    largest: sigmoid's cluster at 0.5, so its gradients shrink because its largest slope is small
    (0.25), not because its units saturate.

    acts -- columns activation, lo, hi, count: the hidden layers' output histograms (layers pooled)
    """
    out = []
    for act, (centre, slope) in STEEPEST.items():
        found = median_bin(acts[acts["activation"] == act].groupby(["lo", "hi"], as_index=False)["count"].sum())
        if found is None:
            continue
        lo, hi = found
        if lo - 0.05 <= centre <= hi + 0.05:
            out.append(f"**{act}**'s typical output lies between {lo:.1f} and {hi:.1f} (the median over its hidden "
                       f"layers), where its slope is largest ({slope:g}): at initialisation nothing piles up at the ends"
                       + (", so its gradients shrink because that largest slope is small, not because units saturate."
                          if slope < 0.5 else "."))
    return out


def saturation_sentences(units: pd.DataFrame) -> list[str]:
    """units -- activation, layer (display), dead_pct, saturated_pct (recorder definitions)."""
    out = []
    for act, d in units.groupby("activation", sort=False):
        worst = d.loc[d["saturated_pct"].idxmax()]
        if worst["saturated_pct"] >= 5 and act in SWITCH_OFF:
            out.append(f"{act}: {worst['saturated_pct']:.0f} % of {worst['layer']}'s values fall on its flat negative "
                       f"side at initialisation, where the unit is off ({SWITCH_OFF[act]}): about half, as expected for "
                       "an activation that switches off for negative inputs. That is not saturation in the tanh sense.")
        elif worst["saturated_pct"] >= 5:
            out.append(f"{act}: {worst['saturated_pct']:.0f} % of {worst['layer']}'s values are saturated at "
                       "initialisation.")
        if act == "swish" and worst["saturated_pct"] > 0:  # its slope is 0 at its dip, not at either end
            out.append(f"swish: the {worst['saturated_pct']:.2g} % in {worst['layer']} are values where its slope is "
                       "near 0: around its dip at x ≈ −1.3, where the slope crosses 0 (page 1), or far out on the "
                       "negative side. Its output is not pinned at a limit, so this is not saturation in the tanh "
                       "sense.")
        dead = d[d["dead_pct"] > 0]
        if len(dead):
            parts = [f"{r.dead_pct:.1f} % in {r.layer}" for r in dead.itertuples()]
            out.append(f"{act} starts with dead units: {join_names(parts)}.")
    if not out:
        out.append("No layer starts with dead units, and none is more than 5 % saturated.")
    return out


def deep_dead_sentences(deep: pd.DataFrame) -> list[str]:
    """deep -- activation, layer (display, forward order), dead_pct: the deeper network at initialisation."""
    out, clean = [], []
    for act, d in deep.groupby("activation", sort=False):
        worst = d.loc[d["dead_pct"].idxmax()]
        if worst["dead_pct"] > 0:
            out.append(f"**{act}**: in the deeper network up to {worst['dead_pct']:.0f} % of a layer's units are dead "
                       f"before training ({worst['layer']}); the first layer has {d['dead_pct'].iloc[0]:.0f} %.")
        else:
            clean.append(act)
    if clean:
        out.append(f"{join_names(clean)}: no dead unit in any layer of the deeper network.")
    return out
