"""``gradflow report``: render the notebooks to HTML (owner: the report pipeline; moved here from cli.py)."""
from __future__ import annotations

from . import PRESET_NAMES, add_runs_dir


def add_arguments(rp) -> None:
    rp.add_argument("--preset", default="quick", choices=PRESET_NAMES, help="recipe of the runs shown")
    rp.add_argument("--reports", default="reports", metavar="DIR",
                    help="output folder, created if missing, its parent must exist (default: reports)")
    rp.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    rp.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel")
    add_runs_dir(rp, writes=True)


def run(args) -> int:
    from ..paths import check_output_dir, default_runs_dir
    # the doors first: a runs or reports folder that cannot be written fails before any training or rendering
    check_output_dir(args.out if args.out is not None else default_runs_dir(), flag="--out")
    check_output_dir(args.reports, flag="--reports")
    if args.jobs < 1:
        from ..cli import CliError
        raise CliError(f"--jobs must be at least 1, got {args.jobs}")
    from ..report import render_all
    return render_all(out_dir=args.reports, preset=args.preset, runs_dir=args.out,
                      show_code=args.show_code, jobs=args.jobs)
