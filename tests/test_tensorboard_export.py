"""gradflow tensorboard: the recorded histograms and per-epoch scalars, read back from the event files."""
from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradflow import cli
from gradflow.recording import load_recording
from gradflow.tensorboard_export import raw_histogram
from gradflow.train import compare


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("tb-runs")
    # every step recorded: 3 epochs x 7 steps, more histogram steps than TensorBoard keeps by default
    run = compare(["tanh"], preset="smoke", seeds=[0, 1], runs_dir=runs, progress=False, max_epochs=3,
                  train_subset=448, record="every", patience=5)[0]
    return run, runs


def test_raw_histogram_keeps_every_count_and_trims_empty_ends():
    edges = np.linspace(-10.0, 2.0, 49)  # the log10 edges
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    counts[0], counts[10], counts[11], counts[-2], counts[-1] = 3, 5, 7, 2, 4  # under (zeros), 2 bins, over, NaN
    raw = raw_histogram(counts, edges)
    assert raw["num"] == 17 and sum(raw["bucket_counts"]) == 17
    assert raw["min"] == pytest.approx(-10.25) and raw["max"] == pytest.approx(2.25)
    assert len(raw["bucket_limits"]) == len(raw["bucket_counts"])
    assert raw_histogram(np.zeros(len(edges) + 2), edges) is None
    raw = raw_histogram(np.r_[0, 0, 4, 0, 0, 9], np.array([0.0, 1.0, 2.0, 3.0]))
    assert raw["bucket_limits"] == [2.0] and raw["min"] == 1.0 and raw["num"] == 4


def test_events_read_back_one_run_per_seed(recorded_run, tmp_path, capsys):
    run, runs = recorded_run
    logdir = tmp_path / "tb"
    assert cli.main(["tensorboard", run.name, "--logdir", str(logdir), "--out", str(runs)]) == 0
    assert "2 TensorBoard run(s)" in capsys.readouterr().out
    rec = load_recording(run.path / "recordings")
    hists = rec.tables()["histograms"]
    for seed in (0, 1):
        acc = EventAccumulator(str(logdir / run.name / f"seed-{seed}"), size_guidance={"histograms": 0, "scalars": 0})
        acc.Reload()
        tags = acc.Tags()
        assert {"metrics/val_acc", "metrics/train_loss", "test/accuracy"} <= set(tags["scalars"])
        val = acc.Scalars("metrics/val_acc")
        m = run.metrics[run.metrics["seed"] == seed]
        assert [e.step for e in val] == m["epoch"].tolist()
        assert [e.value for e in val] == pytest.approx(m["val_acc"].tolist(), abs=1e-6)
        mine = hists[hists["seed"] == seed]
        log_grad = mine[(mine["kind"] == "grad") & (mine["scale"] == "log10")]
        layer = log_grad["layer"].iloc[0]
        stored = log_grad[log_grad["layer"] == layer].sort_values("step")
        events = acc.Histograms(f"grad_log10/{layer}")
        assert len(events) == len(stored) > 20  # every recorded step kept, not a sample of them
        assert [e.step for e in events] == stored["step"].tolist()
        for e, counts in zip(events, stored["counts"]):
            assert e.histogram_value.num == counts[:-1].sum()  # the last count is NaN/inf, not on the axis
            assert sum(e.histogram_value.bucket) == counts[:-1].sum() > 0
            assert -11 < e.histogram_value.min and e.histogram_value.max < 3  # log10 space, not raw values


def test_a_sweep_exports_its_runs_and_a_bad_target_is_one_line(tmp_path, capsys):
    from gradflow.sweep_run import sweep
    result = sweep(act="relu", lr="0.05,0.1", preset="smoke", max_epochs=1, n_seeds=2, train_subset=256,
                   record="off", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", progress=False,
                   log=lambda *_: None)
    assert cli.main(["tensorboard", str(result.directory), "--logdir", str(tmp_path / "tb"),
                     "--out", str(tmp_path / "runs")]) == 0
    written = sorted(p.relative_to(tmp_path / "tb").as_posix() for p in (tmp_path / "tb").glob("*/seed-*"))
    assert len(written) == 4  # 2 runs x 2 seeds
    capsys.readouterr()
    assert cli.main(["tensorboard", "no-such-thing", "--logdir", str(tmp_path / "tb2"),
                     "--out", str(tmp_path / "runs"), "--sweeps-dir", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err.strip()
    assert "neither a sweep nor a run" in err and len(err.splitlines()) == 1


def test_exporting_again_replaces_the_earlier_export_and_writes_each_runs_settings(recorded_run, tmp_path, capsys):
    """A second export into the same logdir added a second event file per run (every curve drawn twice);
    the settings were nowhere, so runs of a sweep could not be told apart but by their hashes."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    run, runs = recorded_run
    logdir = tmp_path / "tb"
    for _ in range(2):
        assert cli.main(["tensorboard", run.name, "--logdir", str(logdir), "--out", str(runs)]) == 0
    assert "replacing the earlier export of 2" in capsys.readouterr().out
    seed_dir = logdir / run.name / "seed-0"
    assert len(list(seed_dir.glob("events.out.tfevents.*"))) == 1
    acc = EventAccumulator(str(seed_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert len(acc.Scalars("metrics/val_acc")) == len(run.metrics[run.metrics["seed"] == 0])  # once each
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    settings = {k: (v.string_value or v.number_value) for k, v in info.hparams.items()}
    assert settings["act"] == "tanh" and settings["seed"] == 0 and settings["preset"] == "smoke"
    assert settings["hidden"] == "64-32" and settings["run"] == run.name
    assert "settings/text_summary" in acc.Tags()["tensors"]  # the same settings as a text summary
