"""Bug classes users write, planted in small real models and loops: each is caught at its severity,
and its healthy twin is not flagged (no warning or error)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow.case_bugs import keras_categorical_crossentropy
from gradflow.diagnose import diagnose, format_findings
from gradflow.diagnose.evidence import Evidence
from gradflow.diagnose.facts import Facts
from gradflow.loss_graph import inspect_loss
from gradflow.models import BaseNetwork
from gradflow.record import Recorder
from gradflow.recording import load_recording, member_subset
from gradflow.stacked import StackedMLP


def _train(model, x, y, steps=20, lr=1e-2, params=None, loss_fn=None, zero_grad=True, targets=None, batch=128,
           seed=0, **rec_kwargs):
    """A plain loop under a Recorder (default schedule: steps 0, 1, 4, 16 recorded)."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters() if params is None else params, lr=lr, momentum=0.9)
    loss_fn = loss_fn or (lambda out, yb: F.cross_entropy(out, yb))
    with Recorder(model, **rec_kwargs) as rec:
        for step in range(steps):
            i = (step * batch) % (len(y) - batch + 1)
            xb, yb = x[i:i + batch], y[i:i + batch]
            if zero_grad:
                opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            rec.step(loss=loss, targets=None if targets is None else targets(xb, yb))
    return rec


def _by_code(findings, code):
    return [f for f in findings if f.code == code]


def _alarms(findings):
    return [f for f in findings if f.severity in ("warning", "error")]


def _mlp(width=784, hidden=128, classes=10):
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, classes))


# ----------------------------------------------------------------- 1. dropout seen in the masks

class TF1Net(nn.Module):
    """Seed 001 ported by hand: F.dropout(x, p=keep_prob) in forward(), no training=self.training."""

    def __init__(self, p, follow_mode=False):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 256), nn.Linear(256, 10)
        self.p, self.follow_mode = p, follow_mode

    def forward(self, x):
        drop = (lambda h: F.dropout(h, self.p, training=self.training)) if self.follow_mode else \
            (lambda h: F.dropout(h, p=self.p))
        x = drop(F.relu(self.fc1(x)))
        x = drop(F.relu(self.fc2(x)))
        return self.fc3(x)


def test_functional_dropout_with_a_keep_probability_is_seen_in_the_masks(fmnist):
    rec = _train(TF1Net(0.7), fmnist.x, fmnist.y)
    masks = {d["layer"]: d for d in rec.summary()["dropout_masks"]}
    assert masks["fc2"]["p"] == pytest.approx(0.7, abs=0.05) and masks["fc3"]["p"] == pytest.approx(0.7, abs=0.05)
    assert masks["fc1"]["p"] == 0  # the raw input: nothing dropped, and ReLU zeros elsewhere cancel
    found = _by_code(diagnose(rec, grouped=False), "HIGH_DROPOUT")  # the rule's own findings, one per layer
    assert [f.layer for f in found] == ["fc2", "fc3"] and {f.severity for f in found} == {"warning"}
    grouped = _by_code(diagnose(rec), "HIGH_DROPOUT")  # one cause: one finding naming both layers
    assert len(grouped) == 1 and grouped[0].layers == ["fc2", "fc3"]
    f = found[0]
    assert f.evidence["cause"] == "mask" and "Linear `fc2`" in f.message and "F.dropout" in f.message
    assert "p=0.3" in f.message and "eval mode too" in f.message  # F.dropout's training=True default
    assert "training=self.training" in f.suggestion


def test_functional_dropout_healthy_twins_are_not_flagged(fmnist):
    rec = _train(TF1Net(0.3, follow_mode=True), fmnist.x, fmnist.y, steps=2)
    masks = {d["layer"]: d for d in rec.summary()["dropout_masks"]}
    assert masks["fc2"]["p"] == pytest.approx(0.3, abs=0.05) and masks["fc2"]["p_eval"] == 0  # follows eval()
    assert not _by_code(diagnose(rec), "HIGH_DROPOUT")
    ok = _train(BaseNetwork("relu", hidden_sizes=[128, 64], dropout=0.2), fmnist.x, fmnist.y, steps=10)
    assert not _alarms(diagnose(ok)), format_findings(diagnose(ok))
    # a module Dropout(0.7) is reported once per module, not again from its masks
    high = _train(BaseNetwork("relu", hidden_sizes=[128, 64], dropout=0.7), fmnist.x, fmnist.y, steps=2)
    found = _by_code(diagnose(high, grouped=False), "HIGH_DROPOUT")
    assert len(found) == 2 and {f.evidence["cause"] for f in found} == {"module"}


def test_a_dropout_of_one_half_is_not_flagged_from_its_masks(fmnist):
    """p = 0.5 is the classic rate: its masks estimate 0.48-0.51, and an estimate a hair above one half is not a
    keep-probability mistake, whether a Dropout(0.5) module or F.dropout(p=0.5) inside forward() makes them."""
    for seed in range(4):
        torch.manual_seed(seed)
        module = _train(BaseNetwork("relu", hidden_sizes=[128, 64], dropout=0.5), fmnist.x, fmnist.y, steps=2,
                        seed=seed)
        assert [d for d in module.summary()["dropout_masks"] if d["p"] > 0.3]  # the probe saw the masks
        assert not _by_code(diagnose(module), "HIGH_DROPOUT"), seed
        torch.manual_seed(seed)
        functional = _train(TF1Net(0.5, follow_mode=True), fmnist.x, fmnist.y, steps=2, seed=seed)
        assert not _by_code(diagnose(functional), "HIGH_DROPOUT"), seed


