"""Rules on the model's output against its loss and its targets: bounded logits before a
cross-entropy, NLLLoss on values that are not log-probabilities, a bounded output read as probabilities by a hand-written log loss (case study 000's
Keras port), and a bounded output judged against the range of the targets (case study 004's autoencoder); an
elementwise loss that broadcast an output and targets of different shapes (LOSS_BROADCAST).

``evidence["cause"]`` keeps BOUNDED_OUTPUT's different situations apart for grouping:
``bounded_logits`` (error), ``log_of_bounded`` (error), ``fits_targets`` and ``loss_unknown`` (info).
NOT_LOG_PROBABILITIES: NLLLoss without log_softmax, on ``probabilities`` or on ``raw_outputs``.
"""
from __future__ import annotations

import math

import torch

from .. import quantities as Q
from ..activations import bounded_interval, is_bounded, op_name
from ..loss_graph import CROSS_ENTROPY_KINDS, ELEMENTWISE_KINDS, LOG_PROBABILITY, LOGIT_KINDS
from .evidence import Evidence
from .finding import Finding, num

RANGE_TOLERANCE = 1e-6  # targets this far outside the output's interval still count as inside


def _plain_op(name) -> str | None:
    """'TanhBackward0' -> 'Tanh', 'sigmoid' -> 'Sigmoid'; None for nothing."""
    if not name:
        return None
    plain = op_name(name)
    return {"tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax", "hardtanh": "Hardtanh",
            "hardsigmoid": "Hardsigmoid", "softsign": "Softsign", "clamp": "Clamp",
            "clampminmax": "Clamp"}.get(plain, str(name).replace("Backward0", ""))


def _activation_of(ev: Evidence, layer: str | None) -> str | None:
    for e in (ev.summary or {}).get("layers", []):
        if e["name"] == layer and e["kind"] == "activation":
            return e.get("activation")
    return None


def _bounded_op(ev: Evidence):
    """(the bounded op on the output or None, the layer it runs in or None, the loss kind): from the
    loss graph, the recorded output, else the run config's output activation (the project's trainer
    uses cross-entropy)."""
    s = ev.summary or {}
    loss, output = s.get("loss") or {}, s.get("output") or {}
    kind, layer = loss.get("kind"), output.get("activation_layer")
    op = loss.get("logits_op") if loss.get("bounded_logits") else None
    if kind in LOGIT_KINDS and loss.get("logits_op"):
        return _plain_op(op), layer, kind  # the graph names what feeds the log-softmax: trust it (log(softmax(z)))
    if not op and output.get("bounded"):
        grad_fn = output.get("grad_fn")
        op = grad_fn if is_bounded(grad_fn) else (_activation_of(ev, layer) or grad_fn or layer)
    act = ev.model_config.get("output_act")
    name = act.get("name") if isinstance(act, dict) else act
    if not op and isinstance(name, str) and is_bounded(name):
        op, kind = name, kind or "cross_entropy"
    return _plain_op(op), layer, kind


def _where(ev: Evidence, op: str, layer: str | None) -> str:
    """'Tanh `6`' for an nn.Tanh module, 'sigmoid at Activation `layers.3`', or plain 'Tanh' (torch.tanh)."""
    if not layer:
        return op
    title = ev.layer_title(layer)
    return title if title.lower().startswith(op.lower()) else f"{op} at {title}"


def _output_range(ev: Evidence):
    lo, hi = ev.quantity(Q.OUTPUT_MIN), ev.quantity(Q.OUTPUT_MAX)
    if lo.empty or hi.empty:
        return None, None
    return float(lo["value"].min()), float(hi["value"].max())


def bounded_output(ev: Evidence) -> list[Finding]:
    """BOUNDED_OUTPUT and TARGET_OUT_OF_RANGE: a bounded output against what the loss and the targets expect."""
    loss = (ev.summary or {}).get("loss") or {}
    if loss.get("kind") == LOG_PROBABILITY:
        return _log_of_bounded(ev, loss)
    op, layer, kind = _bounded_op(ev)
    if kind == "nll":  # NLLLoss with no log_softmax right before it (that would make it a cross-entropy)
        return _nll_input(ev, op, layer)
    if not op:
        return []
    if kind in CROSS_ENTROPY_KINDS:
        return [_bounded_logits(ev, op, layer, kind)]
    if kind == "bce_with_logits":
        return [_double_sigmoid(ev, op, layer)]
    if kind in (None, "unknown"):
        return [_loss_unknown(ev, op, layer, kind)]
    return _against_targets(ev, op, layer, kind)


