import pytest
import torch
from torch import nn

import gradflow
from gradflow.activations import activation_config, activation_from_config, is_bounded

TUTORIAL_SIX = ["sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish"]


def test_registry_has_the_tutorial_six_and_more():
    names = gradflow.available_activations()
    for name in TUTORIAL_SIX + ["gelu", "mish", "softplus", "selu", "identity"]:
        assert name in names


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish",
                                  "gelu", "mish", "softplus", "selu", "identity"])
def test_config_round_trip_gives_the_same_function(name):
    act = gradflow.get_activation(name)
    config = activation_config(act)
    rebuilt = activation_from_config(config)
    assert rebuilt.config == config
    x = torch.linspace(-6, 6, 101)
    torch.testing.assert_close(act(x), rebuilt(x), rtol=0, atol=0)


def test_functions_match_torch_references():
    x = torch.linspace(-5, 5, 41)
    torch.testing.assert_close(gradflow.get_activation("swish")(x), x * torch.sigmoid(x))
    torch.testing.assert_close(gradflow.get_activation("leakyrelu")(x), torch.where(x > 0, x, 0.1 * x))
    torch.testing.assert_close(gradflow.get_activation("elu", alpha=0.5)(x), torch.where(x > 0, x, 0.5 * (x.exp() - 1)))


def test_parameters_round_trip():
    act = gradflow.get_activation("leakyrelu", alpha=0.2)
    assert act.config == {"name": "leakyrelu", "alpha": 0.2}
    assert activation_from_config(act.config)(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
    assert gradflow.get_activation("LeakyReLU").config["alpha"] == 0.1  # the tutorial's saved name works


def test_unknown_name_lists_registered_names():
    with pytest.raises(ValueError) as err:
        gradflow.get_activation("sigmoidd")
    assert "sigmoidd" in str(err.value) and "relu" in str(err.value) and "swish" in str(err.value)


def test_unknown_parameter_lists_accepted_ones():
    with pytest.raises(ValueError, match="accepted: alpha=0.1"):
        gradflow.get_activation("leakyrelu", slope=0.3)
    with pytest.raises(ValueError, match="accepted: none"):
        gradflow.get_activation("relu", alpha=1)


def test_register_function_as_decorator_and_call():
    @gradflow.register_activation("test_cube")
    def cube(x):
        return x ** 3

    gradflow.register_activation("test_scaled", lambda x, k=2.0: k * x)
    assert "test_cube" in gradflow.available_activations()
    assert gradflow.get_activation("test_cube")(torch.tensor([2.0])).item() == 8.0
    scaled = gradflow.get_activation("test_scaled", k=3.0)
    assert scaled.config == {"name": "test_scaled", "k": 3.0}
    assert activation_from_config(scaled.config)(torch.tensor([1.0])).item() == 3.0
    with pytest.raises(ValueError, match="already registered"):
        gradflow.register_activation("test_cube", lambda x: x)


def test_a_notebook_cell_run_twice_registers_its_activation_again():
    """Run all, twice, in one kernel: the cell defines the same function again; that is no clash."""
    def cell():
        def soft_clip(x):
            return 2 * torch.tanh(x / 2)
        return gradflow.register_activation("test_soft_clip", soft_clip)

    cell()
    cell()  # a new function object, same module and name: it replaces the first
    assert gradflow.get_activation("test_soft_clip")(torch.tensor([0.0])).item() == 0.0
    with pytest.raises(ValueError, match="already registered"):
        gradflow.register_activation("test_soft_clip", torch.sigmoid)  # another function under a taken name


def test_register_module_class():
    class Clip(nn.Module):
        def __init__(self, limit=1.0):
            super().__init__()
            self.limit = limit

        def forward(self, x):
            return x.clamp(-self.limit, self.limit)

    gradflow.register_activation("test_clip", Clip, bounded=True)
    act = gradflow.get_activation("test_clip", limit=0.5)
    assert isinstance(act, Clip) and act.config == {"name": "test_clip", "limit": 0.5}
    assert is_bounded(act) and is_bounded("tanh") and not is_bounded("relu")
    net = gradflow.BaseNetwork(act, hidden_sizes=[8])
    assert net.config["act_fn"] == {"name": "test_clip", "limit": 0.5}


def test_bad_registrations_are_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        gradflow.register_activation("", lambda x: x)
    with pytest.raises(TypeError, match="function or an nn.Module"):
        gradflow.register_activation("test_not_callable", 3)
    with pytest.raises(ValueError, match="'name' key"):
        activation_from_config({"alpha": 1})


@pytest.mark.parametrize("name", ["<b>bold</b>", "my relu", "../up", "-dash"])
def test_names_that_would_reach_html_or_paths_unescaped_are_refused(name):
    with pytest.raises(ValueError, match="letters, digits"):
        gradflow.register_activation(name, lambda x: x)
    assert name.lower() not in gradflow.available_activations()
