"""Bugs in the scale of what goes in and what holds the weights: pixels divided by 255 twice, a
weight decay that pulls the weights to zero, and a run that learned a little and fell back to
chance. Each is named, its healthy twin is not, and the causes rank the planted bug first."""
import pandas as pd
import pytest
import torch
from test_diagnose_bugs import _alarms, _by_code, _mlp, _train

from gradflow.diagnose import Evidence, Finding, diagnose
from gradflow.diagnose.alternatives import rank_causes
from gradflow.diagnose.trend import accuracy_outcome

STUCK = Finding("NOT_LEARNING", "error", None, None, "validation accuracy at chance", {})


def test_pixels_divided_by_255_twice_are_named_and_ranked_first(fmnist):
    unit_pixels = (fmnist.x + 1) / 2  # what ToTensor() gives: [0, 1]
    rec = _train(_mlp(), unit_pixels / 255, fmnist.y, steps=20)
    found = _by_code(diagnose(rec), "UNNORMALIZED_INPUT")
    assert len(found) == 1 and found[0].evidence["cause"] == "tiny"
    assert "inputs are tiny: every value lies in [0, 0.00392]" in found[0].message
    assert "ToTensor() already" in found[0].message and "no extra / 255" in found[0].suggestion
    assert found[0].alternatives[0]["cause"].startswith("pixels divided by 255 twice")
    assert rank_causes(STUCK, Evidence.of(rec), {"NOT_LEARNING"})[0]["cause"].startswith("inputs scaled down")
    # ToTensor()'s [0, 1] pixels alone are fine, and so are sparse one-hot rows (small std, but they reach 1)
    assert not _by_code(diagnose(_train(_mlp(), unit_pixels, fmnist.y, steps=20)), "UNNORMALIZED_INPUT")
    one_hot = torch.nn.functional.one_hot(fmnist.y.repeat_interleave(1) * 78 + torch.arange(len(fmnist.y)) % 78,
                                          784).float()
    assert float(one_hot.std()) < 0.05
    assert not _by_code(diagnose(_train(_mlp(), one_hot, fmnist.y, steps=20)), "UNNORMALIZED_INPUT")


def test_raw_pixels_are_not_blamed_on_tiny_inputs(fmnist):
    rec = _train(_mlp(), (fmnist.x + 1) * 127.5, fmnist.y, steps=8, lr=1e-4)
    found = _by_code(diagnose(rec), "UNNORMALIZED_INPUT")
    assert found and found[0].evidence["cause"] == "large"
    assert found[0].alternatives[0]["cause"].startswith("raw 0-255 pixels")


def _decayed(fmnist, weight_decay):
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=weight_decay)
    from gradflow.record import Recorder
    with Recorder(net) as rec:
        for step in range(60):
            i = (step * 128) % (len(fmnist.y) - 127)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(fmnist.x[i:i + 128]), fmnist.y[i:i + 128])
            loss.backward()
            opt.step()
            rec.step(loss=loss)
    return rec


def test_a_weight_decay_that_pulls_the_weights_to_zero_is_the_first_cause(fmnist):
    strong = rank_causes(STUCK, Evidence.of(_decayed(fmnist, 0.5)), {"NOT_LEARNING"})
    assert strong[0]["cause"] == "weight decay so strong it pulls the weights to zero"
    assert strong[0]["verdict"] == "supported" and "weight_decay=0.5 (SGD lr=0.01)" in strong[0]["evidence"]
    usual = rank_causes(STUCK, Evidence.of(_decayed(fmnist, 5e-4)), {"NOT_LEARNING"})
    wd = next(a for a in usual if a["cause"].startswith("weight decay"))
    assert wd["verdict"] == "unlikely" and usual[0] is not wd


@pytest.mark.parametrize("val_acc, reason", [
    ([0.18, 0.09, 0.09, 0.09, 0.09], "accuracy_back_at_chance"),  # learned a little, then fell back
    ([0.05, 0.09, 0.11, 0.12, 0.13], "accuracy_at_chance"),
    ([0.30, 0.09, 0.09, 0.40, 0.45], "accuracy_above_chance"),  # a dip it climbed out of
    ([0.60, 0.70, 0.75, 0.09, 0.09], "accuracy_above_chance"),  # two epochs at chance: too few to tell
])
def test_an_accuracy_that_falls_back_to_chance_is_not_learning(val_acc, reason):
    assert accuracy_outcome(val_acc, 10).reason == reason


