"""Small pure functions the recorder reduces tensors with: bins, ratios, saturation, dead units.

Every function takes tensors whose dim 0 is the *member* (one model of a stacked batch of M
models; M = 1 for an ordinary model) and returns one value per member, computed for all members at
once on the tensor's own device. Nothing here calls ``.item()`` or moves data to the CPU: the
recorder stacks the small results and moves them in batches.

Histogram layout (the same for every kind and scale, so steps, layers and runs are comparable):
for ``n = len(edges)`` edges a histogram has ``n + 2`` counts::

    [0]        x <  edges[0]                 (underflow; for log10 scale this includes exact zeros)
    [i]        edges[i-1] <= x < edges[i]    for i = 1 .. n-1
    [n]        x >= edges[-1]                (overflow)
    [n + 1]    NaN, +inf or -inf             (non-finite values are never hidden in a tail bin)
"""
from __future__ import annotations

import numpy as np
import torch

from .quantities import ACT, GRAD

# --------------------------------------------------------------------------- fixed bin edges
# Fixed once for the whole project: histograms from different steps, layers and runs can be
# added, subtracted and plotted on one axis only if they share their edges.

# Activations of common nets live within a few units of zero (tanh/sigmoid in [-1, 1], normalised
# ReLU nets mostly < 5); 0.1-wide bins resolve the saturation peaks at +-1 of tanh.
ACT_LINEAR_EDGES = np.linspace(-5.0, 5.0, 101)
# Weight gradients of MLPs/CNNs at batch 256 are mostly 1e-5..1e-2 per element; +-0.05 in 1e-3 bins
# shows the bulk of healthy layers; the log10 histogram below covers everything else.
GRAD_LINEAR_EDGES = np.linspace(-0.05, 0.05, 101)
# log10 |x| from 1e-10 to 1e+2 in quarter-decade bins: vanishing (1e-8) and exploding (1e+1)
# gradients land in interior bins, exact zeros (dead ReLUs) in the underflow bin.
LOG10_EDGES = np.linspace(-10.0, 2.0, 49)

HIST_EDGES = {  # (kind, scale) -> edges
    (ACT, "linear"): ACT_LINEAR_EDGES,
    (ACT, "log10"): LOG10_EDGES,
    (GRAD, "linear"): GRAD_LINEAR_EDGES,
    (GRAD, "log10"): LOG10_EDGES,
}

# --------------------------------------------------------------------------- thresholds
# A unit is saturated when its activation's derivative is below this fraction of the largest
# derivative the activation has. For tanh this is 1 - 0.97**2 = 0.059, i.e. Karpathy's
# |tanh(x)| > 0.97 rule; the same fraction carries the idea to sigmoid and any user activation.
SATURATION_DERIV_FRACTION = 0.06
# A unit is dead when, for every example, its derivative is below this fraction of the maximum
# (no gradient can flow through it) or its output magnitude is below DEAD_OUTPUT_TOL (it carries
# no signal). Tolerances, not exact zeros, so saturated tanh/sigmoid units count too.
DEAD_DERIV_FRACTION = 1e-4
DEAD_OUTPUT_TOL = 1e-6
# Range over which an activation's maximum derivative is searched. +-10 covers the peaks of all
# common activations (sigmoid/tanh at 0, swish at 2.4, GELU at 1.4; softplus reaches 0.99995 of 1).
PROBE_RANGE = 10.0
PROBE_POINTS = 2001


def histogram_edges(kind: str, scale: str) -> np.ndarray:
    """The fixed edges for ``kind`` in {'act', 'grad'} and ``scale`` in {'linear', 'log10'}."""
    try:
        return HIST_EDGES[(kind, scale)]
    except KeyError:
        raise ValueError(f"no histogram edges for kind={kind!r}, scale={scale!r}; accepted kinds "
                         "'act', 'grad' and scales 'linear', 'log10'") from None


def bin_centers(edges: np.ndarray) -> np.ndarray:
    """Centres of the interior bins (counts[1:-2] of a histogram)."""
    return (edges[:-1] + edges[1:]) / 2


_EDGE_CACHE: dict = {}


def _edges_on(edges: np.ndarray, device, dtype) -> torch.Tensor:
    key = (id(edges), str(device), dtype)
    t = _EDGE_CACHE.get(key)
    if t is None:
        t = _EDGE_CACHE[key] = torch.as_tensor(edges, dtype=dtype, device=device)
    return t


