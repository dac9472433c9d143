"""Time to render the whole report set from cached runs, and the size of each HTML page.

    python benchmarks/bench_report.py [--preset quick] [--runs checkpoints] [--jobs 2]

A first render trains whatever the run store lacks (the comparison and the case-study runs) and is
not timed; the timed render then only executes and converts notebooks, which is what a second
`make report` does. Target on the 2-core CPU machine: under 60 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from gradflow import report

TARGET_SECONDS = 60.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--runs", default=os.environ.get("GRADFLOW_RUNS", "checkpoints"), help="run store directory")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="report directory (default: a temporary one)")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gradflow-bench-"))

    t0 = time.perf_counter()
    warm = report.render_all(out, preset=args.preset, runs_dir=args.runs, jobs=args.jobs)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    code = report.render_all(out, preset=args.preset, runs_dir=args.runs, jobs=args.jobs)
    timed = time.perf_counter() - t0

    index = json.loads((out / "index.json").read_text())
    print(f"\nreport set, preset {args.preset!r}, runs in {args.runs}, {args.jobs} parallel jobs, "
          f"{os.cpu_count()} CPU cores")
    print(f"first render (trains what is missing): {warm_s:7.1f} s (exit {warm})")
    print(f"render from cached runs:               {timed:7.1f} s (exit {code}; target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if timed < TARGET_SECONDS else 'MISSED'})")
    print(f"{'report':<28}{'status':<16}{'kernel s':>9}{'HTML KiB':>10}")
    total = 0
    for r in index["reports"]:
        size = (out / r["html"]).stat().st_size
        total += size
        print(f"{r['name']:<28}{r['status']:<16}{r['seconds']:>9.1f}{size / 1024:>10.0f}")
    index_size = (out / "index.html").stat().st_size
    print(f"{'index.html':<28}{'':<16}{'':>9}{index_size / 1024:>10.1f}")
    print(f"{'all HTML':<28}{'':<16}{'':>9}{(total + index_size) / 1024:>10.0f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
