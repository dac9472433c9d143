"""``gradflow report``: render the notebooks to HTML (owner: the report pipeline; moved here from cli.py)."""
from __future__ import annotations

from . import PRESET_NAMES, add_runs_dir


def add_arguments(rp) -> None:
    rp.add_argument("--preset", default="quick", choices=PRESET_NAMES, help="recipe of the runs shown")
    rp.add_argument("--reports", default="reports", metavar="DIR",
                    help="output folder, created if missing, its parent must exist (default: reports)")
    rp.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    rp.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel")
    rp.add_argument("--page", action="append", default=None, metavar="PAGE",
                    help="render only this page (repeatable): its number (5) or name (05_two_runs, two_runs); "
                         "the index keeps the pages rendered before (default: every page)")
    rp.add_argument("-p", "--parameter", action="append", nargs=2, default=None, metavar=("NAME", "VALUE"),
                    help="a notebook parameter, as papermill takes it (repeatable): -p run_a NAME -p run_b NAME; "
                         "passed to every rendered page that has it (default: each page's own defaults)")
    add_runs_dir(rp, writes=True)


def page_names(pages: list[str], notebooks) -> list[str]:
    """The notebook names ``--page`` values stand for: "5", "05", "05_two_runs" or "two_runs"."""
    from ..cli import CliError
    names = []
    for page in pages:
        text = page.strip().removesuffix(".py").removesuffix(".html")
        match = [s.name for s in notebooks if text in (s.name, s.name.split("_", 1)[1])
                 or (text.isdigit() and int(s.name.split("_", 1)[0]) == int(text))]
        if not match:
            accepted = ", ".join(f"{int(s.name[:2])} ({s.name})" for s in notebooks)
            raise CliError(f"--page {page!r}: no such page; accepted: {accepted}")
        names += [m for m in match if m not in names]
    return names


def page_parameters(pairs: list[list[str]], names: list[str]) -> dict:
    """``-p NAME VALUE`` pairs as {name: value}, refused when no page rendered has that parameter."""
    if not pairs:
        return {}
    from ..cli import CliError
    from ..report import declared_parameters
    declared = {name: declared_parameters(name) for name in names}
    out = {}
    for key, value in pairs:
        if not any(key in params for params in declared.values()):
            accepted = "; ".join(f"{n}: {', '.join(sorted(p))}" for n, p in declared.items())
            raise CliError(f"-p {key}: no page rendered has a parameter {key!r}; accepted: {accepted}")
        out[key] = value  # the page's own first cell checks the value, in one line
    return out


def run(args) -> int:
    from ..paths import check_output_dir, default_runs_dir
    from ..report import NOTEBOOKS, render_all
    # the doors first: a runs or reports folder that cannot be written fails before any training or rendering
    check_output_dir(args.out if args.out is not None else default_runs_dir(), flag="--out")
    check_output_dir(args.reports, flag="--reports")
    if args.jobs < 1:
        from ..cli import CliError
        raise CliError(f"--jobs must be at least 1, got {args.jobs}")
    names = page_names(args.page, NOTEBOOKS) if args.page else [s.name for s in NOTEBOOKS]
    parameters = page_parameters(args.parameter or [], names)
    try:
        return render_all(out_dir=args.reports, preset=args.preset, runs_dir=args.out, show_code=args.show_code,
                          jobs=args.jobs, notebooks=names if args.page else None, parameters=parameters)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (render_all turns it into one)
        import sys

        from ..report import ReportInterrupted
        left = getattr(exc, "not_rendered", None) if isinstance(exc, ReportInterrupted) else None
        what = (f"the pages rendered before it are kept whole and {args.reports}/index.html lists them"
                if left is not None else "the pages rendered before it are kept whole")
        rest = f"; not rendered: {', '.join(left)} (run the command again to render them)" if left else ""
        print(f"gradflow report: interrupted; {what}{rest}", file=sys.stderr)
        return 130
