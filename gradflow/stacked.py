"""Many BaseNetworks of one shape as one module: weights stacked as (members, out, in).

One forward/backward step trains every member at once (batched matmuls), each member with its
own activation, initialisation, data order, dropout mask and normalisation statistics. Module
names match ``BaseNetwork`` (``layers.0``, ``layers.1``, ...) so recordings line up, and every
member exports back to an ordinary ``BaseNetwork`` state dict.

Tensors flowing through carry the member in dim 0: ``(M, B, features)``. The first layer also
accepts a shared ``(B, features)`` input (evaluation: every member sees the same images).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import activation_config
from .models import BaseNetwork


class _StackedAffine(torch.autograd.Function):
    """``x @ W[m].T + b[m]`` for every member m, x (M, B, in), W (M, out, in), b (M, out).

    The same arithmetic as autograd's baddbmm, but the weight gradient is computed as g^T x,
    straight in W's (M, out, in) layout. Autograd's own backward yields the gradient of the
    transposed view W^T, whose copy back into W's layout took a third of a CPU training step.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        # Under bf16 autocast the forward ran in bfloat16 and so does this backward, as autograd's
        # own would (the cast's backward returns float32 gradients). In float32 every .to() is a no-op.
        dt = grad.dtype
        grad_x = torch.bmm(grad, weight.to(dt)).to(x.dtype) if ctx.needs_input_grad[0] else None  # not for images
        grad_w = torch.bmm(grad.transpose(1, 2), x.to(dt)).to(weight.dtype) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(1).to(weight.dtype) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class StackedLinear(nn.Module):
    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.members = len(linears)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]).clone())  # (M, out, in)
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]).clone())  # (M, out)

    def forward(self, x):
        if x.dim() == 2:  # shared input (B, in) -> (M, B, out)
            return torch.matmul(x, self.weight.transpose(1, 2)) + self.bias.unsqueeze(1)
        if self.members == 1:
            # One member: nn.Linear's own arithmetic on squeezed views (bit-identical to the batched
            # path, checked by tests/test_train_step.py), without a Python autograd.Function per layer
            # and call, which cost ~3 % of a single model's CPU step. Its weight gradient is
            # computed in W's layout too.
            return F.linear(x.squeeze(0), self.weight.squeeze(0), self.bias.squeeze(0)).unsqueeze(0)
        return _StackedAffine.apply(x, self.weight, self.bias)

    def export(self, m: int) -> dict:
        return {"weight": self.weight[m], "bias": self.bias[m]}


class StackedActivation(nn.Module):
    """Member m gets its own activation; consecutive members with the same one share a call."""
    is_activation = True

    def __init__(self, acts: list[nn.Module]):
        super().__init__()
        for a in acts:
            if any(True for _ in a.parameters()):
                raise ValueError(f"activation {type(a).__name__} has learnable parameters; the batched trainer "
                                 "supports stateless activations only (use gradflow.Recorder in your own loop)")
        self.members = len(acts)
        self.member_configs = [activation_config(a) for a in acts]
        groups, start = [], 0  # (start, end, module) runs of identical configs
        for i in range(1, len(acts) + 1):
            if i == len(acts) or self.member_configs[i] != self.member_configs[start]:
                groups.append((start, i, acts[start]))
                start = i
        self.groups = groups
        # A plain list, not a ModuleList: the recorder must see one activation module per layer
        # (this one), not the per-group modules inside it. They are stateless, so nothing is lost.
        self.fns = [g[2] for g in groups]

    def forward(self, x):  # (M, B, F)
        if len(self.groups) == 1:
            return self.fns[0](x)
        # split, not slicing: split's backward is one cat, while each slice's backward writes its
        # gradient into a zero-filled tensor as large as x and the engine then adds them up
        parts = x.split([e - s for s, e, _ in self.groups], dim=0)
        return torch.cat([fn(p) for p, fn in zip(parts, self.fns)], dim=0)


class StackedBatchNorm(nn.Module):
    """BatchNorm1d per member: statistics over each member's own batch (dim 1)."""

    is_batch_norm = True  # tells the Recorder's structure summary what this is (its forward depends on .training)

    def __init__(self, norms: list[nn.BatchNorm1d]):
        super().__init__()
        self.members = len(norms)
        ref = norms[0]
        self.eps, self.momentum = ref.eps, ref.momentum
        self.weight = nn.Parameter(torch.stack([n.weight.detach() for n in norms]).clone())  # (M, F)
        self.bias = nn.Parameter(torch.stack([n.bias.detach() for n in norms]).clone())
        self.register_buffer("running_mean", torch.stack([n.running_mean for n in norms]).clone())
        self.register_buffer("running_var", torch.stack([n.running_var for n in norms]).clone())
        self.register_buffer("num_batches_tracked", norms[0].num_batches_tracked.clone())

    def forward(self, x):  # (M, B, F)
        if self.training:
            mean = x.mean(1)
            var = x.var(1, unbiased=False)
            with torch.no_grad():
                n = x.shape[1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(n - 1, 1), self.momentum)  # torch keeps the unbiased one
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.unsqueeze(1)) * torch.rsqrt(var.unsqueeze(1) + self.eps)
        return x_hat * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)

    def export(self, m: int) -> dict:
        return {"weight": self.weight[m], "bias": self.bias[m], "running_mean": self.running_mean[m],
                "running_var": self.running_var[m], "num_batches_tracked": self.num_batches_tracked}


