"""One training epoch: the tutorial's DataLoader pipeline vs gradflow, measured side by side.

Both sides train the tutorial's relu BaseNetwork ([512, 256, 256, 128]) with SGD lr 1e-2,
momentum 0.9, batch 256, drop_last, and evaluate on the 10k validation images, as the tutorial's
epoch does. The tutorial side reads FashionMNIST through torchvision's DataLoader with per-sample
ToTensor + Normalize; gradflow trains on resident tensors batched by index. A third side, a plain
PyTorch loop on the same resident tensors, measures the ceiling: how fast this model's float32
arithmetic alone runs here. Target on the 2-core CPU machine: gradflow >= 10x faster per epoch.

With a GPU, ``--gpu-suite`` also prints the per-model epoch time for 1, 6 and 30 models trained
at once and the wall time of the whole ``tutorial`` preset for 6 activations x 5 seeds.

    python benchmarks/bench_training.py [--repeats 2] [--device cpu] [--gpu-suite]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from gradflow import BaseNetwork, train
from gradflow.config import make_config
from gradflow.data import default_data_root, load_fashion_mnist, prepare_fashion_mnist


def tutorial_epoch(root, device) -> float:
    """The tutorial's epoch: DataLoader with per-sample transforms, then validation."""
    from torch.utils import data
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    full = FashionMNIST(str(root), train=True, transform=transform, download=False)
    train_set, val_set = data.random_split(full, [50000, 10000], generator=torch.Generator().manual_seed(42))
    train_loader = data.DataLoader(train_set, batch_size=256, shuffle=True, drop_last=True)
    val_loader = data.DataLoader(val_set, batch_size=256, shuffle=False, drop_last=False)
    torch.manual_seed(42)
    net = BaseNetwork("relu").to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    t0 = time.perf_counter()
    net.train()
    for imgs, labels in train_loader:
        imgs, labels = imgs.to(device), labels.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(net(imgs), labels)
        loss.backward()
        opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for imgs, labels in val_loader:
            correct += (net(imgs.to(device)).argmax(-1) == labels.to(device)).sum()
    float(correct)  # wait for the device
    return time.perf_counter() - t0


def plain_epoch(data, device) -> float:
    """The same epoch in plain PyTorch on resident tensors: one BaseNetwork, index batches.

    No data pipeline at all, so it is the ceiling for the model's float32 arithmetic on this
    device: the tutorial/plain ratio is the most any per-epoch speed-up can reach here.
    """
    torch.manual_seed(42)
    net = BaseNetwork("relu").to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    x, y = data.train_x.to(device), data.train_y.to(device)
    vx, vy = data.val_x.to(device), data.val_y.to(device)
    t0 = time.perf_counter()
    perm = torch.randperm(len(y), device=device)
    net.train()
    for s in range(len(y) // 256):
        idx = perm[s * 256:(s + 1) * 256]
        opt.zero_grad()
        F.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum((net(vx[i:i + 1024]).argmax(-1) == vy[i:i + 1024]).sum() for i in range(0, len(vy), 1024))
    float(correct)  # wait for the device
    return time.perf_counter() - t0


def gradflow_epoch(data, device, activations=("relu",), seeds=(42,)) -> float:
    """gradflow's epoch (training + validation), as fit() times it."""
    configs = [make_config(a, "tutorial", max_epochs=1, seeds=seeds, record="off") for a in activations]
    _, _, info = train.fit(configs, data, device=device, progress=False)
    return info["epoch_seconds"][0]


def gpu_suite(data, device) -> None:
    six = train.TUTORIAL_ACTIVATIONS
    gradflow_epoch(data, device, six[:1], (0,))  # warm-up: CUDA context, kernels
    for label, acts, seeds in (("1 model", ("relu",), (0,)), ("6 models", six, (0,)),
                               ("30 models", six, tuple(range(5)))):
        seconds = gradflow_epoch(data, device, acts, seeds)
        n = len(acts) * len(seeds)
        print(f"{label:>10}: {seconds:.3f} s/epoch, {seconds / n * 1000:.1f} ms per model-epoch")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        runs = train.compare(six, preset="tutorial", seeds=tuple(range(5)), runs_dir=tmp, data=data,
                             device=device, progress=False, record="off")
        wall = time.perf_counter() - t0
    epochs = max(int(r.results["epochs_recorded"].max()) for r in runs)
    print(f"tutorial preset, 6 activations x 5 seeds: {wall:.1f} s wall ({epochs} epochs, evaluation every epoch)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2, help="epochs timed on each side, interleaved")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--gpu-suite", action="store_true", help="also time 1/6/30 models and the whole preset")
    args = p.parse_args()

    root = default_data_root()
    prepare_fashion_mnist(root)
    data = load_fashion_mnist(root)
    device = torch.device(args.device)
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}), torch {torch.__version__}")
    tutorial, ours, plain = [], [], []
    for _ in range(args.repeats):  # interleaved so all sides see the same machine load
        tutorial.append(tutorial_epoch(root, device))
        ours.append(gradflow_epoch(data, device))
        plain.append(plain_epoch(data, device))
    t, g, p = (statistics.median(v) for v in (tutorial, ours, plain))
    runs = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    print(f"tutorial DataLoader pipeline:      {t:.2f} s/epoch  (runs: {runs(tutorial)})")
    print(f"gradflow resident tensors:         {g:.2f} s/epoch  (runs: {runs(ours)})")
    print(f"plain PyTorch, resident tensors:   {p:.2f} s/epoch  (runs: {runs(plain)})")
    print(f"speed-up: {t / g:.1f}x  (target >= 10x on the 2-core CPU machine)")
    print(f"ceiling:  {t / p:.1f}x  (tutorial / plain: the most a float32 PyTorch trainer of this model reaches here); "
          f"gradflow costs {g / p:.2f}x the plain loop")
    if args.gpu_suite:
        if device.type != "cuda":
            print("--gpu-suite needs a CUDA device; skipped on", device)
        else:
            gpu_suite(data, device)


if __name__ == "__main__":
    main()
