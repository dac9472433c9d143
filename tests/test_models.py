import pytest
import torch
from torch import nn

import gradflow
from gradflow.models import INIT_SCHEMES, BaseNetwork


def test_tutorial_layout_and_state_dict_keys():
    net = BaseNetwork("relu")
    linears = [m for m in net.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 512), (512, 256), (256, 256), (256, 128), (128, 10)]
    assert list(net.state_dict())[:4] == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert net(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert net.config == {"act_fn": {"name": "relu"}, "input_size": 784, "num_classes": 10,
                          "hidden_sizes": [512, 256, 256, 128], "init": "default", "norm": "none",
                          "dropout": 0.0, "output_act": None}


def test_each_layer_gets_its_own_activation_module():
    act = gradflow.get_activation("tanh")
    net = BaseNetwork(act, hidden_sizes=[4, 4])
    acts = [m for m in net.layers if isinstance(m, gradflow.Activation)]
    assert len(acts) == 2 and acts[0] is not acts[1]


def test_options_build_the_expected_layers():
    net = BaseNetwork("elu", input_size=20, num_classes=3, hidden_sizes=[16, 8], norm="batch", dropout=0.25,
                      output_act="tanh")
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["Linear", "BatchNorm1d", "Activation", "Dropout",
                     "Linear", "BatchNorm1d", "Activation", "Dropout", "Linear", "Activation"]
    assert net.layers[3].p == 0.25
    out = net.eval()(torch.randn(4, 20))
    assert out.shape == (4, 3) and out.abs().max() <= 1  # tanh on the logits squeezes them
    ln = BaseNetwork("relu", input_size=6, hidden_sizes=[5], norm="layer")
    assert isinstance(ln.layers[1], nn.LayerNorm)


@pytest.mark.parametrize("init", INIT_SCHEMES)
def test_init_schemes(init):
    torch.manual_seed(0)
    net = BaseNetwork("relu", hidden_sizes=[64, 64], init=init)
    w = net.layers[0].weight
    assert torch.isfinite(w).all() and w.std() > 0
    if init != "default":
        assert net.layers[0].bias.abs().sum() == 0
    if init == "orthogonal":
        w = net.layers[2].weight  # square 64x64
        torch.testing.assert_close(w @ w.T, torch.eye(64), atol=1e-5, rtol=0)
    if init == "kaiming_normal":
        assert w.std().item() == pytest.approx((2 / 784) ** 0.5, rel=0.1)


def test_from_config_round_trip():
    net = BaseNetwork(gradflow.get_activation("leakyrelu", alpha=0.2), hidden_sizes=[10, 10], dropout=0.1,
                      norm="layer")
    clone = BaseNetwork.from_config(net.config)
    clone.load_state_dict(net.state_dict())
    x = torch.randn(3, 784)
    torch.testing.assert_close(net.eval()(x), clone.eval()(x))
    with pytest.raises(ValueError, match="unknown BaseNetwork config keys"):
        BaseNetwork.from_config({**net.config, "colour": "red"})


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden_sizes": [512, 0]}, r"hidden_sizes\[1\] must be a positive integer"),
    ({"hidden_sizes": [512, 2.5]}, "positive integer"),
    ({"input_size": -1}, "input_size must be a positive integer"),
    ({"num_classes": 0}, "num_classes"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\).*DROPPING"),
    ({"dropout": -0.1}, "dropout"),
    ({"init": "lecun"}, "unknown init 'lecun'; accepted: default"),
    ({"norm": "group"}, "unknown norm 'group'; accepted: none, batch, layer"),
    ({"act_fn": 3}, "act_fn must be"),
])
def test_invalid_options_are_rejected_clearly(kwargs, message):
    kwargs = {"act_fn": "relu", **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        BaseNetwork(**kwargs)
