"""Case 002's three ELUs: the hand-written one, the answer's clamped fix 2 and PyTorch's built-in F.elu.

They compute the same values; only the hand-written one's backward pass makes NaN. This module
measures that live (autograd on a few inputs, not stored numbers) and says, from the stored runs,
why fix 2 can still end in NaN on raw pixels although it is the built-in ELU in all but name, and
why the question's built-in ELU learned all the same.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .case_bugs import clamped_elu, naive_elu
from .case_narrate import pct, test_mean
from .diagnose.structure import EXP_OVERFLOW
from .narrate import fmt_sci, fmt_times, join_names
from .style import layer_label, layer_order

ELUS = {"hand-written": naive_elu, "fix 2": clamped_elu, "built-in F.elu": F.elu}
XS = (-3.0, -0.5, 0.5, 88.0, 89.0, 300.0)  # both sides of 0, both sides of exp's overflow at 88.7, a raw-pixel size
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _value_and_slope(fn, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.sum().backward()  # each output depends on its own x only: the gradient of the sum is each slope
    return y.detach().numpy(), x.grad.numpy()


def elu_values(xs=XS) -> pd.DataFrame:
    """Value and slope (dy/dx, by autograd) of each ELU at ``xs``: columns x, then "<elu>" and "<elu> slope"."""
    x = torch.tensor(xs, dtype=torch.float32)
    out = {"x": list(xs)}
    for name, fn in ELUS.items():
        out[name], out[f"{name} slope"] = _value_and_slope(fn, x)
    return pd.DataFrame(out)


def _num(v: float) -> str:
    return "NaN" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.6g}")


def elu_table(values: pd.DataFrame) -> pd.DataFrame:
    """The page's table: values and slopes side by side, NaN spelled out."""
    t = pd.DataFrame({"x": [f"{x:g}" for x in values["x"]]})
    for name in ELUS:
        t[f"value: {name}"] = [_num(v) for v in values[name]]
    for name in ELUS:
        t[f"slope: {name}"] = [_num(v) for v in values[f"{name} slope"]]
    return t


def _grid_facts() -> dict:
    """On a fine grid: how far the values are apart, where the hand-written slope turns NaN, whether
    fix 2's slope is the built-in's (x = 0 left out: there the clamp's own slope is 0, a single point)."""
    g = torch.linspace(-30, 300, 330_001)
    g = g[g != 0]
    y = {name: _value_and_slope(fn, g) for name, fn in ELUS.items()}
    built, slope_built = y["built-in F.elu"]
    nan_at = g.numpy()[np.isnan(y["hand-written"][1])]
    return {"value_gap": float(max(np.abs(y[n][0] - built).max() for n in ("hand-written", "fix 2"))),
            "nan_from": float(nan_at.min()) if len(nan_at) else math.nan,
            "slope_gap": float(np.abs(y["fix 2"][1] - slope_built).max())}


def elu_reading(values: pd.DataFrame, facts: dict | None = None) -> str:
    """What the table shows, in words, from the table and from the same functions on a fine grid."""
    f = _grid_facts() if facts is None else facts
    nan_rows = values[np.isnan(values["hand-written slope"])]
    text = (f"**Same values, different slopes.** The three value columns agree to within {fmt_sci(f['value_gap'])} "
            "on every x from −30 to 300, a difference in the last digit a 32-bit float holds (the built-in computes "
            "exp(x) − 1 in one step, `expm1`, rounding once instead of twice): all three compute the same function, "
            "the ELU. The *slopes* are what differ, and the backward pass multiplies each incoming gradient by "
            "them. ")
    if len(nan_rows) and math.isfinite(f["nan_from"]):
        xs = join_names([f"{x:g}" for x in nan_rows["x"]])
        text += (f"From x = {f['nan_from']:.1f} on, exp(x) is larger than the largest 32-bit float (about "
                 f"{fmt_sci(FLOAT32_MAX)}) and becomes inf, and the hand-written ELU's slope is NaN (x = {xs} above). "
                 "Its `where` picks x there, so its value is right, but the backward pass of `where` still sends a "
                 "gradient of 0 into the branch it did not pick, and the backward pass of exp multiplies that 0 by "
                 "exp(x) = inf: 0 · inf = NaN. ")
    same = f["slope_gap"] < 1e-6
    text += ("Fix 2 gives exp only min(x, 0), so exp never overflows; the built-in ELU has a backward pass written "
             "by hand that picks each number's branch before computing anything (the question's built-in ELU, "
             "TensorFlow's tf.nn.elu, does the same, as the answer explains). " +
             ("Fix 2 and the built-in ELU have the same slope: 1 for positive x, exp(x) for negative x. Same values "
              "and same slopes: fix 2 *is* the built-in ELU, computed another way." if same else
              f"Fix 2's slope differs from the built-in's by up to {f['slope_gap']:.2g}."))
    return text


