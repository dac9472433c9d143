"""The diagnosis benchmark's programs: planted bugs (mutants, each with the codes that name it) and
healthy controls, and the plain PyTorch loop that trains one of them inside a gradflow.Recorder.

A mutant is DeepCrime-style: one change to a working program (an activation, an init scale, a
learning rate, the input scaling, the loss, the optimizer's parameter list, a missing call:
zero_grad(), optimizer.step(); a scheduler stepped per batch). Its
ground truth is a tuple of codes from ``gradflow.diagnose.codes.CODES``: it counts as detected when
the diagnosis reports one of them at severity warning or error. A control has no codes: any
warning or error on it is a false alarm.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from diagnosis_models import (
    FunctionalDropoutNet,
    KerasPortNet,
    RawParamNet,
    RowAttention,
    RowLSTM,
    SigmoidAutoencoder,
    SmallCNN,
    TwoStageNet,
    constant_weights,
    freeze,
    scale_weights,
    set_hidden_bias,
)
from torch import nn

from gradflow import Recorder
from gradflow.models import BaseNetwork

TUTORIAL_LR, TUTORIAL_MOMENTUM = 1e-2, 0.9  # the tutorial's recipe (SGD)
EARLY_STOP_MIN_DELTA = 0.02  # early stopping counts a 2-point rise in validation accuracy as progress


def sgd(lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def adam(lr=1e-3):
    return lambda params: torch.optim.Adam(params, lr=lr)


def all_but(prefix):
    """The optimizer's parameter list with one layer left out (the NOT_UPDATED bug)."""
    return lambda model: [p for n, p in model.named_parameters() if not n.startswith(prefix)]


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


@dataclass(frozen=True)
class Case:
    name: str
    symptom: str  # the table row: what is wrong ("control" for healthy programs)
    codes: tuple  # ground truth (empty for a control)
    model: Callable[[], nn.Module]
    optimizer: Callable = field(default_factory=sgd)
    params: Callable = trainable  # what the optimizer is given
    what: str = ""  # the mutation or the control, in words
    raw_input: bool = False  # 0-255 pixels instead of normalised ones
    divided_twice: bool = False  # [0, 1] pixels divided by 255 again (ToTensor() already scaled them)
    loss: str = "ce"  # ce | keras (clipped -(t log out) on one-hot) | ce_onehot | mse | mse_by_hand | mse_squeezed
    #                   | nll_raw (no log_softmax)
    targets: str = "labels"  # labels | pixels_pm1 (the normalised input) | pixels_01 | brightness (N,)
    zero_grad: bool = True
    optimizer_step: bool = True  # False: the loop never calls optimizer.step()
    scheduler_per_batch: bool = False  # StepLR(step_size=5, gamma=0.1), written for epochs, stepped every batch
    accumulate: int = 1  # micro-batches per optimizer step
    clip_norm: float | None = None  # clip_grad_norm_(model.parameters(), clip_norm) before each optimizer step
    patience: int | None = None  # early stopping on validation accuracy, in epochs
    pretrain: int = 0  # Adam steps on the whole net before recording (a "pretrained" trunk)
    train_only: str | None = None  # after pretraining, freeze every module not under this prefix
    amp: bool = False  # float16 autocast and a GradScaler whose first scale is too high (it skips steps)
    sorted_by_class: bool = False  # the training set read class by class, never shuffled (DataLoader's default)
    quick: bool = True  # part of the --quick subset

    @property
    def control(self) -> bool:
        return not self.codes


def mlp(act="relu", **kw):
    return lambda: BaseNetwork(act, **kw)


VANISH, EXPLODE = ("VANISHING_GRADIENT", "NOT_LEARNING"), ("EXPLODING_GRADIENT", "NONFINITE", "DIVERGING")
BOUNDED = ("BOUNDED_OUTPUT",)

