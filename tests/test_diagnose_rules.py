"""Rules that know what they look at: no false alarms on normalisation layers and constant-initialised
parameters, severities that follow how the run went, plateau vs not-learning by the loss trend,
a diverging loss called diverging. Real small models on FashionMNIST subsets."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import alarms, practitioner_loop
from torch import nn

from gradflow.data import load_fashion_mnist
from gradflow.diagnose import Evidence, diagnose, format_findings
from gradflow.diagnose import trend as T
from gradflow.diagnose.alternatives import rank_causes
from gradflow.diagnose.finding import Finding
from gradflow.models import BaseNetwork
from gradflow.record import Recorder
from gradflow.recording import load_recording


@pytest.fixture(scope="module")
def fmnist():
    d = load_fashion_mnist()
    return SimpleNamespace(x=d.train_x[:4096], y=d.train_y[:4096])


def _fit(model, data, steps, opt="adam", lr=1e-3, momentum=0.9, batch=128, every=None):
    torch.manual_seed(0)
    optimizer = (torch.optim.Adam(model.parameters(), lr=lr) if opt == "adam"
                 else torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
    return practitioner_loop(model, data, optimizer, steps, batch, every)


def _roles(rec):
    return {e["name"]: e["role"] for e in rec.summary()["layers"] if e["kind"] == "param"}


# --------------------------------------------------------------------------- normalisation, constant init


@pytest.mark.parametrize("opt,lr", [("adam", 1e-3), ("sgd", 1e-2)])
def test_batchnorm_mlp_that_learns_has_no_warning(fmnist, opt, lr):
    """The README's `--norm batch` net: BN scales start at exactly 1 (std 0), so their grad:data and
    update:data ratios mean nothing; they were an EXPLODING_GRADIENT error before."""
    torch.manual_seed(0)
    net = BaseNetwork("relu", hidden_sizes=[64, 32, 32], norm="batch")
    rec = _fit(net, fmnist, 80, opt=opt, lr=lr)
    roles = _roles(rec)
    assert roles["layers.1"] == "norm" and roles["layers.0"] == "weight" and roles["layers.9"] == "weight"
    findings = diagnose(rec)
    assert not alarms(findings), format_findings(findings)
    assert Evidence.of(rec).outcome(0).verdict == "fine"
    # the recorded ratios really are out of range on the BN scales: the rules had something to misread
    s = rec.tables()["scalars"]
    bn = s[s.layer.isin(["layers.1", "layers.4", "layers.7"])]
    grad_data = bn[bn.quantity == "grad_data_ratio"]["value"].astype(float)
    update = bn[bn.quantity == "update_data_ratio"].groupby("layer")["value"].median()
    assert np.nanmax(grad_data) > 10 or update.max() > 0.1, (grad_data.tolist(), update.tolist())


class PositionalNet(nn.Module):
    """A tiny attention-style model: a zero-initialised positional embedding on the model itself
    (`<root>`), LayerNorm, a linear read-out."""

    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(28, 28))  # rows of the image as 28 tokens of 28 features
        self.proj = nn.Linear(28, 32)
        self.norm = nn.LayerNorm(32)
        self.act = nn.GELU()
        self.head = nn.Linear(28 * 32, 10)

    def forward(self, x):
        tokens = x.reshape(-1, 28, 28) + self.pos
        return self.head(self.act(self.norm(self.proj(tokens))).flatten(1))


def test_zero_initialised_root_parameter_and_layernorm_give_no_ratio_finding(fmnist):
    torch.manual_seed(0)
    rec = _fit(PositionalNet(), fmnist, 60, lr=1e-3, every=4)
    roles = _roles(rec)
    assert roles == {"<root>": "constant-init", "proj": "weight", "norm": "norm", "head": "weight"}
    findings = diagnose(rec)
    assert not alarms(findings), format_findings(findings)
    ratio_codes = {"EXPLODING_GRADIENT", "UPDATE_RATIO", "VANISHING_GRADIENT"}
    assert not [f for f in findings if f.code in ratio_codes and f.layer in ("<root>", "norm")]
    # the zero embedding's recorded ratio at step 1 is the kind of number that raised the false alarm
    s = rec.tables()["scalars"]
    root = s[(s.layer == "<root>") & (s.quantity == "update_data_ratio")]["value"].astype(float)
    assert root.isna().iloc[0] or root.iloc[0] > 0.1


def test_a_normalisation_scale_that_is_really_blown_up_is_still_caught(fmnist):
    """Judged on its own scale (its RMS of 1), not skipped: a gradient 100s of times the scale counts."""
    from gradflow.diagnose.gradients import _grad_std_of, _on_own_scale, exploding_scale
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 10))
    with Recorder(net, every=1) as rec:
        loss = F.cross_entropy(net(fmnist.x[:256]), fmnist.y[:256]) * 1e5  # every gradient far too large
        loss.backward()
        rec.step(loss=loss)
    ev = Evidence.of(rec)
    judged = _on_own_scale(ev, "grad_data_ratio", _grad_std_of(ev)).set_index("layer")
    assert judged.loc["1", "scale"] == "rms" and judged.loc["1", "value"] > 10  # the LayerNorm, on its RMS
    assert judged.loc["0", "scale"] == "std"
    assert [f.code for f in exploding_scale(ev)] == ["EXPLODING_GRADIENT"]


# --------------------------------------------------------------------------- plateau vs not learning


def test_deep_sigmoid_slowly_leaving_its_plateau_gets_no_error(fmnist):
    """At 120 steps the loss is still within 5 % of ln(10) but falls for real (Adam 3e-4): vanishing
    gradients are a warning, never NOT_LEARNING or an error."""
    torch.manual_seed(0)
    rec = _fit(BaseNetwork("sigmoid", hidden_sizes=[128, 64, 64, 32]), fmnist, 120, lr=3e-4)
    ev = Evidence.of(rec)
    t = ev.loss_trend(0)
    assert t.tail_mean > 0.95 * math.log(10) and t.falling
    assert ev.outcome(0).verdict == "slow"
    findings = diagnose(rec)
    assert not [f for f in findings if f.severity == "error"], format_findings(findings)
    assert "NOT_LEARNING" not in {f.code for f in findings}
    v = [f for f in findings if f.code == "VANISHING_GRADIENT"]
    assert v and v[0].severity == "warning" and "falling slowly" in v[0].message
    assert "at most 0.25" in v[0].message and "Linear `layers.0`" in v[0].message
    assert v[0].suggestion.startswith("Replace sigmoid")


def test_a_genuinely_stuck_sigmoid_net_still_gets_its_errors(fmnist):
    """The tutorial's sigmoid net on SGD 1e-2: flat at ln(10) for 120 steps, gradients 1/7000 at the
    input: NOT_LEARNING and VANISHING_GRADIENT are errors."""
    torch.manual_seed(0)
    rec = _fit(BaseNetwork("sigmoid", hidden_sizes=[128, 64, 64, 32]), fmnist, 120, opt="sgd", lr=1e-2)
    findings = diagnose(rec)
    errors = {f.code for f in findings if f.severity == "error"}
    assert {"NOT_LEARNING", "VANISHING_GRADIENT"} <= errors, format_findings(findings)
    nl = [f for f in findings if f.code == "NOT_LEARNING"][0]
    assert "not falling" in nl.message and nl.evidence["loss_tail_slope_t"] > -T.SIGNIFICANT
    # One learning rate moves every layer: the output layer moves at a healthy ~3e-3 a step, so the
    # first layer's tiny steps come from its vanishing gradient, and the rate is not what to raise.
    causes = {a["cause"]: a for a in nl.alternatives}
    assert nl.alternatives[0]["cause"] == "vanishing gradients"
    low = causes["too low a learning rate"]
    assert low["verdict"] == "unlikely" and "the same rate moves Linear `layers.8`" in low["evidence"]
    vanish = [f for f in findings if f.code == "VANISHING_GRADIENT"][0]
    assert not any("learning rate" in a["cause"] for a in vanish.alternatives)  # a rate does not shrink a ratio
    slow = [f for f in findings if f.code == "UPDATE_RATIO"][0]
    assert slow.alternatives[0]["cause"] == "its gradient vanishes"
    assert slow.suggestion.startswith("Fix what makes this layer's gradient small") and "Linear `layers.8`" in slow.suggestion


def test_a_learning_rate_too_low_for_every_layer_is_named_first(fmnist):
    """The twin of the sigmoid net above: ReLU on SGD 1e-5, where no layer moves. Now the rate is the cause."""
    torch.manual_seed(0)
    findings = diagnose(_fit(BaseNetwork("relu", hidden_sizes=[128, 64, 64, 32]), fmnist, 120, opt="sgd", lr=1e-5))
    nl = [f for f in findings if f.code == "NOT_LEARNING"][0]
    assert nl.alternatives[0]["cause"] == "too low a learning rate" and nl.alternatives[0]["verdict"] == "supported"
    slow = [f for f in findings if f.code == "UPDATE_RATIO"][0]
    assert slow.suggestion.startswith("Raise the learning rate")
    assert slow.alternatives[0]["cause"] == "the learning rate is off for this layer"


def test_loss_trend_tells_noise_from_a_slow_fall():
    rng = np.random.default_rng(0)
    steps = np.arange(200)
    flat = 2.3026 + 0.02 * rng.standard_normal(200)
    slow = 2.32 - 3e-4 * steps + 0.02 * rng.standard_normal(200)  # 0.06 over the run: three times the noise std
    assert not T.loss_trend(steps, flat).falling
    assert T.loss_trend(steps, slow).falling
    chance = math.log(10)
    assert T.loss_outcome(T.loss_trend(steps, flat), chance).verdict == T.HURT
    assert T.loss_outcome(T.loss_trend(steps, slow), chance).verdict == T.SLOW
    assert T.loss_outcome(T.loss_trend(steps[:20], flat[:20]), chance).verdict == T.UNKNOWN  # too short to call
    assert T.loss_trend(steps[:5], flat[:5]) is None


# --------------------------------------------------------------------------- diverging


def test_lr_5_is_diverging_not_stuck_at_chance(fmnist):
    torch.manual_seed(0)
    rec = _fit(BaseNetwork("tanh", hidden_sizes=[128, 64]), fmnist, 60, opt="sgd", lr=5.0, momentum=0.0, every=8)
    findings = diagnose(rec)
    codes = {f.code for f in findings}
    assert "DIVERGING" in codes and "NOT_LEARNING" not in codes, format_findings(findings)
    d = [f for f in findings if f.code == "DIVERGING"][0]
    assert d.severity == "error" and "learning rate" in d.suggestion
    assert d.evidence["loss_tail_mean"] > 2 * math.log(10) and "chance level" not in d.message
    # the same from per-epoch metrics alone (a stored run): accuracy at chance, loss 566
    metrics = pd.DataFrame({"seed": 42, "epoch": [1, 2, 3], "train_loss": [140.0, 402.0, 566.0],
                            "val_acc": [0.10, 0.098, 0.101]})
    run = Evidence.from_stored({"run": {"max_epochs": 3, "patience": 7}, "model": {"num_classes": 10}}, metrics)
    found = diagnose(run)
    assert [f.code for f in found] == ["DIVERGING"], format_findings(found)
    assert "566" in found[0].message and found[0].seed == 42


# --------------------------------------------------------------------------- messages and shapes


def test_tanh_vanishing_message_does_not_call_its_derivative_small():
    torch.manual_seed(0)
    layers, width = [], 20
    for _ in range(8):
        layers += [nn.Linear(width, 20), nn.Tanh()]
        width = 20
    net = nn.Sequential(*layers, nn.Linear(20, 4))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(0.3)  # small weights: the gradient shrinks layer by layer
    x, y = torch.randn(128, 20), torch.randint(0, 4, (128,))
    with Recorder(net, every=1) as rec:
        for _ in range(2):
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            rec.step(loss=loss)
    v = [f for f in diagnose(rec) if f.code == "VANISHING_GRADIENT"]
    assert v, format_findings(diagnose(rec))
    assert "at most 1" in v[0].message and "small maximum derivative" not in v[0].message
    assert "Linear `0`" in v[0].message and "Linear `16`" in v[0].message
    # the weights were scaled down by hand: the ranked causes say so, and the suggestion follows them
    # (before diagnosis 12 it gave tanh's generic "keep the units out of saturation")
    assert v[0].alternatives[0]["cause"] == "too-small initialisation"
    assert "xavier" in v[0].suggestion and "not a smaller std" in v[0].suggestion


def test_findings_are_the_same_live_and_reloaded(fmnist, tmp_path):
    torch.manual_seed(0)
    rec = _fit(BaseNetwork("sigmoid", hidden_sizes=[64, 64, 64], norm="layer"), fmnist, 40, opt="sgd", lr=1e-2,
               every=4)
    live = [f.to_dict() for f in diagnose(rec)]
    again = [f.to_dict() for f in diagnose(load_recording(rec.save(tmp_path / "rec")))]
    assert live == again


@pytest.mark.parametrize("weight_scale,lr,first", [(10.0, 1e-2, "initialisation"), (1.0, 1.0, "learning rate")])
def test_a_blow_up_names_the_oversized_start_or_the_rate(fmnist, weight_scale, lr, first):
    """Both blow a ReLU net up within a few steps. The initial weight scale is measured before the rate
    takes a step, so weights ten times too large come first; at a normal scale, lr=1 does."""
    torch.manual_seed(0)
    net = BaseNetwork("relu")
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(weight_scale)
    findings = diagnose(_fit(net, fmnist, 120, opt="sgd", lr=lr))
    blown = [f for f in findings if f.code in ("EXPLODING_GRADIENT", "NONFINITE", "DIVERGING", "NOT_LEARNING")]
    assert blown, format_findings(findings)
    for f in blown:
        assert first in f.alternatives[0]["cause"], format_findings([f])
    if weight_scale > 1:
        rate = next(a for a in blown[0].alternatives if "learning rate" in a["cause"] and "high" in a["cause"])
        assert "oversized before any step" in rate["evidence"]


def test_raw_pixels_rank_above_the_rate_that_trains_normalised_inputs(fmnist):
    """The tutorial's own SGD lr=1e-2 on raw 0-255 pixels gives exploding gradients (case study 002's
    overflow, without the hand-written ELU); the same rate trains normalised pixels. Raw inputs alone
    make the updates and the loss this large, so every such finding names them first, the rate after."""
    raw = SimpleNamespace(x=(fmnist.x * 0.5 + 0.5) * 255, y=fmnist.y)
    torch.manual_seed(0)
    rec = _fit(BaseNetwork("relu"), raw, 120, opt="sgd", lr=1e-2)
    findings = diagnose(rec)
    # a layer rewritten too fast (case study 002's output layer): the raw inputs come before its rate
    fast = Finding("UPDATE_RATIO", "warning", "layers.8", 0, "moves too fast", {"cause": "large", "median": 0.14}, "")
    ranked = rank_causes(fast, Evidence.of(rec), {f.code for f in findings} | {"UPDATE_RATIO"})
    assert ranked[0]["cause"] == "unnormalised inputs make every update large", ranked
    slow = Finding("UPDATE_RATIO", "warning", "layers.8", 0, "barely moves", {"cause": "small", "median": 1e-6}, "")
    assert "unnormalised" not in rank_causes(slow, Evidence.of(rec), {"UPDATE_RATIO", "UNNORMALIZED_INPUT"})[0]["cause"]
    blown = [f for f in findings if f.code in ("EXPLODING_GRADIENT", "NONFINITE", "DIVERGING", "NOT_LEARNING")]
    assert blown and "UNNORMALIZED_INPUT" in {f.code for f in findings}, format_findings(findings)
    for f in blown:
        assert "unnormalised inputs" in f.alternatives[0]["cause"], format_findings([f])
        rate = [a for a in f.alternatives if "learning rate" in a["cause"] and "high" in a["cause"]]
        assert all(a["score"] < f.alternatives[0]["score"] for a in rate)
        assert all("inputs are unnormalised" in a["evidence"] for a in rate if a["verdict"] != "unlikely")


def test_dead_units_under_heavy_dropout_name_the_dropout_before_the_rate(fmnist):
    """Case study 001: p=0.7 kills a third of the first layer, p=0.3 with the same Adam rate kills none,
    so a DEAD_UNITS finding under heavy dropout names the dropout first; without dropout it is unlikely."""
    dead = Finding("DEAD_UNITS", "info", "layers.0", 60, "85 of 256 units dead", {"fraction": 0.33}, "")
    ranks = {}
    for p in (0.7, 0.0):
        torch.manual_seed(0)
        rec = _fit(BaseNetwork("relu", hidden_sizes=(256, 256), dropout=p), fmnist, 60)
        ranks[p] = rank_causes(dead, Evidence.of(rec), {"DEAD_UNITS"} | ({"HIGH_DROPOUT"} if p else set()))
    first = ranks[0.7][0]
    assert first["cause"].startswith("heavy dropout") and first["verdict"] == "supported", ranks[0.7]
    assert "p=0.7" in first["evidence"] and "3.3×" in first["evidence"]
    without = next(r for r in ranks[0.0] if r["cause"].startswith("heavy dropout"))
    assert without["verdict"] == "unlikely" and without["evidence"] == "no dropout"
