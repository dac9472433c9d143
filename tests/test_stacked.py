"""The batched path must compute exactly what separate BaseNetworks compute in plain PyTorch."""
import pytest
import torch
import torch.nn.functional as F

from gradflow.models import BaseNetwork
from gradflow.stacked import StackedMLP
from gradflow.train import member_losses

ACTS = ["sigmoid", "tanh", "relu", "relu", "elu", "swish"]  # a repeated one makes a group of two


def _nets(norm="none", acts=ACTS, **kw):
    nets = []
    for seed, act in enumerate(acts):
        torch.manual_seed(seed)
        nets.append(BaseNetwork(act, input_size=20, num_classes=5, hidden_sizes=[16, 12, 8], norm=norm, **kw))
    return nets


def _batches(M, B=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(M, B, 20, generator=g), torch.randint(0, 5, (M, B), generator=g)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_losses_and_gradients_match_separate_models(norm):
    nets = _nets(norm)
    stacked = StackedMLP(nets)
    x, y = _batches(len(nets))
    losses = member_losses(stacked(x), y)
    losses.sum().backward()
    for m, net in enumerate(nets):
        loss = F.cross_entropy(net(x[m]), y[m])
        loss.backward()
        torch.testing.assert_close(losses[m], loss, rtol=1e-5, atol=1e-6)
        for name, p in net.named_parameters():
            idx, attr = name.split(".")[1:]
            stacked_p = getattr(stacked.layers[int(idx)], attr)
            torch.testing.assert_close(stacked_p.grad[m], p.grad, rtol=1e-4, atol=1e-6, msg=f"member {m} {name}")


# Not Adam + batch norm: the bias before a batch norm has a gradient of exactly zero in theory and
# ~1e-9 rounding noise in practice, which Adam's normalisation blows up to full-size steps in
# either implementation, so the two drift apart without either being wrong.
@pytest.mark.parametrize("optimizer, norm", [("sgd", "none"), ("sgd", "batch"), ("adam", "none")])
def test_training_steps_match_separate_optimizers(optimizer, norm):
    nets = _nets(norm)
    stacked = StackedMLP(nets)

    def opt(params):
        if optimizer == "sgd":
            return torch.optim.SGD(params, lr=0.05, momentum=0.9)
        return torch.optim.Adam(params, lr=1e-2)

    stacked_opt, opts = opt(stacked.parameters()), [opt(n.parameters()) for n in nets]
    for step in range(4):
        x, y = _batches(len(nets), seed=step)
        stacked_opt.zero_grad()
        member_losses(stacked(x), y).sum().backward()
        stacked_opt.step()
        for m, (net, o) in enumerate(zip(nets, opts)):
            o.zero_grad()
            F.cross_entropy(net(x[m]), y[m]).backward()
            o.step()
    for m, net in enumerate(nets):
        exported = stacked.export(m)
        for k, v in net.state_dict().items():
            torch.testing.assert_close(exported[k], v, rtol=1e-4, atol=1e-5, msg=f"member {m} {k}")


def test_export_is_an_ordinary_base_network_state_dict():
    nets = _nets("batch", dropout=0.3)
    stacked = StackedMLP(nets)
    for m in (0, 3):
        rebuilt = stacked.member_network(m).eval()
        assert set(rebuilt.state_dict()) == set(nets[m].state_dict())
        x = torch.randn(7, 20)
        torch.testing.assert_close(rebuilt(x), nets[m].eval()(x))
    # evaluation with a shared input equals each member on its own
    stacked.eval()
    x = torch.randn(9, 20)
    out = stacked(x)
    for m, net in enumerate(nets):
        torch.testing.assert_close(out[m], net.eval()(x), rtol=1e-5, atol=1e-6)


def test_dropout_masks_differ_between_members_and_keep_expectation():
    nets = _nets(acts=["identity"] * 3, dropout=0.5)
    stacked = StackedMLP(nets).train()
    drop = stacked.layers[2]
    x = torch.ones(3, 2000, 16)
    out = drop(x)
    assert not torch.equal(out[0], out[1])
    assert out.mean().item() == pytest.approx(1.0, abs=0.05)  # inverted dropout keeps the mean
    per_member = StackedMLP(_nets(acts=["identity"] * 2, dropout=0.5)[:1] + [
        BaseNetwork("identity", input_size=20, num_classes=5, hidden_sizes=[16, 12, 8], dropout=0.1)]).layers[2]
    frac_zero = (per_member(torch.ones(2, 4000, 16)) == 0).float().mean(dim=(1, 2))
    assert frac_zero[0].item() == pytest.approx(0.5, abs=0.03) and frac_zero[1].item() == pytest.approx(0.1, abs=0.03)


def test_mismatched_shapes_are_rejected():
    a = BaseNetwork("relu", input_size=20, num_classes=5, hidden_sizes=[16])
    b = BaseNetwork("relu", input_size=20, num_classes=5, hidden_sizes=[8])
    with pytest.raises(ValueError, match="different layer structure"):
        StackedMLP([a, b])
    with pytest.raises(ValueError, match="at least one"):
        StackedMLP([])
    with pytest.raises(ValueError, match="takes flat inputs"):
        StackedMLP([a, a])(torch.randn(3, 4, 20))


def test_backward_through_mixed_activations_joins_the_groups_in_one_concatenation():
    """Each activation group's gradient joins the others by one concatenation. Slicing the input
    per group instead made autograd write each slice's gradient into an input-sized zero tensor
    (slice_backward) and add those up: two input-sized kernels per group, every training step."""
    from torch.utils._python_dispatch import TorchDispatchMode

    act = StackedMLP(_nets()).layers[1]  # the first StackedActivation: five groups for six members
    x = torch.randn(len(ACTS), 32, 16, requires_grad=True)
    y = act(x)
    seed = torch.ones_like(y)
    input_sized = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.numel() == x.numel() and func.__name__ != "detach.default":
                input_sized.append(func.__name__)
            return out

    with Watch():
        y.backward(seed)
    assert len(act.groups) == 5
    assert input_sized == ["cat.default"], input_sized
    expected = torch.autograd.grad(torch.cat([fn(x[s:e]) for (s, e, _), fn in zip(act.groups, act.fns)]).sum(), x)[0]
    assert torch.equal(x.grad, expected)
