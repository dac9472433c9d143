"""The Recorder: schedule, hook lifetime, statistics against references, stacked members, storage, bad input."""
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow import stats
from gradflow.activations import get_activation
from gradflow.diagnose import diagnose
from gradflow.record import Recorder, Schedule, load_recording, sentinel


def _mlp(act="tanh", sizes=(20, 16, 12, 5), seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(get_activation(act) if isinstance(act, str) else act())
    net = nn.Module()
    net.layers = nn.Sequential(*layers)
    net.forward = lambda x: net.layers(x)
    return net


def _batches(n=8, batch=32, features=20, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, features, generator=g), torch.randint(0, classes, (batch,), generator=g)) for _ in range(n)]


def _train(model, rec, batches, lr=0.1, momentum=0.0):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        rec.step(loss=loss)


def _hook_count(model):
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
    for p in model.parameters():
        n += len(getattr(p, "_post_accumulate_grad_hooks", None) or {})
    return n


# --------------------------------------------------------------------------- schedule


def test_default_schedule_is_log_then_every_200():
    s = Schedule()
    assert [t for t in range(650) if s(t)] == [0, 1, 4, 16, 64, 200, 400, 600]
    assert [t for t in range(7) if Schedule(every=3, log_base=None)(t)] == [0, 3, 6]
    assert [t for t in range(40) if Schedule(every=20, log_base=2)(t)] == [0, 1, 2, 4, 8, 16, 20]
    with pytest.raises(ValueError, match="log_base"):
        Schedule(log_base=1)


def test_recorded_steps_follow_the_schedule():
    model = _mlp()
    with Recorder(model, every=3) as rec:
        _train(model, rec, _batches(10))
    s = rec.tables()["scalars"]
    assert sorted(s[s.quantity == "grad_std"].step.unique()) == [0, 3, 6, 9]
    assert sorted(s[s.quantity == "loss"].step.unique()) == list(range(10))  # the loss is kept every step
    assert rec.summary()["recorded_steps"] == [0, 3, 6, 9]
    model2 = _mlp()
    with Recorder(model2, schedule=lambda t: t in (1, 4)) as rec2:
        _train(model2, rec2, _batches(6))
    assert rec2.summary()["recorded_steps"] == [1, 4]
    with pytest.raises(ValueError, match="positive integer"):
        Recorder(model, every=0)
    with pytest.raises(ValueError, match="either"):
        Recorder(model, schedule="all", every=2)
    with pytest.raises(ValueError, match="schedule must be"):
        Recorder(model, schedule="sometimes")


# --------------------------------------------------------------------------- hook lifetime


def test_hooks_removed_on_exit_and_when_training_raises():
    model = _mlp()
    before = _hook_count(model)
    with Recorder(model) as rec:
        assert _hook_count(model) > before
        _train(model, rec, _batches(2))
    assert _hook_count(model) == before
    model2 = _mlp()
    with pytest.raises(RuntimeError, match="boom"), Recorder(model2) as rec2:
        _train(model2, rec2, _batches(1))
        raise RuntimeError("boom")
    assert _hook_count(model2) == before
    assert not rec2.tables()["scalars"].empty  # what was recorded before the crash is kept


def test_use_after_exit_and_before_enter_are_clear_errors():
    model = _mlp()
    rec = Recorder(model)
    with pytest.raises(RuntimeError, match="before the recorder was entered"):
        rec.step()
    with rec:
        _train(model, rec, _batches(1))
    with pytest.raises(RuntimeError, match="after the `with` block ended"):
        rec.step()
    with pytest.raises(RuntimeError, match="after the `with` block ended"):
        rec.dead_units(torch.randn(4, 20))
    with pytest.raises(RuntimeError, match="entered once"), rec:
        pass
    assert len(rec.tables()["scalars"]) > 0  # results stay readable


def test_bad_models_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="has no parameters"):
        Recorder(nn.Sequential(nn.ReLU(), nn.Tanh()))
    frozen = _mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="none requires grad"):
        Recorder(frozen)
    with pytest.raises(TypeError, match="nn.Module"):
        Recorder(lambda x: x)
    model = _mlp()
    with pytest.raises(ValueError, match="member_seeds has 2 seeds"):
        Recorder(model, member_seeds=[1, 2])
    with Recorder(model) as rec:
        with pytest.raises(ValueError, match="at least one example"):
            rec.dead_units(torch.zeros(0, 20))
        with pytest.raises(ValueError, match="one value per member"):
            rec.step(loss=torch.ones(3))


