"""The models of the diagnosis benchmark, written as a practitioner would write them.

Besides the tutorial's ``BaseNetwork`` (gradflow.models) the benchmark needs: a small CNN (with
or without BatchNorm), a LayerNorm/self-attention encoder over image rows, an LSTM over image
rows, and the hand-written nets some bugs live in (seed 000's Keras port, dropout called
functionally in ``forward``, a layer defined but never used, a sigmoid autoencoder, a feature stage
whose gradient is lost on the way to the loss). Every model
takes a flat (N, 784) FashionMNIST batch, so one training loop serves them all.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks and a linear head; ``batch_norm`` adds BatchNorm2d after each conv,
    ``output`` puts a function on the logits (a bug: softmax before cross-entropy), ``unused``
    defines a layer that forward never calls (a bug: it gets no gradient)."""

    def __init__(self, batch_norm: bool = False, output: str | None = None, unused: bool = False):
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), norm(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), norm(16), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 7 * 7, 10)
        self.output = output
        if unused:
            self.extra = nn.Linear(16 * 7 * 7, 16 * 7 * 7)  # meant to go between features and head
        self.config = {"num_classes": 10}

    def forward(self, x):
        logits = self.head(self.features(x.view(-1, 1, 28, 28)).flatten(1))
        if self.output == "softmax":
            return F.softmax(logits, dim=1)
        return logits


class RowAttention(nn.Module):
    """A two-layer transformer encoder over the 28 image rows (tokens of 28 pixels), with a
    learned positional embedding initialised to zero (a common choice) and LayerNorm inside."""

    def __init__(self, d_model: int = 32, heads: int = 2, layers: int = 2):
        super().__init__()
        self.embed = nn.Linear(28, d_model)
        self.position = nn.Parameter(torch.zeros(1, 28, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)
        self.config = {"num_classes": 10}

    def forward(self, x):
        tokens = self.embed(x.view(-1, 28, 28)) + self.position
        return self.head(self.norm(self.encoder(tokens).mean(dim=1)))


class RowLSTM(nn.Module):
    """An LSTM reading the image row by row; the last hidden state feeds a linear head."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)
        self.config = {"num_classes": 10}

    def forward(self, x):
        out, _ = self.lstm(x.view(-1, 28, 28))
        return self.head(out[:, -1])


class KerasPortNet(nn.Module):
    """Seed 000's PyTorch net as ported from its Keras original: tanh hidden layers (functional, as
    written there) and tanh on the outputs, which Keras then fed to categorical cross-entropy."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)
        self.config = {"num_classes": 10}

    def forward(self, x):
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return torch.tanh(self.fc3(x))


class FunctionalDropoutNet(nn.Module):
    """An MLP that calls dropout in forward the TF1 way, passing a keep probability as ``p``."""

    def __init__(self, keep_prob: float = 0.9):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)
        self.keep_prob = keep_prob
        self.config = {"num_classes": 10}

    def forward(self, x):
        x = F.dropout(F.relu(self.fc1(x)), p=self.keep_prob, training=self.training)
        x = F.dropout(F.relu(self.fc2(x)), p=self.keep_prob, training=self.training)
        return self.fc3(x)


class TwoStageNet(nn.Module):
    """An MLP written as a feature stage and a classifier. ``cut`` loses the feature stage's gradient
    the ways users do: 'numpy' clips the features in NumPy (ReLU6 by hand), 'no_grad' runs the stage
    under torch.no_grad() (copied from a frozen-backbone recipe while the backbone is meant to train)."""

    def __init__(self, cut: str | None = None):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
        self.cut = cut
        self.config = {"num_classes": 10}

    def forward(self, x):
        if self.cut == "no_grad":
            with torch.no_grad():
                h = self.features(x)
        else:
            h = self.features(x)
        if self.cut == "numpy":
            h = torch.from_numpy(np.clip(h.detach().numpy(), 0.0, 6.0))
        return self.classifier(h)


class RawParamNet(nn.Module):
    """An MLP written without nn.Linear: raw nn.Parameter weights and biases used in a hand-written
    forward, and a learned 1-D gain of ones on the hidden units (all on the model itself, `<root>`).
    It standardises each image itself, with no parameter: none of it is a normalisation layer's."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(784, 128) / 784 ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(128))
        self.gain = nn.Parameter(torch.ones(128))
        self.w2 = nn.Parameter(torch.randn(128, 10) / 128 ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(10))
        self.config = {"num_classes": 10}

    def forward(self, x):
        x = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5)
        return (F.relu(x @ self.w1 + self.b1) * self.gain) @ self.w2 + self.b2


class SigmoidAutoencoder(nn.Module):
    """A dense autoencoder with a sigmoid on its reconstruction (seed 004's)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def scale_weights(model: nn.Module, factor: float) -> nn.Module:
    """Multiply every Linear/Conv weight by ``factor`` (the init-scale mutation)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(factor)
    return model


def constant_weights(model: nn.Module, value: float) -> nn.Module:
    """Every Linear weight set to ``value`` and every bias to 0 (the symmetric-initialisation mutation)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.fill_(value)
                m.bias.zero_()
    return model


def set_hidden_bias(model: nn.Module, value: float) -> nn.Module:
    """Set the bias of every hidden Linear (all but the last) to ``value`` (dying ReLU)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for m in linears[:-1]:
            m.bias.fill_(value)
    return model


def freeze(model: nn.Module, keep) -> nn.Module:
    """requires_grad=False on every parameter whose module is not an instance of ``keep`` (a type
    tuple) or whose name does not start with ``keep`` (a string prefix)."""
    for name, m in model.named_modules():
        kept = isinstance(m, keep) if isinstance(keep, tuple) else name.startswith(keep)
        for p in m.parameters(recurse=False):
            p.requires_grad_(kept)
    return model