def test_the_probe_changes_nothing_in_training():
    """Same seed with and without the recorder: the same weights (the random state and batch-norm
    statistics are restored, the user's hooks do not see the probe's passes)."""
    x, y = torch.randn(256, 20), torch.randint(0, 5, (256,))
    calls = []
    weights = []
    for record in (False, True):
        torch.manual_seed(1)
        net = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5))
        handle = net[0].register_forward_hook(lambda *a, r=record: calls.append(r))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        with Recorder(net) if record else torch.enable_grad() as rec:
            for _ in range(3):
                opt.zero_grad()
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                opt.step()
                if record:
                    rec.step(loss=loss)
        handle.remove()
        weights.append([t.detach().clone() for t in net.state_dict().values()])
    assert calls == [False] * 3 + [True] * 3
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    assert rec.summary()["dropout_masks"]


def test_stacked_members_keep_their_own_dropout(fmnist):
    """The project's trainer: members in dim 0, each its own p (0.7 and 0.2): the module finding names
    member 0 only, and the masks (estimated per member) add nothing to it."""
    nets = [BaseNetwork("relu", hidden_sizes=[128, 64], dropout=p) for p in (0.7, 0.2)]
    rec = _train(StackedMLP(nets), fmnist.x, fmnist.y, steps=3, member_seeds=[1, 2],  # one batch for both
                 loss_fn=lambda out, yb: F.cross_entropy(out.reshape(-1, 10), yb.repeat(2)))
    masks = [d for d in rec.summary()["dropout_masks"] if d["member"] is not None and d["agree"] > 0.9]
    assert {d["member"]: round(d["p"], 1) for d in masks} == {0: 0.7, 1: 0.2}
    found = _by_code(diagnose(rec), "HIGH_DROPOUT")
    assert found and {f.seed for f in found} == {1} and {f.evidence["cause"] for f in found} == {"module"}
    # one run's members out of a batch that trained several runs together: its own masks, renumbered
    alone = member_subset(rec, [1])
    assert {d["member"] for d in alone.summary()["dropout_masks"]} <= {0, None}
    assert not _by_code(diagnose(alone), "HIGH_DROPOUT")
    assert {c["member"] for c in alone.summary()["stale_grad"]["checks"]} == {0}


# ----------------------------------------------------------------- 2. a layer left out of the optimizer

def test_layer_left_out_of_the_optimizer(fmnist):
    net = _mlp()
    rec = _train(net, fmnist.x, fmnist.y, params=list(net[2].parameters()) + list(net[4].parameters()))
    found = _by_code(diagnose(rec), "NOT_UPDATED")
    assert [(f.layer, f.severity) for f in found] == [("0", "warning")]
    assert "Linear `0`" in found[0].message and "optimizer" in found[0].message
    assert found[0].evidence["steps"] == [0, 1, 4, 16]


def test_frozen_trunk_with_trainable_head_is_healthy(fmnist):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))
    _train(net, fmnist.x, fmnist.y, steps=30)  # "pretraining"
    for p in list(net[0].parameters()) + list(net[1].parameters()):
        p.requires_grad_(False)
    net.eval()  # a frozen trunk keeps its batch-norm statistics
    rec = _train(net, fmnist.x, fmnist.y, params=net[3].parameters(), lr=1e-2)
    findings = diagnose(rec)
    assert not _alarms(findings), format_findings(findings)
    assert not {"NOT_UPDATED", "ONLY_NORM_TRAINABLE"} & {f.code for f in findings}


# ----------------------------------------------------------------- 3. missing zero_grad

def test_missing_zero_grad_is_an_error(fmnist):
    rec = _train(_mlp(), fmnist.x, fmnist.y, lr=1e-3, zero_grad=False)
    found = _by_code(diagnose(rec), "ACCUMULATING_GRADIENT")
    assert len(found) == 1 and found[0].severity == "error", format_findings(diagnose(rec))
    f = found[0]
    assert f.evidence["stale_checks"] == f.evidence["checks"] == 4 and f.evidence["stale_to_new"] > 1
    assert "zero_grad" in f.message and "Linear `0`" in f.message


def test_missing_zero_grad_is_seen_when_the_first_layer_is_left_out_too(fmnist):
    net = _mlp()
    rec = _train(net, fmnist.x, fmnist.y, lr=1e-3, zero_grad=False, steps=6,
                 params=list(net[2].parameters()) + list(net[4].parameters()))
    findings = diagnose(rec)
    acc = _by_code(findings, "ACCUMULATING_GRADIENT")
    assert len(acc) == 1 and acc[0].layer == "2" and acc[0].severity == "error"  # layer 0 never moves: not checked
    assert [f.layer for f in _by_code(findings, "NOT_UPDATED")] == ["0"]


@pytest.mark.parametrize("rec_every_micro_batch", [False, True])
def test_micro_batch_accumulation_is_not_flagged(fmnist, rec_every_micro_batch):
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    with Recorder(net, schedule="every") as rec:
        for step in range(12):
            for micro in range(4):  # four backwards, one optimizer step
                i = (step * 4 + micro) * 32 % 2000
                loss = F.cross_entropy(net(fmnist.x[i:i + 32]), fmnist.y[i:i + 32]) / 4
                loss.backward()
                if rec_every_micro_batch and micro < 3:
                    rec.step(loss=loss)
            opt.step()
            rec.step(loss=loss)
            opt.zero_grad()
    checks = rec.summary()["stale_grad"]["checks"]
    assert len(checks) >= 11 and all(c["stale_norm"] == 0 for c in checks)
    assert not _by_code(diagnose(rec), "ACCUMULATING_GRADIENT")
    # rec.step() once per optimizer step, as the README asks, or once per micro-batch (the steps
    # without an optimizer step leave every layer unchanged and are not read as "barely moves")
    assert not _alarms(diagnose(rec)), format_findings(diagnose(rec))


# ----------------------------------------------------------------- 4. only normalisation trainable

def test_only_norm_layers_trainable(fmnist):
    net = nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 64),
                        nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    for m in net:
        m.requires_grad_(isinstance(m, nn.BatchNorm1d))
    rec = _train(net, fmnist.x, fmnist.y, params=[p for p in net.parameters() if p.requires_grad])
    found = _by_code(diagnose(rec), "ONLY_NORM_TRAINABLE")
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].evidence["frozen"] == ["0", "3", "6"] and "BatchNorm1d `1`" in found[0].message


