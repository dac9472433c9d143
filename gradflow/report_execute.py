"""Render one notebook: papermill execution in its own kernel, nbconvert export to one framed HTML
page, and what the render reports back (``ReportResult``). ``gradflow.report`` runs these for the
whole set, in parallel worker processes; a notebook that fails still gets a page."""
from __future__ import annotations

import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .report_export import KERNEL_NAME, html_exporter
from .report_pages import error_page, frame_cell, insert_frame_cell

REPO_ROOT = Path(__file__).resolve().parents[1]
VALIDATE_TAG = "validate-parameters"  # the first cell after `parameters`; its errors mean "bad parameters"


@dataclass
class ReportResult:
    name: str
    title: str
    status: str  # "ok", "failed", "bad parameters", "missing runs"
    seconds: float
    parameters: dict = field(default_factory=dict)
    error: str = ""  # one line, empty when ok
    html: str = ""  # file name relative to the output directory


def write_atomic(path: Path, text: str) -> None:
    """Write a page through the project's one atomic writer, so a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)


# --------------------------------------------------------------------------- one notebook


def _failing_cell(nb) -> tuple[str, bool]:
    """The error line of the first cell with an error output, and whether it is the validation cell."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tags = cell.get("metadata", {}).get("tags", [])
                return f"{out.get('ename')}: {out.get('evalue')}", VALIDATE_TAG in tags
    return "", False


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class PageContext:
    """What every page of one render shares: the reading order, the preset, how paths are shown."""
    specs: tuple  # the NotebookSpecs in reading order (the navigation's previous/next)
    preset: str
    named_paths: tuple = ()  # (absolute folder, public name) pairs for report_pages.public_paths
    show_code: bool = False

    def frame(self, name: str, page: str) -> str:
        from .report_index import SET_TITLE
        from .report_pages import add_frame, public_paths

        index = next(i for i, s in enumerate(self.specs) if s.name == name)
        return public_paths(add_frame(page, self.specs, index, SET_TITLE), dict(self.named_paths))


def render_one(spec, source: str, out_dir: str, parameters: dict, ctx: PageContext, kernel_root: str,
               env: dict) -> ReportResult:
    """Execute one notebook with papermill and export it to ``out_dir/<name>.html``. Never raises."""
    # The kernel inherits this process's environment (runs dir, thread counts, our kernelspec);
    # restored afterwards because with jobs=1 this is the caller's own process.
    saved = dict(os.environ)
    os.environ.update(env)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [kernel_root, os.environ.get("JUPYTER_PATH")]))
    try:
        return _render_one(spec, source, Path(out_dir), parameters, ctx)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# Lines the kernel machinery writes on every clean shutdown: kept, they read like a failure.
_BENIGN_KERNEL_LINES = ("KeyboardInterrupt caught in kernel", "To connect another client to this kernel",
                        "--existing", "WARNING | debugpy_stream undefined")


def _keep_kernel_log(log: Path, ok: bool) -> bool:
    """Remove the kernel's log when it holds nothing worth reading; True when it stays."""
    if not log.is_file():
        return False
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines or ok and all(any(b in ln for b in _BENIGN_KERNEL_LINES) for ln in lines):
        log.unlink()
        return False
    return True


def _render_one(spec, source: str, out: Path, parameters: dict, ctx: PageContext) -> ReportResult:
    import nbformat
    import papermill as pm
    from traitlets.config import Config

    executed = out / "notebooks" / f"{spec.name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)  # never convert a previous render's notebook by mistake
    kernel_log = executed.with_suffix(".kernel.log")
    kernel_log.unlink(missing_ok=True)
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
        result.error = one_line(f"{type(exc).__name__}: {exc}")
        detail = traceback.format_exc()
    result.seconds = round(time.perf_counter() - start, 2)
    if _keep_kernel_log(kernel_log, ok=not detail) and detail:
        detail += f"\nThe kernel's own log: notebooks/{kernel_log.name}\n"

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 -- a missing or corrupt output is handled below
        nb = None
    if nb is not None and result.status != "ok":
        line, bad_params = _failing_cell(nb)
        if line:
            result.error = one_line(line)
        if bad_params:
            result.status = "bad parameters"
    try:
        if nb is None:
            raise FileNotFoundError(f"no executed notebook at notebooks/{executed.name}")
        insert_frame_cell(nb, frame_cell(result, ctx.preset))
        number = 1 + [s.name for s in ctx.specs].index(spec.name)
        nb.metadata["title"] = f"{number}. {spec.title} — gradflow reports"
        body, _ = html_exporter(ctx.show_code).from_notebook_node(nb, resources={"metadata": {"name": spec.name}})
    except Exception as exc:  # noqa: BLE001 -- a broken export still gets an error page
        if result.status == "ok":
            result.status, result.error = "failed", one_line(f"HTML export: {type(exc).__name__}: {exc}")
        body = error_page(result, detail or traceback.format_exc())
    write_atomic(out / result.html, ctx.frame(spec.name, body))
    return result
