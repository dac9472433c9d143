"""How fast the ``gradflow`` command answers: ``--help`` of every command, ``--version``, next to
``python -c pass`` (the interpreter's own start) and ``import torch`` (what ``--help`` must not do).

    python benchmarks/bench_cli.py --repeats 5

Each line is the median wall time of fresh processes, interleaved so machine load hits all alike.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradflow.cli import COMMANDS  # noqa: E402  (light: the registry imports no command)

TARGET_S = 1.0


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per line (default: 5)")
    args = ap.parse_args()
    py = [sys.executable]
    cases = {"python -c pass": [*py, "-c", "pass"], "python -c 'import torch'": [*py, "-c", "import torch"],
             "gradflow --help": [*py, "-m", "gradflow.cli", "--help"],
             "gradflow --version": [*py, "-m", "gradflow.cli", "--version"],
             **{f"gradflow {c} --help": [*py, "-m", "gradflow.cli", c, "--help"] for c in COMMANDS}}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, argv in cases.items():  # interleaved
            times[name].append(_time(argv))
    base = statistics.median(times["python -c pass"])
    torch_s = statistics.median(times["python -c 'import torch'"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<30} {med:6.3f} s  ({med / base:4.1f}x python start, {med / torch_s:4.2f}x import torch)")
    worst = max(statistics.median(times[k]) for k in cases if k.startswith("gradflow"))
    print(f"slowest gradflow answer: {worst:.3f} s (target < {TARGET_S:.0f} s: {'met' if worst < TARGET_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
