"""Time to render the whole report set from the stored runs, and the size of each HTML page.

    python benchmarks/bench_report.py [--preset quick] [--runs checkpoints] [--jobs 2] [--repeats 1]

Rendering trains nothing: the runs are prepared beforehand by `gradflow train` (what `make train`
runs), and that is not timed as rendering. When the store lacks runs this says which reports
cannot render and the command that trains them, and exits non-zero. Target on the 2-core CPU
machine: the set in under 60 s.
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
    ap.add_argument("--preset", default="quick", help="preset of the stored runs (default: quick)")
    ap.add_argument("--runs", default=os.environ.get("GRADFLOW_RUNS", "checkpoints"), help="run store directory")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel (default: 2)")
    ap.add_argument("--repeats", type=int, default=1, help="timed renders; the best and all are printed")
    ap.add_argument("--out", default=None, help="report directory (default: a temporary one)")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gradflow-bench-"))

    load_before = os.getloadavg()[0]
    times, code = [], 0
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        code = report.render_all(out, preset=args.preset, runs_dir=args.runs, jobs=args.jobs)
        times.append(time.perf_counter() - t0)
    best = min(times)

    index = json.loads((out / "index.json").read_text())
    print(f"\nreport set, preset {args.preset!r}, runs in {args.runs}, {args.jobs} parallel jobs, "
          f"{os.cpu_count()} CPU cores")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine "
          f"slows every kernel)")
    print(f"runs prepared by `gradflow train` beforehand (make train PRESET={args.preset}); not timed as rendering")
    print(f"render from stored runs:               {best:7.1f} s (exit {code}; target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if best < TARGET_SECONDS and code == 0 else 'MISSED' if code == 0 else 'not all reports rendered'})"
          + (f"  (runs: {', '.join(f'{t:.1f}' for t in times)})" if len(times) > 1 else ""))
    print(f"{'report':<28}{'status':<16}{'kernel s':>9}{'HTML KiB':>10}")
    total = 0
    for r in index["reports"]:
        size = (out / r["html"]).stat().st_size
        total += size
        print(f"{r['name']:<28}{r['status']:<16}{r['seconds']:>9.1f}{size / 1024:>10.0f}")
    index_size = (out / "index.html").stat().st_size
    print(f"{'index.html':<28}{'':<16}{'':>9}{index_size / 1024:>10.1f}")
    print(f"{'all HTML':<28}{'':<16}{'':>9}{(total + index_size) / 1024:>10.0f}")
    missing = [r for r in index["reports"] if r["status"] == "missing runs"]
    if missing:
        print(f"{len(missing)} report(s) lack their runs: {missing[0]['error']}")
    return code


if __name__ == "__main__":
    sys.exit(main())
