"""Training: every model of a comparison that shares layer shapes trains in one batched step.

``fit`` trains a list of RunConfigs (each with several seeds) as one ``StackedMLP``; the single
model is the same path with one member. ``compare`` is the cached entry point: it loads the runs
that exist and trains only the missing ones.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from . import precision as precisions
from . import store
from .config import TUTORIAL_ACTIVATIONS, RunConfig, make_config
from .data import DataSplits, load
from .data_order import MemberOrders
from .fit_saving import save_fit
from .member_lr import shard_key, with_member_lrs
from .models import BaseNetwork
from .optimizers import make_optimizer
from .record import Recorder
from .record.schedule import OFF
from .recording import Recording
from .stacked import StackedMLP, set_member_generators
from .train_step import TrainStep, capture_blocker, member_losses, use_graph

EVAL_CHUNK = 2500  # validation images per forward: bounds memory at (members, chunk, 512) floats


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device=None) -> torch.device:
    """``device`` as a torch.device (default: CUDA when there is one), refused early and in plain
    words when this machine cannot run it, rather than deep inside the first training step."""
    if device is None:
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; accepted: cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} asked for, but this machine has no usable CUDA GPU "
                         "(torch.cuda.is_available() is False); use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {device} asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps asked for, but Apple's MPS backend is not available here; use --device cpu")
    return device


class EarlyStopping:
    """Per-member early stopping on validation accuracy, the tutorial's rule.

    A member improves when its accuracy beats its best so far (the first epoch always does); it
    stops at the first epoch that is ``patience`` epochs past its best without improving.
    Epochs are 1-based.
    """

    def __init__(self, members: int, patience: int):
        self.patience = patience
        self.best_acc = [float("-inf")] * members
        self.best_epoch = [0] * members
        self.stopped_epoch: list[int | None] = [None] * members

    def update(self, epoch: int, val_acc) -> list[bool]:
        """Record one epoch; returns which members improved (their checkpoint should be kept)."""
        improved = []
        for m, acc in enumerate(val_acc):
            better = self.stopped_epoch[m] is None and acc > self.best_acc[m]
            if better:
                self.best_acc[m], self.best_epoch[m] = float(acc), epoch
            elif self.stopped_epoch[m] is None and self.best_epoch[m] <= epoch - self.patience:
                self.stopped_epoch[m] = epoch
            improved.append(better)
        return improved

    @property
    def all_stopped(self) -> bool:
        return all(s is not None for s in self.stopped_epoch)

    def past_stop(self, m: int, epoch: int) -> bool:
        return self.stopped_epoch[m] is not None and epoch > self.stopped_epoch[m]


@torch.no_grad()
def evaluate(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK, precision: str = "fp32"):
    """Loss and accuracy per member on a shared set: two (M,) tensors, on the model's device."""
    was_training = model.training
    model.eval()
    loss_sum = correct = 0
    for i in range(0, len(y), chunk):
        with precisions.autocast(precision, x.device):
            logits = model(x[i:i + chunk]).float()  # (M, n, C); .float(): no copy in fp32
        yc = y[i:i + chunk]
        loss_sum = loss_sum + member_losses(logits, yc) * len(yc)
        correct = correct + (logits.argmax(-1) == yc).sum(1)
    model.train(was_training)
    return loss_sum / len(y), correct.double() / len(y)


@dataclass
class Member:
    config_index: int
    seed: int
    rows: list = field(default_factory=list)  # per-epoch metrics
    result: dict = field(default_factory=dict)  # test accuracy of the best checkpoint, best/stopped epoch


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _keep_best(best: dict, model, improved: torch.Tensor) -> None:
    """Copy the improved members' slices (dim 0) of every stacked tensor into ``best``."""
    for k, v in model.state_dict().items():
        if v.dim() > 0 and v.shape[0] == improved.shape[0]:
            mask = improved.view(-1, *([1] * (v.dim() - 1)))
            best[k].copy_(torch.where(mask, v, best[k]))
        else:
            best[k].copy_(v)


@dataclass
class FitResult:
    """What ``fit`` trained: the members (per-epoch rows and results each), the stacked model with
    every member's best-validation weights, and how long it took."""
    members: list[Member]
    model: StackedMLP
    device: str
    epoch_seconds: list[float]  # wall seconds of each epoch (training + validation), all members together
    recording: Recording | None  # every member's recording (member m = members[m]); None when off
    precision: str = "fp32: float32 everywhere"  # what the precision setting did on this device
    step: str = "eager"  # how the training step ran: eager, or "cuda graph (N replayed steps)"

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.epoch_seconds))


