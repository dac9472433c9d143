"""Bad input and interruptions: one clear line, a non-zero exit, no traceback, nothing lost.

Each test reproduces a problem a reliability review found (recordings saved over one another, corrupt
dataset files, damaged recording summaries, settings that were silently misread, a report whose
workers outlived it) and fails without its fix. Training is the `smoke` preset on synthetic data.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import one_clear_line

from gradflow import atomic
from gradflow.cli import main
from gradflow.config import make_config
from gradflow.record import Recorder
from gradflow.recording import SUMMARY_FILE, TABLE_FILES, NoRecording, RecordingError, load_recording

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- 1. a save over a recording


def _recording(depth: int, steps: int) -> Recorder:
    torch.manual_seed(0)
    layers = [m for _ in range(depth) for m in (nn.Linear(8, 8), nn.Tanh())]
    model = nn.Sequential(*layers, nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, schedule="all") as rec:
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(torch.randn(16, 8)), torch.randint(0, 2, (16,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss)
    return rec


def _interrupt_at_replace(monkeypatch, n: int):
    """KeyboardInterrupt at the ``n``-th os.replace from now (1-based)."""
    real, count = os.replace, [0]

    def replace(a, b):
        count[0] += 1
        if count[0] == n:
            raise KeyboardInterrupt
        return real(a, b)
    monkeypatch.setattr(os, "replace", replace)
    return count


def _steps_and_layers(folder) -> tuple:
    rec = load_recording(folder)
    scalars = rec.tables()["scalars"]
    return rec.summary()["steps"], int(scalars["step"].max()), len(rec.summary()["layers"])


def test_an_interrupted_save_keeps_the_old_recording_whole(tmp_path, monkeypatch):
    first, second = _recording(1, 30), _recording(2, 10)
    folder = tmp_path / "rec"
    first.save(folder)
    old = _steps_and_layers(folder)
    count = _interrupt_at_replace(monkeypatch, 10_000)
    second.save(tmp_path / "probe")
    renames = count[0]  # the os.replace calls of one save: 5 files, then the swap
    monkeypatch.undo()
    for n in range(1, renames + 1):  # interrupted at every rename of the save, the swap's two included
        _interrupt_at_replace(monkeypatch, n)
        with pytest.raises(KeyboardInterrupt):
            second.save(folder)
        monkeypatch.undo()
        assert _steps_and_layers(folder) == old, f"interrupted at rename {n}"
        assert not atomic.leftovers(folder.absolute(), "tmp")
    second.save(folder)
    assert _steps_and_layers(folder) == _steps_and_layers(tmp_path / "probe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe", "rec"]


def test_a_save_killed_between_its_renames_is_recovered_by_the_next_load(tmp_path):
    first = _recording(1, 30)
    folder = tmp_path / "rec"
    first.save(folder)
    old = _steps_and_layers(folder)
    os.replace(folder, tmp_path / ".old-rec-0123abcd")  # a kill -9 after the first rename of the swap
    (tmp_path / ".tmp-rec-89abcdef").mkdir()
    assert _steps_and_layers(folder) == old  # put back by the load
    _recording(2, 10).save(folder)  # the save removes the unfinished folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_a_mixed_folder_is_refused_not_diagnosed(tmp_path, monkeypatch, capsys):
    """A folder holding a user's own files is written in place; a save interrupted there is refused."""
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    _recording(1, 30).save(folder)
    _interrupt_at_replace(monkeypatch, 2)  # after the first table
    with pytest.raises(KeyboardInterrupt):
        _recording(2, 10).save(folder)
    monkeypatch.undo()
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(RecordingError, match="inconsistent: recording_scalars.parquet"):
        load_recording(folder)
    assert main(["diagnose", str(folder)]) == 2
    one_clear_line(capsys, "inconsistent", "save the recording again")


# --------------------------------------------------------------------------- 3. a damaged recording.json


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "rec"
    _recording(1, 5).save(folder)
    return folder


@pytest.mark.parametrize("text, words", [
    ("garbage{", ["recording.json is not valid JSON"]),
    ('{"format":"gradflow.recording","version":1}', ["'layers'", "'histogram_edges'", "missing or malformed"]),
    ("[1,2]", ["a JSON object was expected", "list"]),
    ('{"format":"gradflow.recording","version":"x"}', ["version that is not a number"]),
])
def test_a_damaged_summary_is_one_line_naming_the_file(saved, tmp_path, text, words, capsys):
    folder = tmp_path / "rec"
    folder.mkdir()
    for f in TABLE_FILES.values():
        (folder / f).write_bytes((saved / f).read_bytes())
    (folder / SUMMARY_FILE).write_text(text)
    with pytest.raises(RecordingError):
        load_recording(folder)
    assert main(["diagnose", str(folder)]) == 2
    one_clear_line(capsys, str(folder / SUMMARY_FILE), *words)


