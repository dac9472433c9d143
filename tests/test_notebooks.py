"""Every notebook executes through papermill with tiny parameters (smoke preset, synthetic data).

The whole set renders once per test session (in parallel, through ``gradflow.report.render_all``);
test_browser.py opens the same pages in Chromium.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from gradflow import report

# Tiny parameters: the smoke preset trains on the synthetic set in seconds; the rest shrinks loops.
TINY = {"01_activation_functions": {"points": 201},
        "02_gradients_at_init": {"dead_images": 500, "batch_size": 64}}
NAMES = [s.name for s in report.NOTEBOOKS]


def train_smoke_runs(runs: Path) -> None:
    """Every run the reports read, smoke preset, through the same commands as `make train`."""
    import importlib.util

    from gradflow.cli import main
    runs.parent.mkdir(parents=True, exist_ok=True)  # `train --out` refuses a folder whose parent is missing
    assert main(["train", "--act", "all", "--preset", "smoke", "--out", str(runs), "--no-progress"]) == 0
    if importlib.util.find_spec("gradflow.case_studies"):  # the case-study runs, once that module exists
        assert main(["train", "--case-studies", "--preset", "smoke", "--out", str(runs), "--no-progress"]) == 0


def smoke_report_dir(tmp_path_factory) -> Path:
    """Render every notebook once per session (shared by the test modules through a file marker)."""
    root = tmp_path_factory.getbasetemp() / "smoke-report"
    marker = root / "exit-code"
    if not marker.exists():
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


def test_kernel_is_this_interpreter(smoke):
    root, _, _ = smoke
    nb = nbformat.read(root / "html" / "notebooks" / "01_activation_functions.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"at {sys.executable}\n" in text


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
    assert report.VALIDATE_TAG in code[1].metadata.get("tags", [])  # validation right after the defaults


@pytest.mark.parametrize("name", NAMES)
def test_notebook_source_is_a_jupytext_percent_script(name):
    source = report.notebook_source(name)
    assert source.suffix == ".py", f"{name}: the source of a notebook is notebooks/{name}.py"
    text = source.read_text(encoding="utf-8")
    assert "format_name: percent" in text and '# %% tags=["parameters"]' in text
