"""Rules on the model's structure and inputs: bounded logits, dropout p, unused layers, raw inputs."""
from __future__ import annotations

import math
import re

from .. import quantities as Q
from ..activations import bounded_interval, is_bounded
from ..loss_graph import CROSS_ENTROPY_KINDS
from .evidence import Evidence
from .finding import Finding, num


def no_data(ev: Evidence) -> list[Finding]:
    """NO_DATA: a recorder that saw no rec.step() call."""
    if ev.summary is None or ev.summary.get("steps"):
        return []
    return [Finding("NO_DATA", "info", None, None,
                    "Nothing was recorded: rec.step() was never called inside the `with Recorder(...)` block.",
                    {}, "Call rec.step() once per training step, after optimizer.step().")]


def _bounded_op(ev: Evidence):
    """(the bounded op on the output or None, the loss kind): from the loss graph, the recorded
    output, else the run config's output activation (the project's trainer uses cross-entropy)."""
    s = ev.summary or {}
    loss, output = s.get("loss") or {}, s.get("output") or {}
    kind = loss.get("kind")
    op = loss.get("logits_op") if loss.get("bounded_logits") else None
    if not op and output.get("bounded"):
        op = output.get("activation_layer") or output.get("grad_fn")
    act = ev.model_config.get("output_act")
    name = act.get("name") if isinstance(act, dict) else act
    if not op and isinstance(name, str) and is_bounded(name):
        op, kind = name, kind or "cross_entropy"
    return (re.sub(r"Backward\d*$", "", str(op)) if op else None), kind  # SoftmaxBackward0 -> Softmax


def _output_range(ev: Evidence):
    lo, hi = ev.quantity(Q.OUTPUT_MIN), ev.quantity(Q.OUTPUT_MAX)
    if lo.empty or hi.empty:
        return None, None
    return float(lo["value"].min()), float(hi["value"].max())


def bounded_output(ev: Evidence) -> list[Finding]:
    """BOUNDED_OUTPUT: tanh/sigmoid/softmax on the logits before a cross-entropy loss."""
    op, kind = _bounded_op(ev)
    if not op or kind not in (*CROSS_ENTROPY_KINDS, None, "unknown"):
        return []
    c, (lo, hi) = ev.num_classes, _output_range(ev)
    low, top = bounded_interval(op) or ((-1.0, 1.0) if lo is None else (lo, hi))  # unknown interval: as observed
    best_p = math.exp(top) / (math.exp(top) + (c - 1) * math.exp(low))
    evidence = {"op": op, "loss": kind, "output_min": lo, "output_max": hi, "num_classes": c,
                "best_probability": best_p, "min_loss": -math.log(best_p)}
    rng = f" (observed range [{num(lo)}, {num(hi)}])" if hi is not None else ""
    layer = ((ev.summary or {}).get("output") or {}).get("activation_layer") or Q.OUTPUT_LAYER
    if kind in CROSS_ENTROPY_KINDS:
        return [Finding(
            "BOUNDED_OUTPUT", "error", layer, None,
            f"The logits pass through a bounded function ({op}) before the cross-entropy loss{rng}: with "
            f"{c} classes and logits in [{num(low)}, {num(top)}] the softmax can give the right class at most "
            f"p = {best_p:.2f}, so the loss can never fall below {-math.log(best_p):.2f} and the gradients stay weak.",
            evidence, "Remove the activation on the output: nn.CrossEntropyLoss expects raw logits (it applies "
            "log-softmax itself). Apply softmax/tanh only for display or after training.")]
    return [Finding(
        "BOUNDED_OUTPUT", "info", layer, None,
        f"The model output passes through a bounded function ({op}){rng}. That is right for targets in "
        "that range (e.g. MSE on [0, 1] images), wrong if the output feeds a cross-entropy loss as logits; pass "
        "loss= to rec.step() so the diagnosis can tell.", evidence, "If these are class logits, remove the activation.")]


# Dropout: PyTorch's p is the probability of DROPPING a unit; above one half most units are gone.
HIGH_DROPOUT_P = 0.5


