"""One training epoch: the tutorial's DataLoader pipeline vs gradflow, measured side by side.

Every side trains the tutorial's relu BaseNetwork ([512, 256, 256, 128]) with SGD lr 1e-2,
momentum 0.9, batch 256, drop_last, and evaluates on the 10k validation images, as the tutorial's
epoch does. The tutorial side reads FashionMNIST through torchvision's DataLoader with per-sample
ToTensor + Normalize. The gradflow side is what `gradflow train --act relu --seeds 42` runs: the
real fit path with the default recording (epoch 1 records densely), timed per epoch, and the whole
call (dead-unit passes, test set, findings, writing the run) per epoch; beside it the same fit with
recording off. A plain PyTorch loop on the same resident tensors, doing the same per-step loss and
accuracy sums and the same validation, measures the ceiling. Rounds are interleaved so every side
sees the same machine load. Targets on the 2-core CPU: gradflow >= 10x the tutorial per epoch;
one model's epoch (recording default, validation included) <= 1.15x the plain loop.

With a GPU, ``--gpu-suite`` also prints eager vs the captured CUDA-graph step per model-epoch for
1, 6, 30 and 120 models, 30 models with TF32, the same 30 models as six torch.func vmaps of 5
seeds (``gradflow.SeedBatch``), the wall time of the whole ``tutorial`` preset for 6 activations
x 5 seeds with recording off and on, and the fraction of an epoch the GPU is busy.

``--smoke`` runs every code path in seconds on a small synthetic set (any device; the graph side
through a CPU stand-in for CUDA graphs): the tests use it so the script cannot rot between the
runs on a GPU machine. Its timings mean nothing.

    python benchmarks/bench_training.py [--repeats 2] [--epochs 2] [--device cpu] [--gpu-suite] [--smoke]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from gradflow import BaseNetwork, SeedBatch, train
from gradflow.config import make_config
from gradflow.data import default_data_root, load_fashion_mnist, prepare_fashion_mnist, synthetic


class PilImages(torch.utils.data.Dataset):
    """uint8 images served the way torchvision's FashionMNIST serves them (a PIL image per sample)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i].numpy(), mode="L")), int(self.labels[i])


def tutorial_epoch(root, device, smoke_data=None) -> float:
    """The tutorial's epoch: DataLoader with per-sample transforms, then validation."""
    from torch.utils import data
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    if smoke_data is None:
        full = FashionMNIST(str(root), train=True, transform=transform, download=False)
    else:  # the synthetic set back in 0..255 pixels, through the same per-sample path
        x = torch.cat([smoke_data.train_x, smoke_data.val_x])
        pixels = ((x * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).view(-1, 28, 28)
        full = PilImages(pixels, torch.cat([smoke_data.train_y, smoke_data.val_y]), transform)
    n_val = 10000 if smoke_data is None else len(smoke_data.val_y)
    train_set, val_set = data.random_split(full, [len(full) - n_val, n_val],
                                           generator=torch.Generator().manual_seed(42))
    train_loader = data.DataLoader(train_set, batch_size=256, shuffle=True, drop_last=True)
    val_loader = data.DataLoader(val_set, batch_size=1024, shuffle=False, drop_last=False)  # as the tutorial
    torch.manual_seed(42)
    net = BaseNetwork("relu").to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    t0 = time.perf_counter()
    net.train()
    train_correct = 0
    for imgs, labels in train_loader:
        imgs, labels = imgs.to(device), labels.to(device)
        opt.zero_grad()
        preds = net(imgs)
        loss = F.cross_entropy(preds, labels)
        loss.backward()
        opt.step()
        train_correct += (preds.argmax(dim=-1) == labels).sum()  # the tutorial's training accuracy
    net.eval()
    correct = 0
    with torch.no_grad():
        for imgs, labels in val_loader:
            correct += (net(imgs.to(device)).argmax(-1) == labels.to(device)).sum()
    float(correct)  # wait for the device
    return time.perf_counter() - t0


def plain_epochs(data, device, epochs: int = 1) -> list[float]:
    """The same epochs in plain PyTorch on resident tensors: one BaseNetwork, index batches, a new
    order each epoch, the training loss and accuracy kept per step as any trainer reports them,
    and the 10k validation images evaluated after each epoch.

    No data pipeline at all, so it is the ceiling for the model's float32 arithmetic on this
    device: the tutorial/plain ratio is the most any per-epoch speed-up can reach here.
    """
    torch.manual_seed(42)
    net = BaseNetwork("relu").to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    x, y = data.train_x.to(device), data.train_y.to(device)
    vx, vy = data.val_x.to(device), data.val_y.to(device)
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(y)).to(device)
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for s in range(len(y) // 256):
            idx = perm[s * 256:(s + 1) * 256]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(-1) == yb).sum()
        net.eval()
        with torch.no_grad():
            val = sum((net(vx[i:i + 2500]).argmax(-1) == vy[i:i + 2500]).sum() for i in range(0, len(vy), 2500))
        float(val + correct + loss_sum)  # wait for the device; a trainer reads these once per epoch
        seconds.append(time.perf_counter() - t0)
    return seconds