def _per_member(x: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (M, K); half precision is widened so bucketize and sums behave."""
    flat = x.detach().reshape(x.shape[0], -1)
    return flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat


_WIDTH_CACHE: dict = {}


def _uniform_width(edges: np.ndarray) -> float | None:
    """The common bin width of evenly spaced edges, else None (cached: edges are module constants)."""
    key = (id(edges), len(edges), float(edges[0]), float(edges[-1]))
    if key not in _WIDTH_CACHE:
        widths = np.diff(edges)
        _WIDTH_CACHE[key] = float(widths[0]) if np.allclose(widths, widths[0], rtol=1e-9, atol=0) else None
    return _WIDTH_CACHE[key]


class Workspace:
    """Scratch tensors the histograms reuse from one recorded step to the next, on a CPU.

    A fresh temporary as large as a layer's gradient is new memory from the operating system each
    time (the CPU allocator returns large blocks when they are freed), and touching it page-faults:
    on the tutorial MLP that was a quarter of the histograms' time. The workspace holds named
    buffers, each as large as the largest tensor it held so far: the histograms' three (which the
    non-finite counts and the saturation reuse: each caller is done with a buffer before the next
    starts), and the Recorder's copy of each weight before the optimizer step plus their update
    (the same memory a fresh copy would take on every recorded step, kept between them). On a GPU
    it hands out nothing: CUDA's caching allocator already reuses its blocks.
    """

    def __init__(self):
        self._buffers: dict = {}

    def out(self, name: str, like: torch.Tensor, dtype=None) -> torch.Tensor | None:
        """The buffer ``name``, shaped like ``like`` (its dtype unless given); None off the CPU."""
        if like.device.type != "cpu":
            return None
        dtype = like.dtype if dtype is None else dtype
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < like.numel() or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(like.numel(), dtype=dtype)
        return buf[:like.numel()].view(like.shape)


def _out(workspace, name, like, dtype=None):
    return None if workspace is None else workspace.out(name, like, dtype)


def histogram(x: torch.Tensor, edges: np.ndarray, scale: str = "linear", workspace: Workspace | None = None,
              nonfinite: torch.Tensor | None = None) -> torch.Tensor:
    """Counts (M, len(edges) + 2) of ``x`` (M, ...) per member, in the layout of the module doc.

    One ``bincount`` for all members: member m's bins are offset by m * bins. Evenly spaced edges
    (all of this module's) are binned arithmetically, floor((x - e0) / width): 8x faster than
    ``bucketize``'s binary search on a CPU; a value within float rounding of an edge may land on
    either side of it. Non-finite values reach their bin without an ``isfinite`` pass (which
    costs as much as the rest of the binning on a CPU): ``x * 0`` is 0 for finite x and NaN
    otherwise, so adding it turns exactly the non-finite values' bin index into NaN.
    ``nonfinite`` (that ``x * 0``, as (M, K)) and ``workspace`` let two scales share work and memory.
    """
    if scale not in ("linear", "log10"):
        raise ValueError(f"histogram scale must be 'linear' or 'log10', got {scale!r}")
    flat = _per_member(x)
    members, n = flat.shape[0], len(edges)
    bins = n + 2
    width = _uniform_width(edges)
    nonfinite = flat * 0 if nonfinite is None else nonfinite
    if width is None:  # uneven edges (a caller's own): binary search, whose index is already the bin 0 .. n
        values = flat if scale == "linear" else flat.abs().log10_()
        idx = torch.bucketize(values, _edges_on(edges, flat.device, flat.dtype), right=True).to(flat.dtype)
        idx.add_(nonfinite).nan_to_num_(nan=n + 1)  # non-finite: n + 1
    else:
        idx = _uniform_bin_index(flat, float(edges[0]), width, n, scale, workspace, nonfinite)
    # bincount reads int32 faster than int64 (half the bytes); the conversion truncates, which is
    # the floor here: every index is >= 0 by now
    as_int = _out(workspace, "index", flat, torch.int32)
    idx = idx.to(torch.int32) if as_int is None else as_int.copy_(idx)
    if members > 1:
        idx += torch.arange(members, device=flat.device, dtype=idx.dtype).unsqueeze(1) * bins
    return torch.bincount(idx.reshape(-1), minlength=members * bins).reshape(members, bins)


def _uniform_bin_index(flat, first_edge, width, n, scale, workspace, nonfinite):
    """The bin (0 .. n, non-finite n + 1) of each value as a float, for evenly spaced edges.

    Bin i >= 1 holds edges[i-1] <= x < edges[i], so the bin is floor((x - edges[0]) / width) + 1,
    clamped to 0 .. n. Written as x / width + (1 - edges[0] / width), clamped, then truncated by
    the integer conversion (the same as the floor once nothing is negative): five elementwise
    passes where subtracting, dividing, flooring and shifting separately took eight. The
    non-finite values' ``x * 0`` (NaN) rides along in the first pass."""
    values = flat if scale == "linear" else torch.abs(flat, out=_out(workspace, "values", flat)).log10_()
    out = _out(workspace, "values", flat) if scale == "linear" else values  # log10(0) = -inf: underflow bin
    idx = torch.add(nonfinite, values, alpha=1.0 / width, out=out)
    return idx.add_(1.0 - first_edge / width).clamp_(0, n).nan_to_num_(nan=n + 1)


def histograms(x: torch.Tensor, kind: str, workspace: Workspace | None = None) -> dict[str, torch.Tensor]:
    """Both scales of ``kind`` ('act'/'grad') for ``x`` (M, ...), sharing the non-finite pass.
    ``counts[:, -1]`` of either is the per-member number of non-finite values."""
    flat = _per_member(x)
    nonfinite = torch.mul(flat, 0, out=_out(workspace, "nonfinite", flat))
    return {scale: histogram(flat, histogram_edges(kind, scale), scale, workspace, nonfinite)
            for scale in ("linear", "log10")}


# --------------------------------------------------------------------------- moments and ratios


def mean(x: torch.Tensor) -> torch.Tensor:
    return _per_member(x).mean(dim=1)


def std(x: torch.Tensor) -> torch.Tensor:
    """Population std (correction 0) per member, so a one-element tensor gives 0, not NaN."""
    return _per_member(x).std(dim=1, correction=0)


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square per member: the scale of values that may all be equal (std 0)."""
    return _per_member(x).pow(2).mean(dim=1).sqrt()


def unit_spread(w: torch.Tensor) -> torch.Tensor:
    """How different a layer's units are, per member (M,): the std across units (dim 1 of the member
    view: a Linear's rows, a convolution's output channels) of each incoming weight, averaged, over
    the mean |weight|. 0 when every unit is a copy of the others (all zero included); units drawn at
    random give about 1; NaN when a weight is NaN/inf (no verdict on blown-up weights)."""
    flat = w.reshape(w.shape[0], w.shape[1], -1).float()
    spread = flat.std(dim=1, correction=0).mean(dim=1)
    scale = flat.abs().mean(dim=(1, 2))
    ratio = spread / scale.clamp_min(torch.finfo(scale.dtype).tiny)
    return torch.where(scale == 0, 0.0, torch.where(torch.isfinite(scale), ratio, torch.nan))


def norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(_per_member(x), dim=1)


def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, NaN where den is 0 (a zero-initialised weight has no meaningful ratio)."""
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.nan)