def high_dropout(ev: Evidence) -> list[Finding]:
    """HIGH_DROPOUT: a dropout p above one half, likely a keep-probability passed as p."""
    drops = list((ev.summary or {}).get("dropout") or [])
    p_config = ev.model_config.get("dropout")
    if not drops and isinstance(p_config, (int, float)) and p_config > 0:
        drops = [{"layer": "dropout", "p": float(p_config), "type": "Dropout"}]
    return [Finding(
        "HIGH_DROPOUT", "warning", d["layer"], None,
        f"{d['type']}(p={d['p']:g}) at {d['layer']} drops {100 * d['p']:.0f} % of the units: in PyTorch p is the "
        f"probability of DROPPING a unit, not of keeping it (TensorFlow 1's keep_prob). If you meant to keep "
        f"{100 * d['p']:.0f} %, use p={1 - d['p']:.2g}.",
        {"p": d["p"], "keep_probability": 1 - d["p"], "limit": HIGH_DROPOUT_P},
        f"Use nn.Dropout(p={1 - d['p']:.2g}) if {d['p']:g} was a keep-probability; rates above {HIGH_DROPOUT_P} "
        "are rarely useful.", d.get("member"), ev.seed_of(d.get("member")))
        for d in drops if d["p"] > HIGH_DROPOUT_P]


def no_gradient(ev: Evidence) -> list[Finding]:
    """NO_GRADIENT: a trainable layer that received no gradient at recorded steps."""
    return [Finding(
        "NO_GRADIENT", "warning", layer, int(steps[0]) if steps else None,
        f"{layer} has trainable parameters but received no gradient at recorded steps {steps[:5]}: it is not used in "
        "the forward pass, its output is detached, or the gradients were cleared before rec.step().",
        {"steps": list(steps)}, "Check the forward pass uses this layer, or freeze it (requires_grad_(False)); "
        "call rec.step() after optimizer.step() and before optimizer.zero_grad().")
        for layer, steps in ((ev.summary or {}).get("missing_grad") or {}).items()]


def recorder_error(ev: Evidence) -> list[Finding]:
    """RECORDER_ERROR: statistics that failed (the first three); training was not affected."""
    return [Finding("RECORDER_ERROR", "warning", None, None, f"A statistic could not be computed and was skipped: {err}",
                    {"error": err}, "Report this with the model definition; training itself was not affected.")
            for err in ((ev.summary or {}).get("errors") or [])[:3]]


# Unnormalised input: raw 0-255 pixels have mean ~70 and std ~90; normalised data have both ~1.
INPUT_STD_MAX = 5.0
INPUT_MEAN_MAX = 5.0
EXP_OVERFLOW = 88.7  # float32 exp() is inf above this


def unnormalized_input(ev: Evidence) -> list[Finding]:
    """UNNORMALIZED_INPUT: inputs with a mean or std far from a normalised range."""
    q = {k: ev.quantity(v) for k, v in Q.INPUT_RANGE.items()}
    if q["std"].empty:
        return []
    std, mean = float(q["std"]["value"].max()), float(q["mean"]["value"].abs().max())
    if not (std > INPUT_STD_MAX or mean > INPUT_MEAN_MAX):
        return []
    lo, hi = float(q["min"]["value"].min()), float(q["max"]["value"].max())
    return [Finding(
        "UNNORMALIZED_INPUT", "warning", Q.INPUT_LAYER, int(q["std"]["step"].min()),
        f"The model's inputs are far outside a normalised range: values in [{num(lo)}, {num(hi)}], mean {num(mean)}, "
        f"std {num(std)} (normalised data have mean ~0 and std ~1; limits {INPUT_MEAN_MAX:g}/{INPUT_STD_MAX:g}). "
        "Raw 0-255 pixels make pre-activations huge" + (" and exp() overflows above 88.7" if hi > EXP_OVERFLOW else "")
        + ".", {"min": lo, "max": hi, "mean": mean, "std": std}, "Scale the inputs, e.g. x / 255 or "
        "(x / 255 - 0.5) / 0.5, or standardise with the training set's mean and std.")]
