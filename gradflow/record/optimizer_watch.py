"""Which torch optimizers step the recorded model: their class, learning rate and step count, and
which trainable parameters none of them holds.

The Recorder sees the model, not the user's optimizer. Without this, a model whose weights never
change has three causes the weights cannot tell apart (``optimizer.step()`` never called, an
optimizer built on another model's parameters, a learning rate of 0), and the learning rate can
only be described as "the learning rate". torch calls a global post-step hook after every
``Optimizer.step()`` (``torch.optim.optimizer.register_optimizer_step_post_hook``), so the watch
learns all of that while the Recorder is open, at the cost of a dictionary lookup per step.

What it cannot see: optimizers that do not subclass ``torch.optim.Optimizer``, and replays of a
captured CUDA graph (the hook runs once, at capture; gradflow's trainer reports each replay with
``replayed``). The summary says it watched, so a recording made before this existed reads as
"unknown", not as "no optimizer".

It also tells the Recorder whether the model's optimizer stepped since the last ``rec.step()``
(``took_no_step``): a gradient scaler (``torch.amp.GradScaler``) skips ``optimizer.step()`` when
the gradients hold inf/NaN, and the NaN/Inf sentinel keeps those skipped steps apart.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

MAX_NAMES = 20  # parameter names kept per list in the summary
LOW_LR = 1e-3  # a step whose learning rate is below this fraction of the first step's barely moves


def _lr_value(lr, every_step: bool = False) -> float | None:
    """A group's learning rate as a float. A tensor lr on a GPU is never read inside a graph capture,
    nor every step (each read would wait for the GPU)."""
    if isinstance(lr, torch.Tensor):
        if lr.is_cuda and (every_step or torch.cuda.is_current_stream_capturing()):
            return None
        return float(lr.detach().float().cpu())
    return float(lr) if isinstance(lr, (int, float)) else None


class _Seen:
    """One optimizer that stepped while the Recorder was open."""

    def __init__(self, optimizer, model_ids: dict[int, str]):
        self.ref = weakref.ref(optimizer)
        self.name = type(optimizer).__name__
        self.steps = 0
        self._hold(optimizer, model_ids)
        self.lr_first = self.lr()
        # the main group's weight decay and SGD momentum: with lr they set how fast decay shrinks the weights
        self.weight_decay, self.momentum = (self._setting(optimizer, k) for k in ("weight_decay", "momentum"))
        self.lr_last = None  # read when the watch is disarmed (the Recorder closes)
        self.low_steps = 0  # steps whose learning rate was below LOW_LR x the first step's

    def _hold(self, optimizer, model_ids: dict[int, str]):
        """Which of the model's parameters the optimizer holds, and in which group (read again when a
        group is added: add_param_group() to unfreeze a backbone later)."""
        self.groups = len(optimizer.param_groups)
        held = [(p, g) for g in optimizer.param_groups for p in g["params"] if id(p) in model_ids]
        self.params = {model_ids[id(p)] for p, _ in held}
        # the learning rate of the group that holds most of this model's parameters (None: none does)
        counts = [sum(id(p) in model_ids for p in g["params"]) for g in optimizer.param_groups]
        self.group = max(range(len(counts)), key=counts.__getitem__) if any(counts) else None
        zero = {id(p) for p, g in held if _lr_value(g.get("lr")) == 0}
        self.zero_lr = [name for i, name in model_ids.items() if i in zero]  # in the model's order

    def count(self, optimizer, model_ids: dict[int, str]):
        if len(optimizer.param_groups) != self.groups:
            self._hold(optimizer, model_ids)
        self.steps += 1
        lr = self.lr(every_step=True)
        if lr is not None and self.lr_first and lr < LOW_LR * self.lr_first:
            self.low_steps += 1

    def _setting(self, optimizer, key: str) -> float | None:
        value = optimizer.param_groups[self.group].get(key) if self.group is not None else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def lr(self, every_step: bool = False) -> float | None:
        opt = self.ref()
        if opt is None or self.group is None or self.group >= len(opt.param_groups):
            return None
        return _lr_value(opt.param_groups[self.group].get("lr"), every_step)


class OptimizerWatch:
    """Notes every torch optimizer step while armed; ``summary()`` says what it saw."""

    def __init__(self, model: nn.Module, guard=lambda fn: fn):
        # trainable parameters by id -> name (a parameter shared by two modules counts once)
        self._names = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
        self._seen: dict[int, _Seen] = {}  # id(optimizer) -> what it holds and did
        self._handle = None
        self._guard = guard
        self.watched = False
        self.model_steps = 0  # steps of optimizers holding this model's parameters
        self._steps_at_last_call = 0

    def arm(self):
        if self._handle is None:
            self._handle = register_optimizer_step_post_hook(self._guard(self._on_step))
            self.watched = True

    def disarm(self):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
            for seen in self._seen.values():
                seen.lr_last = seen.lr()

    def _on_step(self, optimizer, args, kwargs):
        seen = self._seen.get(id(optimizer))
        if seen is None or seen.ref() is not optimizer:  # a new optimizer (or a reused id)
            seen = self._seen[id(optimizer)] = _Seen(optimizer, self._names)
        seen.count(optimizer, self._names)
        self.model_steps += bool(seen.params)

    def replayed(self, optimizer):
        """An optimizer step inside a replayed CUDA graph, which runs no Python hook: counted as one."""
        if self._handle is not None:
            self._on_step(optimizer, (), {})

    def took_no_step(self) -> bool:
        """True when the watch is armed and no optimizer stepped this model's parameters since the
        last call (once per rec.step())."""
        before, self._steps_at_last_call = self._steps_at_last_call, self.model_steps
        return self._handle is not None and self.model_steps == before

    def summary(self) -> dict | None:
        """JSON-able: ``optimizers`` that stepped this model's parameters (class, steps, lr at the
        first step and at close, steps whose lr was below 1/1000 of the first, the main group's
        weight_decay and momentum, parameters held,
        parameters with lr 0), ``other_steps`` of optimizers that hold none of them, and the
        trainable parameters ``not_in_optimizer`` (only when some optimizer stepped this model).
        None when the watch was never armed."""
        if not self.watched:
            return None
        mine = [s for s in self._seen.values() if s.params]
        held = set().union(*(s.params for s in mine)) if mine else set()
        missing = [n for n in self._names.values() if n not in held] if mine else []
        return {
            "optimizers": [{"name": s.name, "steps": s.steps, "lr_first": s.lr_first,
                            "lr_last": s.lr() if s.lr_last is None else s.lr_last, "low_lr_steps": s.low_steps,
                            "weight_decay": s.weight_decay, "momentum": s.momentum,
                            "params": len(s.params), "zero_lr": s.zero_lr[:MAX_NAMES]} for s in mine],
            "other_steps": sum(s.steps for s in self._seen.values() if not s.params),
            "not_in_optimizer": missing[:MAX_NAMES], "not_in_optimizer_count": len(missing),
        }