@dataclass
class _Batch:
    """The state one epoch loop works on: the stacked model and what trains it."""
    model: StackedMLP
    optimizer: torch.optim.Optimizer
    members: list[Member]
    stopper: EarlyStopping
    best: dict  # the members' best-validation weights, updated in place
    recorder: Recorder | None
    device: torch.device
    step: TrainStep


def fit(configs: list[RunConfig], data: DataSplits, device=None, progress: bool = True,
        graph: str = "auto", graphs=None) -> FitResult:
    """Train every (config, seed) of ``configs`` together as one stacked model.

    ``configs`` must share a batch key (same data, optimizer, layer shapes, precision, ...).
    ``graph``: auto | on | off, the training step as a CUDA graph (gradflow.train_step); the
    numbers do not depend on it. ``graphs``: a stand-in for CUDA graphs (train_step.InlineGraphs)
    that runs the graph dispatch on any device, for tests and the benchmark's smoke mode.
    """
    if not configs:
        raise ValueError("fit needs at least one RunConfig")
    ref = configs[0]
    for c in configs[1:]:
        if shard_key(c) != shard_key(ref):  # the learning rate may differ where it stays exact
            raise ValueError("configs with different data/optimizer/shape settings cannot train in one batch")
    device = resolve_device(device)

    members, nets = [], []
    for ci, c in enumerate(configs):
        for seed in c.seeds:
            torch.manual_seed(seed)  # member init = BaseNetwork(...) built right after manual_seed(seed)
            nets.append(BaseNetwork(input_size=data.input_size, num_classes=data.num_classes, **c.model_kwargs()))
            members.append(Member(ci, seed))
    model = StackedMLP(nets).to(device)
    train_x, train_y = data.train_x, data.train_y
    if ref.train_subset is not None:
        train_x, train_y = train_x[:ref.train_subset], train_y[:ref.train_subset]
    train = (train_x.to(device), train_y.to(device))
    val = (data.val_x.to(device), data.val_y.to(device))
    if len(train[1]) < ref.batch_size:
        raise ValueError(f"{len(train[1])} training examples are fewer than one batch of {ref.batch_size}")

    recorder = None if ref.record == OFF else Recorder(model, schedule=ref.record, member_seeds=[m.seed for m in members])
    optimizer = with_member_lrs(make_optimizer(model.parameters(), ref), [configs[m.config_index].lr for m in members])
    graphed = use_graph(graph, capture_blocker(model, optimizer, device, recorder, graphs))
    step = TrainStep(model, optimizer, train[0], train[1], ref.batch_size, ref.precision, graph=graphed,
                     recorder=recorder, graphs=graphs, graph_required=graph == "on")
    batch = _Batch(model, optimizer, members, EarlyStopping(len(members), ref.patience),
                   _snapshot(model), recorder, device, step)
    with recorder if recorder is not None else contextlib.nullcontext(), \
            precisions.matmul_precision(ref.precision, device):
        if recorder is not None:
            recorder.dead_units(train[0])  # at initialisation (step 0)
        epoch_seconds = _epochs(batch, train, val, ref, progress)
        model.load_state_dict(batch.best)
        if recorder is not None:
            recorder.dead_units(train[0])  # the best checkpoint, after training
        test_loss, test_acc = evaluate(model, data.test_x.to(device), data.test_y.to(device), precision=ref.precision)
    stopper = batch.stopper
    for m, mem in enumerate(members):
        stopped = stopper.stopped_epoch[m]
        mem.result = {"seed": mem.seed, "test_acc": float(test_acc[m]), "test_loss": float(test_loss[m]),
                      "best_epoch": stopper.best_epoch[m], "best_val_acc": stopper.best_acc[m],
                      "stopped_epoch": stopped, "epochs_trained": stopped or len(epoch_seconds),
                      "epochs_recorded": len(epoch_seconds)}
    recording = None if recorder is None else Recording(None, recorder.tables(), recorder.summary())
    return FitResult(members, model, str(device), epoch_seconds, recording,
                     precisions.describe(ref.precision, device), step.describe())