MUTANTS = [
    Case("mlp_sigmoid_deep", "vanishing gradient", VANISH, mlp("sigmoid", hidden_sizes=(128,) * 8),
         what="relu -> sigmoid in an 8-hidden-layer MLP, SGD"),
    Case("mlp_init_x0.01", "vanishing gradient", VANISH + ("UPDATE_RATIO",),
         lambda: scale_weights(BaseNetwork("relu"), 0.01), what="every weight x0.01 at init", quick=False),
    Case("mlp_init_x10", "exploding gradient / divergence", EXPLODE + ("SATURATION",),
         lambda: scale_weights(BaseNetwork("relu"), 10.0), what="every weight x10 at init", quick=False),
    Case("mlp_constant_init", "symmetric units", ("SYMMETRIC_UNITS", "NOT_LEARNING"),
         lambda: constant_weights(BaseNetwork("relu"), 0.01),
         what="every weight 0.01, biases 0 (nn.init.constant_): all units of a layer the same"),
    Case("mlp_tanh_init_x10", "saturation", ("SATURATION", "VANISHING_GRADIENT"),
         lambda: scale_weights(BaseNetwork("tanh"), 10.0), what="tanh MLP, every weight x10 at init", quick=False),
    # a learning rate far too high either overflows or kills the ReLUs in its first steps
    Case("mlp_lr_x100", "exploding gradient / divergence", EXPLODE + ("DEAD_UNITS",), mlp(), sgd(lr=1.0),
         what="SGD lr 1e-2 -> 1"),
    Case("cnn_lr_x100", "exploding gradient / divergence", EXPLODE + ("DEAD_UNITS",), SmallCNN, sgd(lr=1.0),
         what="CNN, SGD lr 1e-2 -> 1", quick=False),
    Case("mlp_lr_x1e-3", "learning rate too low", ("UPDATE_RATIO", "NOT_LEARNING"), mlp(), sgd(lr=1e-5),
         what="SGD lr 1e-2 -> 1e-5"),
    Case("bn_lr_x1e-3", "learning rate too low", ("UPDATE_RATIO", "NOT_LEARNING"), mlp(norm="batch"), adam(1e-6),
         what="BatchNorm MLP, Adam lr 1e-3 -> 1e-6", quick=False),
    Case("mlp_raw_pixels", "unnormalised input", ("UNNORMALIZED_INPUT",), mlp(), raw_input=True,
         what="0-255 pixels, no normalisation"),
    Case("cnn_raw_pixels", "unnormalised input", ("UNNORMALIZED_INPUT",), SmallCNN, raw_input=True,
         what="CNN on 0-255 pixels", quick=False),
    Case("mlp_pixels_divided_twice", "tiny input", ("UNNORMALIZED_INPUT",), mlp(), divided_twice=True,
         what="pixels divided by 255 after ToTensor() had scaled them to [0, 1]"),
    Case("mlp_tanh_logits", "bounded logits", BOUNDED, mlp(output_act="tanh"), what="tanh on the logits, cross-entropy"),
    Case("mlp_sigmoid_logits", "bounded logits", BOUNDED, mlp(output_act="sigmoid"),
         what="sigmoid on the logits, cross-entropy", quick=False),
    Case("cnn_softmax_logits", "bounded logits", BOUNDED, lambda: SmallCNN(output="softmax"),
         what="CNN, softmax before cross-entropy", quick=False),
    Case("keras_port_clipped_log", "bounded logits", BOUNDED, KerasPortNet, adam(), loss="keras",
         what="seed 000: tanh outputs, Keras's clipped -(t log out) on one-hot targets"),
    Case("mlp_nll_without_log_softmax", "not log-probabilities", ("NOT_LOG_PROBABILITIES",), mlp(), loss="nll_raw",
         what="F.nll_loss on the raw outputs (log_softmax forgotten)", quick=False),
    Case("mlp_sgd_weight_decay_0.1", "weight decay too strong", ("NOT_LEARNING", "DEAD_UNITS"), mlp(),
         lambda p: torch.optim.SGD(p, lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM, weight_decay=0.1),
         what="weight_decay=0.1 (AdamW's usual value) in SGD with momentum 0.9", quick=False),
    # the weights collapse: 5 % of each weight gone every step (lr x wd); the ReLU net rises for two epochs, then
    # falls to chance (too late for the accuracy's 3 epochs at chance in a short run); the tanh net settles at ~21 %
    Case("mlp_sgd_lr0.1_weight_decay_0.5", "weight decay too strong", ("NOT_LEARNING", "DEAD_UNITS"), mlp(),
         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.5), what="SGD lr=0.1, weight_decay=0.5 (no momentum)"),
    Case("mlp_tanh_sgd_weight_decay_0.5", "weight decay too strong", ("NOT_LEARNING",), mlp("tanh"),
         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.5), what="tanh MLP, SGD lr=0.1, weight_decay=0.5",
         quick=False),
    Case("mlp_clip_grad_1e-3", "gradients clipped to nothing", ("UPDATE_RATIO", "NOT_LEARNING"), mlp(),
         clip_norm=1e-3, what="clip_grad_norm_(max_norm=1e-3) every step (a value copied from another model)"),
    Case("mlp_steplr_per_batch", "learning rate decayed to nothing", ("UPDATE_RATIO",), mlp(),
         scheduler_per_batch=True, what="StepLR(step_size=5, gamma=0.1) for epochs, stepped every batch", quick=False),
    Case("mlp_dropout_0.8", "high dropout", ("HIGH_DROPOUT",), mlp(dropout=0.8), what="nn.Dropout(p=0.8) (keep-prob as p)"),
    Case("mlp_functional_dropout_0.9", "high dropout", ("HIGH_DROPOUT",), FunctionalDropoutNet,
         what="F.dropout(x, p=0.9) in forward (TF1 keep_prob)"),
    Case("mlp_no_zero_grad", "accumulating gradient", ("ACCUMULATING_GRADIENT",), mlp(), zero_grad=False,
         what="optimizer.zero_grad() missing"),
    Case("cnn_no_zero_grad", "accumulating gradient", ("ACCUMULATING_GRADIENT",), SmallCNN, adam(), zero_grad=False,
         what="CNN with Adam, optimizer.zero_grad() missing", quick=False),
    Case("mlp_no_optimizer_step", "not updated", ("NOT_UPDATED",), mlp(), optimizer_step=False,
         what="optimizer.step() missing"),
    Case("mlp_layer_not_in_optimizer", "not updated", ("NOT_UPDATED",), mlp(), params=all_but("layers.2"),
         what="layers.2 left out of the optimizer"),
    Case("bn_only_norm_trainable", "only norm trainable", ("ONLY_NORM_TRAINABLE",),
         lambda: freeze(BaseNetwork("relu", norm="batch"), (nn.BatchNorm1d,)), adam(),
         what="every Linear frozen, only BatchNorm trains"),
    Case("cnn_unused_layer", "no gradient", ("NO_GRADIENT",), lambda: SmallCNN(unused=True),
         what="a Linear defined but never called in forward"),
    Case("mlp_features_numpy_clip", "no gradient", ("NO_GRADIENT",), lambda: TwoStageNet("numpy"),
         what="features clipped in NumPy (ReLU6 by hand) before the classifier: the graph is cut"),
    Case("mlp_features_under_no_grad", "no gradient", ("NO_GRADIENT",), lambda: TwoStageNet("no_grad"),
         what="the feature stage under torch.no_grad() (a frozen-backbone recipe) while it should train",
         quick=False),
    Case("mlp_dead_bias", "dead units", ("DEAD_UNITS",), lambda: set_hidden_bias(BaseNetwork("relu"), -10.0),
         what="hidden biases set to -10 (dying ReLU)"),
    Case("mlp_sigmoid_patience", "plateau stop", ("PLATEAU_STOP",), mlp("sigmoid", hidden_sizes=(256, 128, 128)),
         sgd(lr=0.03), patience=2, what="sigmoid MLP that leaves its plateau after ~5 epochs, early stopping "
         "with patience 2 epochs (min_delta 0.02)"),
    Case("mlp_mse_broadcast", "loss broadcast", ("LOSS_BROADCAST",), mlp(num_classes=1), adam(), loss="mse",
         targets="brightness", what="a regression head (N, 1) under F.mse_loss against targets (N,): broadcast"),
    Case("mlp_hand_mse_broadcast", "loss broadcast", ("LOSS_BROADCAST",), mlp(num_classes=1), adam(),
         loss="mse_by_hand", targets="brightness",
         what="the same head under ((out - y) ** 2).mean() written by hand: broadcast, and no PyTorch warning"),
    Case("mlp_unshuffled_by_class", "unshuffled data", ("UNSHUFFLED_DATA",), mlp(), sorted_by_class=True,
         what="the training set stored class by class and never shuffled (DataLoader(shuffle=False))"),
    Case("ae_sigmoid_pm1_targets", "target out of range", ("TARGET_OUT_OF_RANGE",), SigmoidAutoencoder, adam(),
         loss="mse", targets="pixels_pm1", what="sigmoid autoencoder, targets normalised to [-1, 1]"),
]

