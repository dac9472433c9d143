"""SeedBatch: several seeds of an arbitrary model trained as one must equal separate models."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradflow import SeedBatch


class SmallNet(nn.Module):
    """Not a BaseNetwork: a norm layer, a non-persistent buffer and tied weights."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.embed = nn.Linear(6, 12)
        self.norm = nn.BatchNorm1d(12)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(12, 12, bias=False)
        self.out = nn.Linear(12, 3)
        self.register_buffer("scale", torch.tensor(0.5), persistent=False)
        self.head_again = self.head  # the same weights used twice (tied)

    def forward(self, x):
        h = self.drop(torch.tanh(self.norm(self.embed(x))))
        return self.out(F.relu(self.head_again(F.relu(self.head(h)))) * self.scale + h)


def _separate(seeds):
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(SmallNet())
    return models


@pytest.mark.parametrize("per_member", [False, True])
def test_training_a_seed_batch_equals_training_each_seed_alone(per_member):
    seeds = [3, 1, 4]
    batch = SeedBatch(SmallNet, seeds)
    models = _separate(seeds)
    opt = torch.optim.SGD(batch.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3) for m in models]
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        if per_member:
            x, y = torch.randn(3, 32, 6, generator=g), torch.randint(0, 3, (3, 32), generator=g)
        else:
            x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        losses = batch.losses(batch(x, per_member=per_member), y, per_member=per_member)
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        for i, (m, o) in enumerate(zip(models, opts)):
            xi, yi = (x[i], y[i]) if per_member else (x, y)
            loss = F.cross_entropy(m(xi), yi)
            assert losses[i].item() == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
            o.zero_grad()
            loss.backward()
            o.step()
    for i, m in enumerate(models):
        mine = batch.member_state(i)
        theirs = {**dict(m.named_parameters()), **dict(m.named_buffers())}
        assert set(mine) == set(theirs)
        for name, value in theirs.items():  # weights, BatchNorm running statistics, step counter
            torch.testing.assert_close(mine[name], value.detach(), rtol=1e-4, atol=1e-5, msg=name)


def test_members_export_as_ordinary_models_and_accuracy_is_per_member():
    batch = SeedBatch(SmallNet, [0, 1]).eval()
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    out = batch(x)
    assert out.shape == (2, 20, 3)
    for m in range(2):
        member = batch.member(m)
        assert isinstance(member, SmallNet) and not member.training
        torch.testing.assert_close(member(x), out[m])
    torch.testing.assert_close(out[0], _separate([0])[0].eval()(x))  # member 0 is seed 0's own model
    acc = batch.accuracy(out, y)
    expected = torch.stack([(out[m].argmax(-1) == y).double().mean() for m in range(2)])
    torch.testing.assert_close(acc, expected)
    assert batch.accuracy(out, y.expand(2, 20), per_member=True).tolist() == acc.tolist()


def test_dropout_masks_differ_between_members_unless_asked_otherwise():
    x = torch.randn(16, 6)
    for randomness, same in (("different", False), ("same", True)):
        batch = SeedBatch(lambda: SmallNet(dropout=0.5), [0, 1], randomness=randomness)
        with torch.no_grad():
            for p in batch.parameters():
                p[1] = p[0]  # identical weights: any difference comes from the dropout masks
        out = batch(x)
        assert torch.equal(out[0], out[1]) == same


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="at least one seed"):
        SeedBatch(SmallNet, [])
    with pytest.raises(ValueError, match="seeds must be distinct"):
        SeedBatch(SmallNet, [1, 1])
    with pytest.raises(TypeError, match="must return an nn.Module"):
        SeedBatch(lambda: "model", [0])
    widths = iter([8, 9])
    with pytest.raises(ValueError, match="different model for seed 1 than for seed 0"):
        SeedBatch(lambda: nn.Linear(4, next(widths)), [0, 1])
    batch = SeedBatch(SmallNet, [0, 1])
    with pytest.raises(ValueError, match=r"per_member=True takes inputs of shape \(2, \.\.\.\)"):
        batch(torch.randn(3, 16, 6), per_member=True)
    with pytest.raises(IndexError, match="member 2 out of range"):
        batch.member(2)


def test_the_recorder_refuses_a_seed_batch_instead_of_recording_nonsense():
    from gradflow import Recorder
    with pytest.raises(TypeError, match="Recorder cannot see inside a SeedBatch"):
        Recorder(SeedBatch(SmallNet, [0, 1]))


def test_gradient_clipping_is_per_member_like_clipping_each_model():
    seeds = [0, 1, 2]
    batch = SeedBatch(SmallNet, seeds)
    models = _separate(seeds)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    (batch.losses(batch(x), y) * torch.tensor([100.0, 1.0, 0.001])).sum().backward()  # very different norms
    norms = batch.clip_grad_norm_(0.5)
    for i, (m, w) in enumerate(zip(models, (100.0, 1.0, 0.001))):
        (F.cross_entropy(m(x), y) * w).backward()
        expected = torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
        assert norms[i].item() == pytest.approx(expected.item(), rel=1e-4)
        for name, p in m.named_parameters():
            torch.testing.assert_close(batch.member_state(i)[name], p.detach())  # weights untouched
        grads = dict(zip(batch._param_names, (p.grad[i] for p in batch.stacked)))
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-7, msg=name)
