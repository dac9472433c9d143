"""Dropout seen in the masks, not in a module: ``F.dropout(x, p=keep_prob)`` inside forward().

Once, at the first recorded step, the Recorder runs a slice of that step's input batch through the
model a few more times, under ``torch.no_grad()``, and compares what each parameter layer receives
in two passes:

    p = #(zero in pass A and non-zero in pass B) / #(non-zero in pass B)

Zeros a ReLU makes are the same in both passes and cancel; a random dropout mask is not, and a
unit dropped with probability p is zero in A and alive in B with probability p(1 - p), alive in B
with probability 1 - p: the ratio estimates p. So that a mask further up does not blur the layer
below (different upstream masks move ReLU zeros too), the random state is reseeded at the model's
input and at every parameter layer: passes A and B draw the same masks everywhere except between
the layer probed and the one before it. One reference pass A, and one pass B per layer. Where the
mask sits right before the layer, the units alive in both passes carry the same values (the same
1/(1 - p) scale): ``agree`` ~1.

The passes run in the modes the model is in (training), except normalisation layers with running
statistics, which run in eval mode; a second set runs in eval mode, where ``F.dropout`` still drops
(its ``training`` argument defaults to True). The random-number state is saved and restored, so
training draws the same masks as without the probe; the model's other forward hooks (the user's
own, the Recorder's) are set aside, so nothing the user hooked sees these passes; and every
module's buffers and plain-number attributes (a custom running statistic, a call counter) are put
back as they were.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch
from torch import nn

from .layers import PARAM, Layer, first_tensor

BASE_SEED, VARIED_OFFSET = 1_000_003, 7_919  # any fixed values; the probe's own, restored afterwards
MAX_PROBED_LAYERS = 32  # one extra pass per layer, once per run: enough for any MLP, bounded for deep nets
PROBE_EXAMPLES = 64  # examples (per member) of the step's batch: enough units, negligible cost
MIN_ALIVE = 256  # non-zero inputs in pass B below which a layer's estimate is too noisy to keep
VALUES_AGREE_RTOL = 1e-4


def probe_slice(x: torch.Tensor, members_first: bool) -> torch.Tensor:
    """The first PROBE_EXAMPLES examples of a batch (dim 1 when dim 0 holds the members)."""
    return (x[:, :PROBE_EXAMPLES] if members_first else x[:PROBE_EXAMPLES]).detach().clone()


def _has_running_stats(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._NormBase) or isinstance(getattr(m, "running_mean", None), torch.Tensor)


@contextlib.contextmanager
def _other_hooks_set_aside(model: nn.Module):
    """Forward hooks registered on the model's modules are lifted off for the duration (torch keeps
    them in these two dicts per module; the with-kwargs/always-called flags are keyed by the same ids)."""
    saved = [(m, m._forward_hooks, m._forward_pre_hooks) for m in model.modules()]
    try:
        for m, _, _ in saved:
            m._forward_hooks, m._forward_pre_hooks = OrderedDict(), OrderedDict()
        yield
    finally:
        for m, hooks, pre_hooks in saved:
            m._forward_hooks, m._forward_pre_hooks = hooks, pre_hooks


@contextlib.contextmanager
def _state_restored(model: nn.Module):
    """Buffers and plain-number attributes of every module, as they were before the probe."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    numbers = [(m, {k: v for k, v in vars(m).items() if isinstance(v, (bool, int, float))}) for m in model.modules()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, attrs in numbers:
            for k, v in attrs.items():
                setattr(m, k, v)


def _seed(value: int, cuda: bool) -> None:
    torch.default_generator.manual_seed(value)
    if cuda:
        torch.cuda.manual_seed(value)  # the current device's generator (fork_rng restores it)


class _Enough(Exception):
    """Raised by the probe's own hook once the input it needs is seen: the rest of the forward is skipped."""