# ----------------------------------------------------------------- 5. seed 000: the Keras port

class Seed000Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        return torch.tanh(self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x))))))


def _onehot(out, y):
    return F.one_hot(y, 10).float()


def test_tanh_logits_with_one_hot_float_targets_is_a_soft_target_cross_entropy(fmnist):
    seq = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10), nn.Tanh())
    for net, where in ((Seed000Net(), "(Tanh)"), (seq, "(Tanh `5`)")):
        rec = _train(net, fmnist.x, fmnist.y, steps=4, loss_fn=lambda out, y: F.cross_entropy(out, _onehot(out, y)))
        assert rec.summary()["loss"]["kind"] == "cross_entropy"
        found = _by_code(diagnose(rec), "BOUNDED_OUTPUT")
        assert len(found) == 1 and found[0].severity == "error"
        f = found[0]
        assert where in f.message and "can still learn" in f.message and "p = 0.45" in f.message
        assert "loss=" not in f.message and f.evidence["cause"] == "bounded_logits"


def test_keras_categorical_crossentropy_on_tanh_outputs_is_an_error(fmnist):
    rec = _train(Seed000Net(), fmnist.x, fmnist.y, steps=4, loss_fn=keras_categorical_crossentropy)
    assert rec.summary()["loss"]["kind"] == "log_probability"
    found = _by_code(diagnose(rec), "BOUNDED_OUTPUT")
    assert len(found) == 1 and found[0].severity == "error" and found[0].evidence["cause"] == "log_of_bounded"
    assert "Negative values are not probabilities" in found[0].message and "Tanh" in found[0].message
    # the same loss on softmax outputs, and the hand-written one on log_softmax, are cross-entropies
    soft = nn.Sequential(_mlp(), nn.Softmax(dim=-1))
    rec = _train(soft, fmnist.x, fmnist.y, steps=4, loss_fn=keras_categorical_crossentropy)
    assert rec.summary()["loss"]["kind"] == "cross_entropy"
    assert not _alarms(diagnose(rec)), format_findings(diagnose(rec))
    rec = _train(_mlp(), fmnist.x, fmnist.y, steps=4,
                 loss_fn=lambda out, y: -(_onehot(out, y) * F.log_softmax(out, 1)).sum(1).mean())
    assert rec.summary()["loss"]["kind"] == "cross_entropy" and not _alarms(diagnose(rec))


def test_sigmoid_output_into_bce_with_logits_is_a_double_sigmoid():
    x, t = torch.randn(256, 20), (torch.rand(256, 5) > 0.5).float()
    net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5), nn.Sigmoid())
    rec = _train(net, x, t, steps=3, loss_fn=F.binary_cross_entropy_with_logits, targets=lambda a, b: b)
    found = _by_code(diagnose(rec), "BOUNDED_OUTPUT")
    assert len(found) == 1 and found[0].severity == "error" and "[0.50, 0.73]" in found[0].message
    fixed = _train(net, x, t, steps=3, loss_fn=F.binary_cross_entropy, targets=lambda a, b: b)  # the same net, BCE
    assert not _alarms(diagnose(fixed))


def test_inspect_loss_tells_the_cross_entropies_apart():
    z = torch.randn(4, 5, requires_grad=True)
    y, t = torch.tensor([0, 1, 2, 3]), F.one_hot(torch.tensor([0, 1, 2, 3]), 5).float()
    cases = {"hard": (F.cross_entropy(torch.tanh(z), y), "cross_entropy", "TanhBackward0"),
             "soft": (F.cross_entropy(torch.tanh(z), t), "cross_entropy", "TanhBackward0"),
             "log_softmax": (-(t * torch.log(torch.softmax(z, 1))).sum(1).mean(), "cross_entropy", None),
             "log_tanh": (-(t * torch.log(torch.tanh(z))).sum(1).mean(), "log_probability", None)}
    for name, (loss, kind, logits_op) in cases.items():
        info = inspect_loss(loss)
        assert info["kind"] == kind, name
        if logits_op:
            assert info["logits_op"] == logits_op and info["bounded_logits"], name
    assert inspect_loss(cases["log_tanh"][0])["probs_op"] == "TanhBackward0"


# ----------------------------------------------------------------- 6. bounded output against the targets

def _autoencoder():
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 784), nn.Sigmoid())


def test_sigmoid_autoencoder_on_unit_pixels_is_sound_and_explained(fmnist, tmp_path):
    pixels = fmnist.x * 0.5 + 0.5  # the loader's [-1, 1] back to [0, 1]
    for loss_fn in (F.mse_loss, F.binary_cross_entropy):
        rec = _train(_autoencoder(), pixels, pixels, steps=6, lr=0.5, loss_fn=loss_fn, targets=lambda x, y: y)
        assert rec.summary()["targets"]["min"] >= 0 and rec.summary()["targets"]["max"] <= 1
        findings = diagnose(rec)
        assert not _alarms(findings), format_findings(findings)
        info = _by_code(findings, "BOUNDED_OUTPUT")
        assert len(info) == 1 and info[0].severity == "info" and info[0].evidence["cause"] == "fits_targets"
        assert "binary accuracy" in info[0].message and "vmin" in info[0].message
    rec.save(tmp_path / "recording")  # the targets' range is stored with the recording
    assert [f.code for f in diagnose(tmp_path / "recording")] == [f.code for f in diagnose(rec)]


def test_targets_outside_the_sigmoid_range(fmnist):
    rec = _train(_autoencoder(), fmnist.x, fmnist.x, steps=6, lr=0.5, loss_fn=F.mse_loss, targets=lambda x, y: y)
    found = _by_code(diagnose(rec), "TARGET_OUT_OF_RANGE")
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].evidence["target_min"] == pytest.approx(-1) and found[0].evidence["interval"] == [0.0, 1.0]
    assert "Sigmoid `3`" in found[0].message and "x * 0.5 + 0.5" in found[0].suggestion
    # a tanh output covers [-1, 1] targets: nothing to say
    tanh_ae = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 784), nn.Tanh())
    rec = _train(tanh_ae, fmnist.x, fmnist.x, steps=6, lr=0.5, loss_fn=F.mse_loss, targets=lambda x, y: y)
    assert not {"TARGET_OUT_OF_RANGE", "BOUNDED_OUTPUT"} & {f.code for f in diagnose(rec)}


