"""The case studies: their runs train into the run store, the diagnosis names each bug, the page's
sentences say the runs' own numbers, and the executed page shows the expected findings per case."""
import json
import re
from types import SimpleNamespace

import jupytext
import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
import torch

from gradflow import case_bugs, case_plots, store
from gradflow import case_findings as cf
from gradflow import case_narrate as cn
from gradflow import case_studies as cs
from gradflow.cli import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("case-runs")
    cs.train_case_studies("smoke", runs_dir=path)
    return path


@pytest.fixture(scope="module")
def cases(runs_dir):
    return cs.load_case_studies("smoke", runs_dir)


def codes(run):
    return {f["code"] for f in run.findings}


def test_every_case_run_is_stored_like_any_run(runs_dir, cases):
    names = [c.run_name() for c in cs.run_configs("smoke")]
    assert len(names) == len(set(names)) == sum(len(c.variants) for c in cs.CASES)
    for name in names:
        run = store.load_run(name, runs_dir)
        assert (run.path / "findings.json").is_file() and run.recordings is not None, name
        assert not run.metrics.empty and "test_acc" in run.results
        assert set(run.summary()) >= {"run", "test_acc", "epochs_trained"}  # what `gradflow runs` lists
    for cid, by_variant in cases.items():
        for run in by_variant.values():
            if cid != "001" or hasattr(store, "run_origin"):  # 001 goes through train_runs: marked by the store
                assert run.config["origin"] == f"case study {cid}", run.name


