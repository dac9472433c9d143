"""The threshold baseline: AUTOTRAINER's and DeepDiagnosis's published rules, re-implemented from
their papers' definitions and applied to the SAME recordings gradflow diagnoses.

AUTOTRAINER (Zhang et al., ICSE 2021), default parameters of the paper:
- vanishing gradient: the first layer's weight-gradient norm over the last layer's < beta_1 = 1e-3
  and the first layer's norm < beta_2 = 1e-4;
- exploding gradient: that ratio > beta_3 = 70; or a NaN/inf in the loss, weights or gradients
  (or a validation loss >= 1e5);
- dying ReLU: >= gamma = 0.7 of all weight-gradient entries exactly zero;
- oscillating loss: accuracy swings (a local maximum minus the next local minimum) >= zeta = 0.03
  in at least eta = 0.2 of the epochs;
- slow convergence: no epoch improved accuracy by delta = 0.01 (training and validation).
The gradient symptoms count only while training is unsatisfying (best accuracy < Theta = 0.7, or
slow convergence); then one symptom is reported, in the paper's order: dying ReLU, exploding,
vanishing, slow convergence; else oscillating loss. A NaN is always reported as exploding.

DeepDiagnosis (Wardat et al., ICSE 2022), its symptoms and thresholds:
- numerical error: a NaN/inf in the loss, an activation or a gradient;
- exploding / vanishing tensor: an activation's variance > 10 or < 1e-5;
- vanishing gradient: a layer's mean |weight gradient| < 1e-7;
- unchanged weight: a layer's weights identical before and after an optimizer step;
- saturated activation: > 50 % of a sigmoid/tanh layer's inputs beyond +-5;
- dead node: >= 70 % of a ReLU-family layer's outputs <= 0;
- invalid output range: a bounded output whose range does not hold the targets';
- loss not decreasing / accuracy not increasing over training.

What the recordings hold instead of the tools' own probes (said so the comparison is fair):
gradient norms and stds per layer at the Recorder's recorded steps (AUTOTRAINER and DeepDiagnosis
look at every check point); exact zeros as the lowest bin of the log10 histograms (|x| < 1e-10);
the mean |gradient| as the gradient's std (its upper bound for a zero-mean gradient); the
saturated fraction as the Recorder's saturation (derivative < 6 % of its peak, which for tanh is
|x| > 2.1 and for sigmoid |x| > 4.1, near the paper's +-5); exact zeros of activations (dead
nodes) as the lowest log10 bin, where the paper counts outputs <= 0 of a ReLU.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradflow import quantities as Q

# AUTOTRAINER's default parameters
BETA_1, BETA_2, BETA_3, GAMMA = 1e-3, 1e-4, 70.0, 0.7
ZETA, ETA, DELTA, THETA = 0.03, 0.2, 0.01, 0.7
AT_HUGE_LOSS = 1e5
# DeepDiagnosis's thresholds
DD_VAR_MAX, DD_VAR_MIN = 10.0, 1e-5
DD_VANISHING_GRAD = 1e-7
DD_SATURATED, DD_DEAD = 0.5, 0.7
UNCHANGED = 1e-12  # an update:data ratio this small is "the same weights"
ZERO_BIN = 0  # the log10 histograms' underflow bin: |x| < 1e-10, exact zeros included

# what each tool's symptom says in gradflow's codes (a detection counts when one of these is a
# mutant's ground truth; any symptom on a healthy control is a false alarm)
SYMPTOM_CODES = {
    "AT:vanishing_gradient": {"VANISHING_GRADIENT"},
    "AT:exploding_gradient": {"EXPLODING_GRADIENT", "NONFINITE", "DIVERGING"},
    "AT:dying_relu": {"DEAD_UNITS"},
    "AT:oscillating_loss": {"DIVERGING"},
    "AT:slow_convergence": {"NOT_LEARNING", "UPDATE_RATIO", "PLATEAU_STOP"},
    "DD:numerical_error": {"NONFINITE"},
    "DD:exploding_tensor": {"EXPLODING_GRADIENT", "DIVERGING", "NONFINITE"},
    "DD:vanishing_tensor": {"VANISHING_GRADIENT"},
    "DD:vanishing_gradient": {"VANISHING_GRADIENT"},
    "DD:unchanged_weight": {"NOT_UPDATED", "NO_GRADIENT", "UPDATE_RATIO"},
    "DD:saturated_activation": {"SATURATION"},
    "DD:dead_node": {"DEAD_UNITS"},
    "DD:invalid_output_range": {"TARGET_OUT_OF_RANGE", "BOUNDED_OUTPUT"},
    "DD:loss_not_decreasing": {"NOT_LEARNING", "DIVERGING"},
    "DD:accuracy_not_increasing": {"NOT_LEARNING", "PLATEAU_STOP"},
}
OUTPUT_INTERVALS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softmax": (0.0, 1.0)}


def _scalars(tables, quantity):
    s = tables["scalars"]
    s = s[s["quantity"] == quantity]
    return s.astype({"value": float})


def _param_order(summary) -> list[str]:
    return [e["name"] for e in summary["layers"] if e["kind"] == "param" and e.get("order") is not None]


def _activations(summary, bounded: bool) -> list[str]:
    return [e["name"] for e in summary["layers"]
            if e["kind"] == "activation" and e.get("order") is not None and bool(e.get("bounded")) == bounded]


def _nonfinite(tables, metrics) -> bool:
    loss = _scalars(tables, Q.LOSS)["value"]
    nf = tables.get("nonfinite")
    bad_metrics = metrics is not None and not metrics.empty and not np.isfinite(metrics["train_loss"]).all()
    return bool((~np.isfinite(loss)).any() or (nf is not None and len(nf)) or bad_metrics)


def _zero_fraction(tables, kind, layers) -> pd.Series:
    """Per step, the fraction of ``kind`` entries ('act'/'grad') in ``layers`` with |x| < 1e-10."""
    h = tables["histograms"]
    h = h[(h["kind"] == kind) & (h["scale"] == "log10") & h["layer"].isin(layers)]
    if h.empty:
        return pd.Series(dtype=float)
    counts = np.stack(h["counts"].to_numpy()).astype(float)
    frame = pd.DataFrame({"step": h["step"].to_numpy(), "layer": h["layer"].to_numpy(),
                          "zero": counts[:, ZERO_BIN], "all": counts.sum(axis=1)})
    return frame.groupby(["step", "layer"] if kind == "act" else "step")[["zero", "all"]].sum() \
        .pipe(lambda f: f["zero"] / f["all"].clip(lower=1))


def _accuracy(metrics, column):
    if metrics is None or metrics.empty or column not in metrics:
        return []
    return [float(v) for v in metrics[column] if pd.notna(v)]


def _max_rise(acc):
    return max([b - a for a, b in zip(acc, acc[1:])] + [0.0])


def _oscillating(acc) -> bool:
    peaks = [acc[i] for i in range(1, len(acc) - 1) if acc[i] >= acc[i - 1] and acc[i] >= acc[i + 1]]
    troughs = [acc[i] for i in range(1, len(acc) - 1) if acc[i] <= acc[i - 1] and acc[i] <= acc[i + 1]]
    swings = sum(1 for p, t in zip(peaks, troughs) if p - t >= ZETA)
    return bool(acc) and swings >= ETA * len(acc)


def autotrainer(tables, summary, metrics) -> list[str]:
    """AUTOTRAINER's verdict on one run: at most one symptom (as the tool reports one per check)."""
    if _nonfinite(tables, metrics) or (metrics is not None and "val_loss" in metrics
                                       and (metrics["val_loss"].astype(float) >= AT_HUGE_LOSS).any()):
        return ["AT:exploding_gradient"]
    params = _param_order(summary)
    norms = _scalars(tables, Q.GRAD_NORM)
    vanish = explode = False
    if len(params) >= 2:
        wide = norms.pivot_table(index="step", columns="layer", values="value", aggfunc="first")
        if params[0] in wide and params[-1] in wide:
            first, last = wide[params[0]], wide[params[-1]]
            rate = first / last.where(last > 0)
            vanish = bool(((rate < BETA_1) & (first < BETA_2)).any())
            explode = bool((rate > BETA_3).any())
    dying = bool((_zero_fraction(tables, "grad", params) >= GAMMA).any())
    train_acc, val_acc = _accuracy(metrics, "train_acc"), _accuracy(metrics, "val_acc")
    if not val_acc:  # not a classifier: AUTOTRAINER's accuracy-gated checks do not apply
        return []
    not_converged = max(val_acc) < THETA or max(train_acc or val_acc) < THETA
    slow = _max_rise(val_acc) < DELTA and _max_rise(train_acc or val_acc) < DELTA
    if not_converged or slow:
        for flag, symptom in ((dying, "AT:dying_relu"), (explode, "AT:exploding_gradient"),
                              (vanish, "AT:vanishing_gradient"), (slow, "AT:slow_convergence")):
            if flag:
                return [symptom]
        return []
    return ["AT:oscillating_loss"] if _oscillating(train_acc or val_acc) else []


