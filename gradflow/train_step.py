"""One training step of a stacked model: run eagerly, or captured once as a CUDA graph and replayed.

On an H100 the batched step is launch-bound: ~168 kernel launches per step keep the GPU busy
about 40 % of an epoch. A CUDA graph launches the whole step (gather, forward, loss, backward,
optimizer, per-step loss/accuracy sums) as one unit. The graph needs fixed addresses, so the
step reads its index batch from a static buffer and adds into static accumulators; the eager
path uses the very same buffers and the same function, so both compute the same numbers and
everything but the capture itself runs (and is tested) on the CPU.

The switch (``graph``): ``off`` always eager; ``on`` capture or say why not; ``auto`` capture
where :func:`capture_blocker` finds nothing in the way (a CUDA device, an optimizer that can be
captured, no dropout). Capture happens once per fit, after a few eager warm-up steps on a side
stream (so the optimizer's state exists before capture).

With a recorder, recorded steps run the eager, hooked path (the recorder's statistics need its
Python hooks); unrecorded steps replay the graph, and the recorder's every-step NaN/Inf check
runs inside it (gradflow.graph_sentinel), so the first non-finite step and place stay exact.
The host then calls ``recorder.step`` with a copy of the step's losses, as for an eager step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import precision as precisions
from .graph_sentinel import SentinelFeed
from .stacked import StackedDropout

GRAPH_MODES = ("auto", "on", "off")
WARMUP_STEPS = 3  # eager steps before capture: cuBLAS handles, autocast, optimizer state all exist


def member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member: logits (M, B, C), y (M, B) or (B,) -> (M,)."""
    M, B, C = logits.shape
    y = y.expand(M, B)
    return F.cross_entropy(logits.reshape(M * B, C), y.reshape(M * B), reduction="none").view(M, B).mean(1)