def test_class_index_targets_are_not_judged_as_a_range(fmnist):
    rec = _train(_mlp(), fmnist.x, fmnist.y, steps=4, targets=lambda x, y: y)
    assert rec.summary()["targets"]["float"] is False and rec.summary()["targets"]["max"] == 9
    assert not _alarms(diagnose(rec))
    with pytest.raises(TypeError, match=r"targets=\.\.\.\) takes the batch's targets as a tensor or array, got str"):
        _train(_mlp(), fmnist.x, fmnist.y, steps=1, targets=lambda x, y: "labels")


# ----------------------------------------------------------------- 8. the loop's order: no optimizer step, rec.step() too early

def _loop(model, x, y, steps, order, schedule=None, batch=128):
    """A loop whose body runs ``order``'s calls: 'b' backward, 's' optimizer.step(), 'r' rec.step()."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    with Recorder(model, schedule=schedule) as rec:
        for step in range(steps):
            i = (step * batch) % (len(y) - batch + 1)
            opt.zero_grad()
            loss = F.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
            for call in order:
                if call == "b":
                    loss.backward()
                elif call == "s":
                    opt.step()
                else:
                    rec.step(loss=loss)
    return rec


def test_a_loop_without_optimizer_step_is_an_error(fmnist):
    rec = _loop(_mlp(), fmnist.x, fmnist.y, steps=24, order="br")
    found = _by_code(diagnose(rec), "NOT_UPDATED")
    assert [(f.layer, f.severity, f.evidence["cause"]) for f in found] == [("<model>", "error", "no_optimizer_step")]
    assert "optimizer.step() is never called" in found[0].message and found[0].evidence["steps"] == [0, 1, 4, 16]
    assert found[0].alternatives[0]["cause"] == "optimizer.step() is never called"
    assert not _by_code(diagnose(_loop(_mlp(), fmnist.x, fmnist.y, steps=24, order="bsr")), "NOT_UPDATED")


def test_rec_step_before_optimizer_step_is_a_warning_about_the_recording(fmnist):
    rec = _loop(_mlp(), fmnist.x, fmnist.y, steps=24, order="brs")
    found = _by_code(diagnose(rec), "NOT_UPDATED")
    assert [(f.severity, f.evidence["cause"]) for f in found] == [("warning", "recorded_before_step")]
    assert "rec.step() runs before optimizer.step()" in found[0].message
    assert found[0].alternatives[0]["cause"] == "rec.step() is called before optimizer.step()"


def test_a_few_probing_backwards_without_an_optimizer_are_not_flagged(fmnist):
    """Gradients of a few batches, no optimizer on purpose (the gradients-at-initialisation page): no
    training loop, so an unmoved model is no bug."""
    rec = _loop(_mlp(), fmnist.x, fmnist.y, steps=8, order="br", schedule="every")
    assert len(rec.summary()["recorded_steps"]) == 8
    assert not _by_code(diagnose(rec), "NOT_UPDATED")


# ----------------------------------------------------------------- 9. model.eval() left on while training

def _eval_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


@pytest.mark.parametrize("train_again", [False, True])
def test_model_left_in_eval_mode_after_validation(fmnist, train_again):
    net = _eval_net()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    with Recorder(net) as rec:
        for step in range(24):
            if train_again:
                net.train()
            i = step * 64
            opt.zero_grad()
            loss = F.cross_entropy(net(fmnist.x[i:i + 64]), fmnist.y[i:i + 64])
            loss.backward()
            opt.step()
            rec.step(loss=loss)
            if step == 10:  # a validation pass
                net.eval()
                with torch.no_grad():
                    net(fmnist.x[-256:])
    mode = rec.summary()["train_mode"]
    assert [m["layer"] for m in mode["modules"]] == ["1", "3"] and mode["recorded"] == 4
    found = _by_code(diagnose(rec), "EVAL_MODE")
    if train_again:
        assert mode["eval_count"] == 0 and not found
        return
    assert mode["eval_steps"] == [16]  # steps 0, 1, 4 in training mode
    assert [(f.severity, f.layer, f.step) for f in found] == [("warning", "1", 16)]
    assert "1 of 4 recorded training steps" in found[0].message and "model.train()" in found[0].suggestion
    assert found[0].alternatives[0]["cause"] == "model.eval() for validation, model.train() not called again"


def test_eval_mode_from_the_start_and_on_a_stacked_model(fmnist):
    net = _eval_net().eval()
    found = _by_code(diagnose(_train(net, fmnist.x, fmnist.y, steps=6)), "EVAL_MODE")
    assert len(found) == 1 and found[0].evidence["from_start"] and "never trained in training mode" in found[0].message
    assert found[0].alternatives[0]["cause"] == "model.eval() before the training loop"
    # the batched trainer's stacked batch norm and dropout count as what they are
    stacked = StackedMLP([BaseNetwork("relu", hidden_sizes=[32, 16], norm="batch", dropout=0.1) for _ in range(2)])
    with Recorder(stacked) as rec:
        pass
    types = {m["type"] for m in rec.summary()["train_mode"]["modules"]}
    assert types == {"StackedBatchNorm", "StackedDropout"}


# ----------------------------------------------------------------- 10. NLLLoss without log_softmax

@pytest.mark.parametrize("variant,cause", [
    ("raw", "raw_outputs"),  # F.nll_loss on the Linear's outputs
    ("softmax", "probabilities"),  # nn.Softmax + nn.NLLLoss
    ("log_softmax", None),  # right: a cross-entropy
    ("log_of_softmax", None),  # torch.log of a softmax model's output: log-probabilities, sound
])
def test_nll_loss_needs_log_probabilities(fmnist, variant, cause):
    torch.manual_seed(0)
    net = nn.Sequential(_mlp(), nn.Softmax(dim=1)) if variant in ("softmax", "log_of_softmax") else _mlp()
    loss_fn = {"raw": F.nll_loss, "softmax": F.nll_loss,
               "log_softmax": lambda out, y: F.nll_loss(F.log_softmax(out, 1), y),
               "log_of_softmax": lambda out, y: F.nll_loss(torch.log(out), y)}[variant]
    findings = diagnose(_train(net, fmnist.x, fmnist.y, steps=8, loss_fn=loss_fn))
    found = _by_code(findings, "NOT_LOG_PROBABILITIES")
    if cause is None:
        assert not found and not _alarms(findings), format_findings(findings)
        return
    assert [(f.severity, f.evidence["cause"]) for f in found] == [("error", cause)], format_findings(findings)
    assert "log_softmax" in found[0].suggestion and not _by_code(findings, "BOUNDED_OUTPUT")
    assert found[0].alternatives[0]["verdict"] == "supported"


def test_rec_step_once_per_micro_batch_at_the_default_schedule_is_not_flagged(fmnist):
    """Four micro-batches per optimizer step, rec.step() after each (allowed): the recorded steps
    0, 1, 4, 16, 64 all fall between optimizer steps, so no recorded step moves the weights; they
    move between records, but not between the adjacent steps 0 and 1 -- unlike rec.step() called
    before optimizer.step(), which moves them there."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    with Recorder(net) as rec:
        for step in range(24):
            for micro in range(4):
                i = (step * 4 + micro) * 16 % 2000
                loss = F.cross_entropy(net(fmnist.x[i:i + 16]), fmnist.y[i:i + 16]) / 4
                loss.backward()
                if micro == 3:
                    opt.step()
                    opt.zero_grad()
                rec.step(loss=loss)
    assert rec.summary()["recorded_steps"] == [0, 1, 4, 16, 64]
    assert not _by_code(diagnose(rec), "NOT_UPDATED"), format_findings(diagnose(rec))


