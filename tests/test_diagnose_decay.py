"""Weights that collapse under an absurd weight decay, raw nn.Parameter models that are no norm layer,
a layer rewritten too fast on raw inputs, and NONFINITE's overflow cause said plainly (diagnosis 13)."""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from conftest import alarms, practitioner_loop
from torch import nn

from gradflow.diagnose import Evidence, diagnose, format_findings
from gradflow.diagnose.alternatives import CAUSES, causes_of, rank_causes
from gradflow.diagnose.facts import Facts
from gradflow.diagnose.finding import Finding
from gradflow.diagnose.fixes import FIXES, NONFINITE_INPUTS
from gradflow.diagnose.model_causes import constant_init


def _mlp(act=nn.ReLU):
    return nn.Sequential(nn.Linear(784, 128), act(), nn.Linear(128, 64), act(), nn.Linear(64, 10))


def _train(model, data, opt, steps, batch=128, every=None):
    """A practitioner's loop: shuffled batches, zero_grad, backward, step, rec.step(loss=...)."""
    return practitioner_loop(model, data, opt, steps, batch, every, shuffle=True)


def test_an_absurd_weight_decay_is_named_although_the_accuracy_is_not_at_chance(fmnist):
    """SGD lr=0.1, weight_decay=0.5 on a tanh MLP: the weights settle at a tenth of their start and the net keeps
    ~20 %, above chance, so neither accuracy nor loss rule fired and the run got no finding at all."""
    torch.manual_seed(0)
    model = _mlp(nn.Tanh)
    rec = _train(model, fmnist, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.5), 160)
    metrics = pd.DataFrame({"seed": 0, "epoch": [1, 2, 3, 4, 5], "val_acc": [0.23, 0.21, 0.22, 0.21, 0.21],
                            "train_loss": [2.05, 1.98, 1.96, 1.95, 1.94]})
    findings = diagnose(rec, metrics=metrics)
    found = [f for f in alarms(findings) if f.code == "NOT_LEARNING"]
    assert len(found) == 1 and found[0].evidence["cause"] == "weights_collapsed", format_findings(findings)
    f = found[0]
    assert f.evidence["median_shrink"] < 0.3 and "collapsed towards zero" in f.message
    assert f.alternatives[0]["cause"] == "weight decay so strong it pulls the weights to zero"
    assert f.alternatives[0]["verdict"] == "supported" and "weight_decay=0.5" in f.alternatives[0]["evidence"]
    assert f.suggestion.startswith("Lower weight_decay")


def test_usual_weight_decay_leaves_the_weights_alone(fmnist):
    torch.manual_seed(0)
    model = _mlp()
    rec = _train(model, fmnist, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4), 160)
    assert not [f for f in diagnose(rec) if f.evidence.get("cause") == "weights_collapsed"]


def test_collapse_with_no_decay_in_the_optimizer_points_at_an_l2_term_in_the_loss():
    ev = Evidence(summary={"optimizer_watch": {"optimizers": [
        {"name": "SGD", "steps": 100, "lr_first": 0.1, "weight_decay": 0.0, "momentum": 0.0}]}, "layers": [
        {"name": "0", "kind": "param", "type": "Linear", "order": 0, "shape": [8, 4], "role": "weight"},
        {"name": "1", "kind": "param", "type": "Linear", "order": 1, "shape": [2, 8], "role": "weight"}]},
        tables={"scalars": pd.DataFrame(
            [{"step": s, "epoch": 0, "member": 0, "seed": None, "layer": n, "quantity": "weight_std", "value": v}
             for n in ("0", "1") for s, v in ((0, 0.5), (99, 0.01))])})
    f = Finding("NOT_LEARNING", "warning", "0", 99, "m", {"cause": "weights_collapsed"})
    ranked = rank_causes(f, ev, {"NOT_LEARNING"})
    assert ranked[0]["cause"].startswith("an L2 penalty") and ranked[0]["verdict"] == "supported"
    assert all(c in FIXES for c, _ in causes_of(f))