class CutGraph(nn.Module):
    """Three Linears; ``how`` loses the first one's gradient the ways users do, and ``spare`` is never called."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.first, self.second, self.head, self.spare = (nn.Linear(20, 16), nn.Linear(16, 12),
                                                          nn.Linear(12, 5), nn.Linear(20, 5))

    def forward(self, x):
        if self.how == "no_grad":
            with torch.no_grad():
                h = torch.tanh(self.first(x))
        else:
            h = torch.tanh(self.first(x))
        if self.how == "detached":
            h = torch.tensor(h.detach().numpy())  # a NumPy round trip
        return self.head(torch.tanh(self.second(h)))


@pytest.mark.parametrize("how", ["unused", "detached", "no_grad"])
def test_a_layer_without_gradient_is_reported_with_where_it_lost_it(how):
    model = CutGraph(how)
    with Recorder(model, every=1) as rec:
        _train(model, rec, _batches(3))
    summary = rec.summary()
    lost = {"spare": [0, 1, 2]} | ({} if how == "unused" else {"first": [0, 1, 2]})
    assert summary["missing_grad"] == lost
    # a layer run under no_grad keeps its place in the forward order; only the uncalled one sorts last
    assert [e["name"] for e in summary["layers"] if e["kind"] == "param"] == ["first", "second", "head", "spare"]
    assert summary["ran_without_grad"] == (["first"] if how == "no_grad" else [])
    found = {f.layer: f for f in diagnose(rec) if f.code == "NO_GRADIENT"}
    assert found["spare"].evidence["cause"] == "unused" and "not called in forward()" in found["spare"].message
    if how != "unused":
        first = found["first"]
        assert first.evidence["cause"] == how
        assert first.alternatives[0]["cause"] == {"detached": "the graph is cut after the layer (.detach(), .data, a NumPy "
                                                      "round trip)",
                                         "no_grad": "the layer runs under torch.no_grad() in forward"}[how]
        if how == "detached":
            assert "cut between Linear `first` and Linear `second`" in first.message


def test_rec_step_before_backward_is_told_apart_from_a_cut_graph():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, every=1) as rec:
        for x, y in _batches(3):
            opt.zero_grad()
            rec.step()  # too early: the first recorded step has no gradient in any layer
            F.cross_entropy(model(x), y).backward()
            opt.step()
    found = [f for f in diagnose(rec) if f.code == "NO_GRADIENT"]
    assert found and {f.evidence["cause"] for f in found} == {"cleared"}
    assert found[0].alternatives[0]["cause"].startswith("gradients cleared before rec.step()")


def test_a_failing_statistic_never_breaks_training(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("statistic exploded")
    monkeypatch.setattr(stats, "saturation", broken)
    model = _mlp()
    with pytest.warns(UserWarning, match="statistic failed"), Recorder(model, every=1) as rec:
        _train(model, rec, _batches(2))
    assert rec.steps == 2
    assert any("statistic exploded" in e for e in rec.summary()["errors"])
    assert "RECORDER_ERROR" in {f.code for f in diagnose(rec)}


# --------------------------------------------------------------------------- statistics vs references


def test_statistics_equal_references_from_the_same_tensors():
    model = _mlp(act="tanh", sizes=(20, 16, 12, 5))
    acts, grads, w_before, w_after = {}, {}, {}, {}
    names = {m: n for n, m in model.named_modules()}
    for m in model.modules():
        if isinstance(m, nn.Module) and names[m] in ("layers.1", "layers.3"):
            m.register_forward_hook(lambda mod, a, out: acts.__setitem__(names[mod], (a[0].detach().clone(), out.detach().clone())))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    (x, y), = _batches(1)
    with Recorder(model, every=1) as rec:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for n in ("layers.0", "layers.2", "layers.4"):
            lin = model.get_submodule(n)
            grads[n], w_before[n] = lin.weight.grad.detach().clone(), lin.weight.detach().clone()
        opt.step()
        for n in grads:
            w_after[n] = model.get_submodule(n).weight.detach().clone()
        rec.step(loss=loss)
    t = rec.tables()
    s = t["scalars"]

    def val(layer, q):
        r = s[(s.layer == layer) & (s.quantity == q)]
        assert len(r) == 1, (layer, q)
        return float(r.value.iloc[0])

    for n, g in grads.items():
        gn, wn, wa = g.double().numpy().ravel(), w_before[n].double().numpy().ravel(), w_after[n].double().numpy().ravel()
        assert val(n, "grad_norm") == pytest.approx(math.sqrt(sum(v * v for v in gn)), rel=1e-5)
        assert val(n, "grad_std") == pytest.approx(gn.std(), rel=1e-5)
        assert val(n, "grad_data_ratio") == pytest.approx(gn.std() / wn.std(), rel=1e-5)
        assert val(n, "update_data_ratio") == pytest.approx((wa - wn).std() / wn.std(), rel=1e-3)
        assert val(n, "grad_nonfinite") == 0
        for scale in ("linear", "log10"):
            h = t["histograms"]
            row = h[(h.layer == n) & (h.kind == "grad") & (h.scale == scale)]
            edges = stats.histogram_edges("grad", scale).astype(np.float32).astype(np.float64)
            vals = gn.astype(np.float32).astype(np.float64)
            v = np.log10(np.abs(vals)) if scale == "log10" else vals
            inside = v[(v >= edges[0]) & (v < edges[-1])]
            np.testing.assert_array_equal(row.counts.iloc[0][1:-2], np.histogram(inside, bins=edges)[0])
            assert row.counts.iloc[0][0] == (v < edges[0]).sum() and row.counts.iloc[0][-2] == (v >= edges[-1]).sum()
    for n, (a_in, a_out) in acts.items():
        o = a_out.double().numpy().ravel()
        assert val(n, "act_mean") == pytest.approx(o.mean(), rel=1e-5, abs=1e-7)
        assert val(n, "act_std") == pytest.approx(o.std(), rel=1e-5)
        sat = sum(1 for v in np.tanh(a_in.double().numpy().ravel()) if 1 - v * v < stats.SATURATION_DERIV_FRACTION) / o.size
        assert val(n, "saturation") == pytest.approx(sat, abs=1e-6)
        h = t["histograms"]
        row = h[(h.layer == n) & (h.kind == "act") & (h.scale == "linear")]
        edges = stats.ACT_LINEAR_EDGES.astype(np.float32).astype(np.float64)
        np.testing.assert_array_equal(row.counts.iloc[0][1:-2], np.histogram(a_out.numpy().astype(np.float64), bins=edges)[0])
    assert val("<input>", "input_max") == pytest.approx(x.max().item())
    assert val("<input>", "input_std") == pytest.approx(x.double().std(unbiased=False).item(), rel=1e-5)
    assert val("<model>", "loss") == pytest.approx(loss.item())


def test_pre_step_weight_copies_reuse_their_memory_and_hold_each_steps_own_weights():
    """On a CPU the pre-step copies live in the recorder's workspace: the same memory at every
    recorded step (no fresh pages from the OS each time), yet each step's update:data ratio is
    that step's own -- a stale copy would measure the update since an earlier step."""
    model = _mlp(act="tanh", sizes=(20, 16, 12, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    lin = model.get_submodule("layers.2")
    expected, addresses = [], []
    with Recorder(model, every=2) as rec:
        for step, (x, y) in enumerate(_batches(6)):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            before = lin.weight.detach().double().clone()
            opt.step()
            rec.step(loss=loss)
            if step % 2 == 0:
                after = lin.weight.detach().double()
                expected.append(((after - before).std(correction=0) / before.std(correction=0)).item())
                addresses.append({k: b.data_ptr() for k, b in rec._workspace._buffers.items() if k.startswith("before")})
    s = rec.tables()["scalars"]
    got = s[(s.layer == "layers.2") & (s.quantity == "update_data_ratio")].sort_values("step")["value"].tolist()
    assert got == pytest.approx(expected, rel=1e-4) and len(got) == 3
    assert len(addresses[0]) == 3 and addresses[0] == addresses[1] == addresses[2]


def test_validation_forwards_under_no_grad_are_not_recorded():
    model = _mlp()
    batches = _batches(2)
    with Recorder(model, every=1) as rec:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for i, (x, y) in enumerate(batches):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model(torch.randn(7, 20) * 100)  # a validation pass: must not overwrite the step's stats
            rec.step(loss=loss)
            rec.epoch = i + 1
    s = rec.tables()["scalars"]
    assert (s[s.quantity == "input_max"].value < 10).all()
    assert sorted(s[s.quantity == "act_mean"].groupby("step").size().tolist()) == [2, 2]
    assert s[s.step == 1].epoch.unique().tolist() == [1]  # rec.epoch is stamped on the rows


# --------------------------------------------------------------------------- stacked members


class StackedLinear(nn.Module):
    def __init__(self, linears):
        super().__init__()
        self.members = len(linears)
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().clone() for lin in linears]))  # (M, out, in)
        self.bias = nn.Parameter(torch.stack([lin.bias.detach().clone() for lin in linears]))  # (M, out)

    def forward(self, x):  # (M, B, in) -> (M, B, out)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedActivation(nn.Module):
    is_activation = True

    def __init__(self, fns):
        super().__init__()
        self.members, self.fns = len(fns), fns

    def forward(self, x):  # member m's own activation on slice m (a loop is fine in this fake model)
        return torch.stack([fn(x[m]) for m, fn in enumerate(self.fns)])