def _epochs(batch: _Batch, train: tuple, val: tuple, ref: RunConfig, progress: bool) -> list[float]:
    """The epoch loop; returns each epoch's wall seconds (training + validation)."""
    model, members, stopper, recorder, device = batch.model, batch.members, batch.stopper, batch.recorder, batch.device
    (_, train_y), (val_x, val_y) = train, val
    M, n, B = len(members), len(train_y), ref.batch_size
    steps = n // B  # drop_last, as the tutorial
    orders = MemberOrders([m.seed for m in members], device)  # each member its own data order
    set_member_generators(model, [m.seed for m in members], device)  # dropout masks, each member its own
    epoch_seconds: list[float] = []
    bar = tqdm(range(1, ref.max_epochs + 1), desc=f"training {M} model{'s' * (M > 1)}", disable=not progress,
               unit="epoch", leave=True)
    for epoch in bar:
        t0 = time.perf_counter()
        if recorder is not None:
            recorder.epoch = epoch
        model.train()
        perms = orders.next_epoch(n)  # (M, n)
        batch.step.new_epoch()
        for s in range(steps):
            recorded = recorder is not None and bool(recorder.schedule(recorder.steps))
            losses = batch.step.run(perms[:, s * B:(s + 1) * B], recorded)  # recorded steps: eager, hooked
            if recorder is not None:
                recorder.step(loss=losses)  # not detached: the recorder reads the loss kind from its graph
        loss_sum, correct = batch.step.loss_sum, batch.step.correct
        val_loss, val_acc = evaluate(model, val_x, val_y, precision=ref.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - t0)

        # one read back per epoch (float32 -> float64 is exact: the same numbers as reading each)
        train_loss, train_acc, val_loss, val_acc = torch.stack(
            [(loss_sum / steps).double(), correct.double() / (steps * B), val_loss.double(), val_acc]).tolist()
        improved = stopper.update(epoch, val_acc)
        if any(improved):
            _keep_best(batch.best, model, torch.tensor(improved, device=device))
        for m, mem in enumerate(members):
            mem.rows.append({"seed": mem.seed, "epoch": epoch, "train_loss": train_loss[m],
                             "train_acc": train_acc[m], "val_loss": val_loss[m], "val_acc": val_acc[m],
                             "seconds": epoch_seconds[-1], "past_stop": stopper.past_stop(m, epoch)})
        active = [a for m, a in enumerate(val_acc) if stopper.stopped_epoch[m] is None]
        bar.set_postfix(models=M, running=len(active), val_acc=f"{max(val_acc):.3f}")
        if stopper.all_stopped:
            break

    return epoch_seconds


def _for_data(config: RunConfig, data: DataSplits) -> RunConfig:
    """Name the dataset a config trains on, so runs on different user data never share a cache entry."""
    if data.name == "FashionMNIST" and config.dataset == "fashion_mnist" and data.split_seed == config.split_seed \
            and len(data.train_y) == 50_000:
        return config
    return replace(config, dataset=f"{data.name}:{data.fingerprint()}")


@store.writes_runs  # checks runs_dir before any work, one writer per run store
def train_runs(configs: list[RunConfig], runs_dir=None, overwrite: bool = False, device=None,
               progress: bool = True, data: DataSplits | None = None, data_root=None,
               graph: str = "auto") -> list[store.Run]:
    """Load the configs' runs that exist; train the others, batched where they share a batch key.
    ``graph``: auto | on | off, the training step as a CUDA graph (see ``fit``)."""
    if data is not None:
        configs = [_for_data(c, data) for c in configs]
    runs: dict[int, store.Run] = {}
    todo: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        cached = None if overwrite else store.cached_run(c.run_name(), runs_dir)  # says so if damaged
        if cached is not None:
            runs[i] = cached
        else:
            todo.setdefault(shard_key(c), []).append(i)
    datasets: dict[str, DataSplits] = {}
    for indices in todo.values():
        group = [configs[i] for i in indices]
        ref = group[0]
        key = f"{ref.dataset}:{ref.split_seed}"
        if data is None and key not in datasets:
            datasets[key] = load(ref.dataset, root=data_root, split_seed=ref.split_seed) \
                if ref.dataset != "synthetic" else load("synthetic", seed=ref.split_seed)
        result = fit(group, data if data is not None else datasets[key], device, progress, graph=graph)
        for i, run in zip(indices, save_fit(group, result, data or datasets[key], runs_dir, overwrite)):
            runs[i] = run
    return [runs[i] for i in range(len(configs))]


def compare(activations=TUTORIAL_ACTIVATIONS, preset: str = "quick", seeds=None, runs_dir=None,
            overwrite: bool = False, device=None, progress: bool = True, data: DataSplits | None = None,
            data_root=None, graph: str = "auto", **overrides) -> list[store.Run]:
    """One run per activation (each with all seeds), trained together where missing, else loaded."""
    if isinstance(activations, (str, dict)):  # one activation: a name or a config dict
        activations = [activations]
    given = activations
    try:
        activations = list(activations)
    except TypeError:  # compare(123): not a list at all
        activations = None
    if activations is None or not all(isinstance(a, (str, dict)) for a in activations):
        raise TypeError("compare takes an activation name, a config dict or a list of them, e.g. ['relu', 'tanh']; "
                        f"got {given!r}")
    if not activations:
        raise ValueError("compare needs at least one activation")
    configs = [make_config(a, preset, seeds=seeds, **overrides) for a in activations]
    return train_runs(configs, runs_dir=runs_dir, overwrite=overwrite, device=device, progress=progress,
                      data=data, data_root=data_root, graph=graph)
