"""The report runner: failures are contained, marked and summarised; bad parameters are named."""
from __future__ import annotations

import html
import json
import re
import sys

import nbformat
import pytest

from gradflow import report, report_execute


def make_notebook(path, *cells):
    """cells: (tags, source) pairs; the first is the parameters cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A test notebook\n\nwith math $x^2$, left as text (no script renders it offline)"),
                nbformat.v4.new_markdown_cell("## First section\n\ntext"),
                nbformat.v4.new_markdown_cell("## Second & third\n\nmore")]
    for tags, source in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}))
    nbformat.write(nb, path)


@pytest.fixture
def fake_notebooks(tmp_path, monkeypatch):
    """Three small notebooks in place of the real set: one fine, one failing, one validating."""
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    make_notebook(nb_dir / "good.ipynb", (["parameters"], "n: int = 3  # how many\nlabel: str = 'a'  # shown"),
                  ([report_execute.VALIDATE_TAG], "assert n > 0"),
                  ([], ("import sys\nprint('EXE', sys.executable)\nimport matplotlib.pyplot as plt\n"
                        "%matplotlib inline\nplt.plot(range(n)); plt.title('a figure'); plt.show()")))
    make_notebook(nb_dir / "broken.ipynb", (["parameters"], "n: int = 3  # how many"),
                  ([report_execute.VALIDATE_TAG], "pass"), ([], "raise RuntimeError('the model diverged at step 7')"))
    make_notebook(nb_dir / "strict.ipynb", (["parameters"], "epochs: int = 3  # epochs to train"),
                  ([report_execute.VALIDATE_TAG], "if epochs < 0:\n    raise ValueError(f'epochs must be >= 0, got {epochs}')"),
                  ([], "print('trained', epochs)"))
    specs = tuple(report.NotebookSpec(n, n.title(), f"the {n} notebook") for n in ("good", "broken", "strict"))
    specs += (report.NotebookSpec("needy", "Needy", "reads the relu run", needs=("relu",)),)
    make_notebook(nb_dir / "needy.ipynb", (["parameters"], "preset: str = 'quick'  # preset"), ([], "print('ran')"))
    monkeypatch.setattr(report, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(report, "NOTEBOOKS", specs)
    return tmp_path


def index_of(out):
    return {r["name"]: r for r in json.loads((out / "index.json").read_text())["reports"]}


def test_one_failure_does_not_stop_the_others(fake_notebooks, capsys):
    out = fake_notebooks / "out"
    code = report.render_all(out, preset="smoke", jobs=1, parameters={"strict": {"epochs": -2}},
                             notebooks=["good", "broken", "strict"])
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
    check_framed_with_navigation_and_contents(out)


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
    evil = "<img src=x onerror=alert(1)>"  # user-given names reach the pages escaped
    report.render_all(out, jobs=1, notebooks=["good", "strict"],
                      parameters={"n": 5, "strict": {"epochs": 1}, "good": {"label": evil}})
    idx = index_of(out)
    assert idx["good"]["parameters"] == {"n": 5, "label": evil}  # a bare name goes to every notebook declaring it
    for page in ("good.html", "index.html"):
        text = (out / page).read_text()
        assert evil not in text and "&lt;img src=x onerror=alert(1)&gt;" in text, page
    assert idx["strict"]["parameters"] == {"epochs": 1}


def test_rendering_some_pages_keeps_the_others_in_the_index(fake_notebooks):
    """`gradflow report --page 5 -p run_a ...` redoes one page: the index still lists the others (same
    preset, page still on disk) and the page's navigation walks the pages there, never a missing one."""
    out = fake_notebooks / "out"
    report.render_all(out, jobs=1, notebooks=["good", "strict"])
    first = index_of(out)
    assert report.render_all(out, jobs=1, notebooks=["good"], parameters={"n": 4}) == 0
    idx = index_of(out)
    assert set(idx) == {"good", "strict"} and idx["good"]["parameters"]["n"] == 4 and idx["strict"] == first["strict"]
    page = html.unescape((out / "index.html").read_text())
    assert "parameters: n=4" in page and "NOT RENDERED" in page  # broken and needy were never rendered here
    assert "# page good with its own parameters\ngradflow report --page good -p n 4" in page  # how to redo it
    nav = html.unescape(re.sub("<[^>]+>", "", (out / "good.html").read_text()))
    assert "report 1 of 2" in nav and "Strict" in nav  # the pages on disk, not the never-rendered ones
    report.render_all(out, jobs=1, preset="tutorial", notebooks=["good"])
    assert set(index_of(out)) == {"good"}  # another preset's pages are not this set's