def _output_range_invalid(summary, target_range) -> bool:
    out = summary.get("output") or {}
    if target_range is None or not out.get("bounded"):
        return False
    name = (out.get("grad_fn") or out.get("activation_layer") or "").lower()
    interval = next((iv for key, iv in OUTPUT_INTERVALS.items() if key in name), None)
    return interval is not None and (target_range[0] < interval[0] or target_range[1] > interval[1])


def deepdiagnosis(tables, summary, metrics, target_range=None) -> list[str]:
    """Every DeepDiagnosis symptom seen anywhere in the run."""
    found = []
    if _nonfinite(tables, metrics):
        found.append("DD:numerical_error")
    act_var = _scalars(tables, Q.ACT_STD)["value"] ** 2
    if (act_var > DD_VAR_MAX).any():
        found.append("DD:exploding_tensor")
    if (act_var < DD_VAR_MIN).any():
        found.append("DD:vanishing_tensor")
    if (_scalars(tables, Q.GRAD_STD)["value"] < DD_VANISHING_GRAD).any():
        found.append("DD:vanishing_gradient")
    upd = _scalars(tables, Q.UPDATE_DATA_RATIO)
    if (upd["value"] < UNCHANGED).any():
        found.append("DD:unchanged_weight")
    sat = _scalars(tables, Q.SATURATION)
    if (sat[sat["layer"].isin(_activations(summary, bounded=True))]["value"] > DD_SATURATED).any():
        found.append("DD:saturated_activation")
    if (_zero_fraction(tables, "act", _activations(summary, bounded=False)) >= DD_DEAD).any():
        found.append("DD:dead_node")
    if _output_range_invalid(summary, target_range):
        found.append("DD:invalid_output_range")
    if metrics is not None and len(metrics) >= 2:
        loss = metrics["train_loss"].astype(float).to_numpy()
        if not (math.isfinite(loss[-1]) and loss[-1] < loss[0]):
            found.append("DD:loss_not_decreasing")
        acc = _accuracy(metrics, "val_acc")
        if len(acc) >= 2 and acc[-1] <= acc[0]:
            found.append("DD:accuracy_not_increasing")
    return found


def baseline_symptoms(tables, summary, metrics, target_range=None) -> dict[str, list[str]]:
    return {"AUTOTRAINER": autotrainer(tables, summary, metrics),
            "DeepDiagnosis": deepdiagnosis(tables, summary, metrics, target_range)}


def codes_of(symptoms) -> set[str]:
    return set().union(*(SYMPTOM_CODES[s] for s in symptoms)) if symptoms else set()