# What the planted bug is, in the words of the ranked alternative causes (gradflow.diagnose.alternatives):
# a run's cause is named right when the first-ranked cause of one of its ground-truth findings
# contains one of these phrases. A symptom has many causes; this measures whether the ranking leads
# the reader to the one that was planted.
PLANTED_CAUSE = {
    "mlp_sigmoid_deep": ("bounded activation",),
    "mlp_init_x0.01": ("too-small initialisation",),
    "mlp_init_x10": ("too-large initialisation",),
    "mlp_tanh_init_x10": ("too-large initialisation",),
    "mlp_constant_init": ("constant or zero initialisation",),
    "mlp_lr_x100": ("too high a learning rate", "learning rate so high"),
    "cnn_lr_x100": ("too high a learning rate", "learning rate so high"),
    "mlp_lr_x1e-3": ("too low a learning rate", "the learning rate is off"),
    "bn_lr_x1e-3": ("too low a learning rate", "the learning rate is off"),
    "mlp_raw_pixels": ("raw 0-255 pixels", "unnormalised inputs"),
    "mlp_pixels_divided_twice": ("divided by 255 twice",),
    "mlp_sgd_weight_decay_0.1": ("weight decay so strong",),
    "mlp_sgd_lr0.1_weight_decay_0.5": ("weight decay so strong",),
    "mlp_tanh_sgd_weight_decay_0.5": ("weight decay so strong",),
    "mlp_clip_grad_1e-3": ("clipped to a tiny norm",),
    "cnn_raw_pixels": ("raw 0-255 pixels", "unnormalised inputs"),
    "mlp_tanh_logits": ("output activation left on the logits", "bounded function on the logits"),
    "mlp_sigmoid_logits": ("output activation left on the logits", "bounded function on the logits"),
    "cnn_softmax_logits": ("softmax before a loss",),
    "keras_port_clipped_log": ("output activation left on the logits", "bounded function on the logits"),
    "mlp_nll_without_log_softmax": ("log_softmax forgotten",),
    "mlp_steplr_per_batch": ("schedule that decayed",),
    "mlp_dropout_0.8": ("keep-probability passed as p",),
    "mlp_functional_dropout_0.9": ("keep-probability passed as p",),
    "mlp_no_zero_grad": ("zero_grad() is missing",),
    "cnn_no_zero_grad": ("zero_grad() is missing",),
    "mlp_no_optimizer_step": ("optimizer.step() is never called",),
    "mlp_layer_not_in_optimizer": ("left out of the optimizer",),
    "bn_only_norm_trainable": ("backbone was frozen",),
    "cnn_unused_layer": ("not used in forward",),
    "mlp_features_numpy_clip": ("graph is cut",),
    "mlp_features_under_no_grad": ("torch.no_grad()",),
    # biases at -10 switch every unit off before the first step: diagnosis 12 names that set-up itself
    "mlp_dead_bias": ("ReLU units pushed negative", "a bias initialised far negative"),
    "mlp_sigmoid_patience": ("too little patience",),
    "ae_sigmoid_pm1_targets": ("targets are not scaled",),
    "mlp_mse_broadcast": ("trailing dimension of 1",),
    "mlp_hand_mse_broadcast": ("trailing dimension of 1",),
    "mlp_unshuffled_by_class": ("shuffle=False",),
}