class NormalizedMLP(nn.Module):
    """Raw nn.Parameter tensors in a hand-written forward; it standardises its input itself (hence its
    name), and a 1-D gain of ones sits on the model itself: none of it is a normalisation layer."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(784, 64) / 28)
        self.b1 = nn.Parameter(torch.zeros(64))
        self.w2 = nn.Parameter(torch.randn(64, 10) / 8)

    def forward(self, x):
        x = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5)
        return torch.tanh(x @ self.w1 + self.b1) @ self.w2


class RootGain(nn.Module):
    """nn.Linear layers and a raw 1-D gain of ones on the model itself (`<root>`)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 32), nn.Linear(32, 10)
        self.gain = nn.Parameter(torch.ones(32))

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)) * self.gain)


def test_raw_parameters_are_weights_not_a_norm_layer(fmnist):
    torch.manual_seed(0)
    model = NormalizedMLP()
    rec = _train(model, fmnist, torch.optim.SGD(model.parameters(), lr=0.05), 6, every=1)
    ev = Evidence.of(rec)
    assert ev.param_role("<root>") == "weight" and [e["name"] for e in ev.weight_layers()] == ["<root>"]
    facts = Facts(ev, set())
    assert facts.norm_layers == []
    score, line = constant_init(facts, Finding("UPDATE_RATIO", "warning", "<root>", 0, "m", {}, layers=["<root>"]))
    assert score < 0.4 and "scale 1, shift 0" not in line


def test_a_raw_1d_gain_on_the_model_is_a_constant_not_a_norm_scale(fmnist):
    torch.manual_seed(0)
    model = RootGain()
    rec = _train(model, fmnist, torch.optim.SGD(model.parameters(), lr=0.05), 6, every=1)
    ev = Evidence.of(rec)
    assert ev.param_role("<root>") == "constant-init" and Facts(ev, set()).norm_layers == []
    score, line = constant_init(Facts(ev, set()), Finding("UPDATE_RATIO", "warning", "<root>", 0, "m", {},
                                                          layers=["<root>"]))
    assert score > 0.7 and "scale 1, shift 0" not in line and "one constant" in line


def test_real_norm_layers_are_still_norm_layers(fmnist):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    rec = _train(model, fmnist, torch.optim.SGD(model.parameters(), lr=0.05), 4, every=1)
    ev = Evidence.of(rec)
    assert ev.param_role("1") == "norm" and Facts(ev, set()).norm_layers == ["1"]


def test_a_layer_rewritten_too_fast_lists_only_causes_of_large_steps():
    """Case study 002 (raw pixels): "a schedule that decayed", "its gradient vanishes" or "not in the optimizer"
    cannot make a step large; and the raw inputs come before "the learning rate is off for this layer"."""
    f = Finding("UPDATE_RATIO", "warning", "l", 0, "m", {"cause": "large", "median": 0.14})
    listed = [c for c, _ in causes_of(f)]
    assert not [c for c in listed if "decayed" in c or "vanishes" in c or "not in the optimizer" in c]
    assert len(listed) < len(CAUSES["UPDATE_RATIO"])
    ev = Evidence(summary={"layers": [], "input": {}})
    ranked = rank_causes(f, ev, {"UPDATE_RATIO", "UNNORMALIZED_INPUT"})
    assert ranked[0]["cause"] == "unnormalised inputs make every update large"
    rate = next(a for a in ranked if a["cause"] == "the learning rate is off for this layer")
    assert rate["verdict"] == "possible" and "unnormalised" in rate["evidence"]


def test_nonfinite_overflow_cause_says_what_overflowed_and_why():
    causes = [c for c, _ in CAUSES["NONFINITE"]]
    assert NONFINITE_INPUTS in causes and NONFINITE_INPUTS in FIXES
    for words in ("float32", "88.7", "inf", "NaN", "3.4e38"):
        assert words in NONFINITE_INPUTS
    assert "exp above 88.7, or" not in NONFINITE_INPUTS
