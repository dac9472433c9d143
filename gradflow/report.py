"""Render the notebooks to self-contained HTML: papermill execution, nbconvert export, an index page
(one notebook's execution and export: report_execute.py).

``render_all`` runs every notebook of ``notebooks/`` with named parameters, in parallel worker
processes, converts each executed notebook to one HTML file with the images embedded and no
script loaded from the network, frames each page with navigation (report_pages.py) and writes
``index.html`` (report_index.py). Rendering reads the run store and trains nothing: a notebook whose
runs are missing is not executed; its page and the index name the runs and the command that trains
them. A notebook that fails still gets a page (papermill keeps the traceback in the executed
notebook); the index marks it and the exit code is non-zero.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .report_execute import REPO_ROOT, PageContext, ReportResult, one_line, render_one, write_atomic
from .report_export import write_kernelspec
from .report_pages import error_page, missing_page
from .report_runs import ALL_SIX, case_study_runs, missing_runs, needed_runs

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class NotebookSpec:
    name: str  # file stem in notebooks/ and the HTML page's stem
    title: str
    teaches: str  # one or two sentences for the index: what a reader learns here
    cost: int = 1  # relative render time, to start the long ones first
    needs: tuple = ()  # activations whose runs of the preset's comparison the notebook reads by default
    run_params: tuple = ()  # parameters naming a run instead of needs[i] (the notebook checks those itself)
    case_studies: bool = False  # reads the case-study runs (gradflow train --case-studies)
    core: bool = True  # on a class's core path; the others go further (the index says which)
    skippable: str = ""  # parts of a core page a short class may leave out, and why


# In reading order; every one is independent of the others once the runs exist.
NOTEBOOKS = (
    NotebookSpec("01_activation_functions", "Activation functions",
                 "The six activations and their derivatives, side by side: where each one saturates, "
                 "which are zero-centred, and where a unit can die."),
    NotebookSpec("02_gradients_at_init", "Gradients at initialisation",
                 "Before any training: how large each layer's gradients are in a fresh network, and why "
                 "sigmoid's first layers receive almost none.", cost=2),
    NotebookSpec("03_compare_activations", "Comparing activations",
                 "Six activations trained on FashionMNIST with several seeds: learning curves, accuracy with "
                 "confidence intervals, gradient flow during training, update:data ratios and dead units.",
                 cost=3, needs=ALL_SIX),
    NotebookSpec("04_one_run", "One run in depth",
                 "Reading one run's recording like a practitioner: curves, gradient flow over training, "
                 "dead units before and after, and what the diagnosis says.", needs=("relu",), run_params=("run",),
                 core=False),
    NotebookSpec("05_two_runs", "Two runs side by side",
                 "Where a network that learns fast and one that stalls differ, layer by layer, and which "
                 "findings tell them apart.", needs=("sigmoid", "relu"), run_params=("run_a", "run_b"),
                 core=False),
    NotebookSpec("06_case_studies", "Case studies",
                 "Real bugs from forum questions, each as symptom, evidence, finding and fix, with the broken "
                 "run drawn beside the fixed one.", cost=4, case_studies=True,
                 skippable="its cases 001 and 004 are about a framework's parameter and a metric rather than gradient "
                           "flow"),
    NotebookSpec("07_sweep", "A sweep",
                 "Settings crossed with seeds: accuracy with 95 % intervals per cell, which differences the "
                 "seeds can and cannot tell apart, and the findings per cell.", core=False),
)


# --------------------------------------------------------------------------- runs the reports read


def _missing_result(spec: NotebookSpec, params: dict, missing: dict[str, str], runs_shown: str) -> ReportResult:
    commands = list(dict.fromkeys(missing.values()))
    error = (f"needs {len(missing)} run(s) that {runs_shown}/ does not hold ({', '.join(missing)}); "
             f"train them with: {' && '.join(commands)}")
    return ReportResult(spec.name, spec.title, "missing runs", 0.0, dict(params), error, f"{spec.name}.html")


# --------------------------------------------------------------------------- all notebooks


def notebook_source(name: str) -> Path:
    """The notebook's source: its Jupytext percent-format ``.py`` (an ``.ipynb`` is accepted too)."""
    py = NOTEBOOK_DIR / f"{name}.py"
    return py if py.is_file() else NOTEBOOK_DIR / f"{name}.ipynb"


def as_ipynb(name: str, folder: Path) -> Path:
    """Write the notebook ``name`` as an output-free ``.ipynb`` in ``folder`` (papermill reads .ipynb only)."""
    import jupytext
    import nbformat

    nb = jupytext.read(notebook_source(name))
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def declared_parameters(name: str) -> set:
    """The parameter names notebook ``name`` declares in its ``parameters`` cell."""
    import papermill as pm

    with tempfile.TemporaryDirectory(prefix="gradflow-params-") as folder:
        return set(pm.inspect_notebook(str(as_ipynb(name, Path(folder)))))