def test_unknown_notebook_is_refused(fake_notebooks):
    with pytest.raises(ValueError, match="unknown notebooks.*available: good, broken, strict, needy"):
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
        assert report_execute.VALIDATE_TAG in ran[-1].metadata.get("tags", [])


def test_reports_train_nothing_and_name_the_missing_runs(fake_notebooks, capsys):
    """A notebook whose runs are not stored is not executed: its page, the index and stderr name the
    runs and the command that trains them; the other notebooks still render."""
    from gradflow.config import make_config

    out, runs = fake_notebooks / "out", fake_notebooks / "runs"
    code = report.render_all(out, preset="smoke", runs_dir=str(runs), jobs=1, notebooks=["good", "needy"])
    assert code == 1
    idx = index_of(out)
    assert idx["good"]["status"] == "ok"
    needy = idx["needy"]
    relu = make_config("relu", "smoke").run_name()
    assert needy["status"] == "missing runs" and relu in needy["error"]
    assert "gradflow train --act all --preset smoke --out runs" in needy["error"]
    assert not runs.exists() or not any(runs.iterdir())  # nothing was trained
    assert not (out / "notebooks" / "needy.ipynb").exists()  # nor executed
    page = (out / "needy.html").read_text()
    assert relu in page and "gradflow train --act all --preset smoke" in page and 'href="index.html"' in page
    err = capsys.readouterr().err
    assert f"MISSING RUNS needy: needs 1 run(s) that runs/ does not hold ({relu})" in err
    assert "make train PRESET=smoke" in err

    # once the run is stored, the same render executes it
    from gradflow.train import compare
    assert compare(["relu"], preset="smoke", runs_dir=str(runs), progress=False)[0].name == relu
    assert report.render_all(out, preset="smoke", runs_dir=str(runs), jobs=1, notebooks=["needy"]) == 0


def test_needed_runs_follow_the_notebook_parameters():
    from gradflow.config import TUTORIAL_ACTIVATIONS, make_config

    assert report.ALL_SIX == tuple(TUTORIAL_ACTIVATIONS)
    specs = {s.name: s for s in report.NOTEBOOKS}
    compare = report.needed_runs(specs["03_compare_activations"], "quick", {})
    assert list(compare) == [make_config(a, "quick").run_name() for a in TUTORIAL_ACTIVATIONS]
    assert set(compare.values()) == {"gradflow train --act all --preset quick"}
    two = report.needed_runs(specs["03_compare_activations"], "quick", {"activations": ["relu", "tanh"], "max_epochs": 2},
                             "my-runs")
    assert list(two) == [make_config(a, "quick", max_epochs=2).run_name() for a in ("relu", "tanh")]
    assert set(two.values()) == {"gradflow train --act relu tanh --preset quick --max-epochs 2 --out my-runs"}
    assert list(report.needed_runs(specs["05_two_runs"], "smoke", {"run_a": "mine"})) == [
        make_config("relu", "smoke").run_name()]  # a named run is checked by the notebook itself
    assert report.needed_runs(specs["04_one_run"], "smoke", {"run": "mine"}) == {}
    assert report.needed_runs(specs["01_activation_functions"], "quick", {}) == {}
    assert report.needed_runs(specs["03_compare_activations"], "quick", {"activations": ["nosuchact"]}) == {}
    typed = report.needed_runs(specs["03_compare_activations"], "quick", {"activations": "relu,tanh", "seeds": "42,43"})
    assert list(typed) == [make_config(a, "quick", seeds=[42, 43]).run_name() for a in ("relu", "tanh")]  # -p text


