"""Each rule: a planted case that must fire, and healthy controls on which no warning or error fires."""
import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow import data
from gradflow.diagnose import Evidence, Finding, diagnose, format_findings
from gradflow.models import BaseNetwork
from gradflow.record import Recorder, Recording


@pytest.fixture(scope="module")
def synth():
    return data.synthetic(n_train=1024, n_val=256, n_test=64, seed=0)


def _fit(model, x, y, steps, lr=1e-2, momentum=0.9, batch=128, every=None, optimizer="sgd", rec_kwargs=None,
         dead=True, seed=0):
    torch.manual_seed(seed)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
    with Recorder(model, every=every, **(rec_kwargs or {})) as rec:
        for _step in range(steps):
            idx = torch.randint(0, len(y), (batch,))
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            rec.step(loss=loss)
        if dead:
            rec.dead_units(x)
    return rec


def _codes(findings, severities=("warning", "error")):
    return {f.code for f in findings if f.severity in severities}


def _planted(scalars=(), summary=None, dead=(), nonfinite=()):
    """A recording built from hand-written rows: the rule sees exactly the planted numbers."""
    s = pd.DataFrame(list(scalars), columns=["step", "epoch", "member", "seed", "layer", "quantity", "value"])
    s["seed"] = s["seed"].astype("Int64")
    base = {"format": "gradflow.recording", "steps": 100, "layers": [], "dropout": [], "output": {}, "loss": None,
            "missing_grad": {}, "errors": []}
    tables = {"scalars": s, "histograms": pd.DataFrame(),
              "nonfinite": pd.DataFrame(list(nonfinite), columns=["step", "epoch", "member", "seed", "layer", "where",
                                                                  "phase", "count", "order"]),
              "dead_units": pd.DataFrame(list(dead), columns=["step", "epoch", "member", "seed", "layer", "units", "dead",
                                                              "dead_fraction", "examples"])}
    return Recording("planted", tables, {**base, **(summary or {})})


def _param_layers(n):
    return [{"name": f"layers.{2 * i}", "kind": "param", "order": 2 * i} for i in range(n)]


# --------------------------------------------------------------------------- healthy controls


def test_healthy_relu_basenetwork_has_no_warnings(synth):
    rec = _fit(BaseNetwork("relu"), synth.train_x[:512], synth.train_y[:512], steps=16, every=5, batch=64)
    findings = diagnose(rec)
    assert not _codes(findings), format_findings(findings)
    s = rec.tables()["scalars"]
    loss = s[s.quantity == "loss"].sort_values("step").value
    assert loss.iloc[-5:].mean() < loss.iloc[:5].mean()  # it trained (slowly: SGD 1e-2 starts on a plateau)
    assert set(s.quantity) >= {"grad_std", "update_data_ratio", "saturation", "dead_fraction"}


def test_healthy_run_metrics_have_no_warnings():
    metrics = pd.DataFrame({"seed": 42, "epoch": range(1, 11), "train_loss": [1.0 - 0.05 * i for i in range(10)],
                            "val_acc": [0.80 + 0.008 * i for i in range(10)], "stopped": False})
    run = Evidence.from_stored(config={"run": {"max_epochs": 10, "patience": 7}}, metrics=metrics,
                               results=pd.DataFrame({"seed": [42], "test_acc": [0.88], "best_epoch": [10],
                                                     "stopped_epoch": [None], "epochs_trained": [10]}))
    assert diagnose(run) == []


# --------------------------------------------------------------------------- gradient flow


def test_vanishing_gradient_fires_on_deep_sigmoid_and_not_relu(synth):
    x, y = synth.train_x[:256], synth.train_y[:256]
    sig = _fit(BaseNetwork("sigmoid"), x, y, steps=2, every=1, dead=False)
    v = [f for f in diagnose(sig) if f.code == "VANISHING_GRADIENT"]
    assert len(v) == 1 and v[0].layer == "layers.0" and v[0].evidence["ratio_median"] < 1e-2
    assert "sigmoid" in v[0].message and "0.25" in v[0].message
    relu = _fit(BaseNetwork("relu"), x, y, steps=2, every=1, dead=False)
    assert "VANISHING_GRADIENT" not in _codes(diagnose(relu))