# Tried and dropped because they train fine (best validation accuracy at or above the healthy
# net's after 300 steps, so no symptom to diagnose): seed 000's net with F.cross_entropy on one-hot
# float targets (0.84: the tanh only bounds the loss), a BatchNorm MLP whose first Linear is
# left out of Adam (0.85: BatchNorm rescales the frozen random features), and a BatchNorm + dropout MLP
# whose model.train() is missing after the first validation (0.86 against the healthy 0.84 with Adam:
# dropout off and frozen batch statistics cost nothing in 300 steps; EVAL_MODE names it all the same,
# tests/test_diagnose_bugs.py).

CONTROLS = [
    Case("ctl_bn_mlp_adam", "control", (), mlp(norm="batch"), adam(), what="BatchNorm MLP, Adam"),
    Case("ctl_bn_mlp_sgd", "control", (), mlp(norm="batch"), what="README's --norm batch example (SGD)"),
    Case("ctl_ln_mlp_adam", "control", (), mlp(norm="layer"), adam(), what="LayerNorm MLP, Adam", quick=False),
    Case("ctl_cnn", "control", (), SmallCNN, what="small CNN, SGD", quick=False),
    Case("ctl_bn_cnn", "control", (), lambda: SmallCNN(batch_norm=True), adam(), what="BatchNorm CNN, Adam"),
    Case("ctl_attention", "control", (), RowAttention, adam(), what="2-layer transformer encoder over rows, "
         "zero-initialised positional embedding"),
    Case("ctl_lstm", "control", (), RowLSTM, adam(3e-3), what="LSTM over image rows, Adam"),
    *[Case(f"ctl_tutorial_{act}", "control", (), mlp(act), what=f"tutorial {act} net, SGD 1e-2 momentum 0.9",
           quick=act == "relu") for act in ("relu", "tanh", "leakyrelu", "elu", "swish")],
    # the usual weight decay (5e-4 with SGD momentum): the weights barely shrink; no collapse to report
    Case("ctl_sgd_weight_decay_5e-4", "control", (), mlp(),
         lambda p: torch.optim.SGD(p, lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM, weight_decay=5e-4),
         what="SGD 1e-2 momentum 0.9, weight_decay=5e-4"),
    # raw nn.Parameter tensors in a hand-written forward, with a 1-D gain of ones: none of it is a norm layer
    Case("ctl_raw_parameters", "control", (), RawParamNet, what="raw nn.Parameter weights, biases and a 1-D gain, "
         "hand-written forward, SGD"),
    Case("ctl_dropout_0.2", "control", (), mlp(dropout=0.2), what="nn.Dropout(p=0.2)"),
    # the classic rate: its masks estimate p at 0.48-0.51, which diagnosis 11 took for a keep-probability
    Case("ctl_dropout_0.5", "control", (), mlp(dropout=0.5), what="nn.Dropout(p=0.5)"),
    Case("ctl_grad_accumulation", "control", (), mlp(), accumulate=4,
         what="4 micro-batches per step, zero_grad once per step"),
    Case("ctl_frozen_trunk", "control", (), mlp(), pretrain=100, train_only="layers.8",
         what="a pretrained trunk frozen, a fresh head trained (fine-tuning)"),
    Case("ctl_ae_sigmoid_01", "control", (), SigmoidAutoencoder, adam(), loss="mse", targets="pixels_01",
         what="sigmoid autoencoder on [0, 1] targets"),
    Case("ctl_regression_mse", "control", (), mlp(num_classes=1), adam(), loss="mse_squeezed", targets="brightness",
         what="a regression head (N, 1) squeezed to (N,) before F.mse_loss"),
    Case("ctl_amp_fp16", "control", (), mlp(), amp=True,
         what="mixed precision: float16 autocast, a GradScaler that skips its first steps (inf gradients)"),
]