def check_framed_with_navigation_and_contents(out):
    """Every page (failed ones too) links home, previous and next in reading order, and lists its sections."""
    good, broken, strict = ((out / f"{n}.html").read_text() for n in ("good", "broken", "strict"))
    for page in (good, broken, strict):
        assert page.count('href="index.html"') >= 2  # the bar and the footer
    assert 'href="broken.html" rel="next"' in good and 'rel="prev"' not in good  # first page: no previous
    assert 'href="good.html" rel="prev"' in broken and 'href="strict.html" rel="next"' in broken
    assert 'href="broken.html" rel="prev"' in strict and 'rel="next"' not in strict
    assert "report 2 of 3" in broken
    # the contents list, built from the page's own headings, links to their anchors
    from gradflow.report_pages import headings
    found = headings(good)
    assert [t for lvl, _, t in found if lvl == 2] == ["First section", "Second & third"]
    toc = good[good.index('class="gf-toc"'):]
    assert all(f'href="#{a}"' in toc for lvl, a, _ in found if lvl == 2)
    assert "Second &amp; third" in toc
    assert good.index('class="gf-toc"') > good.index("A test notebook")  # under the page's title
    assert "<title>1. Good — gradflow reports</title>" in good


def test_public_paths_removes_absolute_paths(tmp_path):
    from gradflow.report_pages import public_paths

    root = str(report.REPO_ROOT)
    text = (f"<p>python at {root}/.venv/bin/python, data in {root}/data, runs in {tmp_path}/runs/relu, "
            f"repo {root}, elsewhere /usr/lib/python3/site-packages/torch/nn.py and /root/x/y.txt</p>"
            '<img src="data:image/png;base64,AAA/tmp/BBB/work/CC=">')
    clean = public_paths(text, {str(tmp_path / "runs"): "checkpoints"})
    assert root not in clean and str(tmp_path) not in clean and "/usr/lib" not in clean and "/root/" not in clean
    assert "python at .venv/bin/python" in clean and "data in data," in clean and "runs in checkpoints/relu" in clean
    assert "repo ." in clean and "…/torch/nn.py" in clean
    assert 'src="data:image/png;base64,AAA/tmp/BBB/work/CC="' in clean  # embedded images untouched


def test_index_tells_what_the_runs_are(tmp_path):
    """The preset's meaning comes from the stored runs; a preview preset says it is one."""
    from gradflow.report_index import render_index, run_facts

    def stored(name, batch, seeds, epochs):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({
            "run": {"max_epochs": 4, "seeds": seeds, "preset": "quick"}, "device": "cpu",
            "data": {"name": "FashionMNIST", "sizes": {"train": 50000, "val": 10000, "test": 10000}},
            "versions": {"torch": "2.9", "gradflow": "0.1"}, "epoch_seconds": [10.0] * 4, "batch": {"runs": batch}}))
        (d / "results.json").write_text(json.dumps({"seeds": [{"epochs_trained": epochs} for _ in seeds]}))
        return d

    dirs = [stored("a", ["a", "b"], [42, 43], 4), stored("b", ["a", "b"], [42, 43], 3), tmp_path / "missing"]
    facts = run_facts(dirs)
    assert facts["runs"] == 2 and facts["train_seconds"] == 40.0  # one batch counted once
    results = [report.ReportResult("01_activation_functions", "Activation functions", "ok", 3.0, {"points": 5},
                                   html="01_activation_functions.html"),
               report.ReportResult("03_compare_activations", "Comparing activations", "missing runs", 0.0, {},
                                   "needs 6 run(s)", "03_compare_activations.html")]
    page = html.unescape(render_index(results, report.NOTEBOOKS, "quick", 12.0, facts, "checkpoints"))
    assert "Preview, not results." in page and "4 epochs instead of the recipe's 50" in page
    assert "at most 4 of the tutorial recipe's 50 (early stopping: 3 to 4 trained per model)" in page
    assert "2 per activation (42, 43)" in page and "FashionMNIST (50,000 train" in page
    assert "torch 2.9" in page and "40 s for 2 stored runs (4 models: every seed of a run is a model" in page
    assert "make report PRESET=quick" in page and "gradflow train --case-studies --preset quick" in page
    assert "Activation_Functions.html" in page and "Phillip Lippe" in page
    assert page.index("Activation functions") < page.index("Comparing activations") < page.index("Case studies")
    assert "MISSING RUNS" in page and "1 of 2 reports FAILED" in page
    assert all(s.teaches in page for s in report.NOTEBOOKS)
    facts["case_studies"] = run_facts([dirs[0]])
    assert "case studies1 more stored runs with their own small recipes, 40 s of training" in html.unescape(
        re.sub("<[^>]+>", "", render_index(results, report.NOTEBOOKS, "quick", 1.0, facts, "checkpoints")))
    assert "Preview, not results." not in render_index(results, report.NOTEBOOKS, "tutorial", 1.0, facts, "checkpoints")