def test_asking_again_loads_and_the_cli_lists_the_runs(runs_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/results.json")}
    assert main(["train", "--case-studies", "--preset", "smoke", "--out", str(runs_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/results.json")} == before  # nothing retrained
    for c in cs.run_configs("smoke"):
        assert c.run_name() in out
    with pytest.raises(ValueError, match="unknown preset 'fast'; accepted: tutorial, quick, smoke"):
        cs.train_case_studies("fast", runs_dir=runs_dir)
    with pytest.raises(store.RunStoreError, match="gradflow train --case-studies --preset quick"):
        cs.load_case_studies("quick", runs_dir)


def test_the_diagnosis_names_each_bug_and_not_its_fix(cases):
    c0, c1, c2 = cases["000"], cases["001"], cases["002"]
    pytorch = [f for f in c0["pytorch"].findings if f["code"] == "BOUNDED_OUTPUT"]
    assert pytorch and pytorch[0]["severity"] == "error"  # tanh logits into cross-entropy
    assert "BOUNDED_OUTPUT" in codes(c0["keras"])
    assert "BOUNDED_OUTPUT" not in codes(c0["logits"])
    assert "HIGH_DROPOUT" in codes(c1["drop70"]) and "HIGH_DROPOUT" not in codes(c1["drop30"])
    nf = [f for f in c2["raw"].findings if f["code"] == "NONFINITE"]
    assert nf and nf[0]["step"] == 0 and nf[0]["layer"] == "layers.0"
    assert "UNNORMALIZED_INPUT" in codes(c2["raw"])
    assert not {"NONFINITE", "UNNORMALIZED_INPUT"} & codes(c2["scaled"])
    assert "NONFINITE" not in codes(c2["clamped"])  # the clamp fixes the NaN on the same raw pixels (seed 42)...
    assert {"UNNORMALIZED_INPUT", "EXPLODING_GRADIENT"} <= codes(c2["clamped"])  # ...which stay a risk
    ae = cases["004"]["autoencoder"].findings  # sigmoid + MSE on [0, 1] pixels is sound: a note, never an alarm
    assert not [f for f in ae if f["severity"] != "info"] and "NONFINITE" not in codes(cases["004"]["autoencoder"])
    note = [f for f in ae if f["code"] == "BOUNDED_OUTPUT"]
    assert note and note[0]["evidence"]["cause"] == "fits_targets" and "binary accuracy" in note[0]["message"]


def test_the_bugs_pieces():
    x = torch.tensor([-2.0, 0.0, 100.0], requires_grad=True)
    case_bugs.naive_elu(x).sum().backward()
    assert torch.isnan(x.grad[2])  # exp(100) = inf in the unused branch, 0 * inf = NaN
    x.grad = None
    case_bugs.clamped_elu(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.allclose(case_bugs.clamped_elu(x), torch.nn.functional.elu(x))
    # Keras' loss on probabilities that are not: scaled by their (here negative) sum, clipped, logged
    out = torch.tensor([[0.5, -0.9, 0.2], [0.2, 0.3, 0.5]])
    y = torch.tensor([0, 2])
    p = out / out.sum(-1, keepdim=True)
    expected = -(np.log(np.clip(p[0, 0].item(), 1e-7, 1 - 1e-7)) + np.log(0.5)) / 2
    assert case_bugs.keras_categorical_crossentropy(out, y).item() == pytest.approx(expected, rel=1e-6)
    assert case_bugs.binary_accuracy(torch.tensor([0.5, 0.73]), torch.tensor([0.0, 1.0])) == 1.0  # the blog's 100 %


def _results(run):
    return json.loads((run.path / "results.json").read_text())["seeds"]


def test_sentences_say_the_runs_own_numbers(cases):
    mean = lambda run, key="test_acc": np.mean([r[key] for r in _results(run)])  # noqa: E731
    s0 = cn.shows_000(cases["000"])
    for key in ("keras", "pytorch", "logits"):
        assert f"**{100 * mean(cases['000'][key]):.1f} %**" in s0
    arrays = np.load(cases["000"]["keras"].path / "samples.npz")
    assert f"{100 * (arrays['output_values_seed42'] < 0).mean():.1f} % of the Keras model's output values" in s0
    s1 = cn.shows_001(cases["001"])
    a, b = mean(cases["001"]["drop70"]), mean(cases["001"]["drop30"])
    # the gap is the difference of the two printed numbers, so a reader who subtracts them gets the page's gap
    gap = round(100 * b, 1) - round(100 * a, 1)
    assert f"**{100 * a:.1f} %**" in s1 and f"**{100 * b:.1f} %**" in s1 and f"{gap:.1f} points" in s1
    s2 = cn.shows_002(cases["002"])
    assert "appears at step 0, in the weight gradient of Linear 1 (784→128)" in s2
    for key in ("raw", "scaled", "clamped"):
        assert f"**{100 * mean(cases['002'][key]):.1f} %**" in s2
    s4 = cn.shows_004(cases["004"])
    m = pd.read_parquet(cases["004"]["copy"].path / "metrics.parquet")
    assert f"**{100 * m.loc[m.epoch == 0, 'val_binary_acc'].mean():.1f} %**" in s4
    assert f"{m.loc[m.epoch == m.epoch.max(), 'val_loss'].mean():.3f}" in s4


def test_findings_read_as_sentences(cases):
    t = cf.findings_table(cases["001"]["drop70"])
    assert list(t.columns) == ["severity", "finding", "where", "seeds", "what it says", "likely cause"]
    row = t[t["finding"] == "HIGH_DROPOUT"].iloc[0]  # one row for all layers and seeds
    assert row["seeds"] == "2 of 2" and row["where"].startswith("Linear 1 (784→32)")
    for by_variant in cases.values():
        for run in by_variant.values():
            table = cf.findings_table(run)
            # the messages lose their "(seed 42)": the seeds column says which seeds, and only when not all
            text = table.drop(columns="seeds").to_string()
            assert not re.search(r"step nan|\(seed \d|\('|<model>", text, re.I), (run.name, text)
            for cell in table["seeds"]:
                seen, of = map(int, re.match(r"(\d+) of (\d+)", cell).groups())
                assert ("(seed" in cell) == (seen < of), cell
            assert "`" not in text, (run.name, text)  # a table cell is text: Markdown backticks would show
            if run.config["model"].get("kind") not in ("CopyNet", "AutoEncoder"):  # BaseNetworks: "Linear 1 (…)"
                assert not re.search(r"layers\.\d", text), (run.name, text)
    # a model of the case's own: the layer by its type and its own name, as the message says it
    wheres = {w for run in cases["004"].values() for w in cf.findings_table(run)["where"]}
    assert wheres == {"Sigmoid “act”", "Sigmoid “layers.3”"}, wheres
    assert "Sigmoid “act”" in " ".join(cf.findings_table(cases["004"]["copy"])["what it says"])


def test_the_executed_page_shows_each_case_and_its_findings(runs_dir, tmp_path):
    nb = jupytext.read(ROOT / "notebooks" / "06_case_studies.py")
    src = tmp_path / "06.ipynb"
    nbformat.write(nb, str(src))
    out = tmp_path / "06_out.ipynb"
    pm.execute_notebook(str(src), str(out), parameters={"preset": "smoke", "runs_dir": str(runs_dir)},
                        cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    cells = nbformat.read(str(out), as_version=4).cells
    sections, current = {}, None
    for cell in cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            current = cell.source.split()[1]
            continue
        # outputs: their text and their figures' descriptions (alt), never the base64 of an image, whose
        # letters can spell any word by chance
        text = cell.source if cell.cell_type == "markdown" else "".join(
            json.dumps({k: ("<image>" if k.startswith("image/") else v) for k, v in o.get("data", {}).items()})
            + json.dumps(o.get("metadata", {})) + o.get("text", "") for o in cell.get("outputs", []))
        sections.setdefault(current, []).append(text)
    page = {k: "\n".join(v) for k, v in sections.items()}
    assert "BOUNDED_OUTPUT" in page["000"] and "What these runs show" in page["000"]
    assert "HIGH_DROPOUT" in page["001"]
    assert "NONFINITE" in page["002"] and "UNNORMALIZED_INPUT" in page["002"]
    assert "NONFINITE" not in page["004"] and "binary accuracy" in page["004"]  # the diagnosis's note on the metric
    assert "image/png" in page["004"]  # the reconstructions are drawn
    assert "seeds/" not in "\n".join(page.values())  # credited by source, no folder named
    for cid in cs.CASE_IDS:  # the prompt answered, folded away, in every case
        assert "Check your predictions" in page[cid], cid
    assert "value: built-in F.elu" in page["002"] and "Fix 2 and the built-in ELU" in page["002"]
    used = "\n".join(v for k, v in page.items() if k not in ("Glossary", "Sources")).lower()
    from gradflow.case_glossary import TERMS
    defined = [(t, seen) for t, _, seen in TERMS if f"**{t}**" in page["Glossary"]]
    assert defined and not [t for t, seen in defined if seen not in used]  # every term defined is one the page uses
    assert "**Case 003**" in page["Sources"]
    # the fixed runs' own findings tables: none of their bug's finding
    for heading, code in (("001", "HIGH_DROPOUT"), ("002", "NONFINITE")):
        fixed = page[heading].split("Findings, fix")[1:]
        assert fixed and all(code not in part.split("Findings,")[0] for part in fixed), heading


def test_the_summary_says_what_the_diagnosis_noted_on_004(cases):
    row = cf.summary_table(cases).set_index("case").loc["004"]
    assert row["what the diagnosis said"].startswith("no warning") and "binary accuracy" in row["what the diagnosis said"]


def test_case_pages_name_the_case_activations_in_words():
    said = cf.readable("96 % of the units of `layers.0` sit in the flat region of the activation "
                        "(case002_clamped_elu)", {})
    assert "(the clamped ELU)" in said and "case002" not in said


def test_case_callout_states_the_case_lengths_not_the_recipe():
    quick, full = cs.case_callout("quick"), cs.case_callout("tutorial")
    q, t = cs.CASE_PRESETS["quick"], cs.CASE_PRESETS["tutorial"]
    assert f"trained for {q['epochs']} epochs on the first {q['train']:,} of the 50,000 training images" in quick
    assert "Preview" in quick and "make report PRESET=tutorial" in quick
    assert f"trained for {t['epochs']} epochs on all 50,000 training images" in full and "Preview" not in full
    assert "early stopping with patience" not in quick + full  # case runs have no early stopping


def test_a_plain_loop_case_diagnoses_every_seed(tmp_path, monkeypatch):
    from gradflow.case_training import train_case_run
    monkeypatch.setitem(cs.CASE_PRESETS, "smoke", {**cs.CASE_PRESETS["smoke"], "seeds": (42, 43), "epochs": 1})
    c = cs.case("002")
    broken = [v for v in c.variants if v.role == "broken"][0]
    spec = cs.CaseRun(c.id, broken, "smoke", cs._loop_settings(c, broken, "smoke"))
    data = cs._data("fashion_mnist", {})
    run = train_case_run(spec, data, runs_dir=tmp_path)
    assert run.recordings.summary()["member_seeds"] == [42, 43]
    assert set(run.recordings.tables()["scalars"]["seed"].dropna().astype(int)) == {42, 43}
    nonfinite = [f for f in run.findings if f["code"] == "NONFINITE"]
    assert nonfinite and nonfinite[0].get("of_seeds") == 2  # counted over both seeds, not the first one only
    # a run stored when only its first seed was recorded is trained again, not served with half its findings
    (tmp_path / run.name / "recordings").rename(tmp_path / "kept")
    from gradflow.recording import save_recording
    first = run.recordings
    save_recording(tmp_path / run.name / "recordings", {k: v[v["member"] == 0] if "member" in v else v
                                                        for k, v in first.tables().items()},
                   {**first.summary(), "members": 1, "member_seeds": [42]})
    again = train_case_run(spec, data, runs_dir=tmp_path)
    assert again.recordings.summary()["member_seeds"] == [42, 43]


def like(run, **changes):
    """A stored run with some of its parts replaced, to take the other branch of a narrative rule."""
    keys = ("config", "results", "metrics", "findings", "seeds", "recordings", "path", "name")
    return SimpleNamespace(**({k: getattr(run, k) for k in keys} | changes))


def test_000_says_how_far_the_keras_run_is_from_chance(cases):
    assert cn._against_chance(0.12, 0.83).startswith("at chance (10.0 %)")
    above = cn._against_chance(0.20, 0.83)
    assert above.startswith("above chance") and "63 points below the fix" in above
    assert "close to the fix" in cn._against_chance(0.78, 0.83)
    keras = cases["000"]["keras"]
    said = " ".join(cf.findings_table(keras)["what it says"])
    assert "learns slowly, if at all" not in said  # the rule's general claim, replaced by what this run did
    acc = cn.test_mean(keras)
    assert f"{cn.pct(acc)} on the test set" in said
    high = like(keras, results=keras.results.assign(test_acc=0.225))
    assert "learns a little all the same: 22.5 %" in " ".join(cf.findings_table(high)["what it says"])
    low = like(keras, results=keras.results.assign(test_acc=0.10))
    assert "stays at chance: 10.0 %" in " ".join(cf.findings_table(low)["what it says"])


def test_001_explains_a_gap_bigger_than_the_question_s(cases):
    broken = cases["001"]["drop70"]
    assert "just a little worse" in cn._gap_001(broken, 0.02)
    big = cn._gap_001(broken, 0.22)
    assert "just a little worse" not in big and "far more than the question's ~2 points" in big
    assert f"for only {cn._setup(broken)}" in big  # the reason names what this run trained on
    s1 = cn.shows_001(cases["001"])
    gap = cn.test_mean(cases["001"]["drop30"]) - cn.test_mean(broken)
    assert ("just a little worse" in s1) == (gap <= 0.05)


def test_002_names_the_layers_its_findings_name(cases):
    raw, clamped = cases["002"]["raw"], cases["002"]["clamped"]
    s2 = cn.shows_002(cases["002"])
    boom = [f for f in clamped.findings if f["code"] == "EXPLODING_GRADIENT"][0]
    assert f"exploding gradients at {cn.layer_where(clamped, boom['layers'][0])}" in s2 and "first layer" not in s2
    moved = like(clamped, findings=[f | {"layers": ["layers.0"]} if f is boom else f for f in clamped.findings])
    assert "exploding gradients at Linear 1 (784→128):" in cn.shows_002(cases["002"] | {"clamped": moved})
    # fix 1 divides the pixels by 255: only fix 2 is said to see the raw pixels, and exp cannot overflow there
    assert "On the same raw pixels" not in s2 and "fix 2 (exp of clamp(x, max=0), on the same raw 0–255" in s2
    assert "exp can no longer overflow" in s2
    nb = (ROOT / "notebooks" / "06_case_studies.py").read_text()
    assert "each on the same raw 0–255 pixels" not in nb
    # the first NaN seen (forward order) vs where the backward pass created it, as the finding's evidence says
    made = [f for f in raw.findings if f["code"] == "NONFINITE"][0]["evidence"]["created_by"]
    assert made and f"*created* in the backward pass of the hand-written ELU after {cn._layers(raw, made)}" in s2
    bare = [f | {"evidence": {**f["evidence"], "created_by": []}} if f["code"] == "NONFINITE" else f
            for f in raw.findings]
    assert "*created*" not in cn.shows_002(cases["002"] | {"raw": like(raw, findings=bare)})


def test_004_says_the_metric_fell_while_the_model_improved(cases):
    s4 = cn.shows_004(cases["004"])
    n = cn.numbers_004(cases["004"])
    assert (n["acc_c"] < n["acc_c0"] and n["mse_c"] < n["mse_c0"]) == ("The metric, not the model" in s4)
    copy = cases["004"]["copy"]
    m = copy.metrics.copy()
    m.loc[m.epoch > 0, "val_binary_acc"] = 1.0  # a copy-net whose binary accuracy did not fall
    assert "The metric, not the model" not in cn.shows_004(cases["004"] | {"copy": like(copy, metrics=m)})
    row = cf.summary_table(cases).set_index("case").loc["004"]
    assert "copy-net, untrained" in row["with the bug"] and f"{cn.pct(n['acc_c0'])}" in row["with the bug"]
    assert "copy-net, trained" in row["with the fix"]  # a trained model is never labelled the broken run
    assert "broken run" not in cf.summary_table(cases).columns


def test_translations_say_what_the_slang_means():
    english = " ".join(e for c in cs.CASES for _, e in c.source.quotes)
    assert "on fire" not in re.sub(r"\[literally[^\]]*\]", "", english)  # only in a literal-translation note


def test_epoch_axis_explains_epoch_0_only_where_it_is_drawn():
    assert case_plots.epoch_axis([1, 2, 3]) == "epoch"
    assert case_plots.epoch_axis(np.array([0, 1, 2])) == "epoch (0 = before training)"


def test_the_page_says_why_a_case_number_is_missing():
    nb = (ROOT / "notebooks" / "06_case_studies.py").read_text()
    missing = [f"{i:03d}" for i in range(int(max(cs.CASE_IDS))) if f"{i:03d}" not in cs.CASE_IDS]
    for cid in missing:
        assert f"case {cid}" in nb.split("## 000")[0], cid  # said once, at the top


def test_summary_says_how_many_seeds_of_a_split_fix_learned(cases):
    """Case 002's fix 2 ends in NaN in some seeds: a mean of 10 % and 84 % seeds (34.8 %) describes none of
    them, so the summary counts the seeds that learned and says where they got."""
    runs = dict(cases["002"])
    clamped = runs["clamped"]
    split = pd.DataFrame({"seed": [42, 43, 44], "test_acc": [0.845, 0.10, float("nan")]})
    runs["clamped"] = like(clamped, results=split)
    row = cf.summary_table(cases | {"002": runs}).set_index("case").loc["002"]
    assert row["with the fix"].startswith("fix 1: ")
    assert "fix 2: 1 of 3 seeds learned (84.5 %); the other 2 ended at chance" in row["with the fix"]
    nan_metrics = pd.DataFrame({"seed": [42, 43, 44], "epoch": 1, "train_loss": [0.5, float("nan"), float("nan")]})
    runs["clamped"] = like(clamped, results=split, metrics=nan_metrics)
    row = cf.summary_table(cases | {"002": runs}).set_index("case").loc["002"]
    assert "fix 2: 1 of 3 seeds learned (84.5 %); the other 2 ended in NaN (at chance)" in row["with the fix"]
    steady = like(clamped, results=clamped.results.assign(test_acc=0.8))
    assert "fix 2: 80.0 %" in cf.summary_table(cases | {"002": runs | {"clamped": steady}}).set_index("case").loc["002",
                                                                                                            "with the fix"]
