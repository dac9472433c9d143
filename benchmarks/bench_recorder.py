"""Cost of the Recorder on the tutorial network, measured in one run.

Three copies of BaseNetwork('relu', [512, 256, 256, 128]) train on FashionMNIST batches of 256
(SGD 1e-2, momentum 0.9): without a recorder, with the recorder at its default schedule, and with
the recorder recording every step. They run round-robin in blocks of a few steps, so a machine
that is busier at one moment slows all three alike; the ratios compare total times per mode.

    python benchmarks/bench_recorder.py --steps 300

For scale (same network, this project's 2-core CPU machine): Cockpit's gradient histogram alone
costs 4.2x, its 'economy' preset 9.7x.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from gradflow.data import load_fashion_mnist, synthetic
from gradflow.models import BaseNetwork
from gradflow.record import Recorder

MODES = ("off", "default", "every step")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps per mode (default 300, ~1.5 epochs)")
    ap.add_argument("--block", type=int, default=10, help="steps per mode before switching to the next mode")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--synthetic", action="store_true", help="use gradflow.data.synthetic instead of FashionMNIST")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps < 1 or args.block < 1:
        ap.error("--steps and --block must be positive")

    splits = synthetic(n_train=20_000) if args.synthetic else load_fashion_mnist()
    x, y = splits.train_x, splits.train_y
    n_batches = len(y) // args.batch
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))

    models, opts = {}, {}
    for mode in MODES:
        torch.manual_seed(42)  # the same initial weights for all three
        models[mode] = BaseNetwork("relu")
        opts[mode] = torch.optim.SGD(models[mode].parameters(), lr=1e-2, momentum=0.9)
    seconds = dict.fromkeys(MODES, 0.0)
    done = dict.fromkeys(MODES, 0)

    def train(mode, rec, steps):
        model, opt = models[mode], opts[mode]
        for _ in range(steps):
            b = done[mode] % n_batches
            idx = order[b * args.batch:(b + 1) * args.batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            if rec is not None:
                rec.step(loss=loss)
            done[mode] += 1

    # warm-up outside the recorders (allocator, threads)
    warm = BaseNetwork("relu")
    wopt = torch.optim.SGD(warm.parameters(), lr=1e-2)
    for _ in range(5):
        wopt.zero_grad()
        F.cross_entropy(warm(x[:args.batch]), y[:args.batch]).backward()
        wopt.step()

    with contextlib.ExitStack() as stack:
        recs = {"off": None,
                "default": stack.enter_context(Recorder(models["default"])),
                "every step": stack.enter_context(Recorder(models["every step"], schedule="all"))}
        block = 0
        while min(done.values()) < args.steps:
            modes = MODES[block % 3:] + MODES[:block % 3]  # rotate who goes first
            for mode in modes:
                k = min(args.block, args.steps - done[mode])
                t0 = time.perf_counter()
                train(mode, recs[mode], k)
                seconds[mode] += time.perf_counter() - t0
            block += 1
        t0 = time.perf_counter()
        tables = recs["default"].tables()  # the deferred device->host transfer is part of the cost
        seconds["default"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        recs["every step"].tables()
        seconds["every step"] += time.perf_counter() - t0

    base = seconds["off"] / args.steps
    print(f"BaseNetwork relu [512,256,256,128], batch {args.batch}, {'synthetic' if args.synthetic else 'FashionMNIST'}, "
          f"{args.steps} steps per mode, torch {torch.__version__}, {torch.get_num_threads()} threads")
    recorded = {"default": len(recs["default"].summary()["recorded_steps"]), "every step": args.steps}
    for mode in MODES:
        per = seconds[mode] / args.steps
        extra = f"  ({recorded[mode]} of {args.steps} steps recorded)" if mode in recorded else ""
        print(f"  {mode:>10}: {1e3 * per:7.2f} ms/step   {per / base:5.2f}x{extra}")
    print(f"recorder at default schedule vs off: {seconds['default'] / seconds['off']:.3f}x (target <= 1.10x)")
    print(f"recording every step vs off:         {seconds['every step'] / seconds['off']:.3f}x "
          "(Cockpit on this net: 4.2x histogram only, 9.7x economy)")
    print(f"rows recorded at default schedule: {len(tables['scalars'])} scalars, {len(tables['histograms'])} histograms")


if __name__ == "__main__":
    main()
