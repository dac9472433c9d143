"""The seams between training, the run store, the recording format and the diagnosis: runs trained
together in one batch, stored with recording on, read back and diagnosed again."""
import json
import os

import pandas as pd
import pytest

from gradflow import store, train
from gradflow.config import make_config
from gradflow.data import synthetic
from gradflow.diagnose import diagnose


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """relu (seeds 0, 1) and sigmoid (seeds 5, 6, 7) in one batch of five, recording every step;
    sigmoid with dropout 0.7 so its diagnosis has something to say (HIGH_DROPOUT)."""
    data = synthetic(n_train=512, n_val=128, n_test=128, noise=3.0)
    configs = [make_config("relu", "smoke", max_epochs=2, seeds=(0, 1), dropout=0.2, record="every"),
               make_config("sigmoid", "smoke", max_epochs=2, seeds=(5, 6, 7), dropout=0.7, record="every")]
    root = tmp_path_factory.mktemp("runs")
    runs = train.train_runs(configs, runs_dir=root, data=data, progress=False, device="cpu")
    return data, configs, runs


def test_each_stored_recording_holds_exactly_its_own_seeds(two_runs):
    data, configs, (relu, sigmoid) = two_runs
    assert relu.config["batch"]["members"] == 5 and sigmoid.config["batch"]["members"] == 5
    for run in (relu, sigmoid):
        rec = run.recordings
        summary = rec.summary()
        assert summary["member_seeds"] == run.seeds and summary["members"] == len(run.seeds)
        for key in ("scalars", "histograms", "dead_units"):
            table = rec.tables()[key]
            assert not table.empty, key
            assert set(table["seed"]) == set(run.seeds), key
            assert set(table["member"]) == set(range(len(run.seeds))), key
    # per-member structure is sliced too: each run's activation layers carry its own activation's peak
    act = [lay for lay in sigmoid.recordings.summary()["layers"] if lay["kind"] == "activation"][0]
    assert act["max_derivative"] == pytest.approx([0.25] * 3, rel=1e-3)
    assert act["activation"] == "sigmoid"  # the run's own activation, not the batch's "stackedactivation"
    assert act["bounded"] is True  # sigmoid is bounded, though the batch it trained in (with relu) was not
    act = [lay for lay in relu.recordings.summary()["layers"] if lay["kind"] == "activation"][0]
    assert act["max_derivative"] == pytest.approx([1.0] * 2, rel=1e-3)
    assert act["activation"] == "relu" and act["activations"] == ["relu", "relu"]


def test_stored_rows_are_the_batch_recordings_rows_of_those_seeds(two_runs):
    data, configs, (relu, sigmoid) = two_runs
    full = train.fit(configs, data, device="cpu", progress=False).recording.tables()["scalars"]  # same seeds, same numbers
    for run in (relu, sigmoid):
        stored = run.recordings.tables()["scalars"]
        mine = full[full["seed"].isin(run.seeds)]
        key = ["step", "seed", "layer", "quantity"]
        a = stored.sort_values(key, ignore_index=True)
        b = mine.sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(a[key + ["epoch", "value"]], b[key + ["epoch", "value"]])


def test_stored_findings_equal_a_fresh_diagnosis_of_the_reloaded_run(two_runs):
    _, _, runs = two_runs
    for run in runs:
        reloaded = store.load_run(run.path)
        fresh = [f.to_dict() for f in diagnose(reloaded)]
        assert run.findings == fresh
    codes = {f["code"] for f in runs[1].findings}
    assert "HIGH_DROPOUT" in codes and "HIGH_DROPOUT" not in {f["code"] for f in runs[0].findings}


def test_every_file_of_a_run_directory_is_readable_like_any_other_output(two_runs):
    """One permission policy for the whole run (config, metrics, weights, recordings, findings,
    manifest): what the umask gives a new file, and no temporary file left behind."""
    _, _, runs = two_runs
    old = os.umask(0)
    os.umask(old)
    for run in runs:
        files = [p for p in run.path.rglob("*") if p.is_file()]
        names = {p.relative_to(run.path).as_posix() for p in files}
        assert {"config.json", "metrics.parquet", "results.json", "findings.json",
                "recordings/recording.json", "recordings/recording_scalars.parquet"} <= names
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~old)}, names
        assert not [n for n in names if n.rsplit("/", 1)[-1].startswith(".")]