# ----------------------------------------------------------------- 11. a learning rate that decays to nothing

def _scheduled(net, opt, sched, fmnist, steps, rec):
    """A loop that steps the learning-rate scheduler after every batch, under ``rec``."""
    with rec:
        for step in range(steps):
            i = (step * 64) % (len(fmnist.y) - 64)
            opt.zero_grad()
            loss = F.cross_entropy(net(fmnist.x[i:i + 64]), fmnist.y[i:i + 64])
            loss.backward()
            opt.step()
            sched.step()
            rec.step(loss=loss)
    return rec


@pytest.mark.parametrize("schedule,flagged", [
    ("steplr_per_batch", True),  # StepLR(step_size=30) written for epochs, stepped every batch
    ("cosine_to_zero", False),  # ends at lr 0 on purpose: only the last ~2 % of the run is that low
    ("multistep_x0.1", False),  # x0.1 at 30/60/90 % of the run: 1e-3 of the start for its last 10 %
])
def test_a_learning_rate_that_decays_to_nothing(fmnist, schedule, flagged):
    torch.manual_seed(0)
    net = _mlp()
    steps = 200
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    sched = {"steplr_per_batch": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1),
             "cosine_to_zero": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
             "multistep_x0.1": lambda: torch.optim.lr_scheduler.MultiStepLR(opt, [60, 120, 180], gamma=0.1)}[schedule]()
    rec = _scheduled(net, opt, sched, fmnist, steps, Recorder(net, every=10))
    findings = diagnose(rec)
    found = [f for f in _by_code(findings, "UPDATE_RATIO") if f.evidence.get("cause") == "stalled"]
    if not flagged:
        assert not found and not _alarms(findings), format_findings(findings)
        return
    assert len(found) == 1 and found[0].severity == "warning" and len(found[0].layers) == 3, format_findings(findings)
    assert found[0].evidence["drop"] > 1e3 and "once per epoch, not once per batch" in found[0].suggestion
    assert found[0].alternatives[0]["cause"].startswith("a learning-rate schedule that decayed")


def test_a_schedule_stepped_per_batch_in_a_short_run_is_caught_on_the_default_schedule(fmnist):
    """250 steps, default recording (0, 1, 4, 16, 64, 200): one recorded step in the stalled tail. The
    optimizer watch saw the rate itself below 1/1000 of its start on most steps, which is the second witness."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    rec = _scheduled(net, opt, sched, fmnist, 250, Recorder(net))
    found = [f for f in _by_code(diagnose(rec), "UPDATE_RATIO") if f.evidence.get("cause") == "stalled"]
    assert len(found) == 1 and found[0].step == 200, format_findings(diagnose(rec))
    assert found[0].evidence["share"] > 0.5 and "the optimizer's own learning rate was below" in found[0].message
    assert "once per epoch, not once per batch" in found[0].suggestion


def test_a_learning_rate_that_underflows_to_zero_updates(fmnist):
    """StepLR(step_size=1) stepped per batch: by step 50 the update is exactly 0 in float32. A tail of
    zero updates counts when the last step that moved was already far down (not after a healthy one,
    which is rec.step() per micro-batch)."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.05)
    rec = _scheduled(net, opt, sched, fmnist, 200, Recorder(net, schedule=lambda s: s in (0, 1, 2, 50, 100, 150)))
    u = rec.tables()["scalars"].query("quantity == 'update_data_ratio' and step >= 50")
    assert len(u) and (u["value"] == 0).all()
    found = [f for f in _by_code(diagnose(rec), "UPDATE_RATIO") if f.evidence.get("cause") == "stalled"]
    assert len(found) == 1 and found[0].evidence["from_step"] == 50 and found[0].evidence["drop"] > 100
    assert "leaves it unchanged" in found[0].message and "then to 0" in found[0].message


# ----------------------------------------------------------------- 12. which optimizer steps the model