def gradflow_epoch(data, device, activations=("relu",), seeds=(42,), **settings) -> float:
    """gradflow's first epoch (training + validation) as fit() times it, recording off unless asked."""
    return gradflow_fit(data, device, activations, seeds, **settings)[0]


def gradflow_fit(data, device, activations=("relu",), seeds=(42,), epochs=1, record="off", graph="auto",
                 graphs=None, **settings) -> list[float]:
    """Each epoch's seconds (training + validation) of one fit(), the path `gradflow train` takes."""
    configs = [make_config(a, "tutorial", max_epochs=epochs, seeds=seeds, record=record, **settings)
               for a in activations]
    return train.fit(configs, data, device=device, progress=False, graph=graph, graphs=graphs).epoch_seconds


def gradflow_command(data, device, epochs: int) -> tuple[list[float], float]:
    """What `gradflow train --act relu --seeds 42 --preset tutorial` does, for ``epochs`` epochs: the
    default recording (dense in epoch 1), the dead-unit passes before and after training, the test
    set, the findings, the run written to a store. Returns the epochs' own seconds and the wall time."""
    config = make_config("relu", "tutorial", max_epochs=epochs, seeds=(42,))  # record: the default schedule
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run, = train.train_runs([config], runs_dir=tmp, device=device, progress=False, data=data)
        wall = time.perf_counter() - t0
        return list(run.config["epoch_seconds"]), wall


