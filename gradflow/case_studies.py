"""The case studies: real bugs from forum questions, as data, and the training of their runs.

Each :class:`CaseStudy` names its source (site, title, language, a short faithful quote), the
symptom the person saw, the broken setup and the fix(es). :func:`train_case_studies` trains every
run of every case and stores it in the run store like any other run (``config.json`` with
``origin: "case study <id>"``, metrics, results, recordings, findings), so the case-study page
only reads. Asking again loads what is stored.

Case 001 (a dropout probability) is a BaseNetwork setting, so its runs go through
``train.train_runs`` (batched, several seeds). The others need something the project's trainer
does not do on purpose (Keras' loss on tanh outputs, raw 0-255 pixels, an autoencoder), so they
train in a small plain loop wrapped in :class:`gradflow.Recorder`, as a user's own loop would.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import store
from .activations import register_activation
from .config import make_config

CASE_PRESETS = {
    # images per training run, images per evaluation (validation and test), epochs, seeds of the plain loops
    # and case 001's MLP (the question's 4 x 256; tiny for smoke) and seeds (batched: seeds are cheap there)
    "tutorial": {"dataset": "fashion_mnist", "train": 50_000, "eval": 10_000, "epochs": 10, "seeds": (42, 43, 44),
                 "dropout_net": (256, 256, 256, 256), "dropout_seeds": (42, 43, 44)},
    "quick": {"dataset": "fashion_mnist", "train": 6_000, "eval": 2_000, "epochs": 4, "seeds": (42,),
              "dropout_net": (256, 256, 256, 256), "dropout_seeds": (42, 43)},
    # smoke: seconds, for tests; real pixels all the same (raw 0-255 inputs and images are the bugs' point)
    "smoke": {"dataset": "fashion_mnist", "train": 1280, "eval": 500, "epochs": 2, "seeds": (42,),
              "dropout_net": (32, 32), "dropout_seeds": (0, 1)},
}


@dataclass(frozen=True)
class Source:
    site: str  # where it was published, e.g. "Habr (Russian-language tech blog)"
    title: str  # the post's title, or the question's title in English when it had none of its own
    kind: str  # "question with an answer", "blog post", ...
    language: str  # the language it was written in
    quotes: tuple = ()  # (original, English) pairs, short


@dataclass(frozen=True)
class Variant:
    key: str  # short name in the run's name
    role: str  # broken | fixed | asked (the question's own working model)
    label: str  # legend label
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CaseStudy:
    id: str
    title: str
    source: Source
    symptom: str
    setup: str  # the broken setup, in a sentence or two
    fixes: tuple  # the fixes, one sentence each
    variants: tuple
    finding_codes: tuple = ()  # what the diagnosis should say about the broken run


CASES = (
    CaseStudy(
        "000", "tanh at the output: one network, two losses",
        Source("a Russian-language programming Q&A site", "Why does tanh work better in PyTorch than in Keras?",
               "question with an answer", "Russian",
               (("Когда Keras дает около +/- 10%, Pytorch значительно выше — до 90%.",
                 "Keras gives about 10 %, PyTorch much more — up to 90 %."),
                ("В чем может быть причина? Я сделал что-то не так или это должно работать именно так?",
                 "What could be the reason? Did I do something wrong, or is it supposed to work like this?"))),
        "The same tanh network reaches about 90 % in PyTorch but stays near 10 % (chance) in Keras.",
        "Both models end in tanh. PyTorch's CrossEntropyLoss treats the tanh outputs as logits; Keras' "
        "categorical_crossentropy (from_logits=False) treats them as probabilities: it divides them by their "
        "sum and takes the log, and tanh outputs can be negative.",
        ("Let the last Linear layer give plain logits and use cross-entropy on them (in Keras: no activation on "
         "the last Dense and `from_logits=True`, or a softmax when the loss expects probabilities).",),
        (Variant("keras", "broken", "Keras loss on tanh outputs", {"loss": "keras_categorical_crossentropy",
                                                                   "output_act": "tanh"}),
         Variant("pytorch", "asked", "PyTorch cross-entropy on tanh outputs", {"loss": "cross_entropy",
                                                                              "output_act": "tanh"}),
         Variant("logits", "fixed", "fix: plain logits + cross-entropy", {"loss": "cross_entropy",
                                                                        "output_act": None})),
        ("BOUNDED_OUTPUT", "NOT_LEARNING")),
    CaseStudy(
        "001", "dropout: the probability of dropping, or of keeping?",
        Source("a Russian translation of a Stack Overflow question", "Keras model performs worse than the same "
               "TensorFlow model", "question", "Russian",
               (("модель Keras всегда работает примерно на 2% хуже",
                 "the Keras model always does about 2 % worse"),)),
        "The same MLP written in TensorFlow and in Keras, identical in every setting, yet Keras is always about "
        "2 % worse.",
        "Both use dropout_prob = 0.7. TensorFlow 1's tf.nn.dropout(x, keep_prob) keeps 70 % of the units; "
        "Keras' Dropout(rate), like PyTorch's nn.Dropout(p), drops 70 %. Same number, opposite meaning.",
        ("Translate the probability when porting: p = 1 − keep_prob = 0.3.",),
        (Variant("drop70", "broken", "p = 0.7: drops 70 % (keep_prob ported as is)", {"dropout": 0.7}),
         Variant("drop30", "fixed", "fix: p = 0.3, keeps 70 %", {"dropout": 0.3})),
        ("HIGH_DROPOUT",)),
    CaseStudy(
        "002", "a hand-written ELU, raw 0–255 pixels, and NaN",
        Source("a Chinese translation of a Stack Overflow question", "Custom ELU activation in Keras does not "
               "train like the built-in one", "question with an answer", "Chinese",
               (("使用自定义的Keras或Tensorflow函数,损耗立即接近零,并且精度完全没有提高。",
                 "with the custom Keras or TensorFlow function the loss immediately goes to nothing and the "
                 "accuracy does not improve at all."),
                ("原因是K.exp(x)在x > 88左右变为inf(而MNIST数据集包含从0到255的值)。",
                 "The reason is that K.exp(x) becomes inf around x > 88 (and MNIST contains values from 0 to "
                 "255)."))),
        "With the built-in ELU the network learns; with a hand-written ELU, where(x > 0, x, exp(x) − 1), the "
        "loss is gone at once and the accuracy never improves.",
        "The inputs are raw pixel values 0–255. Pre-activations above about 88 make exp(x) overflow to inf in "
        "float32. `where` hides the inf in the forward pass, but the backward pass multiplies the unused "
        "branch's zero gradient by it: 0 · inf = NaN, and the NaN spreads to every weight.",
        ("Normalise the inputs (pixels / 255).",
         "Or evaluate exp only where it is used: exp(clamp(x, max=0)) − 1."),
        (Variant("raw", "broken", "hand-written ELU, raw 0–255 pixels", {"elu": "naive", "inputs": "raw"}),
         Variant("scaled", "fixed", "fix 1: inputs scaled to [0, 1]", {"elu": "naive", "inputs": "scaled"}),
         Variant("clamped", "fixed", "fix 2: exp(clamp(x, max=0)), raw pixels", {"elu": "clamped", "inputs": "raw"})),
        ("NONFINITE", "UNNORMALIZED_INPUT")),
    CaseStudy(
        "004", "an autoencoder that scores 100 % and reconstructs nothing",
        Source("Habr (a Russian-language tech blog)", "Основы deep learning на примере дебага автоэнкодера, "
               "часть №1 (Deep-learning basics by debugging an autoencoder, part 1)", "blog post", "Russian",
               (("Если посмотреть на метрики — все в огне. Accuracy == 0.993.",
                 "Look at the metrics and everything is on fire. Accuracy == 0.993."),
                ("Вот и выходит accuracy стопроцентная для нашей identity модели, хотя на самом деле числа там "
                 "совсем не такие же.",
                 "So our identity model gets 100 % accuracy, although the numbers are not the same at all."))),
        "An autoencoder for black-and-white images reports accuracy 0.99–1.0 and its reconstructions look "
        "right, yet the outputs are far from the inputs.",
        "Two things mislead. Keras' \"accuracy\" on this output is binary accuracy: a pixel counts as right "
        "when prediction and target fall on the same side of 0.5, however far apart they are. And imshow "
        "stretches every image to full black-to-white, so an output of 0.5 and 0.73 looks like 0 and 1.",
        ("Judge reconstructions by their error (mean squared error per pixel), and draw images with a fixed "
         "scale: imshow(..., vmin=0, vmax=1). The sigmoid output itself is right for targets in [0, 1].",),
        (Variant("copy", "broken", "copy-net: identity weights, no bias, sigmoid", {"model": "copy"}),
         Variant("autoencoder", "fixed", "autoencoder 784→128→784, sigmoid output", {"model": "autoencoder"})),
        ()),
)
CASE_IDS = tuple(c.id for c in CASES)


def case(case_id: str) -> CaseStudy:
    for c in CASES:
        if c.id == str(case_id):
            return c
    raise ValueError(f"unknown case study {case_id!r}; the case studies are {', '.join(CASE_IDS)}")


# --------------------------------------------------------------------------- the bugs' pieces


def naive_elu(x: torch.Tensor) -> torch.Tensor:
    """The question's ELU as written: exp() is evaluated for every x, also where x > 88."""
    return torch.where(x > 0, x, torch.exp(x) - 1)