def raw_sizes(raw) -> str:
    """How large the broken run's first ELU inputs were at step 0 (its recorded output mean and std)."""
    sc = raw.recordings.tables()["scalars"]
    act = sc[(sc["step"] == 0) & sc["quantity"].isin(["act_mean", "act_std"])]
    if act.empty:
        return ""
    first = min(act["layer"].unique(), key=layer_order)
    m = act[act["layer"] == first].groupby("quantity")["value"].mean()
    if not {"act_mean", "act_std"} <= set(m.index) or m["act_mean"] + m["act_std"] < EXP_OVERFLOW:
        return ""
    return (f"Raw pixels make inputs that large at once: at step 0 the ELU after "
            f"{layer_label(raw.config, first)} in the broken run puts out values averaging {m['act_mean']:.0f}, with a "
            f"spread (std) of {m['act_std']:.0f}{' (mean over its seeds)' if len(raw.seeds) > 1 else ''}. For "
            f"positive x the ELU's output is x itself, so inputs above {EXP_OVERFLOW:g} are common, and one is enough "
            "for a NaN.")


# --------------------------------------------------------------------------- fix 2 on raw pixels


def first_linear(run) -> str | None:
    sc = run.recordings.tables()["scalars"]
    keys = sc.loc[sc["quantity"] == "grad_data_ratio", "layer"].unique()
    return min(keys, key=layer_order) if len(keys) else None


def _nan_steps(run) -> dict:
    """{seed: step of its first NaN/inf} for the seeds that have one."""
    nf = run.recordings.tables()["nonfinite"]
    return {} if nf.empty else {int(s): int(d["step"].min()) for s, d in nf.groupby("seed")}


