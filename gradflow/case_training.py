"""Training one case-study run in a small plain loop wrapped in gradflow.Recorder, as a user's own
loop would be, and storing it like any other run (cases 000, 002 and 004; case 001 goes through
the project's batched trainer)."""
from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import store
from .case_bugs import AutoEncoder, CopyNet, binary_accuracy, keras_categorical_crossentropy

if TYPE_CHECKING:  # a run's spec is defined with the case studies, which import this module
    from .case_studies import CaseRun


def _data(dataset: str, cache: dict, root=None):
    from .data import load
    if dataset not in cache:
        cache[dataset] = load(dataset, root=root)
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
    from .diagnose.evidence import Evidence, judged_metrics
    from .fit_saving import library_versions
    from .record import Recorder
    from .recording import Recording, save_recording

    name = spec.run_name()
    if not overwrite and store.exists(name, runs_dir):
        run = store.load_run(name, runs_dir)
        recorded = (run.recordings.summary().get("member_seeds") or []) if run.recordings is not None else []
        if len(recorded) >= len(run.seeds):
            return run
        overwrite = True  # stored when only the first seed was recorded: its findings miss seeds
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
                    # the autoencoder's targets are its inputs: the diagnosis judges its sigmoid output against them
                    rec.step(loss=loss, targets=tx[i] if spec.case_id == "004" else ty[i])
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
              "model": model_config, "data": data.describe(), "device": "cpu", "versions": library_versions(),
              "seconds_per_epoch": float(np.mean(epoch_seconds)), "epoch_seconds": epoch_seconds,
              "batch": {"members": 1, "runs": [name]},
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    rec = Recording(Path(name), *_all_seeds(recordings, s["seeds"]))  # every seed diagnosed, one member each

    def extra(tmp):
        save_recording(tmp / "recordings", rec.tables(), rec.summary())
        evidence = Evidence.from_stored(config, judged_metrics(metrics), results, rec, data.num_classes)
        store.write_json_atomic(tmp / "findings.json", [f.to_dict() for f in diagnose(evidence)])
        np.savez(tmp / "samples.npz", **extra_arrays)  # plain arrays (no pickle): reconstructions, output values

    store.save_run(name, config, metrics, results, weights, runs_dir=runs_dir, overwrite=overwrite, extra=extra)
    return store.load_run(name, runs_dir)


def _all_seeds(recordings: list, seeds) -> tuple[dict, dict]:
    """The seeds' separate recordings (one plain loop each) as one recording with one member per seed,
    as the batched trainer writes them, so the diagnosis counts findings over every seed."""
    tables: dict[str, list] = {}
    for member, rec in enumerate(recordings):
        for key, table in rec.tables().items():
            tables.setdefault(key, []).append(table.assign(member=member) if "member" in table else table)
    summary = {**recordings[0].summary(), "members": len(recordings), "member_seeds": [int(x) for x in seeds]}
    return {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, summary