def test_exploding_gradient_rules():
    layers = _param_layers(3)
    grows = [(s, 0, 0, None, layer, "grad_std", v) for s in (0, 10) for layer, v in
             (("layers.0", 5.0), ("layers.2", 0.5), ("layers.4", 0.01))]
    f = diagnose(_planted(grows, {"layers": layers}))
    assert [x.code for x in f] == ["EXPLODING_GRADIENT"] and f[0].layer == "layers.0"
    # a layer whose gradient dwarfs its weights (real recording: tiny weights, ordinary gradient)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 3))
    with torch.no_grad():
        model[2].weight.mul_(1e-5)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    with Recorder(model, every=1) as rec:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        rec.step(loss=loss)
    f = [x for x in diagnose(rec) if x.code == "EXPLODING_GRADIENT"]
    # one step cannot say whether the run is hurt: a warning (an error needs a hurt run too)
    assert f and f[0].severity == "warning" and f[0].layer == "2" and f[0].evidence["grad_data_ratio"] > 10


# --------------------------------------------------------------------------- units


def test_dead_units_fire_on_a_killed_layer(synth):
    model = BaseNetwork("relu", hidden_sizes=[64, 32])
    with torch.no_grad():
        model.layers[2].bias.fill_(-100.0)  # every unit of the second hidden layer is negative for every input
    rec = _fit(model, synth.train_x, synth.train_y, steps=2, every=1)
    d = [f for f in diagnose(rec) if f.code == "DEAD_UNITS"]
    assert [(f.layer, f.severity, f.evidence["dead"]) for f in d] == [("layers.3", "error", 32)]


def test_saturation_fires_on_saturated_tanh_only(synth):
    x = synth.train_x[:256]
    hot = _fit(BaseNetwork("tanh", hidden_sizes=[64, 32]), x * 30, synth.train_y[:256], steps=3, every=1, dead=False)
    sat = [f for f in diagnose(hot) if f.code == "SATURATION"]
    assert sat and sat[0].severity == "warning" and sat[0].layer == "layers.1"
    assert sat[0].evidence["saturation_median"] > 0.25
    calm = _fit(BaseNetwork("tanh", hidden_sizes=[64, 32]), x, synth.train_y[:256], steps=3, every=1, dead=False)
    assert "SATURATION" not in {f.code for f in diagnose(calm)}


def test_update_ratio_too_small_and_too_large(synth):
    x, y = synth.train_x[:256], synth.train_y[:256]
    small = _fit(BaseNetwork("relu", hidden_sizes=[64, 32]), x, y, steps=3, lr=1e-8, every=1, dead=False)
    f = [f for f in diagnose(small) if f.code == "UPDATE_RATIO"]
    assert f and all(x.evidence["median"] < 1e-5 and "barely moves" in x.message for x in f)
    big = _fit(BaseNetwork("relu", hidden_sizes=[64, 32]), x, y, steps=3, lr=3.0, momentum=0.0, every=1, dead=False)
    f = [f for f in diagnose(big) if f.code == "UPDATE_RATIO"]
    assert f and any(x.evidence["median"] > 1e-1 and "too fast" in x.message for x in f)


def test_a_slow_layer_of_gradflows_trainer_is_not_blamed_on_its_own_rate():
    """gradflow train has one rate for every layer: when the last layer moves at 5e-3 per step, the first
    layer's 3e-6 is its gradient's doing ("the rate is off for this layer" unlikely). A loop of the
    user's own may give a layer a param group of its own: there it stays possible."""
    rows = [(s, 0, 0, 42, layer, "update_data_ratio", v) for s in range(0, 100, 10)
            for layer, v in (("layers.0", 3e-6), ("layers.8", 5e-3))]
    layers = {"layers": [{"name": "layers.0", "kind": "param", "order": 0, "shape": [512, 784], "type": "Linear"},
                         {"name": "layers.8", "kind": "param", "order": 8, "shape": [10, 128], "type": "Linear"}]}

    def rate_for_layer(run_config):
        ev = Evidence.from_stored(config={"run": run_config, "model": {"num_classes": 10}},
                                  recording=_planted(rows, layers))
        slow = [f for f in diagnose(ev) if f.code == "UPDATE_RATIO"][0]
        assert slow.layer == "layers.0"
        return next(a for a in slow.alternatives if a["cause"] == "the learning rate is off for this layer")

    ours = rate_for_layer({"optimizer": "sgd", "lr": 0.01})
    assert ours["verdict"] == "unlikely" and "one rate for every layer" in ours["evidence"], ours
    theirs = rate_for_layer({})
    assert theirs["verdict"] == "possible" and "param group of its own" in theirs["evidence"], theirs