def growth_table(runs: dict, steps: int = 5) -> pd.DataFrame:
    """Linear 1's weight gradient in multiples of its weights' spread (std), per seed, at the first
    recorded steps: fix 2 (raw pixels) against fix 1 (pixels / 255), and the question's model (raw pixels, a
    sigmoid output) where it was trained. "NaN" from a seed's first NaN on."""
    rows = []
    for key, label in (("clamped", "fix 2, raw pixels"), ("scaled", "fix 1, pixels / 255"),
                       ("asked", "the question's model, raw pixels")):
        run = runs.get(key)
        if run is None:  # stores trained before the question's model was a run
            continue
        layer = first_linear(run)
        if layer is None:
            continue
        sc = run.recordings.tables()["scalars"]
        d = sc[(sc["layer"] == layer) & (sc["quantity"] == "grad_data_ratio")]
        shown = sorted(int(s) for s in d["step"].unique())[:steps]
        nan_at = _nan_steps(run)
        for seed, by_seed in d.groupby("seed"):
            v = by_seed.groupby("step")["value"].mean()
            row = {"run": label, "seed": int(seed)}
            for s in shown:
                x = float(v.get(s, math.nan))
                row[f"step {s}"] = (_times(x) + "×" if math.isfinite(x) else
                                    "NaN" if s >= nan_at.get(int(seed), math.inf) else "–")
            rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def builtin_story(runs: dict) -> str:
    """Fix 2 is the built-in ELU: why its runs on raw pixels could still end in NaN, from their recordings."""
    clamped, scaled = runs["clamped"], runs["scaled"]
    layer = first_linear(clamped)
    name = "the first layer" if layer is None else layer_label(clamped.config, layer)
    acc = pd.to_numeric(clamped.results.set_index("seed")["test_acc"], errors="coerce")
    failed = sorted(s for s in _nan_steps(clamped) if s in acc.index)
    text = ("**Fix 2 and the built-in ELU.** Fix 2 has the built-in ELU's values and slopes (the table above), so "
            "what fix 2 did on raw pixels is what the built-in ELU does there too (up to that last-digit rounding, "
            "whose effect over many steps these runs do not measure). ")
    text += ("ELU passes positive values through unchanged, so nothing between the raw 0–255 pixels and the scores "
             "makes them smaller. ")
    ratios, lr = step0_ratios(clamped, layer), float((clamped.config.get("run") or {}).get("lr") or 0.01)
    if ratios:
        lo, hi = min(ratios) * lr, max(ratios) * lr
        text += (f"At step 0 the weight gradient of {name} is already {span(ratios)} times the spread (std) of its "
                 f"weights (fix 1, pixels / 255: {span(step0_ratios(scaled, layer))} times); at this case's learning rate "
                 f"of {lr:g}, one SGD step moves the weights by {span([100 * lo, 100 * hi])} % of their spread, "
                 f"{span([lo / 1e-3, hi / 1e-3])} times the healthy 1e-3. ")
    if failed:
        text += (f"Larger weights give larger outputs and larger gradients: in {_seeds(failed)} the steps fed on "
                 "themselves (table below) until a layer's outputs passed the largest 32-bit float, inf, then NaN. ")
        won = [s for s in acc.index if s not in failed and acc[s] > 0.2]
        if won:
            text += (f"In {_seeds(won)} the first steps happened to shrink the gradient instead, and the run learned "
                     f"({join_names([pct(acc[s]) for s in won])}). ")
    elif ratios:
        later = _later_peak(clamped, layer)
        text += ("Here the gradient grew for a few steps, then shrank before anything overflowed (table below). "
                 if later > max(ratios) else "Here the gradient shrank from the first steps on (table below). ")
    return text.strip()


def _seeds(seeds) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + join_names([str(int(s)) for s in seeds])


def _later_peak(run, layer) -> float:
    """The largest finite gradient:weight ratio of ``layer`` after step 0, over every seed."""
    sc = run.recordings.tables()["scalars"]
    d = sc[(sc["layer"] == layer) & (sc["quantity"] == "grad_data_ratio") & (sc["step"] > 0)]["value"]
    d = d[np.isfinite(d)]
    return float(d.max()) if len(d) else math.nan


def step0_ratios(run, layer) -> list[float]:
    if layer is None:
        return []
    sc = run.recordings.tables()["scalars"]
    d = sc[(sc["layer"] == layer) & (sc["quantity"] == "grad_data_ratio") & (sc["step"] == 0)]
    return [float(v) for v in d["value"] if math.isfinite(v)]


def _times(x: float) -> str:
    """Two significant digits below 10 (0.063, 4.6), whole numbers from 10 on (32, 3,600)."""
    return "n/a" if not math.isfinite(x) else (f"{x:.2g}" if x < 10 else fmt_times(x))


def span(values) -> str:
    lo, hi = _times(min(values)), _times(max(values))
    return lo if lo == hi else f"{lo} to {hi}"


BOTH_CAUSES = (
    "What the runs show is that the question's NaN needs both causes: raw pixels push the ELU's inputs past 88.7, "
    "and the hand-written backward pass turns the overflow into 0 · inf. Normalising the inputs (fix 1) removes the "
    "first and with it the NaN; the clamp (fix 2) removes only the second.")