def _wired(fmnist, wiring, steps=24):
    """A plain loop whose optimizer is wired as ``wiring`` says, under a Recorder."""
    torch.manual_seed(0)
    net = _mlp()
    params = {"another_model": lambda: _mlp().parameters(),  # the model was built again after the optimizer
              "layer_left_out": lambda: [*net[2].parameters(), *net[4].parameters()],
              "lr_zero_group": lambda: [{"params": net[0].parameters(), "lr": 0.0},
                                        {"params": [*net[2].parameters(), *net[4].parameters()]}]}
    opt = torch.optim.SGD(params.get(wiring, net.parameters)(), lr=1e-2, momentum=0.9)
    with Recorder(net) as rec:
        for step in range(steps):
            i = (step * 128) % (len(fmnist.y) - 128)
            opt.zero_grad()
            loss = F.cross_entropy(net(fmnist.x[i:i + 128]), fmnist.y[i:i + 128])
            loss.backward()
            if wiring != "never_stepped":
                opt.step()
            rec.step(loss=loss)
    return rec


@pytest.mark.parametrize("wiring,first_cause,evidence", [
    ("never_stepped", "optimizer.step() is never called", "no torch optimizer stepped"),
    ("another_model", "the optimizer holds another model's parameters", "holding none of this model's parameters"),
    ("layer_left_out", "the layer was left out of the optimizer's parameter groups", "`0.weight` is in no parameter group"),
    ("lr_zero_group", "its param group has lr=0", "`0.weight` is in a parameter group with lr=0"),
])
def test_the_optimizers_seen_stepping_tell_the_causes_of_unmoved_weights_apart(fmnist, wiring, first_cause, evidence):
    """The weights cannot tell a step() never called from an optimizer built on another model, nor a
    layer left out of the optimizer from one in a group with lr 0; the optimizers the Recorder saw
    step can. (Before the watch, the second of each pair ranked below the first.)"""
    found = _by_code(diagnose(_wired(fmnist, wiring)), "NOT_UPDATED")
    assert len(found) == 1, format_findings(found)
    first = found[0].alternatives[0]
    assert first["cause"].startswith(first_cause) and first["verdict"] == "supported", found[0].alternatives
    assert evidence in first["evidence"]
    assert [a["verdict"] for a in found[0].alternatives[1:3]] == ["unlikely", "unlikely"], found[0].alternatives


def test_the_optimizer_watch_summary(fmnist, tmp_path):
    torch.manual_seed(0)
    net, bystander = _mlp(), nn.Linear(3, 3)
    opt = torch.optim.SGD([*net[2].parameters(), *net[4].parameters()], lr=0.1)
    other = torch.optim.Adam(bystander.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.01)
    with Recorder(net) as rec:
        for _ in range(4):
            opt.zero_grad()
            F.cross_entropy(net(fmnist.x[:64]), fmnist.y[:64]).backward()
            opt.step()
            sched.step()
            bystander(torch.ones(1, 3)).sum().backward()
            other.step()
            rec.step()
    opt.step()  # after the Recorder closed: not counted
    watch = rec.summary()["optimizer_watch"]
    assert watch["optimizers"] == [{"name": "SGD", "steps": 4, "lr_first": 0.1, "lr_last": pytest.approx(1e-9),
                                    "low_lr_steps": 2, "weight_decay": 0.0, "momentum": 0.0, "params": 4,
                                    "zero_lr": []}]  # 1e-5 and 1e-7 < 1e-4
    assert watch["other_steps"] == 4 and watch["not_in_optimizer"] == ["0.weight", "0.bias"]
    assert load_recording(rec.save(tmp_path / "rec")).summary()["optimizer_watch"] == watch
    facts = Facts(Evidence.of(rec), set())
    assert facts.lr == "SGD lr=0.1 (lr=1e-09 at the end)" and facts.low_lr_share == (2, 4)
    old = Evidence.of(rec)
    old.summary.pop("optimizer_watch")  # a recording made before the watch: unknown, not "no optimizer"
    assert Facts(old, set()).lr == "the learning rate" and Facts(old, set()).low_lr_share is None


def test_a_schedule_stepped_per_batch_is_named_for_a_run_that_does_not_learn():
    """NOT_LEARNING after StepLR(step_size=5) stepped every batch: the learning rate the Recorder saw
    fall a thousandfold within 15 steps ranks the schedule first."""
    torch.manual_seed(0)
    x = torch.randn(512, 20)
    y = x[:, :10].argmax(1)
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.1)
    with Recorder(net) as rec:
        for epoch in range(5):
            rec.epoch = epoch + 1
            for i in range(0, 512, 32):
                opt.zero_grad()
                loss = F.cross_entropy(net(x[i:i + 32]), y[i:i + 32])
                loss.backward()
                opt.step()
                sched.step()
                rec.step(loss=loss)
    found = _by_code(diagnose(rec), "NOT_LEARNING")
    assert found, format_findings(diagnose(rec))
    first = found[0].alternatives[0]
    assert first["cause"].startswith("a learning-rate schedule that decayed") and first["verdict"] == "supported"
    assert "SGD lr=0.05" in first["evidence"] and "below 1/1000 of its start in 60 of 80 steps" in first["evidence"]


def test_a_parameter_group_added_later_is_held(fmnist):
    """Unfreezing the first layer mid-run with add_param_group(): from then on the optimizer holds it."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD([*net[2].parameters(), *net[4].parameters()], lr=0.1)
    with Recorder(net) as rec:
        for step in range(4):
            if step == 2:
                opt.add_param_group({"params": net[0].parameters(), "lr": 0.01})
            opt.zero_grad()
            F.cross_entropy(net(fmnist.x[:64]), fmnist.y[:64]).backward()
            opt.step()
            rec.step()
    watch = rec.summary()["optimizer_watch"]
    assert watch["not_in_optimizer"] == [] and watch["optimizers"][0]["params"] == 6


# ----------------------------------------------------------------- 13. mixed precision: a gradient scaler's skipped steps

def _amp(fmnist, steps=40, init_scale=2.0 ** 24, poison_from=None):
    """The PyTorch mixed-precision recipe on the CPU: float16 autocast and a GradScaler whose first
    scale is too high, so it skips its first steps (NaN/inf gradients) and lowers the scale. With
    ``poison_from``, the loss is NaN from that step on: the scaler then skips every later step."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    skipped = []
    with Recorder(net) as rec:
        for step in range(steps):
            i = step * 64 % 2000
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = F.cross_entropy(net(fmnist.x[i:i + 64]), fmnist.y[i:i + 64])
            if poison_from is not None and step >= poison_from:
                loss = loss * float("nan")
            scaler.scale(loss).backward()
            scale = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            if scaler.get_scale() < scale:
                skipped.append(step)
            rec.step(loss=loss)
    return rec, skipped


