"""The report runner: failures are contained, marked and summarised; bad parameters are named."""
from __future__ import annotations

import json
import sys

import nbformat
import pytest

from gradflow import report


def make_notebook(path, *cells):
    """cells: (tags, source) pairs; the first is the parameters cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A test notebook\n\nwith math $x^2$, left as text (no script renders it offline)")]
    for tags, source in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}))
    nbformat.write(nb, path)


@pytest.fixture
def fake_notebooks(tmp_path, monkeypatch):
    """Three small notebooks in place of the real set: one fine, one failing, one validating."""
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    make_notebook(nb_dir / "good.ipynb", (["parameters"], "n: int = 3  # how many"),
                  ([report.VALIDATE_TAG], "assert n > 0"),
                  ([], ("import sys\nprint('EXE', sys.executable)\nimport matplotlib.pyplot as plt\n"
                        "%matplotlib inline\nplt.plot(range(n)); plt.title('a figure'); plt.show()")))
    make_notebook(nb_dir / "broken.ipynb", (["parameters"], "n: int = 3  # how many"),
                  ([report.VALIDATE_TAG], "pass"), ([], "raise RuntimeError('the model diverged at step 7')"))
    make_notebook(nb_dir / "strict.ipynb", (["parameters"], "epochs: int = 3  # epochs to train"),
                  ([report.VALIDATE_TAG], "if epochs < 0:\n    raise ValueError(f'epochs must be >= 0, got {epochs}')"),
                  ([], "print('trained', epochs)"))
    specs = tuple(report.NotebookSpec(n, n.title(), f"the {n} notebook") for n in ("good", "broken", "strict"))
    monkeypatch.setattr(report, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(report, "NOTEBOOKS", specs)
    return tmp_path


def index_of(out):
    return {r["name"]: r for r in json.loads((out / "index.json").read_text())["reports"]}


def test_one_failure_does_not_stop_the_others(fake_notebooks, capsys):
    out = fake_notebooks / "out"
    code = report.render_all(out, preset="smoke", jobs=1, parameters={"strict": {"epochs": -2}})
    assert code == 1
    idx = index_of(out)
    assert idx["good"]["status"] == "ok"
    assert idx["broken"]["status"] == "failed"
    assert "RuntimeError: the model diverged at step 7" in idx["broken"]["error"]
    assert idx["strict"]["status"] == "bad parameters"
    assert "epochs must be >= 0, got -2" in idx["strict"]["error"]
    assert idx["strict"]["parameters"] == {"epochs": -2}
    # every notebook has its page, the failing ones show their error
    assert "the model diverged at step 7" in (out / "broken.html").read_text()
    assert "epochs must be &gt;= 0, got -2" in (out / "strict.html").read_text()
    index_html = (out / "index.html").read_text()
    assert "BAD PARAMETERS" in index_html and "FAILED" in index_html and "2 of 3 reports FAILED" in index_html
    # one line per failure on stderr
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gradflow report: ")]
    assert any("FAILED broken: RuntimeError: the model diverged at step 7" in line for line in err)
    assert any("BAD PARAMETERS strict: ValueError: epochs must be >= 0, got -2" in line for line in err)
    assert not list(out.glob(".*"))  # atomic writes leave no temporary files behind


def test_kernel_runs_this_interpreter_and_html_is_offline(fake_notebooks):
    import os
    out = fake_notebooks / "out"
    before = dict(os.environ)
    assert report.render_all(out, jobs=1, notebooks=["good"]) == 0
    assert dict(os.environ) == before  # jobs=1 renders in this process: its environment is restored
    executed = nbformat.read(out / "notebooks" / "good.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert f"EXE {sys.executable}" in printed
    html = (out / "good.html").read_text()
    assert "<script src=" not in html and "require.min.js" not in html and "MathJax.Hub" not in html and "cdnjs" not in html
    assert 'src="data:image/png;base64' in html  # the figure is embedded, not a file next to the page
    assert "a figure" not in html  # code hidden by default


def test_show_code_and_parallel_jobs(fake_notebooks, capfd):
    out = fake_notebooks / "out"
    code = report.render_all(out, jobs=2, show_code=True, notebooks=["good", "strict", "broken"])
    assert code == 1
    assert "a figure" in (out / "good.html").read_text()  # the code cell's string literal
    idx = index_of(out)
    assert idx["good"]["status"] == idx["strict"]["status"] == "ok" and idx["broken"]["status"] == "failed"
    # parallel kernels on their own sockets; their log (the shutdown's "KeyboardInterrupt caught",
    # the TCP warning) goes to a file, not the terminal
    err = capfd.readouterr().err
    assert "[IPKernelApp]" not in err and "Invalid Signature" not in err, err
    assert all(log.stat().st_size > 0 for log in (out / "notebooks").glob("*.kernel.log"))  # empty ones removed


def test_parameters_for_all_or_one_notebook(fake_notebooks):
    out = fake_notebooks / "out"
    report.render_all(out, jobs=1, notebooks=["good", "strict"], parameters={"n": 5, "strict": {"epochs": 1}})
    idx = index_of(out)
    assert idx["good"]["parameters"] == {"n": 5}  # a bare name goes to every notebook that declares it
    assert idx["strict"]["parameters"] == {"epochs": 1}


def test_unknown_notebook_is_refused(fake_notebooks):
    with pytest.raises(ValueError, match="unknown notebooks.*available: good, broken, strict"):
        report.render_all(fake_notebooks / "out", notebooks=["nope"])


def test_real_notebooks_reject_bad_parameters_at_their_first_cell(tmp_path):
    """Unknown activation, missing run, negative epochs: a clear error and a 'bad parameters' status."""
    out = tmp_path / "out"
    bad = {"01_activation_functions": {"activations": ["relu", "nosuchact"]},
           "03_compare_activations": {"max_epochs": -3},
           "04_one_run": {"run": "no-such-run"}}
    code = report.render_all(out, preset="smoke", runs_dir=str(tmp_path / "runs"), jobs=2,
                             notebooks=list(bad), parameters=bad)
    assert code == 1
    idx = index_of(out)
    assert all(r["status"] == "bad parameters" for r in idx.values()), idx
    assert "unknown activation(s) ['nosuchact']; registered: sigmoid, tanh, relu" in idx["01_activation_functions"]["error"]
    assert "max_epochs must be 0" in idx["03_compare_activations"]["error"] and "-3" in idx["03_compare_activations"]["error"]
    assert "no run named 'no-such-run'" in idx["04_one_run"]["error"] and "runs there: none" in idx["04_one_run"]["error"]
    for name in bad:  # failed at the validation cell: nothing after it ran
        nb = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4)
        ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
        assert report.VALIDATE_TAG in ran[-1].metadata.get("tags", [])
