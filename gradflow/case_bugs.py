"""The pieces of the case studies' bugs, written as the people in the questions wrote them: an ELU
whose exp overflows on raw pixels and its clamped fix (case 002), Keras' categorical cross-entropy
on tanh outputs (case 000), the autoencoders of case 004 and the accuracy that misleads there."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import register_activation


def naive_elu(x: torch.Tensor) -> torch.Tensor:
    """The question's ELU as written: exp() is evaluated for every x, also where x > 88."""
    return torch.where(x > 0, x, torch.exp(x) - 1)


def clamped_elu(x: torch.Tensor) -> torch.Tensor:
    """The answer's fix: exp only sees x <= 0, so it cannot overflow."""
    return torch.where(x > 0, x, torch.exp(torch.clamp(x, max=0)) - 1)


register_activation("case002_naive_elu", naive_elu, overwrite=True)
register_activation("case002_clamped_elu", clamped_elu, overwrite=True)
# how the case study page names them where a finding quotes the registered name
READABLE_NAMES = {"case002_naive_elu": "the hand-written ELU", "case002_clamped_elu": "the clamped ELU"}

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()


def keras_categorical_crossentropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' categorical_crossentropy with from_logits=False, as its backend computes it: the outputs
    are taken as probabilities, scaled to sum to 1, clipped to [eps, 1 - eps], then -sum(y * log p)."""
    onehot = F.one_hot(target, output.shape[-1]).to(output.dtype)
    p = output / output.sum(-1, keepdim=True)
    p = p.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    return -(onehot * p.log()).sum(-1).mean()


class CopyNet(nn.Module):
    """The blog's identity model: Dense(4096, use_bias=False, kernel=identity) + sigmoid."""

    def __init__(self, size: int):
        super().__init__()
        self.linear = nn.Linear(size, size, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(size))
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.linear(x))


class AutoEncoder(nn.Module):
    """keras.io's first autoencoder, the one the blog started from: Dense(relu) -> Dense(sigmoid)."""

    def __init__(self, size: int, code: int = 128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(size, code), nn.ReLU(), nn.Linear(code, size), nn.Sigmoid())

    def forward(self, x):
        return self.layers(x)


def binary_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Keras' binary_accuracy: the share of pixels on the same side of 0.5 as their target."""
    return float(((pred > 0.5) == (target > 0.5)).float().mean())