def test_index_names_the_diagnosis_the_pages_show():
    """Runs trained under older rules are diagnosed again when read: the index names the current rules."""
    from gradflow.diagnose.codes import DIAGNOSIS_VERSION
    from gradflow.report_index import _versions_shown
    assert _versions_shown({"torch": "2.9", "diagnosis": DIAGNOSIS_VERSION})["diagnosis"] == str(DIAGNOSIS_VERSION)
    older = _versions_shown({"diagnosis": DIAGNOSIS_VERSION - 1})["diagnosis"]
    assert older == (f"{DIAGNOSIS_VERSION} (the diagnosis's rules; the runs were trained under version "
                     f"{DIAGNOSIS_VERSION - 1}, and their findings are worked out again from the stored recordings "
                     "with today's rules)")


def test_benign_kernel_logs_are_removed(tmp_path):
    log = tmp_path / "k.kernel.log"
    log.write_text("[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel\n\n")
    assert not report_execute._keep_kernel_log(log, ok=True) and not log.exists()
    log.write_text("[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel\n")
    assert report_execute._keep_kernel_log(log, ok=False)  # a failed render keeps everything
    log.write_text("Segmentation fault in libfoo\n")
    assert report_execute._keep_kernel_log(log, ok=True)


def test_the_index_step_by_step_commands_are_the_makefiles():
    """What the index tells a reader to run by hand is what `make report` runs, each command on a line of
    its own (a comment beside the sweep's long command ran off the page)."""
    from pathlib import Path

    from gradflow.report_index import reproduce
    root = Path(__file__).resolve().parents[1]
    makefile = (root / "Makefile").read_text()
    made = [line.strip().removeprefix("$(BIN)/").replace("$(PRESET)", "tutorial")
            for line in makefile.splitlines() if line.strip().startswith("$(BIN)/gradflow ")
            and line.split()[1] in ("train", "sweep", "report")]
    shown = re.search(r"<pre># .*?</pre>", reproduce("tutorial", "checkpoints"), re.S).group(0)
    commands = [line for line in html.unescape(shown[5:-6]).splitlines() if not line.startswith("#")]
    assert [c.replace(" --jobs $(JOBS)", "") for c in made] == commands


def test_index_gives_each_page_a_reading_time_and_the_class_path(tmp_path):
    """An instructor plans a session from the index: minutes per page (words and figures of the rendered
    page), which pages are the core path and how long it takes, which go further."""
    from gradflow.report_index import reading_minutes, render_index
    words = " ".join(["gradient"] * 1500)  # 10 minutes at 150 words a minute
    (tmp_path / "01_activation_functions.html").write_text(
        f"<html><style>{'x ' * 5000}</style><body><p>{words}</p><img src='a.png'><img src='b.png'></body></html>")
    (tmp_path / "02_gradients_at_init.html").write_text("<p>short</p>")
    assert reading_minutes(tmp_path / "01_activation_functions.html") == 15  # 10 + 2 figures, rounded up to 5
    assert reading_minutes(tmp_path / "02_gradients_at_init.html") == 5 and reading_minutes(tmp_path / "no.html") is None
    results = [report.ReportResult(n, n, "ok", 3.0, {}, html=f"{n}.html")
               for n in ("01_activation_functions", "02_gradients_at_init")]
    page = html.unescape(re.sub("<[^>]+>", " ", render_index(results, report.NOTEBOOKS, "tutorial", 1.0,
                                                              {"runs": 0, "seeds": set()}, "checkpoints", tmp_path)))
    page = " ".join(page.split())
    assert "core · about 15 min to read · rendered in 3.0 s" in page and "core · about 5 min to read" in page
    assert "Core path for a class: pages 1, 2, 3 and 6." in page  # 3 and 6 not rendered: no total claimed
    assert "can leave part of page 6 out: its cases 001 and 004 are about" in page
    assert "Pages 4, 5 and 7 go further (one run in depth; two runs side by side; a sweep)" in page