class StackedLayerNorm(nn.Module):
    def __init__(self, norms: list[nn.LayerNorm]):
        super().__init__()
        self.members = len(norms)
        self.eps = norms[0].eps
        self.shape = norms[0].normalized_shape
        self.weight = nn.Parameter(torch.stack([n.weight.detach() for n in norms]).clone())  # (M, F)
        self.bias = nn.Parameter(torch.stack([n.bias.detach() for n in norms]).clone())

    def forward(self, x):  # (M, B, F)
        x = F.layer_norm(x, self.shape, eps=self.eps)
        return x * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)

    def export(self, m: int) -> dict:
        return {"weight": self.weight[m], "bias": self.bias[m]}


class StackedDropout(nn.Module):
    """Dropout with each member's own drop probability and its own masks."""
    is_dropout = True  # tells the Recorder's structure summary what this is (p: one per member)

    def __init__(self, ps: list[float]):
        super().__init__()
        self.members = len(ps)
        self.register_buffer("p", torch.tensor(ps, dtype=torch.float32), persistent=False)
        self.uniform = len(set(ps)) == 1
        # float32-rounded as self.p holds it (the rate the masks always used), kept as a Python float:
        # reading self.p back on a GPU would sync every step and cannot be captured in a CUDA graph
        self.p_uniform = float(torch.tensor(ps[0], dtype=torch.float32))
        # one random stream per member (set_member_generators): drawn from one shared stream, a member's
        # masks would depend on which other models share its batch, and so would its numbers
        self.generators: list[torch.Generator] | None = None

    def forward(self, x):  # (M, B, F)
        if not self.training:
            return x
        if self.generators is None:  # used on its own: the global stream
            if self.uniform:
                return F.dropout(x, self.p_uniform, training=True)
            noise = torch.rand_like(x)
        else:
            noise = torch.stack([torch.rand(x.shape[1:], generator=g, device=x.device) for g in self.generators])
        p = self.p.view(-1, *([1] * (x.dim() - 1)))
        keep = noise >= p
        return x * keep / (1 - p).to(x.dtype)


DROPOUT_STREAM = 0x0D0D  # offsets a member's seed so its dropout stream is not its data-order stream


def set_member_generators(model: nn.Module, seeds: list[int], device) -> None:
    """Give every StackedDropout of ``model`` one generator per member, seeded from that member's own
    seed: the masks of member m then depend on its seed alone (the layers share the member's stream,
    drawn in forward order), not on the seeds or number of the models it trains beside."""
    generators = [torch.Generator(device=device).manual_seed((int(s) + DROPOUT_STREAM) % 2**63) for s in seeds]
    for module in model.modules():
        if isinstance(module, StackedDropout):
            if module.members != len(seeds):
                raise ValueError(f"{len(seeds)} seeds for a dropout layer of {module.members} members")
            module.generators = generators


def _stack_position(mods: list[nn.Module]) -> nn.Module:
    first = mods[0]
    if isinstance(first, nn.Linear):
        return StackedLinear(mods)
    if isinstance(first, nn.BatchNorm1d):
        return StackedBatchNorm(mods)
    if isinstance(first, nn.LayerNorm):
        return StackedLayerNorm(mods)
    if isinstance(first, nn.Dropout):
        return StackedDropout([m.p for m in mods])
    return StackedActivation(mods)


def _signature(net: BaseNetwork) -> list:
    """What members must share to be stacked: layer types and shapes (activations may differ)."""
    sig = []
    for m in net.layers:
        if isinstance(m, nn.Linear):
            sig.append(("linear", m.in_features, m.out_features))
        elif isinstance(m, (nn.BatchNorm1d, nn.LayerNorm, nn.Dropout)):
            sig.append((type(m).__name__,))
        else:
            sig.append(("activation",))
    return sig


class StackedMLP(nn.Module):
    def __init__(self, nets: list[BaseNetwork]):
        super().__init__()
        if not nets:
            raise ValueError("StackedMLP needs at least one BaseNetwork")
        sig = _signature(nets[0])
        for i, net in enumerate(nets[1:], 1):
            if _signature(net) != sig:
                raise ValueError(f"network {i} has a different layer structure from network 0; only networks "
                                 "with the same layer shapes, norm and dropout placement train together")
        self.members = len(nets)
        self.configs = [net.config for net in nets]
        self.layers = nn.Sequential(*[_stack_position([net.layers[i] for net in nets])
                                      for i in range(len(sig))])

    def forward(self, x):
        """x: (M, B, ...) one batch per member, or (B, ...) shared by all; returns (M, B, classes)."""
        if not (x.dim() == 2 or (x.dim() == 3 and x.shape[0] == self.members)):
            raise ValueError(f"StackedMLP takes flat inputs (B, features) or ({self.members}, B, features), "
                             f"got shape {tuple(x.shape)}")
        return self.layers(x)

    def export(self, m: int) -> dict[str, torch.Tensor]:
        """Member m's weights as an ordinary ``BaseNetwork`` state dict (CPU, contiguous)."""
        state = {}
        for i, layer in enumerate(self.layers):
            if hasattr(layer, "export"):
                for k, v in layer.export(m).items():
                    state[f"layers.{i}.{k}"] = v.detach().cpu().clone().contiguous()
        return state

    def member_network(self, m: int) -> BaseNetwork:
        net = BaseNetwork.from_config(self.configs[m])
        net.load_state_dict(self.export(m))
        return net
