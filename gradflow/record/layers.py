"""Which modules the Recorder hooks, and how it sees their tensors.

- every module with trainable parameters, through its main parameter (``weight``, else its
  largest): the weight gradient and the weight before the optimizer step;
- every activation module (gradflow's, torch's elementwise ones, user-registered ones): its
  output, its derivative, and the gradients flowing through it.

Statistics are per *member*: a stacked module (one that says ``members = M``) carries M independent
models in dim 0 of its parameters and activations; an ordinary module is one member.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import stats
from ..activations import Activation, is_bounded
from ..quantities import ROOT_LAYER, is_norm_type

# torch's elementwise activation modules (Softmax and friends are not elementwise: left out).
TORCH_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.CELU, nn.GELU,
                     nn.SiLU, nn.Mish, nn.Softplus, nn.SELU, nn.Hardtanh, nn.PReLU, nn.RReLU,
                     nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid,
                     nn.Threshold, nn.Softshrink, nn.Hardshrink)
PARAM, ACTIVATION = "param", "activation"  # the two kinds of hooked layer

# What a hooked parameter is, for the ratio rules (grad:data, update:data divide by the weight's std):
# - WEIGHT: an ordinary weight drawn at random; its std is its scale;
# - NORM: a normalisation layer's scale (starts at exactly 1: std 0, the ratio means nothing);
# - CONSTANT_INIT: any other parameter that starts at one value (zeros: a positional embedding, a
#   zero-initialised projection) -- its std is ~0 against its magnitude.
WEIGHT_ROLE, NORM_ROLE, CONSTANT_ROLE = "weight", "norm", "constant-init"
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
              *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
# std below this fraction of the RMS (or an RMS of 0): the values are one constant. Random inits have
# std ~ RMS (ratio ~1); a scale of ones nudged by one optimizer step has ~1e-3.
CONSTANT_STD_FRACTION = 1e-2


def is_activation_module(m: nn.Module) -> bool:
    """gradflow Activations, modules flagged ``is_activation = True``, torch's elementwise
    activations, and registered user activations (a leaf module with a ``config`` dict naming it)."""
    if isinstance(m, Activation) or getattr(m, "is_activation", False) is True or isinstance(m, TORCH_ACTIVATIONS):
        return True
    config = getattr(m, "config", None)
    return isinstance(config, dict) and "name" in config and not any(True for _ in m.children())


def member_activation_names(m: nn.Module) -> list[str] | None:
    """Each member's activation name for a stacked activation (gradflow's batched trainer), else None."""
    configs = getattr(m, "member_configs", None)
    if not isinstance(configs, list):
        return None
    return [c.get("name", "?") if isinstance(c, dict) else str(c) for c in configs]


def activation_name(m: nn.Module) -> str:
    """The activation's own name ('relu', 'sigmoid'); a stacked one: its members' names joined by '/'."""
    names = member_activation_names(m)
    if names:
        return "/".join(dict.fromkeys(names))
    config = getattr(m, "config", None)
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return type(m).__name__.lower()


def is_norm_module(m: nn.Module) -> bool:
    """torch's normalisation layers, gradflow's stacked ones, and user modules named like one (RMSNorm;
    not NormalizedMLP: quantities.is_norm_type)."""
    return isinstance(m, NORM_TYPES) or is_norm_type(type(m).__name__)


def param_role(module: nn.Module, std: torch.Tensor, rms: torch.Tensor) -> str:
    """WEIGHT_ROLE, NORM_ROLE or CONSTANT_ROLE of a module's main parameter, from the module type and
    the parameter's std and RMS per member (M,) when first recorded."""
    if is_norm_module(module):
        return NORM_ROLE
    constant = (std <= CONSTANT_STD_FRACTION * rms) | (rms == 0)
    return CONSTANT_ROLE if bool(constant.any()) else WEIGHT_ROLE


def main_parameter(m: nn.Module):
    """(name, parameter) whose gradient stands for the module: ``weight``, else the largest."""
    params = {n: p for n, p in m.named_parameters(recurse=False) if p.requires_grad}
    if not params:
        return None, None
    if "weight" in params:
        return "weight", params["weight"]
    name = max(params, key=lambda n: params[n].numel())
    return name, params[name]