class StackedMLP(nn.Module):
    def __init__(self, models, fns):
        super().__init__()
        self.members = len(models)
        self.layers = nn.Sequential(StackedLinear([m.layers[0] for m in models]), StackedActivation(fns),
                                    StackedLinear([m.layers[2] for m in models]))

    def forward(self, x):  # x (B, in), shared by the members
        return self.layers(x.unsqueeze(0).expand(self.members, -1, -1))


def test_stacked_members_equal_separate_models():
    names = ["tanh", "relu", "sigmoid"]
    singles = [_mlp(act=a, sizes=(20, 16, 5), seed=i) for i, a in enumerate(names)]
    stacked = StackedMLP(singles, [torch.tanh, F.relu, torch.sigmoid])
    batches = _batches(3)
    with Recorder(stacked, every=1, member_seeds=[10, 11, 12]) as rec:
        opt = torch.optim.SGD(stacked.parameters(), lr=0.1)
        for x, y in batches:
            opt.zero_grad()
            logits = stacked(x)  # (M, B, C)
            losses = F.cross_entropy(logits.reshape(-1, 5), y.repeat(3), reduction="none").view(3, -1).mean(1)
            losses.sum().backward()
            opt.step()
            rec.step(loss=losses)
        rec.dead_units(torch.randn(50, 20))
    got = rec.tables()
    assert set(got["scalars"].seed.dropna().unique()) == {10, 11, 12}
    for m, single in enumerate(singles):
        with Recorder(single, every=1) as r1:
            _train(single, r1, batches)
            r1.dead_units(torch.randn(50, 20))  # different inputs: only the shape of the table is compared
        ref = r1.tables()
        a = got["scalars"][(got["scalars"].member == m) & ~got["scalars"].quantity.str.startswith(("input", "dead"))]
        # the joint gradient norm is a one-member statistic (clipping is per model): separate models only
        b = ref["scalars"][~ref["scalars"].quantity.str.startswith(("input", "dead", "grad_norm_total"))]
        key = ["step", "layer", "quantity"]
        merged = a.merge(b, on=key, suffixes=("_s", "_1"))
        assert len(merged) == len(b) == len(a)
        np.testing.assert_allclose(merged.value_s, merged.value_1, rtol=2e-4, atol=1e-7)
        ha, hb = got["histograms"], ref["histograms"]
        ha = ha[ha.member == m].reset_index(drop=True)
        assert len(ha) == len(hb)
        for ca, cb in zip(ha.counts, hb.counts):  # identical up to a value landing on the other side of an edge
            assert np.abs(ca - cb).sum() <= 2
    d = got["dead_units"]
    assert sorted(d.member.unique()) == [0, 1, 2] and (d.units == 16).all()
    layer_info = {e["name"]: e for e in rec.summary()["layers"]}
    assert layer_info["layers.1"]["max_derivative"] == pytest.approx([1.0, 1.0, 0.25], rel=1e-3)
    assert layer_info["layers.1"]["flat_both_sides"] == [True, False, True]