def _one_pass(model: nn.Module, layers: list[Layer], x: torch.Tensor, varied: int | None,
              stop_at: str | None = None) -> dict:
    """Each parameter layer's first input in one forward of x; the random state is reseeded at the
    model's input (point 0) and before each parameter layer's first call (points 1, 2, ... in call
    order), the same in every pass except at point ``varied``. Stops once ``stop_at``'s input is seen."""
    seen: dict[str, torch.Tensor] = {}
    cuda = x.is_cuda

    def reseed(point):
        _seed(BASE_SEED + point + (VARIED_OFFSET if point == varied else 0), cuda)

    def capture(lay):
        def hook(module, args):
            t = first_tensor(args)
            if lay.name not in seen and isinstance(t, torch.Tensor) and t.is_floating_point():
                seen[lay.name] = t.detach()
                reseed(len(seen))  # the masks between this layer and the next
                if lay.name == stop_at:
                    raise _Enough
        return hook

    handles = [model.register_forward_pre_hook(lambda module, args: reseed(0))]
    handles += [lay.module.register_forward_pre_hook(capture(lay)) for lay in layers]
    try:
        model(x)
    except _Enough:
        pass
    finally:
        for h in handles:
            h.remove()
    return seen


def _probe_passes(model: nn.Module, layers: list[Layer], x: torch.Tensor, only=None) -> dict[str, tuple]:
    """layer -> (input in the reference pass, input in the pass that varies the masks right before it),
    for every layer (or those named in ``only``)."""
    reference = _one_pass(model, layers, x, None)
    pairs = {}
    for k, name in enumerate(list(reference)[:MAX_PROBED_LAYERS]):
        if only is not None and name not in only:
            continue
        varied = _one_pass(model, layers, x, k, stop_at=name)  # point k: the masks between layer k-1 (or the input) and k
        if name in varied:
            pairs[name] = (reference[name], varied[name])
    return pairs


def _per_member(lay: Layer, t: torch.Tensor) -> torch.Tensor:
    """(M, -1) when the layer's input holds its members in dim 0, else (1, -1)."""
    if lay.stacked and t.dim() >= 1 and t.shape[0] == lay.members:
        return t.reshape(lay.members, -1)
    return t.reshape(1, -1)


def _estimate(lay: Layer, a: torch.Tensor, b: torch.Tensor):
    """(p, agree, alive) per member from two passes' inputs of one layer."""
    a, b = _per_member(lay, a).float(), _per_member(lay, b).float()
    alive_b = b != 0
    dropped = ((a == 0) & alive_b).sum(1)
    both = (a != 0) & alive_b
    same = (both & torch.isclose(a, b, rtol=VALUES_AGREE_RTOL, atol=0.0)).sum(1)
    alive = alive_b.sum(1)
    return (dropped / alive.clamp(min=1)), (same / both.sum(1).clamp(min=1)), alive


def probe_dropout(model: nn.Module, layers: list[Layer], x: torch.Tensor) -> list[dict]:
    """Per parameter layer and member: the estimated drop probability of its input in training mode
    (``p``), whether the mask sits right before the layer (``agree``), and the same in eval mode."""
    params = [lay for lay in layers if lay.kind == PARAM]
    modes = {m: m.training for m in model.modules()}
    devices = [x.device.index or 0] if x.is_cuda else []
    passes = {}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices), _other_hooks_set_aside(model), \
                _state_restored(model):
            for m in model.modules():
                m.training = modes[m] and not _has_running_stats(m)
            passes["train"] = _probe_passes(model, params, x)
            masked = [name for name, (a, b) in passes["train"].items() if a.shape == b.shape and not torch.equal(a, b)]
            model.eval()  # does the dropout stop in eval mode? Asked only where training mode showed one
            passes["eval"] = _probe_passes(model, params, x, only=masked) if masked else {}
    finally:
        for m, mode in modes.items():
            m.training = mode
    found = []
    for lay in params:
        (ta, tb), (ea, eb) = passes["train"].get(lay.name, (None, None)), passes["eval"].get(lay.name, (None, None))
        if ta is None or tb is None or ta.shape != tb.shape:
            continue
        p, agree, alive = _estimate(lay, ta, tb)
        p_eval = _estimate(lay, ea, eb)[0] if ea is not None and eb is not None and ea.shape == eb.shape else None
        for m in range(p.shape[0]):
            if int(alive[m]) < MIN_ALIVE:
                continue
            found.append({"layer": lay.name, "type": type(lay.module).__name__, "member": m if p.shape[0] > 1 else None,
                          "p": round(float(p[m]), 4), "agree": round(float(agree[m]), 4),
                          "p_eval": None if p_eval is None else round(float(p_eval[m]), 4), "alive": int(alive[m])})
    return found
