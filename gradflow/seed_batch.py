"""Several seeds of a user's *own* model trained as one, with ``torch.func`` (vmap).

The project's trainer batches ``BaseNetwork`` MLPs by hand (``stacked.py``); any other model goes
through here. ``make_model()`` is called once per seed right after ``torch.manual_seed(seed)``,
the members' parameters and buffers are stacked along a new dim 0, and one vmapped call runs
them all. Each member gets exactly the gradient of its own loss, its own dropout masks and its
own normalisation statistics, so one ordinary optimizer over ``batch.parameters()`` trains the
members independently (SGD, Adam and their weight decay and momentum act per element, hence per
member). Anything that pools over *all* parameters would couple the members: clip gradients
with ``batch.clip_grad_norm_(max_norm)`` (each member's own norm), not
``torch.nn.utils.clip_grad_norm_(batch.parameters(), ...)``.

    batch = SeedBatch(lambda: MyNet(), seeds=[0, 1, 2, 3, 4]).to(device)
    opt = torch.optim.Adam(batch.parameters(), lr=1e-3)
    for x, y in loader:
        out = batch(x)                         # (5, B, ...): every member sees the same batch
        losses = batch.losses(out, y)          # (5,): each member's own mean loss
        opt.zero_grad(); losses.sum().backward(); opt.step()
    batch.member(2)                            # seed 2's model, an ordinary nn.Module

Gradient-flow recording hooks the model's modules, which vmap hides, so ``Recorder(batch)`` is
refused: to record a seed, train it alone (``batch.member(m)`` is a copy of member m) with a Recorder.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _layout(model: nn.Module) -> list[tuple[str, tuple, torch.dtype]]:
    return [(n, tuple(t.shape), t.dtype) for n, t in (*model.named_parameters(), *model.named_buffers())]


class SeedBatch(nn.Module):
    # The members protocol (see gradflow.record.layers): ``members`` says how many models dim 0 holds;
    # ``recordable = False`` tells the Recorder it must refuse this module, and why.
    recordable = False
    not_recordable_reason = ("vmap hides the model's layers from hooks. To record a seed's gradient flow, train it "
                             "alone: model = batch.member(m) (a copy of member m), then Recorder(model) in your loop")

    def __init__(self, make_model: Callable[[], nn.Module], seeds: Sequence[int], randomness: str = "different"):
        """make_model -- builds one model (no arguments); called once per seed after torch.manual_seed(seed)
        seeds      -- distinct integers, one member each
        randomness -- torch.func.vmap's: "different" (each member its own dropout masks) or "same"
        """
        super().__init__()
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("SeedBatch needs at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct (the same seed gives the same member twice), got {seeds}")
        if randomness not in ("different", "same"):
            raise ValueError(f"randomness must be 'different' or 'same', got {randomness!r}")
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = make_model()
            if not isinstance(model, nn.Module):
                raise TypeError(f"make_model() must return an nn.Module, got {type(model).__name__}")
            models.append(model)
        ref = _layout(models[0])
        for seed, model in zip(seeds[1:], models[1:]):
            if _layout(model) != ref:
                raise ValueError(f"make_model() built a different model for seed {seed} than for seed {seeds[0]} "
                                 "(parameter names, shapes or dtypes differ); members must share one architecture")
        self.seeds = seeds
        self.members = len(seeds)
        self.randomness = randomness
        params, buffers = stack_module_state(models)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        grads = dict(models[0].named_parameters())
        # A ParameterList: the names of nested parameters ("0.weight") are not valid attribute names.
        self.stacked = nn.ParameterList(nn.Parameter(params[n].detach().clone(), requires_grad=grads[n].requires_grad)
                                        for n in self._param_names)
        for i, n in enumerate(self._buffer_names):
            self.register_buffer(f"stacked_buffer_{i}", buffers[n].clone())
        # Kept in a tuple so that nn.Module does not register them as submodules (their own
        # parameters would appear in .parameters()): the skeleton vmap calls, on the meta
        # device, and one real copy that member() fills with a member's weights.
        self._skeleton = (copy.deepcopy(models[0]).to("meta"),)
        self._template = (copy.deepcopy(models[0]),)

    # --------------------------------------------------------------------------- forward

    def _state(self) -> tuple[dict, dict]:
        params = dict(zip(self._param_names, self.stacked))
        buffers = {n: getattr(self, f"stacked_buffer_{i}") for i, n in enumerate(self._buffer_names)}
        return params, buffers

    def forward(self, *inputs, per_member: bool = False):
        """Every member on ``inputs`` (shared), or with ``per_member=True`` member m on ``inputs[...][m]``
        (each input of shape (members, ...)). Returns the outputs stacked on dim 0."""
        if per_member:
            for x in inputs:
                if not torch.is_tensor(x) or x.dim() == 0 or x.shape[0] != self.members:
                    shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
                    raise ValueError(f"per_member=True takes inputs of shape ({self.members}, ...), one slice per "
                                     f"member; got {shape}")
        skeleton = self._skeleton[0]
        skeleton.train(self.training)

        def one(params, buffers, *xs):
            return functional_call(skeleton, (params, buffers), xs)

        in_dims = (0, 0, *([0 if per_member else None] * len(inputs)))
        params, buffers = self._state()
        return vmap(one, in_dims=in_dims, randomness=self.randomness)(params, buffers, *inputs)

    def losses(self, outputs: torch.Tensor, target: torch.Tensor, loss_fn: Callable = F.cross_entropy,
               per_member: bool = False) -> torch.Tensor:
        """Each member's own loss, shape (members,): ``loss_fn(outputs[m], target)`` (or ``target[m]``
        with ``per_member=True``). Summing them gives every member the gradient of its own loss."""
        return vmap(loss_fn, in_dims=(0, 0 if per_member else None))(outputs, target)

    @torch.no_grad()
    def accuracy(self, outputs: torch.Tensor, target: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Fraction of correct argmax predictions per member, shape (members,)."""
        target = target if per_member else target.expand(outputs.shape[:-1])
        return (outputs.argmax(-1) == target).double().mean(dim=tuple(range(1, target.dim())))

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale each member's gradients so that member's total norm is at most ``max_norm``,
        as ``torch.nn.utils.clip_grad_norm_`` would on that member alone. Returns the norms (members,)."""
        grads = [p.grad for p in self.stacked if p.grad is not None]
        if not grads:
            return torch.zeros(self.members)
        norms = torch.stack([g.reshape(self.members, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
        return norms

    # --------------------------------------------------------------------------- members

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        """Member m's state dict (copies on the CPU), loadable into ``make_model()``'s model."""
        if not 0 <= m < self.members:
            raise IndexError(f"member {m} out of range: this batch has {self.members} (seeds {self.seeds})")
        params, buffers = self._state()
        return {n: t[m].detach().cpu().clone() for n, t in (*params.items(), *buffers.items())}

    def member(self, m: int) -> nn.Module:
        """Member m as an ordinary model (a fresh copy on the CPU, in the batch's train/eval mode)."""
        model = copy.deepcopy(self._template[0])
        with torch.no_grad():  # by name, not load_state_dict: also fills non-persistent buffers and tied weights
            for name, value in self.member_state(m).items():
                target = model.get_parameter(name) if name in self._param_names else model.get_buffer(name)
                target.copy_(value)
        return model.train(self.training)

    def extra_repr(self) -> str:
        return f"members={self.members}, seeds={self.seeds}, model={type(self._template[0]).__name__}"
