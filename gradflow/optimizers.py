"""Optimizers by name: the registry RunConfig validates against and training builds from.

Every optimizer here is elementwise, so one optimizer over stacked (M, ...) parameters updates
each member exactly as its own optimizer would (tests/test_stacked.py checks SGD and Adam).
"""
from __future__ import annotations

import torch

# name -> (parameters, RunConfig) -> optimizer
OPTIMIZER_BUILDERS = {
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
    "rmsprop": lambda params, c: torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum,
                                                     weight_decay=c.weight_decay),
}
OPTIMIZERS = tuple(OPTIMIZER_BUILDERS)


def make_optimizer(params, config) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, with its lr, momentum and weight decay."""
    if config.optimizer not in OPTIMIZER_BUILDERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; accepted: {', '.join(OPTIMIZERS)}")
    return OPTIMIZER_BUILDERS[config.optimizer](params, config)