def grad_data_ratio(grad: torch.Tensor, weight: torch.Tensor, grad_std: torch.Tensor | None = None,
                    weight_std: torch.Tensor | None = None) -> torch.Tensor:
    """std(grad) / std(weight) per member (makemore part 3). Stds the caller already has are reused."""
    return ratio(std(grad) if grad_std is None else grad_std, std(weight) if weight_std is None else weight_std)


def update_data_ratio(weight_after: torch.Tensor, weight_before: torch.Tensor,
                      before_std: torch.Tensor | None = None, workspace: Workspace | None = None) -> torch.Tensor:
    """std(weight_after - weight_before) / std(weight_before): the optimizer step's relative size."""
    after = weight_after.detach()
    update = torch.sub(after, weight_before.detach(), out=_out(workspace, "update", after))
    return ratio(std(update), std(weight_before) if before_std is None else before_std)


def nonfinite_count(x: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
    """Number of NaN/inf elements per member, as floats (x * 0 is NaN exactly there, and NaN != NaN:
    faster than isfinite, and no temporary beyond the workspace's)."""
    flat = _per_member(x)
    if not flat.is_floating_point():  # integers are all finite; complex: isnan looks at both parts
        return torch.isnan(flat * 0).sum(dim=1).float()
    zeros = torch.mul(flat, 0, out=_out(workspace, "nonfinite", flat))
    return zeros.ne_(zeros).sum(dim=1)


# --------------------------------------------------------------------------- derivatives


def derivative(fn, x: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative of the activation ``fn`` at ``x`` (same shape), by autograd.

    Works for any elementwise activation, user-written ones included. ``fn`` is called on a copy,
    so in-place activations (``nn.ReLU(inplace=True)``) are safe.
    """
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        y = fn(leaf.clone())
        if not isinstance(y, torch.Tensor) or y.shape != leaf.shape:
            raise ValueError("activation is not elementwise: its output shape differs from its input shape")
        if not y.requires_grad:  # constant output: derivative 0 everywhere
            return torch.zeros_like(leaf)
        # d sum(y) / dx is the elementwise derivative; unlike grad_outputs=ones_like(y) it needs
        # no output-sized tensor of ones (a dead-unit pass asks this for every batch and layer)
        (d,) = torch.autograd.grad(y.sum(), leaf, allow_unused=True)
    return torch.zeros_like(leaf) if d is None else d


def probe_derivative(fn, members: int, stacked: bool, device=None, dtype=torch.float32):
    """Largest |derivative| of ``fn`` on [-PROBE_RANGE, PROBE_RANGE] per member, and whether it is
    flat (below SATURATION_DERIV_FRACTION of that maximum) at both ends, like tanh and sigmoid.

    Returns ``(max_deriv (M,), flat_both_sides (M,) bool)``. Stacked activations get the grid as
    (M, 1, G) so member m's own activation is probed; ordinary ones as (1, G).
    """
    grid = torch.linspace(-PROBE_RANGE, PROBE_RANGE, PROBE_POINTS, device=device, dtype=dtype)
    x = grid.expand(members, 1, -1).contiguous() if stacked else grid.unsqueeze(0)
    d = derivative(fn, x).abs().reshape(members, -1)
    d = torch.nan_to_num(d, nan=0.0, posinf=0.0)
    peak = d.amax(dim=1)
    flat_ends = (d[:, 0] < SATURATION_DERIV_FRACTION * peak) & (d[:, -1] < SATURATION_DERIV_FRACTION * peak)
    return peak, flat_ends


def saturation(deriv: torch.Tensor, max_deriv: torch.Tensor, fraction: float = SATURATION_DERIV_FRACTION,
               workspace: Workspace | None = None) -> torch.Tensor:
    """Fraction of elements (per member) whose |derivative| < fraction * max_deriv[member]."""
    flat = _per_member(deriv)
    if not flat.is_floating_point():  # |complex| is real: no room for it in a complex buffer
        return (flat.abs() < fraction * max_deriv.reshape(-1, 1)).float().mean(dim=1)
    d = torch.abs(flat, out=_out(workspace, "values", flat))
    return torch.lt(d, fraction * max_deriv.reshape(-1, 1), out=d).mean(dim=1).float()  # 1.0 where below


def alive_units(out: torch.Tensor, deriv: torch.Tensor, max_deriv: torch.Tensor):
    """Per member and unit, whether some example of this batch shows the unit alive.

    ``out``/``deriv`` are (M, B, *unit_dims); returns two bool tensors (M, U): the unit's
    derivative exceeded DEAD_DERIV_FRACTION * max somewhere, and its |output| exceeded
    DEAD_OUTPUT_TOL somewhere. OR them over batches; a unit is dead where either stays False.
    """
    m, b = out.shape[0], out.shape[1]
    passes_grad = largest_magnitude(deriv.detach().reshape(m, b, -1)) > DEAD_DERIV_FRACTION * max_deriv.reshape(-1, 1)
    carries_signal = largest_magnitude(out.detach().reshape(m, b, -1)) > DEAD_OUTPUT_TOL
    return passes_grad, carries_signal


def largest_magnitude(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """max |x| along ``dim``, as the larger of max(x) and -min(x): two reductions that allocate
    nothing as large as x (abs() would, and comparing and any() twice more; 3-6x slower on a CPU).
    NaN where the slice holds a NaN: it then counts as no evidence (every comparison is False)."""
    return torch.maximum(x.amax(dim=dim), x.amin(dim=dim).neg())