# --------------------------------------------------------------------------- non-finite values


class NaNAt(nn.Module):
    """Identity, except that at forward call `at` it plants a NaN (forward) or a NaN gradient (backward)."""

    def __init__(self, at, backward=False):
        super().__init__()
        self.at, self.calls, self.backward = at, 0, backward

    def forward(self, x):
        self.calls += 1
        if self.calls - 1 != self.at:
            return x
        if self.backward:
            return _NaNGrad.apply(x)
        return x * torch.where(torch.arange(x.shape[-1]) == 0, float("nan"), 1.0)


class _NaNGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


@pytest.mark.parametrize("cpu_shortcut", [True, False])
@pytest.mark.parametrize("backward", [False, True])
def test_first_nonfinite_step_and_layer_found_between_recorded_steps(backward, cpu_shortcut, monkeypatch):
    if not cpu_shortcut:  # the device-side fold alone, as on a GPU: the same first place
        monkeypatch.setattr(sentinel, "_all_finite_on_cpu", lambda *args: False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 16), NaNAt(5, backward), nn.ReLU(),
                          nn.Linear(16, 5))
    with Recorder(model) as rec:  # default schedule: step 5 is not recorded
        _train(model, rec, _batches(9), lr=0.01)
    nf = rec.tables()["nonfinite"]
    first = nf.iloc[0]  # the table is sorted: step, forward pass before backward pass, forward order
    assert int(first.step) == 5
    # forward NaN: first seen at the ReLU (4) after the planting module (the gradients of every layer follow);
    # backward NaN: the forward pass is clean and the first layer in forward order with a NaN gradient is 0
    assert first.layer == ("0" if backward else "4")
    assert first.phase == ("backward" if backward else "forward")
    f = [f for f in diagnose(rec) if f.code == "NONFINITE"][0]
    assert f.step == 5 and f.layer == first.layer and "step 5" in f.message