def _bounded_logits(ev: Evidence, op: str, layer, kind) -> Finding:
    c, (lo, hi) = ev.num_classes, _output_range(ev)
    low, top = bounded_interval(op) or ((-1.0, 1.0) if lo is None else (lo, hi))  # unknown interval: as observed
    best_p = math.exp(top) / (math.exp(top) + (c - 1) * math.exp(low))
    rng = f" (observed range [{num(lo)}, {num(hi)}])" if hi is not None else ""
    output = (ev.summary or {}).get("output") or {}
    if output.get("bounded") is False and rng:  # the loss graph found it after the model: the range is before it
        lead = (f"The model's outputs{rng} pass through a bounded function ({_where(ev, op, layer)}) between the "
                "model and the cross-entropy loss.")
    else:
        lead = f"The logits pass through a bounded function ({_where(ev, op, layer)}) before the cross-entropy loss{rng}."
    return Finding(
        "BOUNDED_OUTPUT", "error", layer or Q.OUTPUT_LAYER, None,
        f"{lead} "
        f"The model can still learn (the class with the largest squashed logit can be the right one: a tanh-output "
        f"FashionMNIST MLP reaches 80-90 %), but with {c} classes and logits in [{num(low)}, {num(top)}] the softmax can give the "
        f"right class at most p = {best_p:.2f}: the loss can never fall below {-math.log(best_p):.2f}, examples already "
        "classified right keep pulling on the weights, and the probabilities mean nothing.",
        {"cause": "bounded_logits", "op": op, "loss": kind, "output_min": lo, "output_max": hi, "num_classes": c,
         "best_probability": best_p, "min_loss": -math.log(best_p)},
        "Remove the activation on the output: nn.CrossEntropyLoss expects raw logits (it applies log-softmax "
        "itself). Apply softmax/tanh only for display or after training.")


def _double_sigmoid(ev: Evidence, op: str, layer) -> Finding:
    """A bounded output fed to BCEWithLogits, which applies a sigmoid of its own."""
    low, top = bounded_interval(op) or (0.0, 1.0)
    p_low, p_top = 1 / (1 + math.exp(-low)), 1 / (1 + math.exp(-top))
    return Finding(
        "BOUNDED_OUTPUT", "error", layer or Q.OUTPUT_LAYER, None,
        f"The output passes through a bounded function ({_where(ev, op, layer)}, [{num(low)}, {num(top)}]) before "
        f"binary_cross_entropy_with_logits / nn.BCEWithLogitsLoss, which applies a sigmoid itself: the predicted "
        f"probabilities can only lie in [{p_low:.2f}, {p_top:.2f}], so targets of 0 and 1 are never approached, "
        "the loss has a floor and the gradients stay weak.",
        {"cause": "bounded_logits", "op": op, "loss": "bce_with_logits", "probability_range": [p_low, p_top]},
        "Remove the activation on the output (BCEWithLogitsLoss expects raw logits), or keep it and use "
        "nn.BCELoss on the probabilities.")


def _nll_input(ev: Evidence, op: str | None, layer) -> list[Finding]:
    """NOT_LOG_PROBABILITIES: NLLLoss fed softmax probabilities, or the model's raw outputs. Raw outputs
    count only when the loss's input is the model's output itself (the same autograd op) and the
    recorder saw values above 0, which log-probabilities never reach; a hand-made log-probability
    (torch.log of probabilities, x - logsumexp(x)) is sound and never flagged."""
    output = (ev.summary or {}).get("output") or {}
    lo, hi = _output_range(ev)
    evidence = {"op": op, "loss": "nll", "output_min": lo, "output_max": hi}
    if op and is_bounded(op):
        return [Finding(
            "NOT_LOG_PROBABILITIES", "error", layer or Q.OUTPUT_LAYER, None,
            f"NLLLoss (F.nll_loss) reads its input as log-probabilities, but it gets probabilities from "
            f"{_where(ev, op, layer)}: it then minimises -p of the right class instead of -log p. That loss stays in "
            "[-1, 0], its values mean nothing, and its gradient fades for the examples the model gets most wrong "
            "(p near 0), so training is slow.", {**evidence, "cause": "probabilities"},
            "Use log_softmax instead of softmax before NLLLoss (nn.LogSoftmax(dim=1)), or drop the softmax and use "
            "nn.CrossEntropyLoss on the raw outputs.")]
    loss_input = ((ev.summary or {}).get("loss") or {}).get("logits_op")
    if hi is None or hi <= RANGE_TOLERANCE or not loss_input or loss_input != output.get("grad_fn"):
        return []
    return [Finding(
        "NOT_LOG_PROBABILITIES", "error", Q.OUTPUT_LAYER, None,
        f"NLLLoss (F.nll_loss) reads its input as log-probabilities, but it gets the model's raw outputs (observed "
        f"range [{num(lo)}, {num(hi)}]; a log-probability is never above 0): the loss is then minus the right "
        "class's output, which has no minimum, so training pushes the outputs without bound (until they overflow "
        "to inf/NaN) instead of learning probabilities.", {**evidence, "cause": "raw_outputs"},
        "Apply F.log_softmax(outputs, dim=1) before F.nll_loss, or use F.cross_entropy / nn.CrossEntropyLoss on the "
        "raw outputs (it applies log_softmax itself).")]