def notebook_parameters(spec: NotebookSpec, preset: str, overrides: dict, path: Path | None = None) -> dict:
    """The parameters passed to one notebook: the preset, then the caller's overrides.

    ``overrides`` maps a notebook name to its own dict, or a parameter name to a value for every
    notebook that declares that parameter. The run store reaches the kernels as $GRADFLOW_RUNS,
    not as a parameter, so no folder of this machine is printed on the pages.
    """
    import papermill as pm

    declared = pm.inspect_notebook(str(path or notebook_source(spec.name)))
    params = {"preset": preset} if "preset" in declared else {}
    names = {s.name for s in NOTEBOOKS}
    params.update({k: v for k, v in overrides.items() if k not in names and k in declared})
    params.update(overrides.get(spec.name, {}))
    return params


def _selected(notebooks: list[str] | None) -> list[NotebookSpec]:
    if not notebooks:
        return list(NOTEBOOKS)
    known = {s.name: s for s in NOTEBOOKS}
    unknown = [n for n in notebooks if n not in known]
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; available: {', '.join(known)}")
    return [known[n] for n in notebooks]


def _kernel_env(runs: Path, jobs: int) -> dict:
    # Kernels in parallel on a small CPU: split the cores instead of letting each take them all.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    data = Path(os.environ.get("GRADFLOW_DATA") or REPO_ROOT / "data").resolve()
    return {"GRADFLOW_RUNS": str(runs), "GRADFLOW_DATA": str(data), "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def render_all(out_dir: str | os.PathLike = "reports", preset: str = "quick", runs_dir: str | None = None,
               show_code: bool = False, jobs: int = 2, notebooks: list[str] | None = None,
               parameters: dict | None = None) -> int:
    """Render the notebooks to ``out_dir`` from the stored runs; 0 when every one worked, 1 otherwise.

    notebooks  -- names (stems) to render, default all of them
    parameters -- {notebook name: {param: value}} and/or {param: value} for every notebook declaring it
    Nothing is trained: a notebook whose runs are missing gets a page naming them and the command
    that trains them, and the others render as usual.
    """
    from .report_index import earlier_results, render_index, run_facts
    from .report_pages import display_path

    start = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs_dir or os.environ.get("GRADFLOW_RUNS", "checkpoints"))
    runs = (runs if runs.is_absolute() else Path.cwd() / runs).resolve()
    runs_shown = display_path(runs)
    specs = _selected(notebooks)
    jobs = max(1, min(int(jobs), len(specs)))
    env = _kernel_env(runs, jobs)
    # the navigation walks the pages rendered now and those an earlier render left here (--page 5 redoes
    # one page of a set), never a page that does not exist
    chosen = {s.name for s in specs}
    in_nav = tuple(s for s in NOTEBOOKS if s.name in chosen or (out / f"{s.name}.html").is_file())
    ctx = PageContext(in_nav, preset, ((str(runs), runs_shown), (str(out), display_path(out)),
                                       (env["GRADFLOW_DATA"], "data")), show_code)

    results: list[ReportResult] = []
    with tempfile.TemporaryDirectory(prefix="gradflow-kernel-") as kernel_root:
        write_kernelspec(Path(kernel_root))
        sources = Path(kernel_root) / "sources"
        sources.mkdir()
        todo = []
        for spec in specs:
            try:
                path = as_ipynb(spec.name, sources)
                params = notebook_parameters(spec, preset, parameters or {}, path)
            except Exception as exc:  # noqa: BLE001 -- unreadable notebook: report it, render the rest
                res = ReportResult(spec.name, spec.title, "failed", 0.0, {}, one_line(f"{type(exc).__name__}: {exc}"),
                                   f"{spec.name}.html")
                write_atomic(out / res.html, ctx.frame(spec.name, error_page(res, traceback.format_exc())))
                results.append(res)
                continue
            missing = missing_runs(spec, preset, params, runs, runs_shown)
            if missing:  # reports read runs, never train them
                res = _missing_result(spec, params, missing, runs_shown)
                write_atomic(out / res.html, ctx.frame(spec.name, missing_page(res, missing, runs_shown, preset)))
                results.append(res)
            else:
                todo.append((spec, params))
        todo.sort(key=lambda item: -item[0].cost)  # longest first: the pool's last job is then a short one
        try:
            with _terminate_as_interrupt():
                _render_todo(todo, results, jobs, sources, out, ctx, kernel_root, env)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the pages written so far stay, the index lists them
            interrupted = True
        else:
            interrupted = False
    rendered_now = list(results)
    results += earlier_results(out, preset, {r.name for r in results}, ReportResult)  # the pages not redone
    order = {s.name: i for i, s in enumerate(NOTEBOOKS)}
    results.sort(key=lambda r: order.get(r.name, 99))
    total = time.perf_counter() - start
    comparison = [runs / n for n in needed_runs(next((s for s in NOTEBOOKS if s.needs == ALL_SIX), specs[0]),
                                                preset, {}, runs_shown)]
    facts = run_facts(comparison)  # epochs and seeds of the comparison; the case studies have their own recipes
    facts["case_studies"] = run_facts([runs / c.run_name() for c in case_study_runs(preset)])
    page = render_index(results, NOTEBOOKS, preset, total, facts, runs_shown, out)
    write_atomic(out / "index.html", _public(page, ctx))
    write_atomic(out / "index.json", json.dumps({"preset": preset, "runs_dir": runs_shown, "seconds": round(total, 2),
                                                 "reports": [asdict(r) for r in results]}, indent=1, default=str))
    not_rendered = [s.name for s in NOTEBOOKS if s.name in {t.name for t, _ in todo} - {r.name for r in rendered_now}]
    _summarise(rendered_now, preset, runs_shown, total, out, not_rendered)
    if interrupted:
        raise ReportInterrupted(not_rendered)  # the command says what was kept and exits 130
    return 1 if any(r.status != "ok" for r in rendered_now) else 0


