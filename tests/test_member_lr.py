"""Members of one stacked model with their own learning rates step exactly as separate optimizers."""
import pytest
import torch
import torch.nn.functional as F

from gradflow.config import make_config
from gradflow.member_lr import MemberLR, shard_key, with_member_lrs
from gradflow.models import BaseNetwork
from gradflow.stacked import StackedMLP
from gradflow.train import member_losses

LRS = [0.1, 0.03, 0.01, 0.1]


def _nets():
    nets = []
    for seed, act in enumerate(["relu", "tanh", "relu", "elu"]):
        torch.manual_seed(seed)
        nets.append(BaseNetwork(act, input_size=20, num_classes=5, hidden_sizes=[16, 12]))
    return nets


OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "sgd-momentum-wd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr / 10, weight_decay=1e-4),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr / 10, weight_decay=0.05),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr / 10, momentum=0.5),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_member_learning_rates_match_separate_optimizers(name):
    make = OPTIMIZERS[name]
    scale = 10 if name in ("adam", "adamw", "rmsprop") else 1
    nets = _nets()
    stacked = StackedMLP(nets)
    opt = with_member_lrs(make(stacked.parameters(), 1.0), [lr / scale for lr in LRS])
    assert isinstance(opt, MemberLR)
    opts = [make(n.parameters(), lr) for n, lr in zip(nets, LRS)]
    for step in range(5):
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(4, 32, 20, generator=g), torch.randint(0, 5, (4, 32), generator=g)
        opt.zero_grad()
        member_losses(stacked(x), y).sum().backward()
        opt.step()
        for m, (net, o) in enumerate(zip(nets, opts)):
            o.zero_grad()
            F.cross_entropy(net(x[m]), y[m]).backward()
            o.step()
    moved = [(stacked.export(m)["layers.0.weight"] - _nets()[m].state_dict()["layers.0.weight"]).abs().max()
             for m in range(4)]
    assert moved[0] > 1.5 * moved[2]  # the rates really differ: a test that could fail
    for m, net in enumerate(nets):
        exported = stacked.export(m)
        for k, v in net.state_dict().items():
            torch.testing.assert_close(exported[k], v, rtol=1e-4, atol=1e-6, msg=f"{name} member {m} {k}")


def test_one_rate_keeps_the_plain_optimizer():
    stacked = StackedMLP(_nets())
    opt = torch.optim.SGD(stacked.parameters(), lr=0.1)
    assert with_member_lrs(opt, [0.1] * 4) is opt


def test_bad_rates_and_unstacked_parameters_are_refused():
    stacked = StackedMLP(_nets())
    with pytest.raises(ValueError, match="positive"):
        MemberLR(torch.optim.SGD(stacked.parameters(), lr=0.1), [0.1, 0.0, 0.1, 0.1])
    with pytest.raises(ValueError, match="not stacked over 3 members"):
        MemberLR(torch.optim.SGD(stacked.parameters(), lr=0.1), [0.1, 0.2, 0.3])


def test_shard_key_ignores_the_rate_only_where_it_is_exact():
    a, b = make_config("relu", "smoke", lr=0.1), make_config("tanh", "smoke", lr=0.01)
    assert a.batch_key() != b.batch_key() and shard_key(a) == shard_key(b)
    c = make_config("relu", "smoke", lr=0.1, batch_size=32)
    assert shard_key(a) != shard_key(c)