def clamped_elu(x: torch.Tensor) -> torch.Tensor:
    """The answer's fix: exp only sees x <= 0, so it cannot overflow."""
    return torch.where(x > 0, x, torch.exp(torch.clamp(x, max=0)) - 1)


register_activation("case002_naive_elu", naive_elu, overwrite=True)
register_activation("case002_clamped_elu", clamped_elu, overwrite=True)

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()


def keras_categorical_crossentropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' categorical_crossentropy with from_logits=False, as its backend computes it: the outputs
    are taken as probabilities, scaled to sum to 1, clipped to [eps, 1 - eps], then -sum(y * log p)."""
    onehot = F.one_hot(target, output.shape[-1]).to(output.dtype)
    p = output / output.sum(-1, keepdim=True)
    p = p.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    return -(onehot * p.log()).sum(-1).mean()


class CopyNet(nn.Module):
    """The blog's identity model: Dense(4096, use_bias=False, kernel=identity) + sigmoid."""

    def __init__(self, size: int):
        super().__init__()
        self.linear = nn.Linear(size, size, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(size))
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.linear(x))


class AutoEncoder(nn.Module):
    """keras.io's first autoencoder, the one the blog started from: Dense(relu) -> Dense(sigmoid)."""

    def __init__(self, size: int, code: int = 128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(size, code), nn.ReLU(), nn.Linear(code, size), nn.Sigmoid())

    def forward(self, x):
        return self.layers(x)