# --------------------------------------------------------------------------- storage


def test_save_and_load_round_trip_without_model_or_pickle(tmp_path):
    model = _mlp()
    with Recorder(model, every=2, member_seeds=[7]) as rec:
        _train(model, rec, _batches(5))
        rec.dead_units(torch.randn(40, 20))
    out = rec.save(tmp_path / "rec")
    files = sorted(os.listdir(out))
    assert files == sorted(["recording.json", "recording_scalars.parquet", "recording_histograms.parquet",
                            "recording_nonfinite.parquet", "recording_dead_units.parquet"])  # no temp files left
    loaded = load_recording(out)
    a, b = rec.tables(), loaded.tables()
    for key in ("scalars", "nonfinite", "dead_units"):
        pd.testing.assert_frame_equal(a[key].reset_index(drop=True), b[key].reset_index(drop=True), check_dtype=False)
    assert all(np.array_equal(x, y) for x, y in zip(a["histograms"].counts, b["histograms"].counts))
    assert a["histograms"].drop(columns="counts").equals(b["histograms"].drop(columns="counts"))
    assert loaded.summary() == json.loads(json.dumps(rec.summary()))
    np.testing.assert_array_equal(loaded.edges["grad_log10"], stats.LOG10_EDGES)
    assert (b["scalars"].seed == 7).all()
    assert [f.code for f in diagnose(loaded)] == [f.code for f in diagnose(rec)]
    assert [f.code for f in diagnose(str(out))] == [f.code for f in diagnose(rec)]
    with pytest.raises(FileNotFoundError, match="no gradflow recording"):
        load_recording(tmp_path)


# --------------------------------------------------------------------------- a user's own models


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.act1, self.act2 = nn.ReLU(), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool(self.act1(self.conv1(x)))
        x = self.pool(self.act2(self.conv2(x)))
        return self.head(x.flatten(1))


class MyELU(nn.Module):  # a hand-written activation, not registered anywhere, flagged as an activation
    is_activation = True

    def forward(self, x):
        return torch.where(x > 0, x, torch.exp(torch.clamp(x, max=0)) - 1)


