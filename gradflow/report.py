"""Render the notebooks to self-contained HTML: papermill execution, nbconvert export, an index page.

``render_all`` runs every notebook of ``notebooks/`` with named parameters, in parallel worker
processes, converts each executed notebook to one HTML file with the images embedded and no
script loaded from the network, and writes ``index.html`` listing every report with its
parameters, duration and status. A notebook that fails still gets a page (papermill keeps the
traceback in the executed notebook); the index marks it and the exit code is non-zero.
"""
from __future__ import annotations

import html
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "gradflow-venv"
VALIDATE_TAG = "validate-parameters"  # the first cell after `parameters`; its errors mean "bad parameters"


@dataclass(frozen=True)
class NotebookSpec:
    name: str  # file stem in notebooks/ and the HTML page's stem
    title: str
    summary: str
    cost: int = 1  # relative render time, to start the long ones first


# In reading order; every one is independent of the others once the comparison runs exist.
NOTEBOOKS = (
    NotebookSpec("01_activation_functions", "Activation functions",
                 "Each registered activation and its derivative: saturation, zero-centring, dead regions."),
    NotebookSpec("02_gradients_at_init", "Gradients at initialisation",
                 "Per-layer gradient and activation histograms of fresh networks, dead and saturated units.", cost=2),
    NotebookSpec("03_compare_activations", "Comparing activations",
                 "Several seeds per activation: learning curves, accuracy with confidence intervals, "
                 "gradient flow over training, update:data ratios, findings.", cost=3),
    NotebookSpec("04_one_run", "One run", "A deep dive into a single stored run."),
    NotebookSpec("05_two_runs", "Two runs side by side",
                 "Where two runs' gradient flow differs, layer by layer, and which findings differ."),
    NotebookSpec("06_case_studies", "Case studies",
                 "The seed stories reproduced and diagnosed, each broken run beside its fix.", cost=4),
    NotebookSpec("07_sweep", "A sweep", "Settings x seeds: accuracy with 95 % CIs, what seeds tell apart, findings."),
)


@dataclass
class ReportResult:
    name: str
    title: str
    status: str  # "ok", "failed", "bad parameters"
    seconds: float
    parameters: dict = field(default_factory=dict)
    error: str = ""  # one line, empty when ok
    html: str = ""  # file name relative to the output directory


# --------------------------------------------------------------------------- kernel


def write_kernelspec(root: Path) -> Path:
    """A kernelspec that runs *this* interpreter, under ``root/kernels/``; put ``root`` on JUPYTER_PATH.

    The stock ``python3`` spec can be shadowed by one in ~/.local/share/jupyter pointing at another
    Python, so the reports would silently run without gradflow's environment.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "gradflow.kernel_launcher", "-f", "{connection_file}"],
            "display_name": f"gradflow ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


# --------------------------------------------------------------------------- HTML


# nbconvert's lab template loads require.js, MathJax, mermaid and widget scripts from CDNs;
# the reports must open offline, so those blocks are emptied. CSS stays inline.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style>main { max-width: 1100px; margin: 0 auto; }
.gradflow-banner { padding: .6em 1em; border-radius: 4px; margin: 1em 0; font-family: sans-serif; }
.gradflow-ok { background: #e8f5e9; } .gradflow-failed { background: #ffebee; }</style>{%- endblock extra_css -%}
"""


def html_exporter(show_code: bool = False):
    import jinja2
    from nbconvert import HTMLExporter

    loader = jinja2.DictLoader({"gradflow.html.j2": _OFFLINE_TEMPLATE})
    exporter = HTMLExporter(template_name="lab", extra_loaders=[loader], template_file="gradflow.html.j2",
                            embed_images=True)
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = not show_code
    exporter.exclude_output_prompt = True
    return exporter