@dataclass
class Layer:
    name: str
    module: nn.Module
    kind: str  # PARAM or ACTIVATION
    members: int
    stacked: bool  # dim 0 of tensors is the member (else a leading member dim of 1 is added)
    param_name: str | None = None
    param: torch.Tensor | None = None
    max_deriv: torch.Tensor | None = None  # (M,) largest |derivative| found by probing, activations only
    flat_both_sides: list | None = None
    probed: bool = False
    role: str | None = None  # param layers: WEIGHT_ROLE / NORM_ROLE / CONSTANT_ROLE, set when first recorded
    init_rms: list | None = None  # param layers: RMS of the main parameter per member when first recorded

    def note_role(self, weight: torch.Tensor, weight_std: torch.Tensor) -> None:
        """Judge the parameter's role once, from its values (member view) when first recorded."""
        if self.role is None:
            rms = stats.rms(weight)
            self.role = param_role(self.module, weight_std, rms)
            self.init_rms = [float(v) for v in rms.tolist()]

    def view(self, t: torch.Tensor) -> torch.Tensor:
        """Tensor with the member in dim 0."""
        return t if self.stacked else t.unsqueeze(0)

    @property
    def bounded(self) -> bool:
        """The activation's output lies in a finite interval: registered so, or probed flat at both ends."""
        return bool(is_bounded(self.module) or (self.flat_both_sides and all(self.flat_both_sides)))

    def derivative_and_max(self, x: torch.Tensor):
        """Elementwise derivative at x (member view) and the largest derivative per member (M,)."""
        d = self.view(stats.derivative(self.module.forward, x))  # forward(): bypasses the hooks
        if not self.probed:
            self.probed = True
            try:
                peak, flat = stats.probe_derivative(self.module.forward, self.members, self.stacked,
                                                    device=x.device, dtype=x.dtype)
                self.max_deriv, self.flat_both_sides = peak, [bool(v) for v in flat.tolist()]  # once per layer
            except Exception:  # not probe-able (e.g. PReLU with channels): the batch's own maximum serves
                self.max_deriv, self.flat_both_sides = None, None
        # a member whose batch holds a NaN/inf derivative falls back to the probed maximum alone
        batch_max = torch.nan_to_num(stats.largest_magnitude(d.detach().reshape(d.shape[0], -1)), nan=0.0, posinf=0.0)
        peak = batch_max if self.max_deriv is None else torch.maximum(self.max_deriv.to(batch_max.device), batch_max)
        return d, peak


def find_layers(model: nn.Module) -> tuple[list[Layer], list[str]]:
    """The hooked layers in registration order, and the names of frozen modules (parameters, none trainable)."""
    layers, frozen = [], []
    for name, m in model.named_modules():
        label = name or ROOT_LAYER
        stacked = hasattr(m, "members")
        members = int(getattr(m, "members", 1) or 1)
        pname, p = main_parameter(m)
        if p is not None:
            layers.append(Layer(label, m, PARAM, members, stacked, pname, p))
        elif any(True for _ in m.parameters(recurse=False)):
            frozen.append(label)
        if is_activation_module(m):
            layers.append(Layer(label, m, ACTIVATION, members, stacked))
    if not any(lay.kind == PARAM for lay in layers):
        n = sum(p.numel() for p in model.parameters())
        what = "has no parameters" if n == 0 else f"has {n} parameters but none requires grad"
        raise ValueError(f"Recorder: the model ({type(model).__name__}) {what}; the recorder follows the gradients "
                         "of trainable parameters, so give it a model with parameters that require grad")
    return layers, frozen


def first_tensor(obj):
    """The first tensor of a hook's args/output (a tensor, a tuple/list, or a dict), else None."""
    if isinstance(obj, torch.Tensor):
        return obj
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) else ()
    return next((o for o in values if isinstance(o, torch.Tensor)), None)


def first_float_tensor(obj, depth: int = 3):
    """The first floating-point tensor anywhere in a model's inputs: model(x), model({"image": x}),
    model(input_ids, pixels=x). Integer tensors (token ids, masks) are not what a range check reads."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if depth == 0:
        return None
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) else ()
    return next((t for o in values if (t := first_float_tensor(o, depth - 1)) is not None), None)