def _log_of_bounded(ev: Evidence, loss: dict) -> list[Finding]:
    """A hand-written -(t * log(p)) on outputs that are not probabilities (tanh: negative values)."""
    op = _plain_op(loss.get("probs_op"))
    interval = bounded_interval(op) if op else None
    if not interval or interval[0] >= 0:  # sigmoid/softmax-like outputs are positive: log is defined
        return []
    layer = ((ev.summary or {}).get("output") or {}).get("activation_layer")
    lo, hi = _output_range(ev)
    rng = f"; observed [{num(lo)}, {num(hi)}]" if hi is not None else ""
    return [Finding(
        "BOUNDED_OUTPUT", "error", layer or Q.OUTPUT_LAYER, None,
        f"The loss takes the log of the model's outputs as class probabilities (a cross-entropy written as "
        f"-(t * log(p)), which is how Keras' categorical_crossentropy reads its input), but the outputs come from "
        f"{_where(ev, op, layer)}, which ranges over [{num(interval[0])}, {num(interval[1])}]{rng}. Negative values "
        "are not probabilities: their log is NaN, and once clipped to [1e-7, 1 − 1e-7] (as Keras does) their gradient is "
        "zero, so most examples teach nothing (such a model learns slowly, if at all).",
        {"cause": "log_of_bounded", "op": op, "loss": LOG_PROBABILITY, "output_min": lo, "output_max": hi,
         "interval": list(interval)},
        "Output raw logits and use F.cross_entropy / nn.CrossEntropyLoss; or put a softmax on the output if the loss "
        "must take probabilities (in Keras: activation='softmax', or from_logits=True on a linear output).")]


def _loss_unknown(ev: Evidence, op: str, layer, kind) -> Finding:
    lo, hi = _output_range(ev)
    rng = f" (observed range [{num(lo)}, {num(hi)}])" if hi is not None else ""
    ask = ("pass loss= to rec.step() so the diagnosis can tell" if kind is None else
           "the loss passed to rec.step() was not recognised from its graph, so the diagnosis cannot tell")
    return Finding(
        "BOUNDED_OUTPUT", "info", layer or Q.OUTPUT_LAYER, None,
        f"The model output passes through a bounded function ({_where(ev, op, layer)}){rng}. That is right for "
        f"targets in that range (e.g. MSE on [0, 1] images), wrong if the output feeds a cross-entropy loss as "
        f"logits; {ask}.", {"cause": "loss_unknown", "op": op, "loss": kind, "output_min": lo, "output_max": hi},
        "If these are class logits, remove the activation.")


def output_fits_targets(ev: Evidence) -> str | None:
    """The output activation's layer when a regression loss trains it on targets inside its interval (an
    autoencoder's sigmoid on [0, 1] pixels, mostly 0): its units at the ends are the fit, not a fault."""
    if ((ev.summary or {}).get("loss") or {}).get("kind") == LOG_PROBABILITY:
        return None
    op, layer, kind = _bounded_op(ev)
    if not op or not layer or kind in CROSS_ENTROPY_KINDS or kind in (None, "unknown", "nll", "bce_with_logits"):
        return None
    ranges = _target_range(ev, op)
    return layer if ranges and _inside(*ranges) else None


def _target_range(ev: Evidence, op: str):
    """(target min, target max, the output's interval low, high), or None: class indices, no targets
    passed, or an interval not known."""
    t, interval = (ev.summary or {}).get("targets") or {}, bounded_interval(op)
    if not t.get("float") or t.get("min") is None or not interval:
        return None
    return float(t["min"]), float(t["max"]), *interval


def _inside(tmin: float, tmax: float, low: float, top: float) -> bool:
    return low - RANGE_TOLERANCE <= tmin and tmax <= top + RANGE_TOLERANCE


