"""Each member of a stacked model with its own learning rate, exactly.

For SGD (with or without momentum, Nesterov, weight decay), Adam, AdamW and RMSprop the update of
a step is ``lr * d``, where ``d`` and the optimizer's state (momentum, moments) do not depend on
the learning rate (AdamW's decoupled decay is ``lr * wd * p``, also linear). So one optimizer
stepping with a reference rate ``lr_ref`` and each member's step rescaled by ``lr_m / lr_ref``
is the same update as a separate optimizer per member with ``lr_m``. The reference is the
largest rate: its members get the optimizer's step unchanged, bit for bit.

This is what lets a sweep over learning rates keep the rates inside one shard.
"""
from __future__ import annotations

import torch

# Optimizers whose update scales linearly with the learning rate (state independent of it).
LR_LINEAR_OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


def shard_key(config) -> tuple:
    """``config.batch_key()`` without the learning rate where members may have their own exactly."""
    key = config.batch_key()
    if config.optimizer in LR_LINEAR_OPTIMIZERS:
        key = tuple(kv for kv in key if kv[0] != "lr")
    return key


class MemberLR:
    """Wraps an optimizer over stacked ``(M, ...)`` parameters so member m steps with ``lrs[m]``.

    Offers what a training loop calls (``step``, ``zero_grad``, ``param_groups``, ``state``).
    Costs one copy of the parameters per step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lrs):
        lrs = [float(lr) for lr in lrs]
        if not lrs or min(lrs) <= 0:
            raise ValueError(f"member learning rates must be positive, got {lrs}")
        self.optimizer = optimizer
        self.reference = max(lrs)
        for group in optimizer.param_groups:
            group["lr"] = self.reference
            for p in group["params"]:
                if p.dim() == 0 or p.shape[0] != len(lrs):
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} is not stacked over "
                                     f"{len(lrs)} members in dim 0; per-member learning rates need stacked parameters")
        self.scale = torch.tensor([lr / self.reference for lr in lrs], dtype=torch.float64)  # (M,)
        self._scale_on: dict = {}

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def _weight(self, p: torch.Tensor) -> torch.Tensor:
        key = (p.device, p.dtype, p.dim())
        if key not in self._scale_on:
            self._scale_on[key] = self.scale.to(device=p.device, dtype=p.dtype).view(-1, *([1] * (p.dim() - 1)))
        return self._scale_on[key]

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        before = [p.detach().clone() for p in params]
        loss = self.optimizer.step(closure)
        for p, b in zip(params, before):
            # before + scale * (after - before); lerp returns `after` exactly where scale == 1
            p.copy_(torch.lerp(b, p, self._weight(p)))
        return loss


def with_member_lrs(optimizer: torch.optim.Optimizer, lrs):
    """``optimizer`` itself when every member has the same rate, else a :class:`MemberLR`."""
    lrs = [float(lr) for lr in lrs]
    if len(set(lrs)) <= 1:
        return optimizer
    return MemberLR(optimizer, lrs)
