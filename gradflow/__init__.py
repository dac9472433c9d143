"""gradflow: gradient-flow diagnostics for PyTorch.

    import gradflow
    net = gradflow.BaseNetwork("tanh")                     # the tutorial's MLP
    with gradflow.Recorder(my_model) as rec:               # any nn.Module, your own loop
        ...; optimizer.step(); rec.step(loss=loss)
    print(gradflow.format_findings(gradflow.diagnose(rec)))
    batch = gradflow.SeedBatch(lambda: MyNet(), seeds=range(5))   # 5 seeds of your model as one
"""
from .activations import (
    Activation,
    activation_config,
    activation_from_config,
    available_activations,
    get_activation,
    register_activation,
)
from .models import BaseNetwork

__version__ = "0.1.0"

from .diagnose import Finding, diagnose, format_findings  # noqa: E402  (after __version__: train imports it)
from .record import Recorder  # noqa: E402
from .recording import load_recording  # noqa: E402
from .seed_batch import SeedBatch  # noqa: E402
from .sweep_run import sweep  # noqa: E402  (stdlib-only at import; the rest loads when called)

__all__ = ["Activation", "BaseNetwork", "Finding", "Recorder", "activation_config", "activation_from_config",
           "available_activations", "diagnose", "format_findings", "get_activation", "load_recording",
           "register_activation", "SeedBatch", "sweep"]
