"""gradflow: gradient-flow diagnostics for PyTorch."""
from .activations import (Activation, activation_config, activation_from_config, available_activations,
                          get_activation, register_activation)
from .models import BaseNetwork

__version__ = "0.1.0"