def question_note(runs: dict) -> str:
    """Why the question's built-in ELU learned on raw pixels while fix 2 (the same ELU) could end in NaN:
    read from the question's own model (its sigmoid output and Keras' loss kept), where it was trained. When
    fix 2 learned too (a short run), there is nothing to explain, and the note says what the sigmoid changed."""
    asked, clamped, scaled = runs.get("asked"), runs["clamped"], runs["scaled"]
    fix2_failed = bool(_nan_steps(clamped))
    layer = ("The first three runs leave out the question's last layer: a sigmoid, read by Keras' "
             "categorical_crossentropy. ")
    if fix2_failed or asked is None:
        nan, n = len(_nan_steps(clamped)), len(clamped.seeds)
        head = ("**Why did the question's built-in ELU learn, then?** Not because of its values or its slopes: fix 2 "
                "has both, and " + (f"{nan} of its {n} seeds" if n > 1 else "it") + " ended in NaN here. "
                if fix2_failed else "**Why did the question's built-in ELU learn, then?** ") + layer
    else:
        head = (f"**The question's own model.** Here fix 2, the built-in ELU in all but name, learned too "
                f"({pct(test_mean(clamped))}): in these runs the raw pixels' steps did not grow until something "
                "overflowed, so the built-in ELU needs no explaining. " + layer)
    if asked is None:
        return (head + "A sigmoid flattens for large inputs, so when raw pixels make the scores huge it passes back "
                "almost no gradient, and the steps shrink instead of growing. That is a reading, not a measurement: "
                "this page's runs leave that layer out. " + BOTH_CAUSES)
    acc = pd.to_numeric(asked.results.set_index("seed")["test_acc"], errors="coerce")
    failed = sorted(s for s in _nan_steps(asked) if s in acc.index)
    learned = [pct(acc[s]) for s in acc.index if s not in failed]
    text = head + ("The last run, *the question's model*, keeps that layer, with the built-in ELU on the same raw "
                   "0–255 pixels: ")
    if not failed:
        after = f"after {int(asked.metrics['epoch'].max())} epochs " if "epoch" in asked.metrics else ""
        mean, fix1 = float(acc.mean()), test_mean(scaled)
        against = (f"as well as fix 1 with pixels / 255 ({pct(fix1)})" if mean >= fix1 - 0.01 else
                   f"below fix 1 with pixels / 255 ({pct(fix1)})"
                   + (f" and below fix 2 ({pct(test_mean(clamped))}): the sigmoid output slows it"
                      if not fix2_failed and mean < test_mean(clamped) - 0.01 else ""))
        text += (f"no seed ends in NaN, and {after}it reaches a test accuracy of {join_names(learned)}, {against}. "
                 "(The question, which says its model learns \"a little\", watched 5 epochs of MNIST.) ")
    else:
        text += (f"{len(failed)} of {len(acc)} seeds end in NaN as well"
                 + (f" (the others reach {join_names(learned)})" if learned else "")
                 + ", so the sigmoid does not explain all of it here. ")
    ratios, fix2 = step0_ratios(asked, first_linear(asked)), step0_ratios(clamped, first_linear(clamped))
    if ratios and fix2:
        smaller = max(ratios) < min(fix2)
        text += (f"At step 0 its first layer's weight gradient is {span(ratios)} times the spread of its weights, "
                 f"against {span(fix2)} for fix 2 without the sigmoid"
                 + ((": a sigmoid flattens for large inputs, so when raw pixels make the scores huge it passes back "
                     "less gradient, and the steps stay small enough not to feed on themselves. " if fix2_failed else
                     ": a sigmoid flattens for large inputs, so it passes back less gradient. ") if smaller else
                    ": not smaller, so the sigmoid is not what kept these steps small. "))
    return text + BOTH_CAUSES
