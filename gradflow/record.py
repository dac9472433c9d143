"""Recorder: hooks around a user's own training loop, a schedule, on-device reductions, buffering.

    with Recorder(model) as rec:
        for x, y in batches:
            opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
            rec.step(loss=loss)
    rec.save(run_dir / "recording")

What is hooked (everything is removed on exit, also when training raises):
- every module with trainable parameters: a post-accumulate-grad hook on its main parameter
  (``weight``, else its largest) keeps a reference to the gradient and, on recorded steps, a copy of
  the weight before the optimizer step (for the update:data ratio);
- every activation module: a forward hook reduces its output (moments, histograms, saturation)
  and, on recorded steps, tensor hooks look at the gradients flowing through it;
- the model itself: its input (range, for unnormalised data) and output (bounded logits?).

Statistics are per *member*: a stacked module (attribute ``members`` = M) carries M independent
models in dim 0 of its parameters and activations; an ordinary module is one member. All members
are reduced at once. Results stay on the device as small tensors until a flush moves them to the
CPU in one transfer.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import stats
from .activations import Activation, is_bounded
from .loss_graph import BOUNDED_GRAD_FNS, inspect_loss, node_name
from .recording import (  # noqa: F401
    DEAD_COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    Recording,
    build_tables,
    frame,
    load_recording,
    save_recording,
)
from .seed_batch import SeedBatch

# Default schedule: steps 0, 1, 4, 16, 64 (the start, where most pathologies show, on a log scale)
# then every 200th step (about once per tutorial epoch of 195 steps). A recorded step costs about
# two plain steps on a CPU (histograms dominate), so this keeps the total cost at a few percent.
DEFAULT_EVERY = 200
DEFAULT_LOG_BASE = 4
# Pending device entries kept before a flush to the CPU (a flush is one device->host copy).
FLUSH_ENTRIES = 4096

# torch's elementwise activation modules (Softmax and friends are not elementwise: left out).
TORCH_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.CELU, nn.GELU,
                     nn.SiLU, nn.Mish, nn.Softplus, nn.SELU, nn.Hardtanh, nn.PReLU, nn.RReLU,
                     nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid,
                     nn.Threshold, nn.Softshrink, nn.Hardshrink)


# --------------------------------------------------------------------------- schedule


class Schedule:
    """Which steps are recorded: step 0 always, the powers of ``log_base`` below ``every`` (a log
    schedule for the start of training; ``log_base=None`` turns it off), then every ``every``-th
    step. ``Schedule(every=1)`` records every step."""

    def __init__(self, every: int = DEFAULT_EVERY, log_base: int | None = DEFAULT_LOG_BASE):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"schedule every must be a positive integer number of steps, got {every!r}")
        if log_base is not None and (isinstance(log_base, bool) or not isinstance(log_base, int) or log_base < 2):
            raise ValueError(f"schedule log_base must be an integer >= 2 or None, got {log_base!r}")
        self.every, self.log_base = every, log_base
        self._early = set()
        if log_base is not None:
            p = 1
            while p < every:
                self._early.add(p)
                p *= log_base

    def __call__(self, step: int) -> bool:
        return step % self.every == 0 or step in self._early

    def to_dict(self) -> dict:
        return {"every": self.every, "log_base": self.log_base}

    def __repr__(self):
        return f"Schedule(every={self.every}, log_base={self.log_base})"


def _as_schedule(schedule, every) -> Callable[[int], bool]:
    if schedule is not None and every is not None:
        raise ValueError("pass either schedule= or every=, not both")
    if every is not None:
        return Schedule(every=every, log_base=None)
    if schedule is None or schedule == "default":
        return Schedule()
    if schedule in ("all", "every_step"):
        return Schedule(every=1, log_base=None)
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        return Schedule(every=schedule, log_base=None)
    if callable(schedule):
        return schedule
    raise ValueError(f"schedule must be None/'default', 'all', a positive int (every N steps), a Schedule "
                     f"or a callable step -> bool; got {schedule!r}")


# --------------------------------------------------------------------------- what gets hooked


def is_activation_module(m: nn.Module) -> bool:
    """gradflow Activations, modules flagged ``is_activation = True``, torch's elementwise
    activations, and registered user activations (a leaf module with a ``config`` dict naming it)."""
    if isinstance(m, Activation) or getattr(m, "is_activation", False) is True or isinstance(m, TORCH_ACTIVATIONS):
        return True
    config = getattr(m, "config", None)
    return isinstance(config, dict) and "name" in config and not any(True for _ in m.children())


def _activation_name(m: nn.Module) -> str:
    config = getattr(m, "config", None)
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return type(m).__name__.lower()


def _main_parameter(m: nn.Module):
    params = {n: p for n, p in m.named_parameters(recurse=False) if p.requires_grad}
    if not params:
        return None, None
    if "weight" in params:
        return "weight", params["weight"]
    name = max(params, key=lambda n: params[n].numel())
    return name, params[name]


@dataclass
class _Layer:
    name: str
    module: nn.Module
    kind: str  # 'param' or 'activation'
    members: int
    stacked: bool  # dim 0 of tensors is the member (else a leading member dim of 1 is added)
    param_name: str | None = None
    param: torch.Tensor | None = None
    max_deriv: torch.Tensor | None = None  # (M,) largest |derivative| found by probing, activations only
    flat_both_sides: list | None = None
    probed: bool = False

    def view(self, t: torch.Tensor) -> torch.Tensor:
        """Tensor with the member in dim 0."""
        return t if self.stacked else t.unsqueeze(0)


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            if isinstance(o, torch.Tensor):
                return o
    if isinstance(obj, dict):
        for o in obj.values():
            if isinstance(o, torch.Tensor):
                return o
    return None


# --------------------------------------------------------------------------- the recorder


class Recorder:
    """Record gradient-flow statistics of ``model`` while the user's own loop trains it.

    model        -- any nn.Module with trainable parameters (stacked modules: attribute ``members``)
    schedule     -- which steps to record: None (default: 0, 1, 4, 16, 64, then every 200th),
                    'all', an int N (every N steps), a Schedule, or a callable step -> bool
    every        -- shortcut for schedule=N
    histograms   -- also record histograms (fixed edges in gradflow.stats) on recorded steps
    member_seeds -- seed of each member (stamped on rows as ``seed``); None leaves seed empty
    nonfinite_check -- 'every_step' (default: one norm per layer per step finds the first NaN/inf
                    step exactly) or 'recorded' (only recorded steps look, nothing else runs)
    """

    def __init__(self, model: nn.Module, schedule=None, every: int | None = None, histograms: bool = True,
                 member_seeds=None, nonfinite_check: str = "every_step"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Recorder needs a torch.nn.Module, got {type(model).__name__}")
        if isinstance(model, SeedBatch):  # its stacked tensors would pass for one model's: refuse, not mislead
            raise TypeError("Recorder cannot see inside a SeedBatch: vmap hides the model's layers. To record a "
                            "seed's gradient flow, train it alone: model = batch.member(m) (a copy of member m), "
                            "then Recorder(model) in your loop")
        if nonfinite_check not in ("every_step", "recorded"):
            raise ValueError(f"nonfinite_check must be 'every_step' or 'recorded', got {nonfinite_check!r}")
        self.model = model
        self.schedule = _as_schedule(schedule, every)
        self.histograms = bool(histograms)
        self.nonfinite_check = nonfinite_check
        self.epoch = 0
        self.layers, self.frozen = self._find_layers(model)
        self._param_layers = [lay for lay in self.layers if lay.kind == "param"]
        self.members = max([lay.members for lay in self.layers] + [1])
        if member_seeds is not None:
            member_seeds = [None if s is None else int(s) for s in member_seeds]
            if len(member_seeds) != self.members:
                raise ValueError(f"member_seeds has {len(member_seeds)} seeds but the model has {self.members} member(s)")
        self.member_seeds = member_seeds
        self._root_stacked = hasattr(model, "members")
        self._state = "new"  # new -> open -> closed
        self._handles: list = []
        self._step = 0
        self._active = False
        self._dead_mode = False
        self._order: dict[str, int] = {}
        self._reset_step_state()
        # pending device tensors, flushed to the CPU in batches
        self._pending_scalars: list = []  # (step, epoch, layer, quantity, tensor (M,))
        self._pending_hists: list = []  # (step, epoch, layer, kind, scale, tensor (M, bins))
        self._pending_sentinel: list = []  # (step, epoch, layout tuple, tensor (K,))
        # CPU side
        self._scalar_chunks: list[pd.DataFrame] = []
        self._hist_rows: list[dict] = []
        self._nonfinite: dict = {}  # (member, layer, where) -> (step, epoch, count)
        self._dead_rows: list[dict] = []
        self._recorded_steps: list[int] = []
        self._missing_grad: dict[str, list[int]] = {}
        self._errors: list[str] = []
        self._info: dict = {"output": {}, "loss": None}

    # ----------------------------------------------------------------- structure

    def _find_layers(self, model):
        layers, frozen = [], []
        for name, m in model.named_modules():
            label = name or "<root>"
            stacked = hasattr(m, "members")
            members = int(getattr(m, "members", 1) or 1)
            pname, p = _main_parameter(m)
            if p is not None:
                layers.append(_Layer(label, m, "param", members, stacked, pname, p))
            elif any(True for _ in m.parameters(recurse=False)):
                frozen.append(label)
            if is_activation_module(m):
                layers.append(_Layer(label, m, "activation", members, stacked))
        if not any(lay.kind == "param" for lay in layers):
            n = sum(p.numel() for p in model.parameters())
            what = "has no parameters" if n == 0 else f"has {n} parameters but none requires grad"
            raise ValueError(f"Recorder: the model ({type(model).__name__}) {what}; the recorder follows the gradients "
                             "of trainable parameters, so give it a model with parameters that require grad")
        return layers, frozen

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> Recorder:
        if self._state != "new":
            raise RuntimeError(f"this Recorder is {self._state}; a Recorder is entered once. "
                               "Create a new Recorder(model) for another recording")
        self._state = "open"
        try:
            self._register()
        except Exception:
            self._remove_hooks()
            self._state = "closed"
            raise
        self._active = bool(self.schedule(self._step))
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False  # never swallow the training loop's exception

    def close(self):
        """Remove every hook (idempotent). Recorded data stay available: tables(), save()."""
        self._remove_hooks()
        if self._state == "open":
            try:
                self._flush()
            finally:
                self._state = "closed"
        self._reset_step_state()

    def _remove_hooks(self):
        while self._handles:
            self._handles.pop().remove()

    def _register(self):
        h = self._handles
        h.append(self.model.register_forward_pre_hook(self._guard(self._on_model_input)))
        h.append(self.model.register_forward_hook(self._guard(self._on_model_output)))
        for lay in self.layers:
            if lay.kind == "param":
                h.append(lay.module.register_forward_hook(self._guard(self._order_hook(lay))))
                h.append(lay.param.register_post_accumulate_grad_hook(self._guard(self._grad_hook(lay))))
            else:
                h.append(lay.module.register_forward_hook(self._guard(self._activation_hook(lay))))

    def _guard(self, fn):
        """A failing statistic must never break the user's training: note it and carry on."""
        def hook(*args):
            try:
                fn(*args)
            except Exception as exc:  # reported by summary() and diagnose() as RECORDER_ERROR
                msg = f"step {self._step}: {type(exc).__name__}: {exc}"
                if len(self._errors) < 20:
                    self._errors.append(msg)
                if len(self._errors) == 1:
                    warnings.warn(f"gradflow Recorder: a statistic failed and was skipped ({msg})", stacklevel=2)
        return hook

    def _check_open(self, what: str):
        if self._state == "new":
            raise RuntimeError(f"Recorder.{what}() called before the recorder was entered; use "
                               "`with Recorder(model) as rec:` around the training loop")
        if self._state == "closed":
            raise RuntimeError(f"Recorder.{what}() called after the `with` block ended: its hooks are removed. "
                               "tables(), summary() and save() still work; for more recording create a new Recorder")

    def _reset_step_state(self):
        self._grads: dict = {}  # layer -> gradient tensor (reference, no copy)
        self._before: dict = {}  # layer -> weight copy before the optimizer step (recorded steps)
        self._act_refs: list = []  # (layer, output) for the every-step non-finite check
        self._seen: set = set()  # activation layers already reduced this step (first forward counts)
        self._last_act = None

    # ----------------------------------------------------------------- hooks

    def _training_forward(self) -> bool:
        # forwards under no_grad (the user's validation loop) are not training steps
        return self._state == "open" and torch.is_grad_enabled() and not self._dead_mode

    def _order_hook(self, lay):
        def hook(module, args, out):
            if lay.name not in self._order and self._training_forward():
                self._order[lay.name] = len(self._order)
        return hook

    def _on_model_input(self, module, args):
        if not (self._active and self._training_forward()):
            return
        x = _first_tensor(args)
        if x is None or not x.is_floating_point() or x.numel() == 0:
            return
        self._record_range("<input>", "input", x)

    def _on_model_output(self, module, args, out):
        if not (self._active and self._training_forward()):
            return
        y = _first_tensor(out)
        if y is None or not y.is_floating_point() or y.numel() == 0:
            return
        self._record_range("<output>", "output", y)
        info = self._info["output"]
        info["features"] = int(y.shape[-1]) if y.dim() else 1
        info["grad_fn"] = node_name(y.grad_fn) or None
        last = self._last_act
        info["activation_layer"] = last[0].name if last is not None and last[1] is y else None
        info["bounded"] = bool(info["grad_fn"] in BOUNDED_GRAD_FNS or
                               (last is not None and last[1] is y and self._layer_bounded(last[0])))

    def _record_range(self, layer, prefix, x):
        per_member = self._root_stacked and x.dim() >= 2 and x.shape[0] == self.members
        flat = x.detach().reshape(self.members if per_member else 1, -1).float()
        values = {"min": flat.amin(dim=1), "max": flat.amax(dim=1), "mean": flat.mean(dim=1),
                  "std": flat.std(dim=1, correction=0)}
        for q, v in values.items():
            self._add_scalar(layer, f"{prefix}_{q}", v.expand(self.members))

    def _grad_hook(self, lay):
        def hook(param):
            if self._state != "open":
                return
            self._grads[lay.name] = param.grad  # a reference: the values are read in step()
            if self._active and lay.name not in self._before:
                self._before[lay.name] = param.detach().clone()  # still the pre-step weight
        return hook

    def _activation_hook(self, lay):
        def hook(module, args, out):
            if self._state != "open" or not isinstance(out, torch.Tensor):
                return
            if self._dead_mode:
                self._accumulate_dead(lay, _first_tensor(args), out)
                return
            if not self._training_forward() or lay.name in self._seen:
                return
            self._seen.add(lay.name)
            self._last_act = (lay, out)
            if lay.name not in self._order:
                self._order[lay.name] = len(self._order)
            if self.nonfinite_check == "every_step":
                self._act_refs.append((lay, out))
            if self._active:
                self._reduce_activation(lay, _first_tensor(args), out)
        return hook

    def _derivative_and_max(self, lay, x):
        """Elementwise derivative at x (member view) and the max derivative per member."""
        d = lay.view(stats.derivative(lay.module.forward, x))  # forward(): bypasses our own hooks
        if not lay.probed:
            lay.probed = True
            try:
                peak, flat = stats.probe_derivative(lay.module.forward, lay.members, lay.stacked,
                                                    device=x.device, dtype=x.dtype)
                lay.max_deriv, lay.flat_both_sides = peak, [bool(v) for v in flat.tolist()]  # once per layer
            except Exception:  # not probe-able (e.g. PReLU with channels): the batch's own maximum serves
                lay.max_deriv, lay.flat_both_sides = None, None
        batch_max = torch.nan_to_num(d.detach().abs().reshape(d.shape[0], -1), nan=0.0, posinf=0.0).amax(dim=1)
        peak = batch_max if lay.max_deriv is None else torch.maximum(lay.max_deriv.to(batch_max.device), batch_max)
        return d, peak

    def _reduce_activation(self, lay, x, out):
        o = lay.view(out.detach())
        self._add_scalar(lay.name, "act_mean", stats.mean(o))
        self._add_scalar(lay.name, "act_std", stats.std(o))
        self._add_hist_and_nonfinite(lay.name, "act", o)
        if x is not None and x.is_floating_point() and x.shape == out.shape:
            d, peak = self._derivative_and_max(lay, x)
            self._add_scalar(lay.name, "saturation", stats.saturation(d, peak))
        if out.requires_grad:
            out.register_hook(self._guard(self._act_grad_hook(lay, "out")))
        if x is not None and x.requires_grad:
            x.register_hook(self._guard(self._act_grad_hook(lay, "in")))

    def _act_grad_hook(self, lay, side):
        step, epoch = self._step, self.epoch

        def hook(g):
            gv = lay.view(g.detach())
            if side == "out":
                self._add_scalar(lay.name, "act_grad_std", stats.std(gv), step, epoch)
            self._add_scalar(lay.name, f"act_grad_{side}_nonfinite", stats.nonfinite_count(gv).float(), step, epoch)
        return hook

    # ----------------------------------------------------------------- the user's call

    def step(self, loss=None) -> None:
        """Call once per training step, after ``optimizer.step()``. ``loss``: scalar or (members,)."""
        self._check_open("step")
        step = self._step
        if loss is not None:
            self._note_loss(loss)
        if self.nonfinite_check == "every_step":
            self._sentinel(loss)
        if self._active:
            self._reduce_parameters()
            self._recorded_steps.append(step)
        self._reset_step_state()
        self._step += 1
        self._active = bool(self.schedule(self._step))
        if len(self._pending_scalars) + len(self._pending_hists) + len(self._pending_sentinel) > FLUSH_ENTRIES:
            self._flush()

    @property
    def steps(self) -> int:
        """Number of rec.step() calls so far."""
        return self._step

    def _note_loss(self, loss):
        if not isinstance(loss, torch.Tensor):
            loss = torch.as_tensor(float(loss))
        if self._info["loss"] is None and loss.grad_fn is not None:
            self._info["loss"] = inspect_loss(loss)
        v = loss.detach().reshape(-1).float()
        if v.numel() == self.members:
            self._add_scalar("<model>", "loss", v)
        elif v.numel() == 1:  # one loss for several members (their sum or mean): member -1 = all
            self._pending_scalars.append((self._step, self.epoch, "<model>", "loss_all_members", v))
        else:
            raise ValueError(f"rec.step(loss=...): loss must be a scalar or have one value per member "
                             f"({self.members}), got shape {tuple(loss.shape)}")

    def _sentinel(self, loss):
        """One norm per layer and member: non-finite iff some element is NaN/inf. No sync here."""
        layout, values, single, single_layout = [], [], [], []
        tensors = [("activation", lay, out) for lay, out in self._act_refs]
        tensors += [("grad", lay, self._grads[lay.name]) for lay in self._param_layers if lay.name in self._grads
                    and self._grads[lay.name] is not None]
        for where, lay, t in tensors:
            if lay.stacked:  # one norm per member
                values.append(stats.norm(lay.view(t.detach())))
                layout.append((where, lay.name, lay.members))
            else:  # ordinary layers: gathered into one fused _foreach_norm call below
                single.append(t.detach())
                single_layout.append((where, lay.name, 1))
        if single:
            if len({(t.dtype, t.device) for t in single}) == 1:
                norms = torch.stack(torch._foreach_norm(single)).float()
            else:  # mixed precision or devices: one norm each
                norms = torch.stack([torch.linalg.vector_norm(t.float()) for t in single])
            values.insert(0, norms.to(values[0].device) if values else norms)
            layout = single_layout + layout
        if isinstance(loss, torch.Tensor):
            v = loss.detach().reshape(-1).float()
            values.append(v)
            layout.append(("loss", "<model>", v.numel()))
        if values:
            self._pending_sentinel.append((self._step, self.epoch, tuple(layout), torch.cat(values)))

    def _reduce_parameters(self):
        for lay in self._param_layers:
            g = self._grads.get(lay.name)
            if g is None:  # unused in forward, detached, or grads cleared before rec.step()
                self._missing_grad.setdefault(lay.name, []).append(self._step)
                continue
            gv, wv = lay.view(g.detach()), lay.view(lay.param.detach())
            before = self._before.get(lay.name)
            ref = wv if before is None else lay.view(before)
            g_std, w_std = stats.std(gv), stats.std(ref)
            self._add_scalar(lay.name, "grad_norm", stats.norm(gv))
            self._add_scalar(lay.name, "grad_std", g_std)
            self._add_scalar(lay.name, "grad_mean", stats.mean(gv))
            self._add_scalar(lay.name, "weight_std", w_std)
            self._add_scalar(lay.name, "grad_data_ratio", stats.ratio(g_std, w_std))
            if before is not None:  # std(w_after - w_before) / std(w_before), w_std already computed
                self._add_scalar(lay.name, "update_data_ratio", stats.ratio(stats.std(wv - ref), w_std))
            self._add_hist_and_nonfinite(lay.name, "grad", gv)

    def _add_scalar(self, layer, quantity, value, step=None, epoch=None):
        self._pending_scalars.append((self._step if step is None else step, self.epoch if epoch is None else epoch,
                                      layer, quantity, value.detach()))

    def _add_hist_and_nonfinite(self, layer, kind, x):
        """Histograms when enabled (their last bin counts the non-finite values), else just that count."""
        if not self.histograms:
            self._add_scalar(layer, f"{kind}_nonfinite", stats.nonfinite_count(x).float())
            return
        hists = stats.histograms(x, kind)
        for scale, counts in hists.items():
            self._pending_hists.append((self._step, self.epoch, layer, kind, scale, counts))
        self._add_scalar(layer, f"{kind}_nonfinite", hists["linear"][:, -1].float())

    # ----------------------------------------------------------------- dead units

    def dead_units(self, inputs: torch.Tensor, batch_size: int = 1024) -> pd.DataFrame:
        """A no-grad pass over ``inputs`` (N, ...) in eval mode; per activation layer and member the
        units that are dead for every example (derivative below DEAD_DERIV_FRACTION of its maximum,
        or |output| below DEAD_OUTPUT_TOL). Stored as ``dead_count``/``dead_fraction`` scalars at
        the current step and returned as a DataFrame."""
        self._check_open("dead_units")
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"dead_units needs a tensor of inputs (N, ...), got {type(inputs).__name__}")
        if inputs.dim() == 0 or inputs.shape[0] == 0:
            raise ValueError(f"dead_units needs at least one example; got inputs of shape {tuple(inputs.shape)}. "
                             "Pass the training inputs (N, ...) with N >= 1")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        device = next(iter(self.model.parameters())).device
        modes = {m: m.training for m in self.model.modules()}
        self._alive = {}
        self._dead_mode = True
        try:
            self.model.eval()  # dropout off, batch-norm running stats untouched
            with torch.no_grad():
                for i in range(0, inputs.shape[0], batch_size):
                    self.model(inputs[i:i + batch_size].to(device))
        finally:
            self._dead_mode = False
            for m, mode in modes.items():
                m.training = mode
        rows = []
        for name, (passes, carries) in self._alive.items():
            dead = ~(passes & carries)  # (M, U)
            count = dead.sum(dim=1)
            units = dead.shape[1]
            self._add_scalar(name, "dead_count", count.float())
            self._add_scalar(name, "dead_fraction", count.float() / units)
            for m, c in enumerate(count.tolist()):
                rows.append({"step": self._step, "epoch": int(self.epoch), "member": m, "seed": self._seed(m),
                             "layer": name, "units": units, "dead": int(c), "dead_fraction": c / units,
                             "examples": int(inputs.shape[0])})
        self._alive = {}
        self._dead_rows.extend(rows)
        return frame(rows, ["step", "epoch", "member", "seed", "layer", "units", "dead", "dead_fraction", "examples"])

    def _accumulate_dead(self, lay, x, out):
        if x is None or x.shape != out.shape:
            return
        d, peak = self._derivative_and_max(lay, x)
        passes, carries = stats.alive_units(lay.view(out), d, peak)
        if lay.name in self._alive:
            p0, c0 = self._alive[lay.name]
            passes, carries = passes | p0, carries | c0
        self._alive[lay.name] = (passes, carries)

    # ----------------------------------------------------------------- flushing and tables

    def _seed(self, member):
        if self.member_seeds is None or member < 0:
            return None
        return self.member_seeds[member]

    def _flush(self):
        """Move pending device results to the CPU: one transfer per kind of entry."""
        if self._pending_scalars:
            pend, self._pending_scalars = self._pending_scalars, []
            values = torch.cat([v.reshape(-1).float() for *_, v in pend]).cpu().numpy().astype(np.float64)
            sizes = [v.numel() for *_, v in pend]
            members = np.concatenate([np.arange(n) if q != "loss_all_members" else np.full(n, -1)
                                      for n, (_, _, _, q, _) in zip(sizes, pend)])
            quantity = [("loss" if q == "loss_all_members" else q) for _, _, _, q, _ in pend]
            chunk = pd.DataFrame({
                "step": np.repeat([p[0] for p in pend], sizes).astype(np.int64),
                "epoch": np.repeat([p[1] for p in pend], sizes).astype(np.int64),
                "member": members.astype(np.int64),
                "layer": np.repeat([p[2] for p in pend], sizes),
                "quantity": np.repeat(quantity, sizes),
                "value": values,
            })
            self._scalar_chunks.append(chunk)
            self._nonfinite_from_counts(chunk)
        if self._pending_hists:
            pend, self._pending_hists = self._pending_hists, []
            flat = torch.cat([c.reshape(-1) for *_, c in pend]).cpu().numpy()
            start = 0
            for step, epoch, layer, kind, scale, c in pend:
                m, bins = c.shape
                block = flat[start:start + m * bins].reshape(m, bins)
                start += m * bins
                for member in range(m):
                    self._hist_rows.append({"step": step, "epoch": epoch, "member": member, "layer": layer,
                                            "kind": kind, "scale": scale, "counts": block[member].astype(np.int64)})
        if self._pending_sentinel:
            pend, self._pending_sentinel = self._pending_sentinel, []
            flat = torch.cat([v for *_, v in pend]).cpu().numpy()
            start = 0
            for step, epoch, layout, v in pend:
                vals = flat[start:start + v.numel()]
                start += v.numel()
                if np.isfinite(vals).all():
                    continue
                i = 0
                for where, layer, m in layout:
                    for member in range(m):
                        if not np.isfinite(vals[i + member]):
                            shared_loss = where == "loss" and m != self.members  # one loss for all members
                            self._note_nonfinite(-1 if shared_loss else member, layer, where, step, epoch, -1)
                    i += m

    def _nonfinite_from_counts(self, chunk):
        bad = chunk[chunk["quantity"].str.endswith("_nonfinite") & (chunk["value"] > 0)]
        for r in bad.itertuples(index=False):
            where = {"act_nonfinite": "activation", "grad_nonfinite": "grad",
                     "act_grad_out_nonfinite": "activation_grad_out",
                     "act_grad_in_nonfinite": "activation_grad_in"}.get(r.quantity, r.quantity)
            self._note_nonfinite(r.member, r.layer, where, r.step, r.epoch, int(r.value))
        for r in chunk[(chunk["layer"].isin(["<input>", "<output>", "<model>"])) & ~np.isfinite(chunk["value"])].itertuples(index=False):
            self._note_nonfinite(r.member, r.layer, r.quantity.split("_")[0], r.step, r.epoch, -1)

    def _note_nonfinite(self, member, layer, where, step, epoch, count):
        key = (int(member), layer, where)
        old = self._nonfinite.get(key)
        if old is None or step < old[0] or (step == old[0] and old[2] < 0 <= count):
            self._nonfinite[key] = (int(step), int(epoch), int(count))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tidy tables: 'scalars', 'histograms', 'nonfinite', 'dead_units' (see module doc of stats
        for the histogram layout; edges: ``summary()['histogram_edges']``)."""
        self._flush()
        return build_tables(self._scalar_chunks, self._hist_rows, self._nonfinite, self._dead_rows,
                             self._order, self._seed)

    def summary(self) -> dict:
        """Structure and context the diagnosis needs (JSON-able): layers in forward order, dropout
        probabilities, bounded output, loss kind, input range, missing gradients, recorder errors."""
        self._flush()
        layers = []
        for lay in self.layers:
            entry = {"name": lay.name, "kind": lay.kind, "type": type(lay.module).__name__,
                     "order": self._order.get(lay.name), "members": lay.members}
            if lay.kind == "param":
                entry.update(param=lay.param_name, shape=list(lay.param.shape))
            else:
                entry.update(activation=_activation_name(lay.module), bounded=self._layer_bounded(lay),
                             flat_both_sides=lay.flat_both_sides,
                             max_derivative=None if lay.max_deriv is None else [float(v) for v in lay.max_deriv.tolist()])
            layers.append(entry)
        layers.sort(key=lambda e: (e["order"] is None, e["order"] if e["order"] is not None else 0))
        dropout = []
        for n, m in self.model.named_modules():
            # torch's dropouts (Dropout, Dropout1d/2d/3d, AlphaDropout) and stacked ones whose p is (members,)
            if not (isinstance(m, nn.modules.dropout._DropoutNd) or "dropout" in type(m).__name__.lower()):
                continue
            ps = getattr(m, "p", None)
            ps = ps.reshape(-1).tolist() if isinstance(ps, torch.Tensor) else [ps]
            for member, p in enumerate(ps):
                if isinstance(p, (int, float)):
                    dropout.append({"layer": n or "<root>", "p": float(p), "type": type(m).__name__,
                                    "member": member if len(ps) > 1 else None})
        config = getattr(self.model, "config", None)
        num_classes = config.get("num_classes") if isinstance(config, dict) else None
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "model": type(self.model).__name__,
            "members": self.members, "member_seeds": self.member_seeds, "steps": self._step,
            "recorded_steps": list(self._recorded_steps),
            "schedule": self.schedule.to_dict() if hasattr(self.schedule, "to_dict") else repr(self.schedule),
            "nonfinite_check": self.nonfinite_check, "histograms": self.histograms,
            "layers": layers, "frozen_layers": list(self.frozen), "dropout": dropout,
            "output": dict(self._info["output"]), "loss": self._info["loss"], "num_classes": num_classes,
            "missing_grad": {k: v[:20] for k, v in self._missing_grad.items()},
            "errors": list(self._errors),
            "histogram_edges": {f"{k}_{s}": stats.histogram_edges(k, s).tolist() for k, s in stats.HIST_EDGES},
        }

    def _layer_bounded(self, lay) -> bool:
        return bool(is_bounded(lay.module) or (lay.flat_both_sides and all(lay.flat_both_sides)))

    def save(self, directory) -> Path:
        """Write the tables (Parquet) and the summary (JSON) into ``directory``, each atomically."""
        return save_recording(directory, self.tables(), self.summary())