def test_a_gradient_scalers_skipped_steps_are_a_note_not_a_nan_error(fmnist):
    """A healthy mixed-precision loop was an error before: NONFINITE at step 0, from the gradients the
    scaler had just refused to apply."""
    rec, skipped = _amp(fmnist)
    assert skipped and skipped[0] == 0 and len(skipped) < 10  # the scaler calibrating, as by design
    findings = diagnose(rec)
    assert not _by_code(findings, "NONFINITE"), format_findings(findings)
    note = _by_code(findings, "SKIPPED_STEPS")
    assert [f.severity for f in note] == ["info"], format_findings(findings)
    assert f"skipped {len(skipped)} of 40 steps" in note[0].message and "GradScaler" in note[0].message
    assert note[0].alternatives[0]["cause"] == "a gradient scaler calibrating its float16 scale"
    s = rec.summary()["skipped_steps"]
    assert s["skipped_by_scaler"] and s["steps"] == s["nonfinite"] == len(skipped) and s["first"] == 0
    assert rec.tables()["nonfinite"].empty  # the skipped steps' sightings are kept apart


def test_a_scaler_that_skips_most_steps_is_a_warning(fmnist):
    rec, skipped = _amp(fmnist, poison_from=10)
    assert len(skipped) >= 30
    findings = diagnose(rec)
    found = _by_code(findings, "SKIPPED_STEPS")
    assert [f.severity for f in found] == ["warning"], format_findings(findings)
    assert "trained nothing" in found[0].message and "overflows float16" in found[0].alternatives[0]["cause"]
    assert not _by_code(findings, "NONFINITE")


def test_a_nan_in_a_micro_batch_is_still_nonfinite_at_its_step(fmnist):
    """rec.step() per micro-batch leaves steps without an optimizer step too, but most of them are
    finite: not a scaler's skips, so a NaN there is NONFINITE at its exact step."""
    torch.manual_seed(0)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    with Recorder(net) as rec:
        for step in range(40):
            i = step * 16 % 2000
            xb = fmnist.x[i:i + 16].clone()
            if step == 13:  # a micro-batch between optimizer steps
                xb[0, 0] = float("nan")
            (F.cross_entropy(net(xb), fmnist.y[i:i + 16]) / 4).backward()
            if step % 4 == 3:
                opt.step()
                opt.zero_grad()
            rec.step()
    findings = diagnose(rec)
    nan = _by_code(findings, "NONFINITE")
    assert nan and nan[0].step == 13, format_findings(findings)
    assert not _by_code(findings, "SKIPPED_STEPS")
    assert not rec.summary()["skipped_steps"]["skipped_by_scaler"]


def test_without_a_torch_optimizer_a_nan_is_nonfinite(fmnist):
    """A hand-written update (no torch optimizer steps, so every step reads as one without a step): its
    NaN is NONFINITE, as before."""
    torch.manual_seed(0)
    net = _mlp()
    with Recorder(net) as rec:
        for step in range(12):
            xb = fmnist.x[step * 32:(step + 1) * 32].clone()
            if step >= 5:
                xb[0, 0] = float("inf")
            net.zero_grad()
            F.cross_entropy(net(xb), fmnist.y[step * 32:(step + 1) * 32]).backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= 1e-2 * torch.nan_to_num(p.grad)
            rec.step()
    nan = _by_code(diagnose(rec), "NONFINITE")
    assert nan and nan[0].step == 5


# ----------------------------------------------------------------- 14. units that start (and stay) identical

def _constant(model, value):
    """As a user writes it: nn.init.constant_ on every weight, biases at 0."""
    for name, p in model.named_parameters():
        nn.init.constant_(p, value if name.endswith("weight") else 0.0)
    return model


@pytest.mark.parametrize("value", [0.0, 0.01])
def test_constant_or_zero_initialisation_is_named(fmnist, value):
    """The classic question: why not start every weight at the same value (or at zero)? Before, zeros
    got NOT_LEARNING blamed on saturated units, and 0.01 a NOT_UPDATED "left out of the optimizer"
    (its uniform change has std 0) and an exploding gradient blamed on the learning rate."""
    rec = _train(_constant(_mlp(), value), fmnist.x, fmnist.y, steps=60)
    findings = diagnose(rec)
    sym = _by_code(findings, "SYMMETRIC_UNITS")
    assert sym and sym[0].severity == "error", format_findings(findings)
    assert sym[0].layer == "0" and "All 128 units of Linear `0` are copies of each other" in sym[0].message
    assert "started as one constant" in sym[0].message
    assert sym[0].alternatives[0]["cause"].startswith("constant or zero initialisation")
    assert not _by_code(findings, "NOT_UPDATED"), format_findings(findings)
    for f in findings:  # every other symptom leads back to the initialisation
        if f.severity != "info" and f.code != "SYMMETRIC_UNITS":
            assert f.alternatives[0]["cause"].startswith("every unit of a layer the same"), (f.code, f.alternatives[0])


def test_one_layer_started_at_zero_is_not_symmetric(fmnist):
    """Zero-initialising one layer (an output head, a residual branch's last layer) is a known healthy
    recipe: the random layers around it give its units different gradients at once."""
    net = _mlp()
    with torch.no_grad():
        net[2].weight.zero_()  # the middle layer; the others random
        net[4].weight.zero_()  # the output head
    findings = diagnose(_train(net, fmnist.x, fmnist.y, steps=40))
    assert not _by_code(findings, "SYMMETRIC_UNITS"), format_findings(findings)


