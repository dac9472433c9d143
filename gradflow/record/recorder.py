"""Recorder: hooks around a user's own training loop; its lifecycle and what each step does.

    with Recorder(model) as rec:
        for x, y in batches:
            opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
            rec.step(loss=loss)
    rec.save(run_dir / "recording")

What is hooked (everything is removed on exit, also when training raises), see ``layers``:
- every module with trainable parameters: a post-accumulate-grad hook on its main parameter keeps
  a reference to the gradient and, on recorded steps, a copy of the weight before the optimizer
  step (for the update:data ratio);
- every activation module: a forward hook reduces its output (moments, histograms, saturation)
  and, on recorded steps, tensor hooks look at the gradients flowing through it;
- the model itself: its input (range, for unnormalised data), output (bounded logits?) and mode
  (model.eval() left on while training?), see ``boundary``.

The stages live beside this file: ``schedule`` (which steps), ``layers`` (what is hooked),
``boundary`` (the model's inputs, outputs, mode, targets), ``optimizer_watch`` (which optimizer
steps it, at which learning rate), ``layer_stats`` (what a recorded step computes per layer),
``buffer`` (device results -> tidy tables), ``sentinel`` (first NaN/inf), ``dead_units`` (a pass
of its own), ``structure`` (the summary's model description).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .. import quantities as Q
from .. import stats
from ..loss_graph import inspect_loss
from ..recording import DEAD_COLUMNS, FORMAT, FORMAT_VERSION, frame, save_recording
from . import structure
from .boundary import ModelBoundary
from .buffer import FLUSH_ENTRIES, Buffer
from .dead_units import dead_unit_pass
from .grad_accumulation import StaleGradCheck
from .layer_stats import LayerStatistics
from .layers import PARAM, find_layers, first_tensor
from .optimizer_watch import OptimizerWatch
from .schedule import as_schedule
from .sentinel import NonfiniteLog, Sentinel

NONFINITE_CHECKS = ("every_step", "recorded")
MAX_ERRORS = 20  # failing statistics kept for the summary (the first one also warns)


def _not_compiled(hook):
    """Keep torch.compile out of a hook: traced, a hook's reads of the recorder's state (its step, the
    layer it serves) become guards that fail every step and every layer, so dynamo recompiles until
    its limit (minutes, then a wall of warnings). Skipped, the hook runs eagerly between compiled pieces."""
    disable = getattr(torch.compiler, "disable", None)  # torch >= 2.1
    return disable(hook) if disable is not None else hook


class Recorder:
    """Record gradient-flow statistics of ``model`` while the user's own loop trains it.

    model        -- any nn.Module with trainable parameters (stacked modules: attribute ``members``)
    schedule     -- which steps to record: None/'default' (0, 1, 4, 16, 64, then every 200th),
                    'every' (alias 'all'), an int N (every N steps), a Schedule, or a callable step -> bool
    every        -- shortcut for schedule=N
    histograms   -- also record histograms (fixed edges in gradflow.stats) on recorded steps
    member_seeds -- seed of each member (stamped on rows as ``seed``); None leaves seed empty
    nonfinite_check -- 'every_step' (default: every step finds the first NaN/inf step and layer
                    exactly -- on a CPU one sum per layer, on a GPU one norm per layer folded on
                    the device) or 'recorded' (only recorded steps look, nothing else runs)
    """

    def __init__(self, model: nn.Module, schedule=None, every: int | None = None, histograms: bool = True,
                 member_seeds=None, nonfinite_check: str = "every_step"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Recorder needs a torch.nn.Module, got {type(model).__name__}")
        if getattr(model, "recordable", True) is False:  # e.g. SeedBatch: its layers are hidden from hooks
            raise TypeError(f"Recorder cannot see inside a {type(model).__name__}: {model.not_recordable_reason}")
        if nonfinite_check not in NONFINITE_CHECKS:
            raise ValueError(f"nonfinite_check must be 'every_step' or 'recorded', got {nonfinite_check!r}")
        self.model = model
        # torch.compile wraps the model: hooks go on the wrapper the loop calls, and the layers keep the
        # names the user gave them (not "_orig_mod.0")
        self._inner = getattr(model, "_orig_mod", model)
        self.schedule = as_schedule(schedule, every)
        self.histograms = bool(histograms)
        self.nonfinite_check = nonfinite_check
        self.epoch = 0
        self.layers, self.frozen = find_layers(self._inner)
        self._param_layers = [lay for lay in self.layers if lay.kind == PARAM]
        self.members = max([lay.members for lay in self.layers] + [1])
        if member_seeds is not None:
            member_seeds = [None if s is None else int(s) for s in member_seeds]
            if len(member_seeds) != self.members:
                raise ValueError(f"member_seeds has {len(member_seeds)} seeds but the model has {self.members} member(s)")
        self.member_seeds = member_seeds
        self._state = "new"  # new -> open -> closed
        self._handles: list = []
        self._step = 0
        self._active = False  # this step is recorded
        self._forward = structure.ForwardOrder()
        self._order = self._forward.position  # layer -> position in the training forward
        nonfinite = NonfiniteLog()
        # CPU scratch memory reused by every recorded step: histograms, pre-step weights, updates
        self._workspace = stats.Workspace()
        self._buffer = Buffer(self._seed, nonfinite, self._workspace)
        self._stats = LayerStatistics(self._buffer, self._workspace, self.histograms, self._guard)
        self._sentinel = Sentinel(self.members, nonfinite)
        self._recorded_steps: list[int] = []
        self._missing_grad: dict[str, list[int]] = {}
        self._errors: list[str] = []
        self._loss_info: dict | None = None
        self._stale_grad = StaleGradCheck(self._param_layers, self._guard)  # missing zero_grad (grad_accumulation)
        # the uncompiled module: the dropout probe's few no-grad passes need no compiling (and its hooks
        # would make torch.compile recompile)
        self._boundary = ModelBoundary(self._inner, self.layers, self.members, self._scalar)
        self._optimizers = OptimizerWatch(self._inner, self._guard)  # which optimizer steps the model, at which lr
        self._reset_step_state()

    # ----------------------------------------------------------------- lifecycle

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
        self._stale_grad.disarm()
        self._optimizers.disarm()
        while self._handles:
            self._handles.pop().remove()

    def _register(self):
        h = self._handles
        self._optimizers.arm()
        # with its keyword arguments: model(pixels=x) and model({"image": x}) have their input range read too
        h.append(self.model.register_forward_pre_hook(self._guard(self._on_model_input), with_kwargs=True))
        h.append(self.model.register_forward_hook(self._guard(self._on_model_output)))
        for lay in self.layers:
            if lay.kind == PARAM:
                h.append(self._register_order_hook(lay))
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
                if len(self._errors) < MAX_ERRORS:
                    self._errors.append(msg)
                if len(self._errors) == 1:
                    warnings.warn(f"gradflow Recorder: a statistic failed and was skipped ({msg})", stacklevel=2)
        return _not_compiled(hook)

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
        # forwards under no_grad (the user's validation loop, a dead-unit pass) are not training steps
        return self._state == "open" and torch.is_grad_enabled()

    def _scalar(self, layer, quantity, value, step=None, epoch=None):
        self._buffer.scalar(self._step if step is None else step, self.epoch if epoch is None else epoch,
                            layer, quantity, value)

    def _register_order_hook(self, lay):
        """Note the layer's place in the first training forward, then remove the hook: a module
        without forward hooks takes torch's fast call path on every later step."""
        def hook(module, args, out):
            self._forward.note(lay.name, self._training_forward())
            if lay.name in self._order:
                handle.remove()
        handle = lay.module.register_forward_hook(self._guard(hook))
        return handle

    def _on_model_input(self, module, args, kwargs=None):
        training = self._forward.in_training_forward = self._training_forward()
        if self._active and training:
            self._boundary.on_input(self._step, module.training, args, kwargs or {})

    def _on_model_output(self, module, args, out):
        self._forward.in_training_forward = False
        if self._active and self._training_forward():
            self._boundary.on_output(first_tensor(out), self._last_act)

    def _grad_hook(self, lay):
        def hook(param):
            if self._state != "open":
                return
            self._grads[lay.name] = param.grad  # a reference: the values are read in step()
            if self._active and lay.name not in self._before:  # still the pre-step weight: copy it
                keep = self._workspace.out(f"before {lay.name}", param)
                self._before[lay.name] = param.detach().clone() if keep is None else keep.copy_(param.detach())
        return hook

    def _activation_hook(self, lay):
        def hook(module, args, out):
            if not isinstance(out, torch.Tensor) or lay.name in self._seen:
                return
            if lay.name not in self._order:  # once per layer: every later step skips the call
                self._forward.note(lay.name, self._training_forward())
            if not self._training_forward():
                return
            self._seen.add(lay.name)
            self._last_act = (lay, out)
            if self.nonfinite_check == "every_step":
                self._act_refs.append((lay, out))
            if self._active:
                self._stats.activation(lay, first_tensor(args), out, self._step, self.epoch)
        return hook

    # ----------------------------------------------------------------- the user's calls

    def step(self, loss=None, targets=None) -> None:
        """Call once per training step, after ``optimizer.step()``. ``loss``: scalar or (members,);
        ``targets``: the batch's targets (optional; their range is compared with the model's output)."""
        self._check_open("step")
        if loss is not None:
            self._note_loss(loss)
        if targets is not None:
            if not isinstance(targets, (torch.Tensor, list, tuple)) and not hasattr(targets, "__array__"):
                raise TypeError(f"rec.step(targets=...) takes the batch's targets as a tensor or array, "
                                f"got {type(targets).__name__}")
            if self._active:
                self._boundary.note_targets(targets)
        unstepped = self._optimizers.took_no_step()  # a gradient scaler's skipped step, or a micro-batch
        if unstepped:
            self._sentinel.log.mark_unstepped(self._step)
        if self.nonfinite_check == "every_step":
            grads = [(lay, self._grads[lay.name]) for lay in self._param_layers
                     if self._grads.get(lay.name) is not None]
            every = [p.grad for p in self.model.parameters() if p.grad is not None] if unstepped else ()
            self._sentinel.check(self._step, self.epoch, self._act_refs, grads, loss, unstepped, every)
        if self._active:
            self._stats.parameters(self._param_layers, self._grads, self._before, self._missing_grad, self._step,
                                   self.epoch)
            if self.members == 1:  # a stacked model's members would need one norm each
                self._stats.total_grad_norm(self._inner, self._step, self.epoch)
            self._recorded_steps.append(self._step)
            self._stale_grad.arm(self._step, self._before)
            if self._boundary.probe_pending():
                self._boundary.probe_dropout()
        self._reset_step_state()
        self._step += 1
        self._active = bool(self.schedule(self._step))
        if len(self._buffer) + len(self._sentinel) > FLUSH_ENTRIES:
            self._flush()

    @property
    def steps(self) -> int:
        """Number of rec.step() calls so far."""
        return self._step

    def note_replayed_step(self, optimizer) -> None:
        """An optimizer step inside a replayed CUDA graph, where no Python hook runs: the optimizer watch
        counts it (else the step reads as one the optimizer skipped)."""
        self._optimizers.replayed(optimizer)

    @property
    def sentinel(self) -> Sentinel:
        """The non-finite check every step runs; a captured CUDA-graph step feeds it from inside the
        graph (gradflow.graph_sentinel) instead of through step()."""
        return self._sentinel

    def _note_loss(self, loss):
        if not isinstance(loss, torch.Tensor):
            loss = torch.as_tensor(float(loss))
        if self._loss_info is None and loss.grad_fn is not None:
            self._loss_info = inspect_loss(loss)
            if "reduced_shape" in self._loss_info:  # this step's output, to compare with what the loss reduced
                self._loss_info["output_shape"] = self._boundary.output.get("shape")
        v = loss.detach()  # shaped and widened at the flush, with every other scalar (one op here, per step)
        if v.numel() not in (1, self.members):
            raise ValueError(f"rec.step(loss=...): loss must be a scalar or have one value per member "
                             f"({self.members}), got shape {tuple(loss.shape)}")
        # one loss for several members (their sum or mean) belongs to all of them: member -1
        self._buffer.scalar(self._step, self.epoch, Q.MODEL_LAYER, Q.LOSS, v, shared=v.numel() != self.members)

    def dead_units(self, inputs: torch.Tensor, batch_size: int = 1024) -> pd.DataFrame:
        """A no-grad pass over ``inputs`` (N, ...) in eval mode; per activation layer and member the
        units that are dead for every example (see ``gradflow.record.dead_units``). Stored as
        ``dead_count``/``dead_fraction`` scalars at the current step and returned as a DataFrame."""
        self._check_open("dead_units")
        # the uncompiled module: the same computation, without compiling for a no-grad pass
        dead = dead_unit_pass(self._inner, self.layers, inputs, batch_size, self._guard)
        rows = []
        for name, d in dead.items():  # d: (M, U)
            count, units = d.sum(dim=1), d.shape[1]
            self._scalar(name, Q.DEAD_COUNT, count.float())
            self._scalar(name, Q.DEAD_FRACTION, count.float() / units)
            for m, c in enumerate(count.tolist()):
                rows.append({"step": self._step, "epoch": int(self.epoch), "member": m, "seed": self._seed(m),
                             "layer": name, "units": units, "dead": int(c), Q.DEAD_FRACTION: c / units,
                             "examples": int(inputs.shape[0])})
        self._buffer.dead_rows.extend(rows)
        return frame(rows, DEAD_COLUMNS)

    # ----------------------------------------------------------------- results

    def _seed(self, member):
        if self.member_seeds is None or member < 0:
            return None
        return self.member_seeds[member]

    def _flush(self):
        self._buffer.flush()
        self._sentinel.flush()

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tidy tables: 'scalars', 'histograms', 'nonfinite', 'dead_units' (see module doc of stats
        for the histogram layout; edges: ``summary()['histogram_edges']``)."""
        self._sentinel.settle(self._optimizers.model_steps, self._order)
        return self._buffer.tables(self._order)

    def summary(self) -> dict:
        """Structure and context the diagnosis needs (JSON-able): layers in forward order, dropout
        probabilities, bounded output, loss kind, input range, missing gradients, recorder errors."""
        self._flush()
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "model": type(self._inner).__name__,
            "members": self.members, "member_seeds": self.member_seeds, "steps": self._step,
            "recorded_steps": list(self._recorded_steps),
            "schedule": self.schedule.to_dict() if hasattr(self.schedule, "to_dict") else repr(self.schedule),
            "nonfinite_check": self.nonfinite_check, "histograms": self.histograms,
            "layers": structure.describe_layers(self.layers, self._order), "frozen_layers": list(self.frozen),
            "dropout": structure.find_dropout(self._inner),
            "train_mode": structure.train_mode(self._boundary.mode, self._inner),
            "output": dict(self._boundary.output), "loss": self._loss_info, "num_classes": structure.num_classes(self._inner),
            "missing_grad": {k: v[:20] for k, v in self._missing_grad.items()},
            "ran_without_grad": sorted(self._forward.without_grad),
            "dropout_masks": self._boundary.dropout_masks, "stale_grad": self._stale_grad.summary(),
            "targets": self._boundary.targets_summary(), "optimizer_watch": self._optimizers.summary(),
            "skipped_steps": self._sentinel.settle(self._optimizers.model_steps, self._order),
            "frozen_types": structure.module_types(self._inner, self.frozen),
            "errors": list(self._errors),
            "histogram_edges": {f"{k}_{s}": stats.histogram_edges(k, s).tolist() for k, s in stats.HIST_EDGES},
        }

    def save(self, directory) -> Path:
        """Write the tables (Parquet) and the summary (JSON) into ``directory``, all or nothing: a save
        interrupted over an earlier recording leaves that recording whole (``recording.save_recording``)."""
        return save_recording(directory, self.tables(), self.summary())

