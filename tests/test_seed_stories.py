"""The seed bug stories (shared/seeds/), reproduced in PyTorch; each is caught by its finding."""
import re
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow.activations import get_activation, register_activation
from gradflow.data import load_fashion_mnist
from gradflow.diagnose import Evidence, diagnose, format_findings
from gradflow.models import BaseNetwork
from gradflow.record import Recorder


@pytest.fixture(scope="module")
def fmnist():
    d = load_fashion_mnist()
    return SimpleNamespace(x=d.train_x[:2048], y=d.train_y[:2048], val_x=d.val_x[:1000], val_y=d.val_y[:1000])


def _train(model, x, y, steps, lr=1e-2, momentum=0.9, batch=256, every=1):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    with Recorder(model, every=every) as rec:
        for step in range(steps):
            i = (step * batch) % len(y)
            opt.zero_grad()
            loss = F.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
            loss.backward()
            opt.step()
            rec.step(loss=loss)
    return rec


def _by_code(findings, code):
    return [f for f in findings if f.code == code]


def test_003_sigmoid_basenetwork_vanishes_and_does_not_learn(fmnist):
    """The activation tutorial: the sigmoid BaseNetwork does not learn (10 % test accuracy)."""
    torch.manual_seed(42)
    sig = BaseNetwork("sigmoid")
    rec = _train(sig, fmnist.x, fmnist.y, steps=6, every=5)  # records steps 0 and 5
    with torch.no_grad():
        val_acc = (sig(fmnist.val_x).argmax(1) == fmnist.val_y).float().mean().item()
    v = _by_code(diagnose(rec), "VANISHING_GRADIENT")
    assert v and v[0].layer == "layers.0" and v[0].evidence["ratio_first_step"] < 1e-3
    # the same recording inside a run with per-epoch metrics: the accuracy verdict
    run = Evidence.from_recording(rec, metrics=pd.DataFrame({"seed": [42], "epoch": [1], "train_loss": [2.31],
                                                             "val_acc": [val_acc]}), num_classes=10)
    codes = {f.code for f in diagnose(run)}
    assert {"VANISHING_GRADIENT", "NOT_LEARNING"} <= codes, (val_acc, codes)
    # the relu row of the same table learns and its gradients flow
    torch.manual_seed(42)
    relu = _train(BaseNetwork("relu"), fmnist.x, fmnist.y, steps=6, every=5)
    assert not [f for f in diagnose(relu) if f.severity != "info"], format_findings(diagnose(relu))


class Seed000Net(nn.Module):
    """The question's PyTorch net: tanh on every layer, the logits included, then cross-entropy."""

    def __init__(self, squash_logits=True):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)
        self.squash_logits = squash_logits

    def forward(self, x):
        x = x.view(-1, 784)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        x = self.fc3(x)
        return torch.tanh(x) if self.squash_logits else x


def test_000_tanh_on_the_logits_before_cross_entropy(fmnist):
    torch.manual_seed(0)
    rec = _train(Seed000Net(), fmnist.x, fmnist.y, steps=4, lr=1e-3, momentum=0.0)
    b = _by_code(diagnose(rec), "BOUNDED_OUTPUT")
    assert len(b) == 1 and b[0].severity == "error"
    assert b[0].evidence["op"] == "Tanh" and b[0].evidence["loss"] == "cross_entropy"
    assert "[-1, 1]" in b[0].message and "raw logits" in b[0].suggestion
    torch.manual_seed(0)
    fixed = _train(Seed000Net(squash_logits=False), fmnist.x, fmnist.y, steps=4, lr=1e-3, momentum=0.0)
    assert not _by_code(diagnose(fixed), "BOUNDED_OUTPUT")


def _seed002_elu(x):  # the question's custom_activation, as written: exp() is evaluated for every x
    return torch.where(x > 0, x, torch.exp(x) - 1)


register_activation("seed002_elu", _seed002_elu, overwrite=True)


def _elu_net(act):
    torch.manual_seed(0)
    layers, width = [], 784
    for _ in range(8):  # "a simple 8-layer fully connected network, 128 nodes in each layer"
        layers += [nn.Linear(width, 128), get_activation(act)]
        width = 128
    net = nn.Module()
    net.layers = nn.Sequential(*layers, nn.Linear(128, 10))
    net.forward = lambda x: net.layers(x)
    return net


def test_002_handwritten_elu_on_raw_pixels_gives_nan_named_at_the_first_layer(fmnist):
    raw = ((fmnist.x * 0.5 + 0.5) * 255).round()  # MNIST-style 0..255 inputs, not normalised
    rec = _train(_elu_net("seed002_elu"), raw, fmnist.y, steps=3, lr=0.01, momentum=0.0, batch=64)
    findings = diagnose(rec)
    nf = _by_code(findings, "NONFINITE")
    assert len(nf) == 1 and nf[0].severity == "error"
    assert nf[0].step == 0 and nf[0].layer == "layers.0", nf[0].message
    assert re.search(r"backward pass of the activations? at layers.1\b", nf[0].message)  # where the NaN is made: 0 * inf
    assert nf[0].evidence["created_by"][0] == "layers.1"
    assert nf[0].evidence["where"] == "grad"
    assert _by_code(findings, "UNNORMALIZED_INPUT")  # and the cause
    # the answer's fixes: normalised inputs, or exp(min(x, 0))
    ok = _train(_elu_net("seed002_elu"), raw / 255.0, fmnist.y, steps=3, lr=0.01, momentum=0.0, batch=64)
    assert not _by_code(diagnose(ok), "NONFINITE")
    ok = _train(_elu_net("elu"), raw, fmnist.y, steps=1, lr=0.01, momentum=0.0, batch=64)  # torch's own ELU
    assert not _by_code(diagnose(ok), "NONFINITE")


class Seed001Net(nn.Module):
    """The question's MLP: four 256-unit ReLU layers, each followed by dropout(dropout_prob=0.7)."""

    def __init__(self, p):
        super().__init__()
        layers, width = [], 784
        for _ in range(4):
            layers += [nn.Linear(width, 256), nn.ReLU(), nn.Dropout(p)]
            width = 256
        self.body, self.out = nn.Sequential(*layers), nn.Linear(256, 10)

    def forward(self, x):
        return self.out(self.body(x))


def test_001_keep_probability_passed_as_dropout_p(fmnist):
    rec = _train(Seed001Net(0.7), fmnist.x, fmnist.y, steps=1, lr=1e-3, momentum=0.0, batch=64)
    d = _by_code(diagnose(rec), "HIGH_DROPOUT")
    assert [f.layers for f in d] == [["body.2", "body.5", "body.8", "body.11"]]  # one finding for the one setting
    assert "probability of DROPPING" in d[0].message and "p=0.3" in d[0].message
    ok = _train(Seed001Net(0.3), fmnist.x, fmnist.y, steps=1, lr=1e-3, momentum=0.0, batch=64)
    assert not _by_code(diagnose(ok), "HIGH_DROPOUT")
    rec = _train(BaseNetwork("relu", dropout=0.7), fmnist.x, fmnist.y, steps=1, batch=64)
    d = _by_code(diagnose(rec), "HIGH_DROPOUT")
    assert len(d) == 1 and len(d[0].layers) == 4 and len(d[0].instances) == 4