def test_the_fell_back_finding_says_when_and_for_how_long(fmnist):
    rec = _train(_mlp(), fmnist.x, fmnist.y, steps=8)
    metrics = pd.DataFrame({"seed": 0, "epoch": range(6), "train_loss": 2.3,
                            "val_acc": [0.179, 0.093, 0.093, 0.093, 0.093, 0.093]})
    stuck = [f for f in _alarms(diagnose(rec, metrics=metrics)) if f.code == "NOT_LEARNING"]
    assert len(stuck) == 1 and stuck[0].evidence["cause"] == "fell_back"
    assert "rose to 17.9 % in epoch 0, then fell back to within 5 points of chance and stayed there for the last 5 epochs" \
        in stuck[0].message


def _clipped(fmnist, max_norm, steps=40):
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    from gradflow.record import Recorder
    with Recorder(net) as rec:
        for step in range(steps):
            i = (step * 128) % (len(fmnist.y) - 127)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(fmnist.x[i:i + 128]), fmnist.y[i:i + 128])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            opt.step()
            rec.step(loss=loss)
    return rec


def test_gradients_clipped_to_a_tiny_norm_are_named_before_the_learning_rate(fmnist):
    rec = _clipped(fmnist, 1e-3)
    scalars = rec.tables()["scalars"]
    norms = scalars[scalars["quantity"] == "grad_norm_total"]["value"]
    assert len(norms) == 4 and norms.to_numpy() == pytest.approx(1e-3, rel=1e-4)  # steps 0, 1, 4, 16
    found = {f.code: f for f in _alarms(diagnose(rec))}
    assert "UPDATE_RATIO" in found
    assert found["UPDATE_RATIO"].alternatives[0]["cause"].startswith("gradients clipped to a tiny norm")
    ranked = rank_causes(STUCK, Evidence.of(rec), {"NOT_LEARNING"})
    assert ranked[0]["cause"].startswith("gradients clipped") and "max_norm=0.001" in ranked[0]["evidence"]
    low = next(a for a in ranked if a["cause"] == "too low a learning rate")
    assert "clipped to norm 0.001, which alone makes the steps small" in low["evidence"]
    # clipping at a usual max_norm leaves a norm that wanders below it: no clipping seen
    usual = rank_causes(STUCK, Evidence.of(_clipped(fmnist, 1.0)), {"NOT_LEARNING"})
    clip = next(a for a in usual if a["cause"].startswith("gradients clipped"))
    assert clip["verdict"] == "unlikely" and "no clipping seen" in clip["evidence"]


def test_a_run_of_gradflows_own_trainer_is_never_suspected_of_clipping(fmnist):
    """Stacked runs keep no joint gradient norm; their trainer has no clipping, so the finding must not
    send a student looking for a clip_grad_norm_ call that does not exist."""
    ev = Evidence.of(_clipped(fmnist, 1.0, steps=8))
    ev.tables["scalars"] = ev.scalars[ev.scalars["quantity"] != "grad_norm_total"]  # as a stacked run records
    def clip_cause():
        return next(a for a in rank_causes(STUCK, ev, {"NOT_LEARNING"}) if a["cause"].startswith("gradients clipped"))
    assert clip_cause()["verdict"] == "possible"  # a loop of the user's own: nothing says either way
    ev.config = {"training_step": "eager"}
    assert clip_cause()["verdict"] == "unlikely" and "never clips" in clip_cause()["evidence"]


def test_pytorchs_default_scale_behind_sigmoid_is_a_possible_cause_not_an_unlikely_one(fmnist):
    """Kaiming's 2.4x larger start rescues a sigmoid net (page 7), so the default scale is no 'opposite'."""
    sigmoid = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.Sigmoid(), torch.nn.Linear(128, 64),
                                  torch.nn.Sigmoid(), torch.nn.Linear(64, 10))
    ev = Evidence.of(_train(sigmoid, fmnist.x, fmnist.y, steps=8))
    vanish = Finding("VANISHING_GRADIENT", "error", "0", 0, "vanishing", {})
    small = next(a for a in rank_causes(vanish, ev, {"VANISHING_GRADIENT"}) if a["cause"] == "too-small initialisation")
    assert small["verdict"] == "possible" and "about 2.4x below Kaiming's" in small["evidence"]
    relu = Evidence.of(_train(_mlp(), fmnist.x, fmnist.y, steps=8))  # no bounded activation: the scale is no cause
    small = next(a for a in rank_causes(vanish, relu, {"VANISHING_GRADIENT"}) if a["cause"] == "too-small initialisation")
    assert small["verdict"] == "unlikely"