def _image_data(n=512, seed=0):
    """A learnable 28x28 task: the class is which of ten horizontal bands is bright."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 1, 28, 28, generator=g) * 0.3
    for i in range(n):
        x[i, 0, 2 * y[i] + 4] += 1.5
    return x, y


def test_user_cnn_and_custom_mlp_record_and_diagnose_through_the_public_api(tmp_path):
    x, y = _image_data(n=512)
    cnn = SmallCNN()
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), MyELU(), nn.Linear(64, 10))
    for model in (cnn, mlp):
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        with Recorder(model, every=5) as rec:  # the user's loop, unchanged but for these two lines
            for _epoch in range(3):
                for i in range(0, len(y), 64):
                    opt.zero_grad()
                    loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
                    loss.backward()
                    opt.step()
                    rec.step(loss=loss)
            rec.dead_units(x)
        t = rec.tables()
        acts = {e["name"] for e in rec.summary()["layers"] if e["kind"] == "activation"}
        assert acts == ({"act1", "act2"} if model is cnn else {"2"})
        assert set(t["histograms"].layer) >= acts
        assert rec.summary()["loss"]["kind"] == "cross_entropy"
        findings = diagnose(rec)
        assert not [f for f in findings if f.severity in ("warning", "error")], [f.to_dict() for f in findings]
        assert loss.item() < 1.2  # the control really trained (chance is ln 10 = 2.3)


def _record_compiled(net, steps: int, dead_units: bool = False) -> Recorder:
    """``steps`` SGD steps of torch.compile(net) inside a Recorder that records every step."""
    model = torch.compile(net, backend="eager")  # the wrapper and its names, without a C++ compiler
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with Recorder(model, schedule="every") as rec:
        _train(model, rec, [(x, y)] * steps)
        if dead_units:
            rec.dead_units(x)
    return rec


def test_a_compiled_model_keeps_its_layer_names():
    """torch.compile wraps the model in an OptimizedModule whose parameters are named "_orig_mod.0...":
    the recording names the layers as the user's model does, and still sees every step."""
    torch.manual_seed(0)
    rec = _record_compiled(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), steps=3, dead_units=True)
    summary = rec.summary()
    assert [e["name"] for e in summary["layers"]] == ["0", "1", "2"] and summary["model"] == "Sequential"
    assert summary["optimizer_watch"]["optimizers"][0]["params"] == 4 and not summary["skipped_steps"]
    scalars = rec.tables()["scalars"]
    assert set(scalars.query("quantity == 'grad_std'")["layer"]) == {"0", "2"}
    assert len(scalars.query("quantity == 'loss'")) == 3 and not rec.tables()["dead_units"].empty


def test_a_compiled_model_is_not_recompiled_step_after_step():
    """Traced by torch.compile, the hooks' reads of the recorder's state (its step, each layer's name)
    became guards that failed every step and every layer: 106 frames compiled in 12 steps here, and on
    a real backend up to 50 s of compiling and a 'recompile_limit' warning. The hooks (and the dropout
    probe, which runs the uncompiled module) are kept out of the compiler: one frame per piece."""
    from torch._dynamo.utils import counters
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(),
                        nn.Linear(12, 3))
    torch._dynamo.reset()
    counters.clear()
    rec = _record_compiled(net, steps=12)
    assert counters["frames"]["total"] <= 10, dict(counters["frames"])  # 7 here: compiled once, not per step
    scalars = rec.tables()["scalars"]
    assert scalars.query("quantity == 'act_std'")["step"].nunique() == 12  # the hooks still ran every step
    torch._dynamo.reset()


@pytest.mark.parametrize("call", ["dict", "keyword"])
def test_the_input_range_is_read_from_a_dict_or_keyword_input(call):
    """model({"image": x}) and model(ids, pixels=x): raw 0-255 pixels are seen there too (UNNORMALIZED_INPUT),
    and an integer tensor beside them (token ids, a mask) is not taken for the input."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))

        def forward(self, batch=None, ids=None, pixels=None):
            return self.body(batch["image"] if batch is not None else pixels)

    torch.manual_seed(0)
    net, x, y = Net(), torch.randint(0, 256, (32, 16)).float(), torch.randint(0, 3, (32,))
    ids = torch.arange(32)
    opt = torch.optim.SGD(net.parameters(), lr=1e-4)
    with Recorder(net) as rec:
        for _ in range(3):
            opt.zero_grad()
            out = net({"ids": ids, "image": x}) if call == "dict" else net(ids=ids, pixels=x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            rec.step(loss=loss)
    s = rec.tables()["scalars"]
    assert s[(s.layer == "<input>") & (s.quantity == "input_max")]["value"].max() == pytest.approx(x.max().item())
    assert "UNNORMALIZED_INPUT" in {f.code for f in diagnose(rec)}


def test_a_module_only_named_like_a_norm_is_not_one():
    """The recorder and the diagnosis share one rule (quantities.is_norm_type): a type name ending in Norm."""
    from gradflow.quantities import is_norm_type
    from gradflow.record.layers import is_norm_module

    class NormalizedMLP(nn.Module):  # a user's model of raw weights, normalised inputs: no norm layer
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 3))

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    assert not is_norm_module(NormalizedMLP()) and is_norm_module(RMSNorm()) and is_norm_module(nn.BatchNorm1d(3))
    assert is_norm_type("StackedBatchNorm") and is_norm_type("BatchNorm2d") and not is_norm_type("Normalizer")