def _against_targets(ev: Evidence, op: str, layer, kind) -> list[Finding]:
    """A regression/reconstruction loss on a bounded output: do the targets fit its interval?"""
    ranges = _target_range(ev, op)
    if ranges is None:
        return []
    tmin, tmax, low, top = ranges
    evidence = {"op": op, "loss": kind, "target_min": tmin, "target_max": tmax, "interval": [low, top]}
    where = _where(ev, op, layer)
    if not _inside(*ranges):
        return [Finding(
            "TARGET_OUT_OF_RANGE", "warning", layer or Q.OUTPUT_LAYER, None,
            f"The targets lie in [{num(tmin)}, {num(tmax)}] but the output goes through {where}, which can only "
            f"reach [{num(low)}, {num(top)}]: the part of the targets outside it can never be matched, so the loss "
            "has a floor and the outputs pile up at the edge (images normalised to [-1, 1] against a sigmoid output, "
            "for instance).", evidence,
            f"Make them agree: scale the targets into [{num(low)}, {num(top)}] (x * 0.5 + 0.5 undoes "
            "Normalize((0.5,), (0.5,))), or use an output activation that covers the targets (tanh for [-1, 1], "
            "none for unbounded values).")]
    if low < 0:
        return []  # e.g. tanh on [-1, 1] targets: fine, and no metric pitfall worth a note
    return [Finding(
        "BOUNDED_OUTPUT", "info", layer or Q.OUTPUT_LAYER, None,
        f"The output goes through {where} ([{num(low)}, {num(top)}]) and the targets lie in [{num(tmin)}, "
        f"{num(tmax)}]: the output can reach every target, so this is sound (a reconstruction, e.g. an autoencoder). "
        "Two things to read correctly: an 'accuracy' reported for such outputs (Keras' metrics=['accuracy'] "
        "where the output's last dimension is 1 or the loss is binary cross-entropy) is binary accuracy, the share of outputs on the same side of 0.5 as their target, "
        "not reconstruction quality (an all-black output scores 98 % on images that are 2 % lit); and "
        "plt.imshow stretches each image to its own min..max unless vmin/vmax are given, so a faint "
        "reconstruction looks bright.", {**evidence, "cause": "fits_targets"},
        "Judge reconstructions by the loss (MSE) or per-pixel error, and show them with "
        f"plt.imshow(img, vmin={num(low)}, vmax={num(top)}).")]


def _handwritten_broadcast(loss: dict) -> list | None:
    """A hand-written elementwise loss, mean((out - y) ** 2), whose difference grew one value per example
    (N, 1) or (N,) into an (N, N) table: the output shape, or None. No loss node exists to warn. (F.l1_loss
    is decomposed into such ops too, but expands the output first: ``broadcast_from`` says more there.)"""
    out, reduced = loss.get("output_shape"), loss.get("reduced_shape")
    if loss.get("kind") != "unknown" or "broadcast_from" in loss or not loss.get("difference") or not out or not reduced:
        return None
    per_example = len(out) in (1, 2) and (len(out) == 1 or out[1] == 1)
    return out if per_example and out[0] > 1 and list(reduced) == [out[0], out[0]] else None


def broadcast_loss(ev: Evidence) -> list[Finding]:
    """LOSS_BROADCAST: an elementwise loss (MSE, L1, Huber, or written by hand) got an output and
    targets of different shapes and broadcast them: every output is compared with every target."""
    loss = (ev.summary or {}).get("loss") or {}
    by_hand = _handwritten_broadcast(loss)
    if by_hand is not None:
        n = by_hand[0]
        return [Finding(
            "LOSS_BROADCAST", "error", Q.OUTPUT_LAYER, None,
            f"The hand-written loss subtracts the targets from an output of shape {tuple(by_hand)} and then reduces "
            f"a tensor of shape {(n, n)}: the two shapes broadcast, so every output is compared with every target "
            "of the batch and the model can only learn the targets' mean. PyTorch gives no warning here (only its "
            "own loss functions check the shapes).",
            {"kind": "hand-written", "output_shape": by_hand, "reduced_shape": [n, n], "target_shape": None},
            "Make the two shapes equal before subtracting: (output.squeeze(-1) - y) or (output - y.unsqueeze(-1)); "
            "or use F.mse_loss, which warns when they differ.")]
    if "broadcast_from" not in loss:
        return []
    shape = loss["broadcast_from"]
    targets = ((ev.summary or {}).get("targets") or {}).get("shape")
    shapes = (f"an output of shape {tuple(shape)}" if shape else "the output") + (
        f" against targets of shape {tuple(targets)}" if targets else " against targets of another shape")
    try:
        to = f" to {tuple(torch.broadcast_shapes(tuple(shape), tuple(targets)))}" if shape and targets else ""
    except RuntimeError:
        to = ""
    kind = loss.get("kind")
    what = kind.upper().replace("_", " ") if kind in ELEMENTWISE_KINDS else "elementwise"
    return [Finding(
        "LOSS_BROADCAST", "error", Q.OUTPUT_LAYER, None,
        f"The {what} loss received {shapes} and broadcast "
        f"them{to}: it compares every output with every target of the batch, so the model can only learn the "
        "targets' mean (PyTorch warns once: 'Using a target size that is different to the input size').",
        {"kind": loss.get("kind"), "output_shape": shape, "target_shape": targets},
        "Give the loss two tensors of the same shape: loss_fn(output.squeeze(-1), y) or loss_fn(output, "
        "y.unsqueeze(-1)).")]