def _banner_cell(result: ReportResult):
    """A markdown cell on top of the page: what was run, how long it took, whether it worked."""
    import nbformat

    params = ", ".join(f"`{k}={v!r}`" for k, v in result.parameters.items()) or "defaults"
    state = "ok" if result.status == "ok" else "failed"
    text = (f'<div class="gradflow-banner gradflow-{state}"><b>{html.escape(result.title)}</b> — '
            f"status: <b>{html.escape(result.status.upper())}</b>, {result.seconds:.1f} s"
            + (f"<br>error: <code>{html.escape(result.error)}</code>" if result.error else "")
            + "</div>\n\nParameters: " + params)
    return nbformat.v4.new_markdown_cell(text)


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; reports are meant to be read and served
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _error_page(result: ReportResult, detail: str) -> str:
    """For failures that left no executed notebook to convert (missing file, kernel died at start)."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(result.title)}"
            f" (failed)</title></head><body style='font-family:sans-serif;max-width:1100px;margin:auto'>"
            f"<h1>{html.escape(result.title)}: FAILED</h1><p><code>{html.escape(result.error)}</code></p>"
            f"<pre>{html.escape(detail)}</pre><p><a href='index.html'>back to the index</a></p></body></html>")


# --------------------------------------------------------------------------- one notebook


def _failing_cell(nb) -> tuple[str, bool]:
    """The error line of the first cell with an error output, and whether it is the validation cell."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tags = cell.get("metadata", {}).get("tags", [])
                return f"{out.get('ename')}: {out.get('evalue')}", VALIDATE_TAG in tags
    return "", False


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_one(spec: NotebookSpec, source: str, out_dir: str, parameters: dict, show_code: bool, kernel_root: str,
               env: dict) -> ReportResult:
    """Execute one notebook with papermill and export it to ``out_dir/<name>.html``. Never raises."""
    # The kernel inherits this process's environment (runs dir, thread counts, our kernelspec);
    # restored afterwards because with jobs=1 this is the caller's own process.
    saved = dict(os.environ)
    os.environ.update(env)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [kernel_root, os.environ.get("JUPYTER_PATH")]))
    try:
        return _render_one(spec, source, Path(out_dir), parameters, show_code)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _render_one(spec: NotebookSpec, source: str, out: Path, parameters: dict, show_code: bool) -> ReportResult:
    import nbformat
    import papermill as pm
    from traitlets.config import Config

    executed = out / "notebooks" / f"{spec.name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)  # never convert a previous render's notebook by mistake
    kernel_log = executed.with_suffix(".kernel.log")
    os.environ["GRADFLOW_KERNEL_LOG"] = str(kernel_log)  # read by gradflow.kernel_launcher
    result = ReportResult(spec.name, spec.title, "ok", 0.0, dict(parameters), html=f"{spec.name}.html")
    start = time.perf_counter()
    detail = ""
    try:
        # IPC sockets, not TCP ports: nothing listens on the network. Each render its own socket
        # directory: kernels of parallel renders would otherwise pick the same socket names.
        with tempfile.TemporaryDirectory(prefix="gradflow-ipc-") as sockets:
            pm.execute_notebook(str(source), str(executed), parameters=parameters, kernel_name=KERNEL_NAME,
                                cwd=str(REPO_ROOT), progress_bar=False, log_output=False,
                                request_save_on_cell_execute=False,
                                config=Config({"KernelManager": {"transport": "ipc",
                                                                 "ip": os.path.join(sockets, "kernel")}}))
    except Exception as exc:  # noqa: BLE001 -- PapermillExecutionError, missing notebook, dead kernel, ...
        result.status = "failed"
        result.error = _one_line(f"{type(exc).__name__}: {exc}")
        detail = traceback.format_exc()
    result.seconds = round(time.perf_counter() - start, 2)
    if kernel_log.is_file() and kernel_log.stat().st_size == 0:
        kernel_log.unlink()
    elif detail and kernel_log.is_file():
        detail += f"\nThe kernel's own log: {kernel_log}\n"

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 -- a missing or corrupt output is handled below
        nb = None
    if nb is not None and result.status != "ok":
        line, bad_params = _failing_cell(nb)
        if line:
            result.error = _one_line(line)
        if bad_params:
            result.status = "bad parameters"
    try:
        if nb is None:
            raise FileNotFoundError(f"no executed notebook at {executed}")
        nb.cells.insert(0, _banner_cell(result))
        nb.metadata["title"] = f"{spec.title} — gradflow"
        body, _ = html_exporter(show_code).from_notebook_node(nb, resources={"metadata": {"name": spec.name}})
    except Exception as exc:  # noqa: BLE001 -- a broken export still gets an error page
        if result.status == "ok":
            result.status, result.error = "failed", _one_line(f"HTML export: {type(exc).__name__}: {exc}")
        body = _error_page(result, detail or traceback.format_exc())
    write_atomic(out / result.html, body)
    return result