def test_a_loss_that_misreads_the_outputs_is_not_blamed_on_the_learning_rate(fmnist):
    """Case study 000: Keras' log of tanh outputs makes the loss rise under Adam lr=1e-3; the rate is not
    what the run shows, so 'too high a learning rate' must not read as supported next to BOUNDED_OUTPUT."""
    ev = Evidence.of(_clipped(fmnist, 1.0, steps=8))
    sat = Finding("SATURATION", "error", "layers.1", None, "saturated", {})
    def lr_cause(codes):
        return next(a for a in rank_causes(sat, ev, codes) if a["cause"] == "too high a learning rate")
    assert lr_cause({"SATURATION", "DIVERGING"})["verdict"] == "supported"
    blamed = lr_cause({"SATURATION", "DIVERGING", "BOUNDED_OUTPUT"})
    assert blamed["verdict"] == "possible" and "the loss misreads the model's outputs" in blamed["evidence"]


def test_weight_decay_read_from_the_optimizer_when_the_stored_recipe_does_not_say(fmnist):
    ev = Evidence.of(_clipped(fmnist, 1.0, steps=8))
    ev.config = {"run": {"lr": 0.01}}  # a plain-loop run's config: a rate, no weight_decay key
    decay = next(a for a in rank_causes(STUCK, ev, {"NOT_LEARNING"}) if a["cause"].startswith("weight decay"))
    assert decay["verdict"] == "unlikely" and "no weight decay" in decay["evidence"]


def test_an_output_saturated_by_targets_at_the_ends_of_its_range_is_a_note(fmnist):
    """Case study 004: an autoencoder's sigmoid output pushed to 0 and 1 by black-and-white pixels is the
    fit, not stuck units; targets outside its range are a different bug (TARGET_OUT_OF_RANGE)."""
    from gradflow.diagnose.outputs import output_fits_targets
    net = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 784), torch.nn.Sigmoid())
    pixels01 = (fmnist.x + 1) / 2  # the fixture's images in [-1, 1]: [0, 1] targets
    mse = lambda out, target: torch.nn.functional.mse_loss(out, target)  # noqa: E731
    ok = _train(net, fmnist.x, pixels01, steps=5, loss_fn=mse, targets=lambda xb, yb: yb)
    assert output_fits_targets(Evidence.of(ok)) == "3"
    off = _train(net, fmnist.x, fmnist.x, steps=5, loss_fn=mse, targets=lambda xb, yb: yb)  # [-1, 1] targets
    assert output_fits_targets(Evidence.of(off)) is None


def test_saturation_is_not_read_from_steps_after_a_nan():
    """Case study 002: once the activations are NaN/inf every unit reads as flat; that is NONFINITE's story."""
    from gradflow.diagnose.units import saturation
    rows = [{"step": s, "epoch": 1, "member": 0, "seed": 42, "layer": "act", "quantity": "saturation",
             "value": 1.0 if s >= 6 else 0.05} for s in range(0, 40, 2)]
    summary = {"layers": [{"name": "act", "kind": "activation", "order": 1, "bounded": True, "activation": "tanh"}]}
    ev = Evidence(tables={"scalars": pd.DataFrame(rows)}, summary=summary)
    assert [f.code for f in saturation(ev)] == ["SATURATION"]  # without the sentinel's word: 100 % flat
    ev = Evidence(tables={"scalars": pd.DataFrame(rows), "nonfinite": pd.DataFrame(
        [{"step": 6, "epoch": 1, "member": 0, "seed": 42, "layer": "act", "where": "activation", "phase": "forward",
          "count": -1, "order": 1}])}, summary=summary)
    assert saturation(ev) == []
