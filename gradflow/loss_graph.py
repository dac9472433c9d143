"""What the loss is, read from the autograd graph: its kind (cross-entropy, MSE, ...) and the op
that produced the logits, so a bounded op (tanh, sigmoid, softmax) feeding a cross-entropy is
caught. The graph's nodes and their links survive ``backward()``; only their saved tensors are
freed, so this works on a loss that has already been used.
"""
from __future__ import annotations

import torch

from .activations import is_bounded  # the one bounded-output oracle: it reads autograd node names too

# autograd nodes that only reshape/copy: walked through when looking at what feeds the loss
_PASS_THROUGH = ("View", "Reshape", "UnsafeView", "Squeeze", "Unsqueeze", "Permute", "Transpose",
                 "Clone", "Expand", "Select", "Slice", "Contiguous", "ToCopy", "Alias")
CROSS_ENTROPY_KINDS = ("cross_entropy", "nll")  # losses that read the output as class logits
_LOSS_NODES = {"NllLossBackward0": "nll", "NllLoss2DBackward0": "nll", "MseLossBackward0": "mse",
               "BinaryCrossEntropyWithLogitsBackward0": "bce_with_logits",
               "BinaryCrossEntropyBackward0": "bce", "L1LossBackward0": "l1",
               "SmoothL1LossBackward0": "smooth_l1", "HuberLossBackward0": "huber"}


def node_name(fn) -> str:
    return type(fn).__name__ if fn is not None else ""


def _skip_reshapes(fn):
    while fn is not None and any(node_name(fn).startswith(p) for p in _PASS_THROUGH):
        nxt = [f for f, _ in fn.next_functions if f is not None]
        fn = nxt[0] if nxt else None
    return fn


def inspect_loss(loss: torch.Tensor) -> dict:
    """The loss kind and whether bounded logits feed it, read from the autograd graph's node names
    (the nodes and their links survive ``backward()``; only their saved tensors are freed)."""
    info = {"kind": "unknown", "bounded_logits": False, "logits_op": None, "nodes": []}
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
                if name.startswith("NllLoss"):
                    src = _skip_reshapes(fn.next_functions[0][0])
                    if node_name(src) == "LogSoftmaxBackward0":
                        info["kind"] = "cross_entropy"
                        src = _skip_reshapes(src.next_functions[0][0])
                    info["logits_op"] = node_name(src) or None
                    info["bounded_logits"] = is_bounded(node_name(src))
                return info
            nxt.extend(f for f, _ in fn.next_functions)
        frontier = nxt
    return info