def binary_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Keras' binary_accuracy: the share of pixels on the same side of 0.5 as their target."""
    return float(((pred > 0.5) == (target > 0.5)).float().mean())


# --------------------------------------------------------------------------- run specs


@dataclass(frozen=True)
class CaseRun:
    """One plain-loop case-study run; ``run_name()`` is its name in the run store."""

    case_id: str
    variant: Variant
    preset: str
    settings: dict

    def key(self) -> str:
        blob = json.dumps({"case": self.case_id, "variant": self.variant.key, "preset": self.preset,
                           **self.settings}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        return f"case{self.case_id}-{self.variant.key}-{self.preset}-{self.key()}"


def _preset(preset: str) -> dict:
    if preset not in CASE_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(CASE_PRESETS)}")
    return CASE_PRESETS[preset]


def _loop_settings(c: CaseStudy, v: Variant, preset: str) -> dict:
    p = _preset(preset)
    common = {"dataset": p["dataset"], "train_images": p["train"], "eval_images": p["eval"], "epochs": p["epochs"],
              "seeds": list(p["seeds"])}
    if c.id == "000":  # the question's PyTorch net (784 inputs here), with Keras' optimizer and batch size
        return common | {"hidden_sizes": [128, 64], "activation": "tanh", "optimizer": "adam", "lr": 1e-3,
                         "batch_size": 128, "init": "default"} | v.settings
    if c.id == "002":  # "a simple 8-layer fully connected network, 128 nodes in each layer", SGD(lr=0.01), batch 64
        return common | {"hidden_sizes": [128] * 8, "activation": f"case002_{v.settings['elu']}_elu",
                         "optimizer": "sgd", "lr": 0.01, "batch_size": 64, "init": "xavier",  # Keras' glorot_uniform
                         "inputs": v.settings["inputs"]}
    if c.id == "004":  # Adam and MSE as in the blog, on black-and-white images
        return common | {"model": v.settings["model"], "optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                         "loss": "mse", "images": "binarised at 0.5"}
    raise ValueError(f"case {c.id} has no plain-loop runs")


def _dropout_config(v: Variant, preset: str):
    """Case 001 as a BaseNetwork config: the question's 4 x 256 ReLU MLP, Adam 1e-3, batch 100."""
    p = _preset(preset)
    return make_config("relu", preset, hidden_sizes=p["dropout_net"], optimizer="adam", lr=1e-3, batch_size=100,
                       dropout=v.settings["dropout"], max_epochs=p["epochs"], patience=p["epochs"] + 1,
                       train_subset=p["train"], dataset=p["dataset"], seeds=p["dropout_seeds"])


def run_configs(preset: str = "quick") -> list:
    """Every case-study run of ``preset``: objects with ``run_name()`` (what the report checks for)."""
    out = []
    for c in CASES:
        for v in c.variants:
            out.append(_dropout_config(v, preset) if c.id == "001" else CaseRun(c.id, v, preset,
                                                                                 _loop_settings(c, v, preset)))
    return out


# --------------------------------------------------------------------------- training


def _origin(label: str):
    """Mark runs saved inside as coming from ``label`` when the run store supports it."""
    mark = getattr(store, "run_origin", None)
    return mark(label) if mark is not None else contextlib.nullcontext()


def _data(dataset: str, cache: dict):
    from .data import load
    if dataset not in cache:
        cache[dataset] = load(dataset)
    return cache[dataset]


def _inputs(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The data's [-1, 1] images as the case feeds them: raw 0-255, [0, 1], or binarised."""
    pixels01 = (x.reshape(len(x), -1) + 1) / 2
    if kind == "raw":
        return (pixels01 * 255).round()
    if kind == "scaled":
        return pixels01
    if kind == "binary":
        return (pixels01 > 0.5).float()
    return x.reshape(len(x), -1)


def _build(spec: CaseRun, input_size: int, num_classes: int, seed: int):
    from .models import BaseNetwork
    s = spec.settings
    torch.manual_seed(seed)
    if spec.case_id == "004":
        net = CopyNet(input_size) if s["model"] == "copy" else AutoEncoder(input_size)
        return net, {"kind": type(net).__name__, "input_size": input_size,
                     "layers": "Linear(784→784, no bias, identity) + Sigmoid" if s["model"] == "copy"
                     else "Linear(784→128) + ReLU + Linear(128→784) + Sigmoid"}
    net = BaseNetwork(s["activation"], input_size=input_size, num_classes=num_classes,
                      hidden_sizes=s["hidden_sizes"], init=s["init"], output_act=s.get("output_act"))
    return net, dict(net.config)


def _evaluate(net, x, y, spec: CaseRun, loss_fn) -> dict:
    net.eval()
    with torch.no_grad():
        out = net(x)
        if spec.case_id == "004":
            return {"loss": float(F.mse_loss(out, x)), "binary_acc": binary_accuracy(out, x)}
        loss = float(loss_fn(out, y))
        return {"loss": loss, "acc": float((out.argmax(-1) == y).float().mean())}


@contextlib.contextmanager
def _flush_subnormals():
    """exp() of large negative pre-activations (raw pixels) gives float32 subnormals, which a CPU
    computes many times slower; flushed to zero, exp(x) - 1 is -1 either way."""
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def train_case_run(spec: CaseRun, data, runs_dir=None, overwrite: bool = False) -> store.Run:
    """Train one plain-loop case-study run (all its seeds) and store it; load it when stored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these nets are tiny: a second thread only waits at every op's barrier
    try:
        with _flush_subnormals():
            return _train_case_run(spec, data, runs_dir, overwrite)
    finally:
        torch.set_num_threads(threads)


def _train_case_run(spec: CaseRun, data, runs_dir=None, overwrite: bool = False) -> store.Run:
    from .diagnose import diagnose
    from .diagnose.evidence import Evidence
    from .record import Recorder
    from .recording import save_recording
    from .train import _versions

    name = spec.run_name()
    if not overwrite and store.exists(name, runs_dir):
        return store.load_run(name, runs_dir)
    s = spec.settings
    kind = "binary" if spec.case_id == "004" else s.get("inputs", "normalised")
    n, m = s["train_images"], s["eval_images"]
    tx, ty = _inputs(data.train_x[:n], kind), data.train_y[:n]
    vx, vy = _inputs(data.val_x[:m], kind), data.val_y[:m]
    ex, ey = _inputs(data.test_x[:m], kind), data.test_y[:m]
    if spec.case_id == "004":
        loss_fn = lambda out, y, x: F.mse_loss(out, x)  # noqa: E731 -- target is the input itself
    elif s.get("loss") == "keras_categorical_crossentropy":
        loss_fn = lambda out, y, x: keras_categorical_crossentropy(out, y)  # noqa: E731
    else:
        loss_fn = lambda out, y, x: F.cross_entropy(out, y)  # noqa: E731
    rows, results, recordings, weights, epoch_seconds, extra_arrays = [], [], [], {}, [], {}
    for seed in s["seeds"]:
        net, model_config = _build(spec, tx.shape[1], data.num_classes, seed)
        opt = (torch.optim.Adam if s["optimizer"] == "adam" else torch.optim.SGD)(net.parameters(), lr=s["lr"])
        order = torch.Generator().manual_seed(seed)
        bs, steps = s["batch_size"], len(ty) // s["batch_size"]

        def row(epoch, seconds, train_loss=float("nan"), train_acc=float("nan"), net=net, seed=seed):
            val = _evaluate(net, vx, vy, spec, lambda o, y: loss_fn(o, y, vx))
            r = {"seed": seed, "epoch": epoch, "train_loss": train_loss, "seconds": seconds, "past_stop": False}
            if spec.case_id == "004":
                return r | {"val_loss": val["loss"], "val_binary_acc": val["binary_acc"]}
            return r | {"train_acc": train_acc, "val_loss": val["loss"], "val_acc": val["acc"]}

        rows.append(row(0, 0.0))  # before any step: where each run starts
        with torch.no_grad():
            extra_arrays[f"before_seed{seed}"] = net.eval()(ex[:4]).numpy()
        with Recorder(net, member_seeds=[seed]) as rec:
            for epoch in range(1, s["epochs"] + 1):
                t0, total, correct = time.perf_counter(), 0.0, 0
                rec.epoch = epoch
                net.train()
                perm = torch.randperm(len(ty), generator=order)
                for step in range(steps):
                    i = perm[step * bs:(step + 1) * bs]
                    out = net(tx[i])
                    loss = loss_fn(out, ty[i], tx[i])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    rec.step(loss=loss)
                    total += float(loss.detach())
                    if spec.case_id != "004":
                        correct += int((out.detach().argmax(-1) == ty[i]).sum())
                epoch_seconds.append(time.perf_counter() - t0)
                rows.append(row(epoch, epoch_seconds[-1], total / steps, correct / (steps * bs)))
        test = _evaluate(net, ex, ey, spec, lambda o, y: loss_fn(o, y, ex))
        results.append({"seed": seed, "test_acc": test.get("acc", float("nan")), "test_loss": test["loss"],
                        "test_binary_acc": test.get("binary_acc"), "best_epoch": s["epochs"],
                        "stopped_epoch": None, "epochs_trained": s["epochs"], "epochs_recorded": s["epochs"]})
        recordings.append(rec)
        weights[seed] = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        with torch.no_grad():
            net.eval()
            out = net(ex[:512])
            extra_arrays[f"outputs_seed{seed}"] = out[:4].numpy()
            extra_arrays["targets"] = ex[:4].numpy()
            if spec.case_id == "000":
                extra_arrays[f"row_sums_seed{seed}"] = out.sum(-1).numpy()
                extra_arrays[f"output_values_seed{seed}"] = out.reshape(-1).numpy()
    metrics = pd.DataFrame(rows)
    config = {"origin": f"case study {spec.case_id}",
              "run": {**s, "activation": {"name": s.get("activation", s.get("model"))}, "preset": spec.preset,
                      "seeds": list(s["seeds"]), "max_epochs": s["epochs"], "case": spec.case_id,
                      "variant": spec.variant.key, "role": spec.variant.role, "label": spec.variant.label},
              "model": model_config, "data": data.describe(), "device": "cpu", "versions": _versions(),
              "seconds_per_epoch": float(np.mean(epoch_seconds)), "epoch_seconds": epoch_seconds,
              "batch": {"members": 1, "runs": [name]},
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    rec = recordings[0]  # the first seed's recording is the one stored (the loop is the same for all)

    def extra(tmp):
        save_recording(tmp / "recordings", rec.tables(), rec.summary())
        trained = metrics[metrics["epoch"] > 0] if spec.case_id != "004" else None  # epoch 0: before training
        evidence = Evidence.from_stored(config, trained, results, rec, data.num_classes)
        store.write_json_atomic(tmp / "findings.json", [f.to_dict() for f in diagnose(evidence)])
        np.savez(tmp / "samples.npz", **extra_arrays)  # plain arrays (no pickle): reconstructions, output values

    store.save_run(name, config, metrics, results, weights, runs_dir=runs_dir, overwrite=overwrite, extra=extra)
    return store.load_run(name, runs_dir)


def train_case_studies(preset: str = "quick", runs_dir=None, overwrite: bool = False, progress: bool = False,
                       data=None) -> dict:
    """Train (or load) every case-study run: {case id: {variant key: Run}}."""
    from .train import train_runs
    _preset(preset)
    cache = {} if data is None else {CASE_PRESETS[preset]["dataset"]: data}
    out: dict = {}
    for c in CASES:
        with _origin(f"case study {c.id}"):
            if c.id == "001":  # a BaseNetwork setting: the project's batched trainer, several seeds
                configs = [_dropout_config(v, preset) for v in c.variants]
                runs = train_runs(configs, runs_dir=runs_dir, overwrite=overwrite, progress=progress)
                out[c.id] = {v.key: r for v, r in zip(c.variants, runs)}
                continue
            out[c.id] = {}
            for v in c.variants:
                spec = CaseRun(c.id, v, preset, _loop_settings(c, v, preset))
                d = _data(spec.settings["dataset"], cache)
                out[c.id][v.key] = train_case_run(spec, d, runs_dir=runs_dir, overwrite=overwrite)
    return out


def load_case_studies(preset: str = "quick", runs_dir=None) -> dict:
    """The stored case-study runs, {case id: {variant key: Run}}; names the command when one is missing."""
    out: dict = {}
    missing = []
    for c in CASES:
        out[c.id] = {}
        for v in c.variants:
            name = (_dropout_config(v, preset) if c.id == "001"
                    else CaseRun(c.id, v, preset, _loop_settings(c, v, preset))).run_name()
            if store.exists(name, runs_dir):
                out[c.id][v.key] = store.load_run(name, runs_dir)
            else:
                missing.append(name)
    if missing:
        raise store.RunStoreError(f"{len(missing)} case-study run(s) of preset {preset!r} are not in the run store "
                                  f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); train them with "
                                  f"`gradflow train --case-studies --preset {preset}`")
    return out


def run(args) -> int:
    """``gradflow train --case-studies``: train or load every case-study run, one line each."""
    runs = train_case_studies(args.preset, runs_dir=args.out, overwrite=args.overwrite,
                              progress=not args.no_progress)
    for cid, by_variant in runs.items():
        for key, r in by_variant.items():
            acc = r.results.get("test_binary_acc") if cid == "004" else r.results["test_acc"]
            what = "binary accuracy" if cid == "004" else "test accuracy"
            value = "n/a" if acc is None else f"{100 * float(pd.Series(acc).astype(float).mean()):.1f} %"
            print(f"case {cid} {key:<12} {r.name}: {what} {value}")
    return 0

