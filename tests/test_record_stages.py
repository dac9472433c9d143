"""The Recorder's stages and vocabulary: names come from gradflow.quantities, the dead-unit pass
hooks and unhooks itself, and the schedule speaks the run config's language."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow import quantities as Q
from gradflow.config import make_config
from gradflow.models import BaseNetwork
from gradflow.record import Recorder
from gradflow.record.schedule import RUN_CHOICES, as_schedule


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _train(model, steps=3, **kw):
    torch.manual_seed(0)
    x, y = torch.randn(64, 12), torch.randint(0, 4, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, schedule="every", **kw) as rec:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss=loss)
        hooks = _hook_count(model)
        rec.dead_units(x)
        assert _hook_count(model) == hooks  # the pass removed its own hooks
    return rec


def test_every_recorded_name_is_in_the_vocabulary():
    rec = _train(BaseNetwork("tanh", input_size=12, num_classes=4, hidden_sizes=[16, 8]))
    t = rec.tables()
    assert set(t["scalars"]["quantity"]) <= set(Q.QUANTITIES)
    assert {Q.GRAD_STD, Q.UPDATE_DATA_RATIO, Q.SATURATION, Q.DEAD_FRACTION, Q.ACT_GRAD_STD, Q.LOSS,
            Q.INPUT_STD, Q.OUTPUT_MAX} <= set(t["scalars"]["quantity"])
    assert set(t["histograms"]["kind"]) == {Q.ACT, Q.GRAD}
    assert set(Q.LOCATION_OF_COUNT.values()) | set(Q.LOCATION_OF_VALUE.values()) <= set(Q.LOCATIONS)
    assert set(Q.BACKWARD_LOCATIONS) <= set(Q.LOCATIONS)


def test_nonfinite_locations_are_vocabulary_names():
    model = nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 4))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    rec = _train(model, steps=1)
    nf = rec.tables()["nonfinite"]
    assert not nf.empty and set(nf["where"]) <= set(Q.LOCATIONS)
    assert nf.iloc[0]["where"] == Q.ACTIVATION_LOC  # forward first: the NaN weight makes the activation NaN


def test_dead_unit_pass_restores_modes_and_ignores_the_recorder_hooks():
    model = BaseNetwork("relu", input_size=12, num_classes=4, hidden_sizes=[16], dropout=0.5)
    rec = _train(model, steps=2)
    assert model.training  # eval() during the pass, training again after it
    assert rec.steps == 2 and rec.summary()["recorded_steps"] == [0, 1]  # the pass is no training step
    dead = rec.tables()["dead_units"]
    assert list(dead["layer"]) == ["layers.1"] and dead["examples"].tolist() == [64]


def test_one_schedule_vocabulary_for_recorder_and_run_config():
    assert RUN_CHOICES == ("default", "every", "off")
    for name in ("default", "every"):
        make_config("relu", "smoke", record=name)  # a run config accepts the recorder's names
        assert callable(as_schedule(name))
    assert [t for t in range(5) if as_schedule("every")(t)] == list(range(5))
    assert [t for t in range(5) if as_schedule("all")(t)] == list(range(5))  # the earlier spelling
    with pytest.raises(ValueError, match="unknown record schedule"):
        make_config("relu", "smoke", record="sometimes")