def seed_batch_epoch(data, device, activations, seeds) -> float:
    """The same epoch with torch.func: one SeedBatch (vmap) per activation, run one after another."""
    batches = [SeedBatch(lambda a=a: BaseNetwork(a), seeds).to(device) for a in activations]
    opts = [torch.optim.SGD(b.parameters(), lr=1e-2, momentum=0.9) for b in batches]
    x, y = data.train_x.to(device), data.train_y.to(device)
    vx, vy = data.val_x.to(device), data.val_y.to(device)
    t0 = time.perf_counter()
    for batch, opt in zip(batches, opts):
        perm = torch.randperm(len(y), device=device)
        batch.train()
        for s in range(len(y) // 256):
            idx = perm[s * 256:(s + 1) * 256]
            opt.zero_grad()
            batch.losses(batch(x[idx]), y[idx]).sum().backward()
            opt.step()
        with torch.no_grad():
            acc = batch.eval().accuracy(batch(vx), vy)
    float(acc.sum())  # wait for the device
    return time.perf_counter() - t0


def gpu_busy_fraction(run, device) -> float | None:
    """Fraction of ``run()``'s wall time the GPU spends in kernels (torch profiler; one stream, so
    kernel times do not overlap). Off CUDA ``run()`` still runs (smoke) and the answer is None."""
    if device.type != "cuda":
        run()
        return None
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        run()
        wall = time.perf_counter() - t0
    busy = sum(e.self_device_time_total for e in prof.key_averages()) / 1e6  # microseconds -> s
    return busy / wall


def gpu_suite(data, device, smoke=False) -> None:
    """Eager vs the captured step per model-epoch, the SeedBatch comparison, the whole preset with
    recording off and on, and how busy the GPU is. In --smoke on a CPU the graph side runs the
    graph dispatch through InlineGraphs (no graph: its timing is eager's)."""
    from gradflow.train_step import InlineGraphs
    six = train.TUTORIAL_ACTIVATIONS
    sizes = ((1, ("relu",), 1), (6, six, 1), (12, six, 2), (24, six, 4)) if smoke else \
        ((1, ("relu",), 1), (6, six, 1), (30, six, 5), (120, six, 20))
    stand_in = (lambda: InlineGraphs()) if device.type != "cuda" else (lambda: None)  # noqa: E731
    if stand_in() is not None:
        print("graph side: CPU stand-in for CUDA graphs (the dispatch runs, nothing is captured)")
    gradflow_epoch(data, device, six[:1], (0,))  # warm-up: CUDA context, kernels
    per_model = {}
    for n, acts, k in sizes:
        seeds = tuple(range(k))
        # the second epoch: the first one warms up and captures
        eager = gradflow_fit(data, device, acts, seeds, epochs=2, graph="off")[-1]
        graph = gradflow_fit(data, device, acts, seeds, epochs=2, graph="on", graphs=stand_in())[-1]
        per_model[n] = (eager, graph)
        print(f"{n:>4} models: eager {eager / n * 1000:7.1f} ms, graph {graph / n * 1000:7.1f} ms per model-epoch "
              f"({eager:.3f} / {graph:.3f} s per epoch; eager / graph {eager / graph:.2f}x)")
    n30, acts30, k30 = sizes[2]
    tf32 = gradflow_fit(data, device, acts30, tuple(range(k30)), epochs=2, graph="on", graphs=stand_in(),
                        precision="tf32")[-1]
    print(f"{n30:>4} models, graph, tf32: {tf32 / n30 * 1000:.1f} ms per model-epoch "
          "(targets on one H100: fp32 <= 10 ms, tf32 <= 7.5 ms)")
    five = tuple(range(k30))
    stacked = per_model[n30][0]
    vmapped = seed_batch_epoch(data, device, six, five)
    print(f"{n30} models as 6 torch.func vmaps of {len(five)} seeds (SeedBatch): {vmapped:.3f} s/epoch, "
          f"{vmapped / stacked:.1f}x the one batched eager step ({stacked:.3f} s)")
    for record in ("off", "default"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            runs = train.compare(six, preset="tutorial", seeds=five, runs_dir=tmp, data=data, device=device,
                                 progress=False, record=record, **({"max_epochs": 2} if smoke else {}))
            wall = time.perf_counter() - t0
        epochs = max(int(r.results["epochs_recorded"].max()) for r in runs)
        step = runs[0].config.get("training_step", "?")
        print(f"tutorial preset, 6 activations x {len(five)} seeds, recording {record}: {wall:.1f} s wall "
              f"({epochs} epochs, step: {step}; target with recording on: <= 20 s on one H100)")
    for label, graph in (("eager", "off"), ("graph", "on")):
        busy = gpu_busy_fraction(lambda g=graph: gradflow_fit(data, device, six, five, graph=g,
                                                               graphs=stand_in() if g == "on" else None), device)
        print(f"GPU busy, {n30} models, one epoch, {label}: " + ("n/a (no GPU)" if busy is None else f"{busy:.0%}")
              + " of the epoch's wall time")


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2, help="rounds, each side timed once per round, interleaved")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs per round on the gradflow and plain sides (epoch 1 records densely, later ones not)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--gpu-suite", action="store_true", help="also time 1/6/30/120 models, eager vs graph, the preset")
    p.add_argument("--smoke", action="store_true", help="tiny synthetic run of every code path (timings meaningless)")
    args = p.parse_args(argv)

    root = default_data_root()
    if args.smoke:
        data = synthetic(n_train=1024, n_val=256, n_test=256)
        print("SMOKE RUN on a small synthetic set: checks the script, its timings mean nothing")
    else:
        prepare_fashion_mnist(root)
        data = load_fashion_mnist(root)
    device = torch.device(args.device)
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}), torch {torch.__version__}")
    print(f"load average {_load_average()} before (other work on the machine slows every side alike: "
          "compare the ratios, not the seconds)")
    tutorial, command, walls, off, plain = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved so all sides see the same machine load
        tutorial.append(tutorial_epoch(root, device, data if args.smoke else None))
        epochs, wall = gradflow_command(data, device, args.epochs)
        command.append(epochs)
        walls.append(wall)
        off.extend(gradflow_fit(data, device, epochs=args.epochs))
        plain.extend(plain_epochs(data, device, args.epochs))
    print(f"load average {_load_average()} after")
    rec = [s for epochs in command for s in epochs]
    first = [epochs[0] for epochs in command]
    t, g, o, pl = (statistics.median(v) for v in (tutorial, rec, off, plain))
    whole = statistics.median(walls) / args.epochs
    runs = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    print(f"tutorial DataLoader pipeline:      {t:.2f} s/epoch  (runs: {runs(tutorial)})")
    print(f"gradflow resident tensors:         {g:.2f} s/epoch  (gradflow train, recording default; epochs: "
          f"{runs(rec)}; epoch 1, which records densely: {runs(first)})")
    print(f"gradflow, recording off:           {o:.2f} s/epoch  (epochs: {runs(off)})")
    print(f"plain PyTorch, resident tensors:   {pl:.2f} s/epoch  (epochs: {runs(plain)})")
    print(f"gradflow train, whole command:     {whole:.2f} s/epoch  ({args.epochs} epochs; walls: {runs(walls)} s: "
          "adds the dead-unit passes, the test set, the findings and writing the run)")
    print(f"speed-up: {t / g:.1f}x  (target >= 10x on the 2-core CPU machine)")
    print(f"ceiling:  {t / pl:.1f}x  (tutorial / plain: the most a float32 PyTorch trainer of this model reaches here)")
    print(f"gradflow vs the plain loop, one model's epoch with validation: recording default {g / pl:.2f}x "
          f"(target <= 1.15x), recording off {o / pl:.2f}x; whole command per epoch {whole / pl:.2f}x")
    if args.gpu_suite:
        if device.type != "cuda" and not args.smoke:
            print("--gpu-suite needs a CUDA device; skipped on", device)
        else:
            gpu_suite(data, device, smoke=args.smoke)


if __name__ == "__main__":
    main()