# --------------------------------------------------------------------------- learning


def test_not_learning_from_the_loss_only():
    torch.manual_seed(0)
    x, y = torch.randn(512, 8), torch.randint(0, 4, (512,))
    stuck = nn.Sequential(nn.Linear(8, 4))
    with torch.no_grad():
        stuck[0].weight.zero_()
        stuck[0].bias.zero_()
    rec = _fit(stuck, x, y, steps=120, lr=0.0, every=50, dead=False)  # lr 0: the loss stays at ln(4)
    f = [f for f in diagnose(rec, num_classes=4) if f.code == "NOT_LEARNING"]
    assert f and f[0].severity == "error" and f"{math.log(4):.4f}" in f[0].message
    y2 = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # learnable
    ok = _fit(nn.Sequential(nn.Linear(8, 4)), x, y2, steps=120, lr=0.05, optimizer="adam", every=50, dead=False)
    assert "NOT_LEARNING" not in {f.code for f in diagnose(ok, num_classes=4)}


def _sigmoid_tutorial_run(train_loss, grads=None, stopped_epoch=8, max_epochs=50):
    """The tutorial's sigmoid row: best epoch 1, stopped at epoch 8 with patience 7, accuracy at chance."""
    metrics = pd.DataFrame({"seed": 42, "epoch": range(1, len(train_loss) + 1), "train_loss": train_loss,
                            "val_loss": 2.3026, "val_acc": [0.1003, 0.0991, 0.0989, 0.1, 0.0999, 0.0987, 0.1001, 0.0998],
                            "train_acc": 0.1, "stopped": [False] * 7 + [stopped_epoch is not None]})
    results = pd.DataFrame({"seed": [42], "test_acc": [0.10], "best_epoch": [1], "stopped_epoch": [stopped_epoch],
                            "epochs_trained": [stopped_epoch]})
    recordings = None
    if grads is not None:
        rows = [(s, s // 195, 0, 42, layer, "grad_std", v) for s, (g0, g8) in enumerate(grads)
                for layer, v in (("layers.0", g0), ("layers.8", g8))]
        recordings = _planted(rows, {"layers": [{"name": "layers.0", "kind": "param", "order": 0},
                                                {"name": "layers.8", "kind": "param", "order": 8}]})
    return Evidence.from_stored(config={"run": {"max_epochs": max_epochs, "patience": 7}, "model": {"num_classes": 10}},
                                metrics=metrics, results=results, recording=recordings)


def test_not_learning_and_plateau_stop_on_the_tutorial_sigmoid_run():
    falling = [2.3041, 2.3032, 2.3029, 2.3027, 2.3024, 2.3021, 2.3019, 2.3016]
    f = diagnose(_sigmoid_tutorial_run(falling))
    codes = [x.code for x in f]
    assert "NOT_LEARNING" in codes and "PLATEAU_STOP" in codes
    p = [x for x in f if x.code == "PLATEAU_STOP"][0]
    assert p.seed == 42 and "stopped, not unable" in p.message and "patience" in p.suggestion
    assert "2.3041 -> 2.3016" in p.message
    n = [x for x in f if x.code == "NOT_LEARNING"][0]  # one story: stopped while moving is not an error
    assert n.severity == "warning" and "PLATEAU_STOP" in n.message and "patience" in n.suggestion
    # no sign of progress (flat loss, flat gradients): not learning, but no plateau-stop excuse
    flat = [2.3026, 2.3027, 2.3026, 2.3027, 2.3026, 2.3027, 2.3026, 2.3027]
    f = diagnose(_sigmoid_tutorial_run(flat, grads=[(1e-6, 1e-2)] * 8))
    assert "NOT_LEARNING" in {x.code for x in f} and "PLATEAU_STOP" not in {x.code for x in f}
    assert [x.severity for x in f if x.code == "NOT_LEARNING"] == ["error"]
    stopped = _early_stop_cause(f)  # stopped, but the rule saw it stuck: not the excuse
    assert stopped["verdict"] == "unlikely" and "stuck, not cut short" in stopped["evidence"]
    # a loss that falls from above chance towards it (the tutorial's sigmoid: 2.3073 -> 2.3028) may be settling on
    # the uniform guess: the message says so instead of calling it learning
    settling = [2.3073, 2.3045, 2.3036, 2.3031, 2.3030, 2.3029, 2.3028, 2.3028]
    p = [x for x in diagnose(_sigmoid_tutorial_run(settling)) if x.code == "PLATEAU_STOP"][0]
    assert "still above the chance loss 2.3026, so on its own this may be the net settling on a uniform guess" \
        in p.message
    assert "settling" not in [x for x in diagnose(_sigmoid_tutorial_run(falling)) if x.code == "PLATEAU_STOP"][0].message
    # growing early-layer gradients alone are a sign of progress too
    f = diagnose(_sigmoid_tutorial_run(flat, grads=[(1e-6 * 1.3 ** i, 1e-2) for i in range(8)]))
    assert "PLATEAU_STOP" in {x.code for x in f}
    # ran to max_epochs: not an early-stopping problem
    f = diagnose(_sigmoid_tutorial_run(falling, stopped_epoch=None, max_epochs=8))
    assert "PLATEAU_STOP" not in {x.code for x in f}
    # ... and a seed that trained every epoch its recipe allows was never stopped: the quick preset's
    # sigmoid (4 epochs, patience 7) listed early stopping as a "possible" cause before
    ran_out = _early_stop_cause(f)
    assert ran_out["verdict"] == "unlikely" and "trained all 8 epochs" in ran_out["evidence"]


def _early_stop_cause(findings) -> dict:
    nl = [x for x in findings if x.code == "NOT_LEARNING"][0]
    return next(a for a in nl.alternatives if a["cause"].startswith("early stopping ended it"))


def test_a_member_is_judged_on_the_epochs_before_its_early_stop():
    """gradflow's batched trainer keeps an early-stopped member training with the batch; its results
    come from the epochs up to its stop. The tutorial's sigmoid seed stopped at epoch 14 with gradients
    1/4000 at the input; in its continuation to epoch 50 they recovered to 1/10. Judged on all 50 epochs
    it had no VANISHING_GRADIENT (the median was the continuation's); judged on its 14, it has."""
    layers = {"layers": [{"name": "layers.0", "kind": "param", "order": 0},
                         {"name": "layers.8", "kind": "param", "order": 8}]}
    rows = []
    for epoch in range(1, 51):
        first = 2.5e-4 if epoch <= 14 else 0.1  # first/last gradient std: vanished, then recovered
        rows += [(epoch * 10, epoch, 0, 42, "layers.0", "grad_std", first * 1e-2),
                 (epoch * 10, epoch, 0, 42, "layers.8", "grad_std", 1e-2)]
    rows.append((500, 50, 0, 42, "layers.6", "dead_fraction", 0.5))  # after training, on the best checkpoint
    results = pd.DataFrame({"seed": [42], "stopped_epoch": [14], "epochs_trained": [14], "epochs_recorded": [50]})
    config = {"run": {"max_epochs": 50, "patience": 7}, "model": {"num_classes": 10}}
    ev = Evidence.from_stored(config, results=results, recording=_planted(rows, layers))
    kept = ev.scalars
    assert kept[kept["quantity"] == "grad_std"]["epoch"].max() == 14
    assert (kept["quantity"] == "dead_fraction").sum() == 1  # measured after training: kept
    v = [f for f in diagnose(ev) if f.code == "VANISHING_GRADIENT"]
    assert v and v[0].evidence["recorded_steps"] == 14 and v[0].evidence["ratio_median"] < 1e-3
    # the same recording with the member trained to the end: judged on all 50 epochs, no finding
    to_end = results.assign(stopped_epoch=[None], epochs_trained=[50])
    assert "VANISHING_GRADIENT" not in {f.code for f in diagnose(Evidence.from_stored(
        config, results=to_end, recording=_planted(rows, layers)))}


# --------------------------------------------------------------------------- structure and data


def test_bounded_output_fires_for_cross_entropy_not_for_mse():
    torch.manual_seed(0)
    x, y = torch.randn(64, 12), torch.randint(0, 10, (64,))
    net = BaseNetwork("relu", input_size=12, hidden_sizes=[16], output_act="sigmoid")
    with Recorder(net) as rec:
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        rec.step(loss=loss)
    f = [f for f in diagnose(rec) if f.code == "BOUNDED_OUTPUT"]
    assert f and f[0].severity == "error" and f[0].layer == "layers.3"
    assert f[0].evidence["best_probability"] == pytest.approx(math.e / (math.e + 9), rel=0.05)
    # an autoencoder (seed 004): sigmoid output against [0, 1] targets with MSE is right, not a finding
    ae = nn.Sequential(nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 12), nn.Sigmoid())
    with Recorder(ae) as rec:
        target = torch.rand(64, 12)
        loss = F.mse_loss(ae(target), target)
        loss.backward()
        rec.step(loss=loss)
    assert rec.summary()["loss"]["kind"] == "mse"
    assert not _codes(diagnose(rec), ("warning", "error", "info")) & {"BOUNDED_OUTPUT"}


