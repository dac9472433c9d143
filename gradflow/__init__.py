"""gradflow: gradient-flow diagnostics for PyTorch.

    import gradflow
    net = gradflow.BaseNetwork("tanh")                     # the tutorial's MLP
    with gradflow.Recorder(my_model) as rec:               # any nn.Module, your own loop
        ...; optimizer.step(); rec.step(loss=loss)
    print(gradflow.format_findings(gradflow.diagnose(rec)))
    batch = gradflow.SeedBatch(lambda: MyNet(), seeds=range(5))   # 5 seeds of your model as one
"""
from ._version import __version__
from .activations import (
    Activation,
    activation_config,
    activation_from_config,
    available_activations,
    get_activation,
    register_activation,
)
from .diagnose import Finding, diagnose, format_findings
from .models import BaseNetwork
from .record import Recorder
from .recording import load_recording
from .seed_batch import SeedBatch

__all__ = ["__version__", "Activation", "BaseNetwork", "Finding", "Recorder", "activation_config", "activation_from_config",
           "available_activations", "diagnose", "format_findings", "get_activation", "load_recording",
           "register_activation", "SeedBatch"]