def _inner_optimizer(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # MemberLR wraps the real one


def capture_blocker(model, optimizer, device, recorder=None, graphs=None) -> str | None:
    """Why this step cannot be captured as a CUDA graph, or None when it can. ``graphs``: a
    stand-in for CUDA graphs (InlineGraphs) lifts the need for a CUDA device."""
    device = torch.device(device)
    if device.type != "cuda" and graphs is None:
        return f"CUDA graphs need a CUDA device, not {device.type}"
    inner = _inner_optimizer(optimizer)
    if not isinstance(inner, torch.optim.SGD) and not all(g.get("capturable") for g in inner.param_groups):
        return f"{type(inner).__name__} keeps a host-side step count (made with capturable=False)"
    if any(isinstance(m, StackedDropout) for m in model.modules()):
        # captured RNG advances a device-side offset per replay; that it draws eager's masks is
        # unverified (no GPU yet), and the tests hold batched dropout to an eager reference
        return "dropout's masks under a graph are not verified to equal eager's"
    if recorder is not None and not hasattr(recorder, "sentinel"):
        return "this recorder has no sentinel the captured step can feed"
    return None


def use_graph(mode: str, blocker: str | None) -> bool:
    """Resolve the switch: ``on`` with a blocker is an error in plain words, ``auto`` falls back."""
    if mode not in GRAPH_MODES:
        raise ValueError(f"unknown graph mode {mode!r}; accepted: {', '.join(GRAPH_MODES)}")
    if mode == "on" and blocker is not None:
        raise ValueError(f"graph='on' but this training step cannot be captured as a CUDA graph: {blocker}; "
                         "use graph='auto' (eager where capture is impossible) or 'off'")
    return mode != "off" and blocker is None


class CudaGraphs:
    """How TrainStep warms up, captures and replays on CUDA. A stand-in with the same three calls
    lets the CPU tests drive TrainStep's dispatch (tests/test_train_step.py)."""

    def __init__(self):
        self.graph = None

    def warm_up(self, fn):
        # CUDA's advice for what precedes a capture: warm up on a side stream, so no lazily created
        # state (cuBLAS workspaces, optimizer buffers) is tied to the capture stream
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(stream)
        return out

    def capture(self, fn) -> None:
        """Record ``fn``'s kernels once, without running them."""
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            fn()

    def replay(self):
        self.graph.replay()


class InlineGraphs:
    """A CPU stand-in for CudaGraphs: capture keeps the function without running it (as CUDA does),
    replay runs it eagerly. It lets the CPU run TrainStep's whole graph dispatch (warm-up, one
    capture, replays between recorded steps, the in-graph sentinel) -- the tests and the GPU
    benchmark's --smoke mode use it. It saves no time: there is no graph."""

    replays_run_python = True  # its replays call the optimizer in Python: the Recorder's watch sees them

    def __init__(self):
        self.warm_ups = self.captures = self.replays = 0
        self.fn = None

    def warm_up(self, fn):
        self.warm_ups += 1
        return fn()

    def capture(self, fn) -> None:
        self.captures += 1
        self.fn = fn

    def replay(self):
        self.replays += 1
        self.fn()


class TrainStep:
    """The step of one fit: static buffers, the step body, and the eager/replay dispatch."""

    def __init__(self, model, optimizer, train_x, train_y, batch_size: int, precision: str = "fp32",
                 graph: bool = False, recorder=None, graphs=None, graph_required: bool = False):
        self.model, self.optimizer, self.recorder = model, optimizer, recorder
        self.train_x, self.train_y = train_x, train_y
        self.precision = precisions.check(precision)
        device = train_x.device
        members = model.members
        self.idx = torch.zeros(members, batch_size, dtype=torch.long, device=device)  # the step's input
        self.loss_sum = torch.zeros(members, device=device)  # this epoch's per-member sums, added in place
        self.correct = torch.zeros(members, dtype=torch.long, device=device)
        self.graph_wanted = graph
        self.graphs = (graphs or CudaGraphs()) if graph else None
        every_step = recorder is not None and getattr(recorder, "nonfinite_check", None) == "every_step"
        self.feed = SentinelFeed(recorder, device) if graph and every_step else None
        self.static_losses = torch.zeros(members, device=device)  # the replayed step's losses
        self.captured = False
        self.graph_required = graph_required  # graph='on': a failed capture is an error, not a fallback
        self.fallback = None  # why the graph was given up on (auto mode), if it was
        self.eager_steps = self.replayed_steps = 0

    def describe(self) -> str:
        """How the steps ran, for the run's config."""
        if self.fallback is not None:
            return f"eager (CUDA graph capture failed: {self.fallback})"
        if not self.graph_wanted:
            return "eager"
        return f"cuda graph ({self.replayed_steps} of {self.replayed_steps + self.eager_steps} steps replayed)"

    def new_epoch(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def body(self) -> torch.Tensor:
        """Forward, loss, backward, optimizer step and bookkeeping on ``self.idx``; returns the
        per-member losses (attached to the graph: the recorder reads the loss kind from it)."""
        x, y = self.train_x[self.idx], self.train_y[self.idx]  # (M, B, features), (M, B)
        with precisions.autocast(self.precision, x.device):
            logits = self.model(x)
        losses = member_losses(logits.float(), y)  # .float(): no copy in fp32
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # member m's gradient is that of its own mean loss
        self.optimizer.step()
        self.loss_sum += losses.detach()
        self.correct += (logits.detach().argmax(-1) == y).sum(1)
        return losses

    def graph_body(self) -> torch.Tensor:
        """What the graph holds: the body, the sentinel's check, the losses into a static buffer."""
        if self.feed is None:
            losses = self.body()
        else:
            with self.feed.taps() as tapped:
                losses = self.body()
            self.feed.check(tapped, losses)
        self.static_losses.copy_(losses.detach())
        return losses

    def run(self, idx: torch.Tensor, recorded: bool = False) -> torch.Tensor:
        """One step on index batch ``idx`` (M, B): eager when recorded (or no graph is wanted), else
        replayed from the graph (captured at the first chance). Returns the step's (M,) losses."""
        self.idx.copy_(idx)
        if recorded or not self.graph_wanted:
            self.eager_steps += 1
            return self.body()
        if self.feed is not None:
            self.feed.before_replay(self.recorder.steps, self.recorder.epoch)
        capturing_step = not self.captured
        if not self.captured:
            if self.eager_steps < WARMUP_STEPS:
                # the same function as the graph, run eagerly: every buffer it needs (optimizer and
                # sentinel state) exists before capture, where creating one would be captured too
                self.eager_steps += 1
                return self.graphs.warm_up(self.graph_body)
            # Capture once per fit; capture records without running, so the replay below is also
            # this step's computation. The graph allocates the gradients it writes.
            self.optimizer.zero_grad(set_to_none=True)
            try:
                self.graphs.capture(self.graph_body)
            except RuntimeError as exc:  # e.g. a user's activation that reads a value back (.item())
                if self.graph_required:
                    raise
                # nothing ran during the failed capture: this step and the rest of the fit run eagerly
                self.graph_wanted, self.fallback = False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                self.eager_steps += 1
                return self.body()
            self.captured = True
        self.graphs.replay()
        self.replayed_steps += 1
        # the capturing step ran the body's Python once (the optimizer's hook saw it); later replays run none
        if self.recorder is not None and not capturing_step and not getattr(self.graphs, "replays_run_python", False):
            self.recorder.note_replayed_step(self.optimizer)  # a replay runs no Python hook: count it here
        # a copy for the recorder: its loss rows keep the tensor, the next replay overwrites the buffer
        return self.static_losses.clone() if self.recorder is not None else self.static_losses