def test_softmax_before_cross_entropy_is_caught():
    """The classic PyTorch bug: nn.Softmax as the last layer, then F.cross_entropy softmaxes again."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 12), torch.randint(0, 10, (64,))
    for last, expect in ((nn.Softmax(dim=-1), True), (nn.LogSoftmax(dim=-1), False), (nn.Identity(), False)):
        net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10), last)
        with Recorder(net) as rec:
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            rec.step(loss=loss)
        f = [f for f in diagnose(rec) if f.code == "BOUNDED_OUTPUT"]
        assert bool(f) == expect, type(last).__name__
        if expect:
            assert f[0].severity == "error" and "Softmax" in f[0].message
            assert f[0].evidence["best_probability"] == pytest.approx(math.e / (math.e + 9), rel=1e-6)
            assert f[0].message.startswith("The logits pass through a bounded function (Softmax")
    # torch.softmax written in the loss line, outside the model: the range the recorder saw is the
    # model's own output, before the softmax, and the message says so
    net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10))
    with Recorder(net) as rec:
        loss = nn.CrossEntropyLoss()(torch.softmax(net(x), -1), y)
        loss.backward()
        rec.step(loss=loss)
    f = [f for f in diagnose(rec) if f.code == "BOUNDED_OUTPUT"]
    assert len(f) == 1 and f[0].severity == "error" and f[0].evidence["output_min"] < 0
    assert "The model's outputs (observed range [" in f[0].message and "between the model and the" in f[0].message


def test_unnormalized_input_fires_on_raw_pixels(synth):
    raw = ((synth.train_x[:256] + 1) * 127.5).round()  # back to 0..255
    model = BaseNetwork("relu", hidden_sizes=[32])
    rec = _fit(model, raw, synth.train_y[:256], steps=1, lr=1e-4, dead=False)
    f = [f for f in diagnose(rec) if f.code == "UNNORMALIZED_INPUT"]
    assert f and f[0].evidence["max"] == 255 and "x / 255" in f[0].suggestion
    rec = _fit(BaseNetwork("relu", hidden_sizes=[32]), synth.train_x[:256], synth.train_y[:256], steps=1, dead=False)
    assert "UNNORMALIZED_INPUT" not in {f.code for f in diagnose(rec)}


@pytest.mark.parametrize("p,fires", [(0.7, True), (0.9, True), (0.5, False), (0.2, False)])
def test_high_dropout(p, fires):
    model = BaseNetwork("relu", input_size=12, hidden_sizes=[16, 16], dropout=p)
    with Recorder(model) as rec:
        loss = F.cross_entropy(model(torch.randn(8, 12)), torch.randint(0, 10, (8,)))
        loss.backward()
        rec.step(loss=loss)
    f = [f for f in diagnose(rec) if f.code == "HIGH_DROPOUT"]
    assert bool(f) is fires
    if fires:
        assert "DROPPING" in f[0].message and f"p={1 - p:.2g}" in f[0].message
    run = Evidence.from_stored(config={"model": {"dropout": p}})
    assert bool([x for x in diagnose(run) if x.code == "HIGH_DROPOUT"]) is fires


def test_nonfinite_rule_reads_the_first_event():
    rows = [(3, 0, 0, None, "layers.0", "grad", "backward", 12, 0),
            (3, 0, 0, None, "layers.1", "activation_grad_in", "backward", 12, 1),
            (3, 0, 0, None, "layers.3", "activation_grad_in", "backward", 5, 3),  # passes on what it received
            (3, 0, 0, None, "layers.3", "activation_grad_out", "backward", 5, 3),
            (4, 0, 0, None, "layers.1", "activation", "forward", -1, 1)]
    f = diagnose(_planted(nonfinite=rows))
    assert [(x.code, x.layer, x.step) for x in f] == [("NONFINITE", "layers.0", 3)]
    assert "backward pass of the activation at layers.1" in f[0].message and f[0].evidence["created_by"] == ["layers.1"]


# --------------------------------------------------------------------------- API


def test_findings_are_serialisable_and_formatted(synth):
    f = Finding("X", "warning", "layers.0", 3, "msg", {"v": float("nan")}, "do this", 0, 5)
    assert json.loads(json.dumps(f.to_dict()))["evidence"]["v"] == "nan"
    text = format_findings([f])
    assert "WARNING" in text and "layers.0" in text and "step 3" in text and "do this" in text
    assert "No findings" in format_findings([])
    with pytest.raises(ValueError, match="severity"):
        Finding("X", "fatal", None, None, "m")


def test_diagnose_rejects_unknown_objects_and_reports_empty_recordings():
    with pytest.raises(TypeError, match="diagnose\\(\\) takes"):
        diagnose(42)
    model = nn.Linear(3, 2)
    with Recorder(model) as rec:
        pass
    assert [f.code for f in diagnose(rec)] == ["NO_DATA"]


def test_accumulating_gradient_quotes_a_finite_ratio_when_a_new_gradient_was_zero():
    """Dead units can leave a step's new gradient at exactly zero: the message quotes the last check
    with a ratio, or says the new gradient was zero; never 'infx'."""
    def rec(new_norms):
        checks = [{"step": s, "layer": "0", "member": 0, "stale_norm": 3.0, "new_norm": n}
                  for s, n in zip((2, 5, 17), new_norms)]
        return _planted(summary={"stale_grad": {"layer": "0", "checks": checks}})

    f = [f for f in diagnose(rec([1.5, 2.0, 0.0])) if f.code == "ACCUMULATING_GRADIENT"]
    assert len(f) == 1 and "(at step 5: 1.5x the size of the new gradient)" in f[0].message
    f = [f for f in diagnose(rec([0.0, 0.0, 0.0])) if f.code == "ACCUMULATING_GRADIENT"]
    assert "(at step 17: while the new gradient was zero)" in f[0].message and "inf" not in f[0].message


def test_every_layer_slow_says_how_far_below_healthy_it_is():
    """The whole-network UPDATE_RATIO says its own factor (3.3e-5 and 5.4e-5 are 19 to 30 times below 1e-3),
    not a fixed "ten to a hundred"."""
    rows = [(s, 0, 0, 42, layer, "update_data_ratio", v) for s in range(0, 100, 10)
            for layer, v in (("layers.0", 3.32e-5), ("layers.8", 5.4e-5))]
    layers = {"layers": [{"name": "layers.0", "kind": "param", "order": 0, "shape": [512, 784], "type": "Linear"},
                         {"name": "layers.8", "kind": "param", "order": 8, "shape": [10, 128], "type": "Linear"}]}
    ev = Evidence.from_stored(config={"run": {"optimizer": "sgd", "lr": 0.01}, "model": {"num_classes": 10}},
                              recording=_planted(rows, layers))
    slow = [f for f in diagnose(ev) if f.code == "UPDATE_RATIO" and f.evidence.get("cause") == "all_small"]
    assert slow, [f.code for f in diagnose(ev)]
    assert "19 to 30 times below the healthy 0.001" in slow[0].message and "ten to a hundred" not in slow[0].message
