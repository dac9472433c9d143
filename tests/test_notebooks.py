"""Every notebook executes through papermill with tiny parameters (smoke preset, synthetic data).

The whole set renders once per test session (in parallel, through ``gradflow.report.render_all``);
test_browser.py opens the same pages in Chromium.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from gradflow import report, report_execute

# Tiny parameters: the smoke preset trains on the synthetic set in seconds; the rest shrinks loops.
TINY = {"01_activation_functions": {"points": 201},
        "02_gradients_at_init": {"dead_images": 500, "batch_size": 64}}
NAMES = [s.name for s in report.NOTEBOOKS]


def train_smoke_runs(runs: Path) -> None:
    """Every run the reports read, smoke preset, through the same commands as `make train`."""
    from gradflow.cli import main
    runs.parent.mkdir(parents=True, exist_ok=True)  # `train --out` refuses a folder whose parent is missing
    assert main(["train", "--act", "all", "--preset", "smoke", "--out", str(runs), "--no-progress"]) == 0
    assert main(["train", "--case-studies", "--preset", "smoke", "--out", str(runs), "--no-progress"]) == 0
    # page 07's sweep, as `make train` makes it but tiny: the page reads it, never trains it
    assert main(["sweep", "--act", "relu,tanh,sigmoid", "--init", "default,kaiming", "--lr", "0.05,0.2",
                 "--preset", "smoke", "--max-epochs", "2", "--train-subset", "512", "--out", str(runs),
                 "--sweeps-dir", str(runs.parent / "sweeps"), "--no-progress"]) == 0


def smoke_report_dir(tmp_path_factory) -> Path:
    """Render every notebook once per session (shared by the test modules through a file marker)."""
    root = tmp_path_factory.getbasetemp() / "smoke-report"
    marker = root / "exit-code"
    if not marker.exists():
        root.mkdir(parents=True, exist_ok=True)  # `gradflow train --out` wants an existing parent
        train_smoke_runs(root / "runs")  # rendering trains nothing: fill the store as `make train` does
        code = report.render_all(root / "html", preset="smoke", runs_dir=str(root / "runs"), jobs=2, parameters=TINY)
        marker.write_text(str(code))
    return root


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    root = smoke_report_dir(tmp_path_factory)
    index = json.loads((root / "html" / "index.json").read_text())
    return root, index, {r["name"]: r for r in index["reports"]}


def test_render_exits_zero_and_lists_every_notebook(smoke):
    root, index, by_name = smoke
    assert (root / "exit-code").read_text() == "0", [r["error"] for r in index["reports"] if r["error"]]
    assert sorted(by_name) == sorted(NAMES)
    assert (root / "html" / "index.html").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_tiny_parameters(smoke, name):
    root, _, by_name = smoke
    r = by_name[name]
    assert r["status"] == "ok", f"{name}: {r['error']}"
    assert r["parameters"].get("preset", "smoke") == "smoke" and r["parameters"]
    nb = nbformat.read(root / "html" / "notebooks" / f"{name}.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # papermill injected the named parameters after the parameters cell
    injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(injected) == 1
    html = (root / "html" / f"{name}.html").read_text()
    assert 'src="data:image/png;base64' in html  # every notebook draws at least one embedded figure


def test_kernel_is_this_environment(smoke):
    import torch

    import gradflow
    root, _, _ = smoke
    nb = nbformat.read(root / "html" / "notebooks" / "01_activation_functions.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"torch {torch.__version__}, gradflow {gradflow.__version__}" in text


def test_smoke_runs_are_synthetic_and_reused(smoke):
    root, _, _ = smoke
    from gradflow.store import list_runs
    runs = list_runs(root / "runs")
    assert len(runs) >= 6 and "error" not in runs  # the comparison and the case-study runs, none damaged
    for path in runs["path"]:
        config = json.loads((Path(path) / "config.json").read_text())
        # the case studies' bugs need real pixels: their smoke runs are small FashionMNIST subsets, named so
        assert config["data"]["name"] == ("FashionMNIST" if config["origin"].startswith("case study") else "synthetic")


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_fits_the_page_s_text_column(smoke, name):
    """A figure wider than the column is scaled down by the browser, and its 9 pt text with it."""
    import base64
    import struct

    from gradflow.style import OUTPUT_WIDTH_PX
    root, _, _ = smoke
    nb = nbformat.read(root / "html" / "notebooks" / f"{name}.ipynb", as_version=4)
    pngs = [base64.b64decode(o["data"]["image/png"]) for c in nb.cells for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
    widths = [struct.unpack(">I", png[16:20])[0] for png in pngs]  # the PNG header's width field
    assert widths and max(widths) <= OUTPUT_WIDTH_PX, widths


@pytest.mark.parametrize("name", NAMES)
def test_parameters_cell_is_typed_and_documented(name, tmp_path):
    path = report.as_ipynb(name, tmp_path)
    params = pm.inspect_notebook(str(path))
    assert params, f"{name} has no parameters cell"
    for p in params.values():
        assert p["inferred_type_name"] not in ("None", ""), f"{name}: {p['name']} has no type"
        assert p["help"], f"{name}: {p['name']} has no comment"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    # papermill skips (with a warning on every render) a line it cannot parse, e.g. one with a second "="
    assigned = [t.target.id for t in ast.parse(code[0].source).body if isinstance(t, ast.AnnAssign)]
    assert sorted(params) == sorted(assigned), f"{name}: papermill does not see {set(assigned) - set(params)}"
    assert report_execute.VALIDATE_TAG in code[1].metadata.get("tags", [])  # validation right after the defaults


@pytest.mark.parametrize("name", NAMES)
def test_notebook_source_is_a_jupytext_percent_script(name):
    source = report.notebook_source(name)
    assert source.suffix == ".py", f"{name}: the source of a notebook is notebooks/{name}.py"
    text = source.read_text(encoding="utf-8")
    assert "format_name: percent" in text and '# %% tags=["parameters"]' in text


# --------------------------------------------------------------------------- content: pages that teach

CONTENT_PAGES = [n for n in NAMES if n[:2] in ("01", "02", "03", "04", "05")]


def _page_text(root, name) -> str:
    """Everything a reader of the executed notebook sees: markdown cells and displayed outputs."""
    nb = nbformat.read(root / "html" / "notebooks" / f"{name}.ipynb", as_version=4)
    parts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    for c in nb.cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            parts.append(o.get("text", "") + data.get("text/markdown", "") + data.get("text/html", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", CONTENT_PAGES)
def test_every_page_says_what_it_shows_and_concludes(smoke, name):
    root, _, _ = smoke
    text = _page_text(root, name)
    assert re.search(r"What (this run shows|these runs show|this page shows)", text), name
    assert "## Conclusion" in text and "## Glossary" in text


@pytest.mark.parametrize("name", CONTENT_PAGES)
def test_nothing_raw_on_the_page(smoke, name):
    root, _, _ = smoke
    text = _page_text(root, name)
    for raw in ("layers.0", "layers.1", "step NaN", "&lt;model&gt;", "<model>", "describe()", "('", "dtype:"):
        assert raw not in text, f"{name} shows {raw!r}"
    html = (root / "html" / f"{name}.html").read_text()
    assert 'class="index_name' not in html and "<th class=\"blank" not in html  # no pandas index column


@pytest.mark.parametrize("name", ["03_compare_activations", "04_one_run", "05_two_runs"])
def test_preview_pages_carry_the_callout_and_never_rank(smoke, name):
    root, _, _ = smoke
    text = _page_text(root, name)
    assert "Preview: the “smoke” preset" in text and "not rank activations" in text
    assert "tutorial's published result, one seed" not in text  # no comparison with the tutorial's table
    assert not re.search(r"\b(sigmoid|tanh|relu|leakyrelu|elu|swish) &?g?t?;? ?> (sigmoid|tanh|relu|leakyrelu|elu|swish)\b",
                         text.replace("&gt;", ">"))


def test_compare_page_says_the_planted_numbers(smoke):
    """The smoke comparison's own numbers appear in the sentences (loss in nats, layer names)."""
    from gradflow import narrate
    from gradflow.store import list_runs, load_run
    root, _, _ = smoke
    runs = list_runs(root / "runs")
    comparison = runs[runs["origin"] == "comparison"]  # the sweep page's smoke sweep stores sigmoid runs too
    sig = load_run([p for p in comparison["path"] if Path(p).name.startswith("sigmoid-smoke")][0])
    final = narrate.final_epochs(sig.metrics.assign(activation="sigmoid"))["train_loss"].mean()
    text = _page_text(root, "03_compare_activations")
    assert f"{final:.2f} nats" in text
    assert "Linear 1 (784→64)" in text