CASES = MUTANTS + CONTROLS


# --------------------------------------------------------------------------- training

STEP_TAKES_TARGETS = "targets" in inspect.signature(Recorder.step).parameters


@dataclass
class Data:
    """Normalised FashionMNIST subsets, flat (N, 784) in [-1, 1]."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def _loss_and_targets(case: Case, out, x, y):
    if case.targets == "pixels_pm1":
        t = x
    elif case.targets == "pixels_01":
        t = (x + 1) / 2
    elif case.targets == "brightness":  # a regression target per image, shape (N,): its mean pixel in [0, 10]
        t = (x.mean(1) + 1) * 5
    elif case.loss in ("keras", "ce_onehot"):
        t = F.one_hot(y, 10).float()
    else:
        t = y
    if case.loss == "ce":
        loss = F.cross_entropy(out, t)
    elif case.loss == "ce_onehot":
        loss = F.cross_entropy(out, t)
    elif case.loss == "keras":  # Keras's categorical_crossentropy: clip, then -(t log out)
        loss = -(t * torch.log(out.clamp(1e-7, 1 - 1e-7))).sum(dim=1).mean()
    elif case.loss == "mse":
        with warnings.catch_warnings():  # the broadcast mutant's (N, 1) against (N,): PyTorch's warning is the bug's
            warnings.simplefilter("ignore", UserWarning)
            loss = F.mse_loss(out, t)
    elif case.loss == "mse_by_hand":  # no loss node, no warning: (N, 1) - (N,) -> (N, N)
        loss = ((out - t) ** 2).mean()
    elif case.loss == "mse_squeezed":
        loss = F.mse_loss(out.squeeze(-1), t)
    elif case.loss == "nll_raw":  # NLLLoss on raw outputs: log_softmax forgotten
        loss = F.nll_loss(out, t)
    else:
        raise ValueError(f"unknown loss {case.loss!r}")
    return loss, t


def _scaled(case: Case, x):
    if case.divided_twice:
        return (x + 1) / 2 / 255  # ToTensor()'s [0, 1], then "/ 255" once more
    return (x + 1) * 127.5 if case.raw_input else x  # back to 0-255 pixels


def train_case(case: Case, seed: int, data: Data, steps: int, batch: int = 128):
    """Train one program for ``steps`` optimizer steps inside a Recorder, as a practitioner would.
    Returns (recorder, per-epoch metrics DataFrame); an epoch is one pass over ``data.train_x``."""
    torch.manual_seed(seed)
    model = case.model()
    n = len(data.train_y)
    if case.pretrain:
        _pretrain(model, data, case.pretrain, batch, seed)
    if case.train_only is not None:
        freeze(model, case.train_only)
        for name, m in model.named_modules():  # a fresh head, as when fine-tuning on a new task
            if name.startswith(case.train_only) and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    opt = case.optimizer(case.params(model))
    # the PyTorch mixed-precision recipe; the first scale 2^24 (default 2^16) overflows this net's float16
    # gradients, so the scaler skips its first steps, as it does for most models at its default
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24) if case.amp else None
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.1) if case.scheduler_per_batch else None
    per_epoch = max(1, n // batch)
    order = (torch.argsort(data.train_y, stable=True) if case.sorted_by_class
             else torch.randperm(n, generator=torch.Generator().manual_seed(seed)))
    micro = batch // case.accumulate
    rows, best, bad, losses, correct, seen = [], -1.0, 0, [], 0, 0
    with Recorder(model, member_seeds=[seed]) as rec:
        for step in range(steps):
            model.train()
            b = step % per_epoch
            idx = order[b * batch:(b + 1) * batch]
            if case.zero_grad:
                opt.zero_grad()
            for k in range(case.accumulate):
                part = idx[k * micro:(k + 1) * micro]
                x, y = _scaled(case, data.train_x[part]), data.train_y[part]
                with torch.autocast("cpu", dtype=torch.float16, enabled=case.amp):
                    out = model(x)
                    loss, t = _loss_and_targets(case, out, data.train_x[part], y)
                (loss / case.accumulate if scaler is None else scaler.scale(loss / case.accumulate)).backward()
            if case.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), case.clip_norm)
            if case.optimizer_step and scaler is not None:
                scaler.step(opt)
                scaler.update()
            elif case.optimizer_step:
                opt.step()
            if sched is not None:
                sched.step()
            if STEP_TAKES_TARGETS:
                rec.step(loss=loss, targets=t)
            else:
                rec.step(loss=loss)
            losses.append(loss.item())
            if case.targets == "labels":
                correct += int((out.argmax(1) == y).sum())
                seen += len(y)
            if b == per_epoch - 1 or step == steps - 1:  # end of an epoch: validate, maybe stop early
                row = _validate(case, model, data, seed, len(rows), losses, correct, seen)
                rows.append(row)
                losses, correct, seen = [], 0, 0
                if case.patience is not None:
                    if row["val_acc"] > best + EARLY_STOP_MIN_DELTA:
                        best, bad = row["val_acc"], 0
                    else:
                        bad += 1
                    if bad >= case.patience:
                        row["stopped"] = True
                        break
        model.eval()
        rec.dead_units(_scaled(case, data.train_x[:1024]))
    return rec, pd.DataFrame(rows)


def _pretrain(model, data, steps, batch, seed):
    """Train the whole net briefly with Adam, outside any recorder (the trunk someone else trained)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(10_000 + seed)
    for _ in range(steps):
        idx = torch.randint(len(data.train_y), (batch,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(data.train_x[idx]), data.train_y[idx]).backward()
        opt.step()


@torch.no_grad()
def _validate(case, model, data, seed, epoch, losses, correct, seen) -> dict:
    model.eval()
    x = _scaled(case, data.val_x)
    out = model(x)
    val_loss, _ = _loss_and_targets(case, out, data.val_x, data.val_y)
    row = {"seed": seed, "epoch": epoch, "train_loss": sum(losses) / max(1, len(losses)),
           "val_loss": float(val_loss), "stopped": False}
    if case.targets == "labels":
        row["train_acc"] = correct / max(1, seen)
        row["val_acc"] = float((out.argmax(1) == data.val_y).float().mean())
    return row