# ----------------------------------------------------------------- 15. an MSE loss broadcasting (N, 1) against (N,)

def _regression(fmnist, squeeze: bool, loss_fn=F.mse_loss):
    """A regression head (one output) on each image's mean brightness; the bug is the missing squeeze."""
    torch.manual_seed(0)
    net = _mlp(classes=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = (fmnist.x.mean(1) + 1) * 5
    with Recorder(net) as rec:
        for step in range(40):
            i = step * 64 % 2000
            out, y = net(fmnist.x[i:i + 64]), target[i:i + 64]
            warns = not squeeze and step == 0 and loss_fn in (F.mse_loss, F.l1_loss, F.huber_loss)
            with pytest.warns(UserWarning, match="target size") if warns else _no_warning():
                loss = loss_fn(out.squeeze(-1) if squeeze else out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss, targets=y)
    return diagnose(rec)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.filterwarnings("ignore:Using a target size")  # the bug's own warning, asserted once in _regression
@pytest.mark.parametrize("loss_fn", [F.mse_loss, F.l1_loss, F.huber_loss])
def test_an_elementwise_loss_that_broadcasts_is_an_error(fmnist, loss_fn):
    """PyTorch warns once and trains on: every output is compared with every target, and the model
    learns the mean. Before, gradflow said nothing about it."""
    found = _by_code(_regression(fmnist, squeeze=False, loss_fn=loss_fn), "LOSS_BROADCAST")
    assert [f.severity for f in found] == ["error"]
    assert "an output of shape (64, 1) against targets of shape (64,)" in found[0].message
    assert "broadcast them to (64, 64)" in found[0].message and "squeeze(-1)" in found[0].suggestion
    assert not _by_code(_regression(fmnist, squeeze=True, loss_fn=loss_fn), "LOSS_BROADCAST")


@pytest.mark.parametrize("loss_fn", [lambda out, y: ((out - y) ** 2).mean(),
                                     lambda out, y: (y - out).abs().sum() / len(y)], ids=["squared", "absolute"])
def test_a_hand_written_loss_that_broadcasts_is_an_error(fmnist, loss_fn):
    """mean((out - y) ** 2) with out (N, 1) and y (N,): the same bug, and PyTorch does not even warn.
    The loss graph keeps the (N, N) shape the mean reduced; a pairwise loss on out - out.T is no bug."""
    found = _by_code(_regression(fmnist, squeeze=False, loss_fn=loss_fn), "LOSS_BROADCAST")
    assert [f.severity for f in found] == ["error"]
    assert "an output of shape (64, 1) and then reduces a tensor of shape (64, 64)" in found[0].message
    assert not _by_code(_regression(fmnist, squeeze=True, loss_fn=loss_fn), "LOSS_BROADCAST")
    pairwise = _regression(fmnist, squeeze=False, loss_fn=lambda out, y: torch.relu(1 - (out - out.T)).mean())
    assert not _by_code(pairwise, "LOSS_BROADCAST")


def test_the_symmetric_cause_is_listed_last_when_its_finding_is_absent(fmnist):
    """Listed first so it wins when found, it must not push aside the other unlikely causes when not
    (the comparison page's sigmoid showed it second of three)."""
    findings = diagnose(_train(_mlp(), fmnist.x, fmnist.y, steps=20, lr=10.0))
    ranked = [f.alternatives for f in findings if f.alternatives and any(
        a["cause"].startswith("every unit of a layer the same") for a in f.alternatives)]
    assert ranked, format_findings(findings)
    for alternatives in ranked:
        assert alternatives[-1]["cause"].startswith("every unit of a layer the same"), alternatives


# ----------------------------------------------------------------- 16. a loader that never shuffles

def test_batches_that_arrive_one_class_at_a_time_are_an_error(fmnist):
    """DataLoader(shuffle=False) on a dataset stored class by class: each batch holds one class, the model
    answers the last class it saw. Before, NOT_LEARNING blamed the learning rate; now UNSHUFFLED_DATA,
    from the labels passed to rec.step(targets=y), and NOT_LEARNING ranks it first."""
    order = torch.argsort(fmnist.y, stable=True)
    x_sorted, y_sorted = fmnist.x[order], fmnist.y[order]
    labels = lambda xb, yb: yb  # noqa: E731 -- rec.step(targets=y)
    rec = _train(_mlp(), x_sorted, y_sorted, steps=20, targets=labels)
    found = _by_code(diagnose(rec), "UNSHUFFLED_DATA")
    assert [f.severity for f in found] == ["error"]
    from gradflow.diagnose import Evidence, Finding
    from gradflow.diagnose.alternatives import rank_causes
    stuck = Finding("NOT_LEARNING", "error", None, None, "validation accuracy at chance", {})
    assert rank_causes(stuck, Evidence.of(rec), {"NOT_LEARNING", "UNSHUFFLED_DATA"})[0]["cause"] == \
        "training batches ordered by class (no shuffling)"
    assert "4 of 4 recorded training batches hold at most 2 classes of the model's 10" in found[0].message
    assert "shuffle=True" in found[0].suggestion
    mixed = _train(_mlp(), fmnist.x, fmnist.y, steps=20, targets=labels)
    assert not _by_code(diagnose(mixed), "UNSHUFFLED_DATA")
    last = rank_causes(stuck, Evidence.of(mixed), {"NOT_LEARNING"})[-1]
    assert last["cause"].startswith("training batches ordered") and last["evidence"] == "the recorded batches mix classes"
    two_classes = (fmnist.y % 2)[order]  # a binary task sorted by label: a one-class batch can be chance
    assert not _by_code(diagnose(_train(_mlp(classes=2), x_sorted, two_classes, steps=20, targets=labels)),
                        "UNSHUFFLED_DATA")