def test_a_damaged_table_is_named(saved, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    for f in [SUMMARY_FILE, *TABLE_FILES.values()]:
        (folder / f).write_bytes((saved / f).read_bytes())
    (folder / TABLE_FILES["scalars"]).write_bytes(b"not parquet")
    with pytest.raises(RecordingError, match="recording_scalars.parquet"):
        load_recording(folder)
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    del summary["table_files"]  # a recording saved before checksums: the reader still names the file
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    with pytest.raises(RecordingError, match="cannot read recording_scalars.parquet"):
        load_recording(folder)


def test_no_recording_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no gradflow recording"):
        load_recording(tmp_path)
    assert issubclass(NoRecording, RecordingError)


# --------------------------------------------------------------------------- 4, 5, 8. settings


@pytest.mark.parametrize("overrides, words", [
    ({"seeds": "42"}, ["seeds must be a list of integers", "'42'"]),
    ({"seeds": "42,43"}, ["seeds must be a list of integers", "'42,43'"]),
    ({"hidden_sizes": "64"}, ["hidden_sizes must be a list of integers", "'64'"]),
    ({"seeds": 42}, ["seeds must be a list of integers"]),
    ({"seeds": [4.5]}, ["seeds must be a list of integers"]),
    ({"seeds": [2**64]}, ["from 0 to 2**63 - 1"]),
    ({"seeds": [-1]}, ["from 0 to 2**63 - 1"]),
    ({"momentum": math.nan}, ["momentum must be in [0, 1)"]),
    ({"momentum": -1.0}, ["momentum must be in [0, 1)"]),
    ({"momentum": 1.0}, ["momentum must be in [0, 1)"]),
    ({"weight_decay": math.nan}, ["weight_decay must be a finite number >= 0"]),
    ({"weight_decay": math.inf}, ["weight_decay must be a finite number >= 0"]),
    ({"weight_decay": -0.1}, ["weight_decay must be a finite number >= 0"]),
])
def test_settings_that_were_misread_are_refused(overrides, words):
    with pytest.raises(ValueError) as exc:
        make_config("relu", "smoke", **overrides)
    for word in words:
        assert word in str(exc.value)


def test_settings_that_are_fine_still_pass():
    assert make_config("relu", "smoke", seeds=[42, 43]).seeds == (42, 43)
    assert make_config("relu", "smoke", seeds=np.arange(2), hidden_sizes=(64,)).seeds == (0, 1)
    assert make_config("relu", "smoke", seeds=range(3), momentum=0.0, weight_decay=0.0).seeds == (0, 1, 2)


def test_compare_refuses_what_it_cannot_train(tmp_path):
    from gradflow.train import compare
    with pytest.raises(ValueError, match="seeds must be a list of integers"):
        compare(["relu"], preset="smoke", seeds="42", runs_dir=tmp_path, progress=False)
    with pytest.raises(TypeError, match="an activation name, a config dict or a list of them.*got 123"):
        compare(123, preset="smoke", runs_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # refused before anything was trained


@pytest.mark.parametrize("option, words", [
    (["--momentum", "nan"], ["momentum must be in [0, 1)", "nan"]),
    (["--momentum", "-1"], ["momentum must be in [0, 1)"]),
    (["--weight-decay", "nan"], ["weight_decay must be a finite number"]),
    (["--seeds", str(2**70)], ["a seed must be an integer from 0 to 2**63 - 1"]),
])
def test_train_refuses_bad_settings_in_one_line(tmp_path, capsys, option, words):
    out = tmp_path / "runs"
    assert main(["train", "--act", "relu", "--preset", "smoke", "--no-progress", "--out", str(out), *option]) == 2
    one_clear_line(capsys, *words)
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]  # nothing cached


def test_out_of_memory_is_one_line_naming_the_sizes(tmp_path, capsys, monkeypatch):
    import gradflow.train as train

    def no_memory(*args, **kwargs):  # what the CPU allocator says (the real one needs 160 GB to fail)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 160000000000 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(train, "fit", no_memory)
    assert main(["train", "--act", "relu", "--preset", "smoke", "--no-progress", "--hidden", "200000", "200000",
                 "--out", str(tmp_path / "runs")]) == 2
    one_clear_line(capsys, "out of memory", "hidden widths 200000 200000", "2 seed(s)", "149.0 GiB", "--hidden")


# --------------------------------------------------------------------------- 6. train --case-studies


def test_case_studies_refuse_options_they_do_not_use(tmp_path, capsys, monkeypatch):
    import gradflow.case_studies as cs
    monkeypatch.setattr(cs, "run", lambda args: pytest.fail("trained despite options it ignores"))
    empty = tmp_path / "emptyd"
    empty.mkdir()
    assert main(["train", "--case-studies", "--preset", "smoke", "--act", "foo", "--lr", "-5", "--seeds", "x",
                 "--device", "nonsense", "--data-dir", str(empty), "--out", str(tmp_path / "cs")]) == 2
    one_clear_line(capsys, "--act, --seeds, --lr, --device do not apply to --case-studies", "--data-dir")


def test_case_studies_read_data_from_the_data_dir_given(tmp_path, monkeypatch):
    """--data-dir reaches the case studies' data loading (it used to extract FashionMNIST into ./data)."""
    import gradflow.case_studies as cs
    seen = {}

    def train_case_studies(preset, **kwargs):
        seen.update(kwargs)
        return {}
    monkeypatch.setattr(cs, "train_case_studies", train_case_studies)
    empty = tmp_path / "emptyd"
    empty.mkdir()
    assert main(["train", "--case-studies", "--preset", "smoke", "--no-progress", "--data-dir", str(empty),
                 "--out", str(tmp_path / "cs")]) == 0
    assert Path(seen["data_root"]) == empty


# --------------------------------------------------------------------------- 8. diagnose's inputs


def test_diagnose_a_file_says_it_is_a_file(capsys, tmp_path):
    afile = tmp_path / "passwd"
    afile.write_text("root:x:0:0\n")
    assert main(["diagnose", str(afile)]) == 2
    one_clear_line(capsys, f"{afile} is a file, not a run")


def test_load_recording_of_a_run_folder_names_what_reads_it(tmp_path):
    run = tmp_path / "relu-smoke-0123456789"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "results.json").write_text("{}")
    with pytest.raises(NoRecording, match="is a gradflow run folder.*load_run"):
        load_recording(run)


