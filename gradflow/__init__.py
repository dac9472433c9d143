"""gradflow: gradient-flow diagnostics for PyTorch.

    import gradflow
    net = gradflow.BaseNetwork("tanh")                     # the tutorial's MLP
    with gradflow.Recorder(my_model) as rec:               # any nn.Module, your own loop
        ...; optimizer.step(); rec.step(loss=loss)
    print(gradflow.format_findings(gradflow.diagnose(rec)))
    batch = gradflow.SeedBatch(lambda: MyNet(), seeds=range(5))   # 5 seeds of your model as one

The names below are imported on first use, not with the package: ``gradflow --help`` must answer
in well under a second, and importing torch alone takes longer than that on a small CPU.
"""
from __future__ import annotations

import importlib
import types

from ._version import __version__ as __version__  # the one place it is written: _version.py

# public name -> the submodule that defines it
_EXPORTS = {
    "Activation": "activations", "activation_config": "activations", "activation_from_config": "activations",
    "available_activations": "activations", "get_activation": "activations", "register_activation": "activations",
    "BaseNetwork": "models", "Finding": "diagnose", "diagnose": "diagnose", "format_findings": "diagnose",
    "Recorder": "record", "load_recording": "recording", "SeedBatch": "seed_batch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gradflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # next time a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps ``gradflow.diagnose`` the function: importing the submodule of the same name would
    otherwise bind the module over it (the import system sets package attributes for submodules)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


import sys  # noqa: E402

sys.modules[__name__].__class__ = _Package
