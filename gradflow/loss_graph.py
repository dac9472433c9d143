"""What the loss is, read from the autograd graph: its kind (cross-entropy, MSE, ...) and the op
that produced the logits, so a bounded op (tanh, sigmoid, softmax) feeding a cross-entropy is
caught. The graph's nodes and their links survive ``backward()``; only their saved tensors are
freed, so this works on a loss that has already been used.

Three ways of writing a cross-entropy are told apart:
- ``F.cross_entropy(logits, class_indices)``: NllLoss <- LogSoftmax <- logits;
- ``F.cross_entropy(logits, soft_or_onehot_targets)``: Neg <- Sum <- Mul <- LogSoftmax <- logits
  (no NllLoss node); both are kind ``cross_entropy``;
- a hand-written one on probabilities, ``-(t * torch.log(p)).sum(1).mean()`` (Keras'
  categorical_crossentropy ported as written): Log <- p, kind ``log_probability``, with the op
  that made ``p`` (through the clamp/normalisation Keras applies) in ``probs_op``. When ``p`` is a
  softmax this is an ordinary cross-entropy on the softmax's input and is reported as such.
"""
from __future__ import annotations

import math

import torch

from .activations import is_bounded  # the one bounded-output oracle: it reads autograd node names too

# autograd nodes that only reshape/copy: walked through when looking at what feeds the loss
_PASS_THROUGH = ("View", "Reshape", "UnsafeView", "Squeeze", "Unsqueeze", "Permute", "Transpose",
                 "Clone", "Expand", "Select", "Slice", "Contiguous", "ToCopy", "Alias")
# what Keras-style code does to probabilities before the log: clip to [eps, 1 - eps], add eps,
# divide by their sum; walked through (first input) to find the op that made the probabilities
_PROBABILITY_FIXUPS = ("Clamp", "ClampMin", "ClampMax", "Add", "Div", "Maximum", "Minimum")
CROSS_ENTROPY_KINDS = ("cross_entropy", "nll")  # losses that read the output as class logits
LOGIT_KINDS = (*CROSS_ENTROPY_KINDS, "bce_with_logits")  # losses that squash the output themselves
LOG_PROBABILITY = "log_probability"  # a hand-written -(t * log(p)): reads the output as probabilities
_LOSS_NODES = {"NllLossBackward0": "nll", "NllLoss2DBackward0": "nll", "MseLossBackward0": "mse",
               "BinaryCrossEntropyWithLogitsBackward0": "bce_with_logits",
               "BinaryCrossEntropyBackward0": "bce", "L1LossBackward0": "l1",
               "SmoothL1LossBackward0": "smooth_l1", "HuberLossBackward0": "huber"}


# losses that compare output and target element by element and broadcast two shapes that differ
# (with a UserWarning, once): an output (N, 1) against targets (N,) compares every output with
# every target, and the model learns the targets' mean
ELEMENTWISE_KINDS = ("mse", "l1", "smooth_l1", "huber")


def _note_broadcast(info: dict, src) -> None:
    """The model's output was expanded right before an elementwise loss: its shape before, if known."""
    if node_name(src) == "ExpandBackward0":
        sizes = getattr(src, "_saved_self_sym_sizes", None)  # ints: they survive backward()
        info["broadcast_from"] = [int(n) for n in sizes] if sizes is not None else []


# reductions whose input shape survives backward(): a hand-written elementwise loss, mean((out - y) ** 2),
# has no loss node, but the shape it averaged tells whether out and y broadcast (N, 1) - (N,) -> (N, N)
_REDUCTIONS = ("MeanBackward0", "MeanBackward1", "SumBackward0", "SumBackward1")


def _note_reduction(info: dict, fn) -> None:
    """The largest tensor a reduction above the loss averaged or summed (its shape), kept in
    ``reduced_shape``; ``mean(sum(d, 1))`` keeps d's shape, not the per-row sums'."""
    sizes = getattr(fn, "_saved_self_sym_sizes", None)
    if sizes is None:
        return
    shape = [int(n) for n in sizes]
    old = info.get("reduced_shape")
    if old is None or math.prod(shape) > math.prod(old):
        info["reduced_shape"] = shape


def node_name(fn) -> str:
    return type(fn).__name__ if fn is not None else ""


def _first_input(fn):
    nxt = [f for f, _ in fn.next_functions if f is not None] if fn is not None else []
    return nxt[0] if nxt else None


def _skip(fn, prefixes):
    while fn is not None and any(node_name(fn).startswith(p) for p in prefixes):
        fn = _first_input(fn)
    return fn


def _skip_reshapes(fn):
    return _skip(fn, _PASS_THROUGH)


def _logits(info: dict, log_softmax) -> dict:
    """The op under a LogSoftmax: the logits' maker, bounded or not."""
    src = _skip_reshapes(_first_input(log_softmax))
    info.update(kind="cross_entropy", logits_op=node_name(src) or None, bounded_logits=is_bounded(node_name(src)))
    return info


def inspect_loss(loss: torch.Tensor) -> dict:
    """The loss kind and whether bounded logits feed it, read from the autograd graph's node names
    (the nodes and their links survive ``backward()``; only their saved tensors are freed)."""
    info = {"kind": "unknown", "bounded_logits": False, "logits_op": None, "probs_op": None, "nodes": []}
    frontier, seen = [loss.grad_fn], set()
    for _ in range(8):  # a loss node sits within a few nodes of the final scalar (mean, sum, stack)
        nxt = []
        for fn in frontier:
            if fn is None or id(fn) in seen:
                continue
            seen.add(id(fn))
            name = node_name(fn)
            info["nodes"].append(name)
            if name in _LOSS_NODES:
                info["kind"] = _LOSS_NODES[name]
                if info["kind"] in ELEMENTWISE_KINDS:
                    _note_broadcast(info, _first_input(fn))
                if name.startswith("NllLoss"):
                    src = _skip_reshapes(_first_input(fn))
                    if node_name(src) == "LogSoftmaxBackward0":
                        return _logits(info, src)
                    info["logits_op"] = node_name(src) or None
                    info["bounded_logits"] = is_bounded(node_name(src))
                if name == "BinaryCrossEntropyWithLogitsBackward0":  # it applies the sigmoid itself
                    src = _skip_reshapes(_first_input(fn))
                    info.update(logits_op=node_name(src) or None, bounded_logits=is_bounded(node_name(src)))
                return info
            if name == "SubBackward0":
                if any(f is None for f, _ in fn.next_functions):  # out - y with y a constant (targets), not out - out.T
                    info["difference"] = True  # a hand-written elementwise loss, unless a loss node follows
                if "broadcast_from" not in info:  # F.l1_loss: mean(abs(expand(out) - y))
                    _note_broadcast(info, _first_input(fn))
            if name in _REDUCTIONS and not info.get("difference"):  # above out - y, not a pooling in the model
                _note_reduction(info, fn)
            if name == "LogSoftmaxBackward0":  # cross-entropy with soft (one-hot float) targets
                return _logits(info, fn)
            if name == "LogBackward0":  # a hand-written cross-entropy on probabilities
                src = _skip(_first_input(fn), _PASS_THROUGH + _PROBABILITY_FIXUPS)
                if node_name(src) == "SoftmaxBackward0":  # log(softmax(z)): cross-entropy on z
                    return _logits(info, src)
                info.update(kind=LOG_PROBABILITY, probs_op=node_name(src) or None)
                return info
            nxt.extend(f for f, _ in fn.next_functions)
        frontier = nxt
    return info