# --------------------------------------------------------------------------- workers and interruptions


class ReportInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a render, raised after the index was written for the pages that were."""

    def __init__(self, not_rendered: list[str]):
        super().__init__(not_rendered)
        self.not_rendered = list(not_rendered)


def _render_todo(todo, results: list, jobs: int, sources: Path, out: Path, ctx, kernel_root: str, env: dict) -> None:
    """Render ``todo`` into ``results`` (appended as each finishes, so an interruption keeps those done)."""
    if jobs == 1:
        for s, p in todo:
            results.append(render_one(s, str(sources / f"{s.name}.ipynb"), str(out), p, ctx, kernel_root, env))
        return
    if not todo:
        return
    # spawn, not fork: a fork of a process holding torch's thread pools can hang.
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(),))
    try:
        futures = [(s, p, pool.submit(render_one, s, str(sources / f"{s.name}.ipynb"), str(out), p,
                                      ctx, kernel_root, env)) for s, p in todo]
        for s, p, f in futures:
            try:
                results.append(f.result())
            except Exception as exc:  # noqa: BLE001 -- the worker itself died: still one row, one page
                res = ReportResult(s.name, s.title, "failed", 0.0, p, one_line(f"worker crashed: {exc!r}"),
                                   f"{s.name}.html")
                write_atomic(out / res.html, ctx.frame(s.name, error_page(res, traceback.format_exc())))
                results.append(res)
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, mid-render: shutdown() alone waits for their notebooks to finish. Their
    kernels follow (ipykernel exits when its parent process is gone)."""
    workers = list((pool._processes or {}).values())  # no public way to stop a busy worker before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for w in workers:
        w.terminate()
    for w in workers:
        w.join(10)
        if w.is_alive():
            w.kill()
            w.join(5)


def _watch_parent(parent_pid: int) -> None:
    """Run in each worker: end it when the render that started it is gone (killed, even by SIGKILL, so
    it could not stop its workers), instead of rendering on for no one, re-parented to PID 1."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="gradflow-watch-parent", daemon=True).start()


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM and SIGHUP raise KeyboardInterrupt while the pages render, so a `kill` (or a closed terminal)
    takes the Ctrl-C path: workers stopped, pages written so far kept, the index written for them."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _public(page: str, ctx: PageContext) -> str:
    from .report_pages import public_paths

    return public_paths(page, dict(ctx.named_paths))


def _summarise(results: list[ReportResult], preset: str, runs_shown: str, total: float, out: Path,
               not_rendered: list[str] = ()) -> None:
    """One line per report that did not render, the training command when runs are missing, the total."""
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"gradflow report: {r.status.upper()} {r.name}: {r.error}", file=sys.stderr)
    # `make train` trains the set's own runs; a page given other runs (-p seeds ...) named its command above
    if any(r.status == "missing runs" and not set(r.parameters) - {"preset"} for r in failed):
        where = "" if runs_shown == "checkpoints" else f" (run store: {runs_shown})"
        print(f"gradflow report: reports read stored runs and train nothing; `make train PRESET={preset}` "
              f"trains every run the set reads{where}", file=sys.stderr)
    page = out / "index.html"
    shown = page.relative_to(Path.cwd().resolve()) if page.is_relative_to(Path.cwd().resolve()) else page
    left = f" ({len(not_rendered)} not rendered: interrupted)" if not_rendered else ""
    print(f"gradflow report: {len(results) - len(failed)}/{len(results) + len(not_rendered)} ok{left} in "
          f"{total:.1f} s -> {shown}", file=sys.stderr)