# --------------------------------------------------------------------------- 7. a report killed mid-render


def _state(pid) -> tuple[str, int]:
    """(state letter, parent pid) of a process; ("", 0) when it is gone."""
    try:
        state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except OSError:
        return "", 0
    return state, int(ppid)


def _alive(pid: int) -> bool:
    return _state(pid)[0] not in ("", "Z")  # a zombie has ended; only its exit status is left


def _interrupt_render(tmp_path: Path, sig: int) -> tuple[int, str, bool]:
    """Start `gradflow report` with 2 workers, send ``sig`` to the parent alone once both are up (as `kill PID`
    does); its exit status, its stderr, and whether the workers were gone 15 s later."""
    (tmp_path / "runs").mkdir()
    report = subprocess.Popen([sys.executable, "-m", "gradflow", "report", "--preset", "smoke", "--page", "1",
                               "--page", "2", "--jobs", "2", "--reports", str(tmp_path / "reports"),
                               "--out", str(tmp_path / "runs")], cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, workers = time.monotonic() + 120, []
    while len(workers) < 2:  # the spawn workers (the resource tracker is a child too: skipped)
        assert time.monotonic() < deadline and report.poll() is None, "the render's workers never started"
        time.sleep(0.2)
        workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _state(p.name)[1] == report.pid
                   and _alive(int(p.name)) and b"spawn_main" in (p / "cmdline").read_bytes()]
    os.kill(report.pid, sig)
    try:
        err = report.communicate(timeout=60)[1]  # the workers hold its stderr open too
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.2)
        return report.returncode, err, not any(map(_alive, workers))
    finally:
        for p in filter(_alive, workers):
            os.kill(p, signal.SIGKILL)


def test_sigterm_of_a_report_stops_its_workers_and_writes_the_index(tmp_path):
    status, err, gone = _interrupt_render(tmp_path, signal.SIGTERM)
    assert gone, "workers outlived the report"
    assert status == 130, err
    assert "Traceback" not in err and "unfinished one was discarded" not in err, err
    assert "interrupted; the pages rendered before it are kept whole" in err and "index.html lists them" in err
    index = json.loads((tmp_path / "reports" / "index.json").read_text())
    assert {r["name"] for r in index["reports"]} <= {"01_activation_functions", "02_gradients_at_init"}
    assert (tmp_path / "reports" / "index.html").is_file()


def test_workers_of_a_report_killed_by_sigkill_end_themselves(tmp_path):
    _, _, gone = _interrupt_render(tmp_path, signal.SIGKILL)  # no handler runs: the workers must notice on their own
    assert gone, "workers outlived the report"


def test_the_api_diagnoses_a_run_folder_as_the_command_does(tmp_path):
    """gradflow.diagnose(path) on a stored run's folder reads the run (its recording and metrics), as
    `gradflow diagnose PATH` does, instead of saying the folder holds no recording."""
    import gradflow
    from gradflow import train
    from gradflow.config import make_config as config
    from gradflow.data import synthetic
    run = train.train_runs([config("relu", "smoke")], runs_dir=tmp_path, data=synthetic(n_train=256, n_val=64,
                                                                                          n_test=64),
                           progress=False, device="cpu")[0]
    findings = gradflow.diagnose(run.path)
    assert [f.code for f in findings] == [f["code"] for f in run.findings]