# --------------------------------------------------------------------------- one input shape for the rules


def _compared(findings):
    """What a reader sees of each finding: code, severity, layers, seeds, message, step."""
    return [(f.code, f.severity, f.layer, tuple(f.layers), tuple(f.seeds), f.of_seeds, f.message, f.step)
            for f in findings]


def test_live_stored_and_reloaded_diagnoses_are_the_same(tmp_path):
    """One run, four shapes: diagnosed live from the trainer's in-memory recording, as training wrote
    findings.json, read back from findings.json, and diagnosed again from the run reloaded from disk.
    The first three and the fourth must agree on every finding; a user's own loop (a recording and
    metrics, no run config) on what was found, where, in which seeds and how severe."""
    from gradflow.diagnose import Evidence, Finding
    from gradflow.recording import member_subset
    data = synthetic(n_train=512, n_val=128, n_test=128, noise=3.0)
    config = make_config("sigmoid", "smoke", max_epochs=4, patience=1, seeds=(0, 1, 2), lr=1e-3,
                         hidden_sizes=(64, 64, 64, 32), record="every", dropout=0.7)
    run, = train.train_runs([config], runs_dir=tmp_path, data=data, progress=False, device="cpu")
    result = train.fit([config], data, device="cpu", progress=False)  # the same seeds: the same numbers
    metrics = pd.DataFrame([row for member in result.members for row in member.rows])
    results = [member.result for member in result.members]
    live_recording = member_subset(result.recording, list(range(len(result.members))))

    live = diagnose(Evidence.from_stored(run.config, metrics, results, live_recording))
    stored = [Finding.from_dict(d) for d in json.loads((run.path / "findings.json").read_text())]
    reloaded = diagnose(store.load_run(run.path))
    users_loop = diagnose(live_recording, metrics=metrics)

    codes = {f.code for f in stored}
    assert {"HIGH_DROPOUT", "VANISHING_GRADIENT", "UPDATE_RATIO"} <= codes, codes  # per-layer findings to group
    assert len(codes) == len(stored)  # one finding per cause
    assert _compared(live) == _compared(stored) == _compared(reloaded)
    assert [f.to_dict() for f in live] == [f.to_dict() for f in reloaded] == run.findings  # evidence and causes too
    assert [c[:6] for c in _compared(users_loop)] == [c[:6] for c in _compared(stored)]


def test_findings_written_by_older_rules_are_diagnosed_again_on_read(tmp_path, monkeypatch):
    """A run stored before the rules changed (its config's diagnosis version behind, its
    findings.json from those rules) is read with today's findings, and stays untouched on disk."""
    import sys

    from gradflow.diagnose import codes
    dg = sys.modules["gradflow.diagnose"]  # the package (gradflow.diagnose is also the function)
    data = synthetic(n_train=256, n_val=64, n_test=64)
    config = make_config("sigmoid", "smoke", max_epochs=1, seeds=(0, 1), dropout=0.7, record="every")
    monkeypatch.setattr(codes, "DIAGNOSIS_VERSION", codes.DIAGNOSIS_VERSION - 1)  # "older rules"...
    monkeypatch.setattr(dg, "RULES", [])  # ...that found nothing
    (run,) = train.train_runs([config], runs_dir=tmp_path, data=data, progress=False, device="cpu")
    on_disk = (run.path / "findings.json").read_bytes()
    assert json.loads(on_disk) == []
    monkeypatch.undo()
    reread = store.load_run(run.name, tmp_path)
    assert "HIGH_DROPOUT" in {f["code"] for f in reread.findings}  # today's rules, from the recording
    assert reread.findings == [f.to_dict() for f in diagnose(reread)]
    assert (run.path / "findings.json").read_bytes() == on_disk and store.load_run(run.name, tmp_path)
    current = store.load_run(run.name, tmp_path)
    monkeypatch.setattr(current, "_diagnose_again", lambda: pytest.fail("a current run is not re-diagnosed"))
    monkeypatch.setattr(codes, "DIAGNOSIS_VERSION", run.config["versions"]["diagnosis"])
    assert current.findings == []  # the same version: findings.json as written
