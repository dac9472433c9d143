"""Cost of the Recorder on the tutorial network, measured in one run, and where it goes.

Four copies of BaseNetwork('relu', [512, 256, 256, 128]) train on FashionMNIST batches of 256
(SGD 1e-2, momentum 0.9): without a recorder; with the recorder at its default schedule; the same
without the every-step NaN/Inf check (``nonfinite_check='recorded'``), which splits the default's
cost into the check and the recorded steps; and recording every step. They run round-robin in
blocks of a few steps, the order rotating, so a machine that is busier at one moment slows all
four alike. On a shared 2-core machine single rounds swing by 10 %, and a plain ratio of totals
moves with whichever rounds were unlucky, so each mode's ratio is estimated in two parts: its
rounds without a recorded step count at the median of (block time / the plain block of the same
round), its rounds with one at their measured time, plus the recorded steps' deferred
device->host transfer (``tables()``); all over the plain total. The interquartile range of the
per-round ratios is printed beside it.

    python benchmarks/bench_recorder.py --steps 1000

Target (issue 13): the default schedule <= 1.05x. For scale (same network, this project's 2-core
CPU machine): Cockpit's gradient histogram alone costs 4.2x, its 'economy' preset 9.7x.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

from gradflow.data import load_fashion_mnist, synthetic
from gradflow.models import BaseNetwork
from gradflow.record import Recorder

MODES = ("off", "default", "default, no every-step check", "every step")
RECORDER_ARGS = {"default": {}, "default, no every-step check": {"nonfinite_check": "recorded"},
                 "every step": {"schedule": "every"}}
TARGET = 1.05


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="training steps per mode (default 1000, ~5 epochs)")
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
        torch.manual_seed(42)  # the same initial weights for all
        models[mode] = BaseNetwork("relu")
        opts[mode] = torch.optim.SGD(models[mode].parameters(), lr=1e-2, momentum=0.9)
    blocks = {mode: [] for mode in MODES}  # seconds per block, one entry per round
    recorded_in = {mode: [] for mode in MODES}  # per round: did the block hold a recorded step
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
        recs = {mode: None if mode == "off" else stack.enter_context(Recorder(models[mode], **RECORDER_ARGS[mode]))
                for mode in MODES}
        rounds = 0
        while min(done.values()) < args.steps:
            k = min(args.block, args.steps - done["off"])
            for mode in MODES[rounds % len(MODES):] + MODES[:rounds % len(MODES)]:  # rotate who goes first
                rec = recs[mode]
                recorded_in[mode].append(rec is not None and any(map(rec.schedule, range(done[mode], done[mode] + k))))
                t0 = time.perf_counter()
                train(mode, rec, k)
                blocks[mode].append(time.perf_counter() - t0)
            rounds += 1
        transfer = {}
        for mode, rec in recs.items():
            if rec is not None:
                t0 = time.perf_counter()
                rec.tables()  # the deferred device->host transfer is part of the cost
                transfer[mode] = time.perf_counter() - t0

    print(f"BaseNetwork relu [512,256,256,128], batch {args.batch}, {'synthetic' if args.synthetic else 'FashionMNIST'}, "
          f"{args.steps} steps per mode in {rounds} rounds of {args.block}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    base = sum(blocks["off"])
    ratios = {}
    for mode in MODES:
        total = sum(blocks[mode]) + transfer.get(mode, 0.0)
        per_round = [t / b for t, b in zip(blocks[mode], blocks["off"])]
        q1, _, q3 = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
        plain_rounds = [r for r, rec in zip(per_round, recorded_in[mode]) if not rec]
        typical = statistics.median(plain_rounds) if plain_rounds else 1.0
        estimate = sum(t if rec else typical * b for t, b, rec in zip(blocks[mode], blocks["off"], recorded_in[mode]))
        ratios[mode] = (estimate + transfer.get(mode, 0.0)) / base
        recorded = "" if recs[mode] is None else f"  ({len(recs[mode].summary()['recorded_steps'])} recorded)"
        print(f"  {mode:>28}: {1e3 * total / args.steps:7.2f} ms/step   {ratios[mode]:5.3f}x "
              f"(rounds: IQR {q1:.3f}-{q3:.3f}){recorded}")
    d, nd = ratios["default"], ratios["default, no every-step check"]
    print(f"recorder at default schedule vs off: {d:.3f}x (target <= {TARGET:.2f}x: "
          f"{'met' if d <= TARGET else 'missed'}); of its {100 * (d - 1):.1f} %, the every-step NaN/Inf check "
          f"is about {100 * (d - nd):.1f} % and the recorded steps and hooks {100 * (nd - 1):.1f} %")
    print(f"recording every step vs off:         {ratios['every step']:.3f}x "
          "(Cockpit on this net: 4.2x histogram only, 9.7x economy)")


if __name__ == "__main__":
    main()