# --------------------------------------------------------------------------- index


def render_index(results: list[ReportResult], preset: str, total_seconds: float) -> str:
    rows = []
    for r in results:
        params = "<br>".join(f"<code>{html.escape(k)}={html.escape(repr(v))}</code>" for k, v in r.parameters.items())
        ok = r.status == "ok"
        status = html.escape(r.status.upper()) + ("" if ok else f"<br><small>{html.escape(r.error)}</small>")
        spec = next((s for s in NOTEBOOKS if s.name == r.name), None)
        summary = html.escape(spec.summary) if spec else ""
        rows.append(f"<tr class='{'ok' if ok else 'failed'}'><td><a href='{html.escape(r.html)}'>"
                    f"{html.escape(r.title)}</a><br><small>{summary}</small></td><td>{params or 'defaults'}</td>"
                    f"<td>{r.seconds:.1f} s</td><td class='status'>{status}</td></tr>")
    n_bad = sum(r.status != "ok" for r in results)
    verdict = "all reports rendered" if not n_bad else f"{n_bad} of {len(results)} reports FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gradflow reports</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .5em; vertical-align: top; text-align: left; }}
tr.failed td.status {{ color: #b71c1c; font-weight: bold; }} tr.ok td.status {{ color: #1b5e20; }}
code {{ font-size: 90%; }}
</style></head><body>
<h1>gradflow reports</h1>
<p>Preset <code>{html.escape(preset)}</code>; {verdict}; {total_seconds:.0f} s in all
(rendered {time.strftime('%Y-%m-%d %H:%M')}). Each report is one self-contained HTML file.</p>
<table><thead><tr><th>report</th><th>parameters</th><th>duration</th><th>status</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


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


def notebook_parameters(spec: NotebookSpec, preset: str, runs_dir: str, overrides: dict,
                        path: Path | None = None) -> dict:
    """The parameters passed to one notebook: the preset and runs dir, then the caller's overrides.

    ``overrides`` maps a notebook name to its own dict, or a parameter name to a value for every
    notebook that declares that parameter.
    """
    import papermill as pm

    declared = pm.inspect_notebook(str(path or notebook_source(spec.name)))
    params = {k: v for k, v in (("preset", preset), ("runs_dir", runs_dir)) if k in declared}
    names = {s.name for s in NOTEBOOKS}
    params.update({k: v for k, v in overrides.items() if k not in names and k in declared})
    params.update(overrides.get(spec.name, {}))
    return params


def prepare_runs(preset: str, runs_dir: Path, data_root: str) -> str:
    """Train the preset's comparison if the store lacks it, before notebooks read it in parallel.

    Several notebooks read the same runs; training them here once keeps two workers from training
    the same missing run at the same time. Returns an error line ('' when fine): a failure here is
    reported by the notebooks themselves, so rendering goes on.
    """
    try:
        from .config import TUTORIAL_ACTIVATIONS
        from .train import compare

        compare(TUTORIAL_ACTIVATIONS, preset=preset, runs_dir=str(runs_dir), progress=False, data_root=data_root)
        return ""
    except Exception as exc:  # noqa: BLE001 -- the notebooks report a training failure themselves
        return _one_line(f"{type(exc).__name__}: {exc}")


def render_all(out_dir: str | os.PathLike = "reports", preset: str = "quick", runs_dir: str | None = None,
               show_code: bool = False, jobs: int = 2, notebooks: list[str] | None = None,
               parameters: dict | None = None, train: bool = True) -> int:
    """Render the notebooks to ``out_dir``; returns 0 when every one worked, 1 otherwise.

    notebooks  -- names (stems) to render, default all of them
    parameters -- {notebook name: {param: value}} and/or {param: value} for every notebook declaring it
    train      -- first train the preset's comparison where the run store lacks it (cached runs are reused)
    """
    start = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs_dir or os.environ.get("GRADFLOW_RUNS", "checkpoints"))
    runs = (runs if runs.is_absolute() else Path.cwd() / runs).resolve()
    specs = list(NOTEBOOKS)
    if notebooks:
        known = {s.name: s for s in NOTEBOOKS}
        unknown = [n for n in notebooks if n not in known]
        if unknown:
            raise ValueError(f"unknown notebooks {unknown}; available: {', '.join(known)}")
        specs = [known[n] for n in notebooks]
    jobs = max(1, min(int(jobs), len(specs)))
    # Kernels in parallel on a small CPU: split the cores instead of letting each take them all.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {"GRADFLOW_RUNS": str(runs), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    if "GRADFLOW_DATA" in os.environ:
        env["GRADFLOW_DATA"] = str(Path(os.environ["GRADFLOW_DATA"]).resolve())
    else:
        env["GRADFLOW_DATA"] = str((REPO_ROOT / "data").resolve())

    if train:
        problem = prepare_runs(preset, runs, env["GRADFLOW_DATA"])
        if problem:
            print(f"gradflow report: could not prepare the {preset!r} runs: {problem}", file=sys.stderr)

    results: list[ReportResult] = []
    with tempfile.TemporaryDirectory(prefix="gradflow-kernel-") as kernel_root:
        write_kernelspec(Path(kernel_root))
        sources = Path(kernel_root) / "sources"
        sources.mkdir()
        todo = []
        for spec in specs:
            try:
                path = as_ipynb(spec.name, sources)
                todo.append((spec, notebook_parameters(spec, preset, str(runs), parameters or {}, path)))
            except Exception as exc:  # noqa: BLE001 -- unreadable notebook: report it, render the rest
                res = ReportResult(spec.name, spec.title, "failed", 0.0, {}, _one_line(f"{type(exc).__name__}: {exc}"),
                                   f"{spec.name}.html")
                write_atomic(out / res.html, _error_page(res, traceback.format_exc()))
                results.append(res)
        todo.sort(key=lambda item: -item[0].cost)  # longest first: the pool's last job is then a short one
        if jobs == 1:
            results += [render_one(s, str(sources / f"{s.name}.ipynb"), str(out), p, show_code, kernel_root, env)
                        for s, p in todo]
        else:
            # spawn, not fork: the parent may hold torch's thread pools from training above.
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [(s, p, pool.submit(render_one, s, str(sources / f"{s.name}.ipynb"), str(out), p,
                                                 show_code, kernel_root, env)) for s, p in todo]
                for s, p, f in futures:
                    try:
                        results.append(f.result())
                    except Exception as exc:  # noqa: BLE001 -- the worker itself died: still one row, one page
                        res = ReportResult(s.name, s.title, "failed", 0.0, p, _one_line(f"worker crashed: {exc!r}"),
                                           f"{s.name}.html")
                        write_atomic(out / res.html, _error_page(res, traceback.format_exc()))
                        results.append(res)
    order = {s.name: i for i, s in enumerate(NOTEBOOKS)}
    results.sort(key=lambda r: order.get(r.name, 99))
    total = time.perf_counter() - start
    write_atomic(out / "index.html", render_index(results, preset, total))
    write_atomic(out / "index.json", json.dumps({"preset": preset, "runs_dir": str(runs), "seconds": round(total, 2),
                                                 "reports": [asdict(r) for r in results]}, indent=1, default=str))
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"gradflow report: {r.status.upper()} {r.name}: {r.error}", file=sys.stderr)
    print(f"gradflow report: {len(results) - len(failed)}/{len(results)} ok in {total:.1f} s -> {out / 'index.html'}",
          file=sys.stderr)
    return 1 if failed else 0
