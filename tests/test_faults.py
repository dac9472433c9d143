"""Fault injection: the run store under kill -9, damage after the fact, a full disk and a second writer;
kill -9 of a report render.

Each fault must end with no finished-looking broken run, one clear line, and the next command
recovering: the run trained again gives the same numbers as one never disturbed ("runs lost" counts
the runs that did not). Trainings are the `smoke` preset on the synthetic set, so the whole file
takes well under 90 s on 2 cores. Children are forked from a forkserver that imported gradflow but
ran no torch code, so each kill costs a fraction of a second instead of an interpreter start.
The totals are printed by the last test (`pytest -s tests/test_faults.py`) and quoted in the README.
"""
from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from gradflow import store
from gradflow.cli import main
from gradflow.manifest import MANIFEST

TOTALS = {"faults tried": 0, "runs lost": 0, "broken runs listed as good": 0}
KILL_BUDGET_S = float(os.environ.get("GRADFLOW_FAULT_BUDGET_S", "15"))
TRAIN = ["train", "--act", "relu", "--preset", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def ctx():
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["gradflow.train", "gradflow.cli", "gradflow.commands.train"])
    return context


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The undisturbed run: what every recovered run must equal."""
    root = tmp_path_factory.mktemp("reference")
    assert main([*TRAIN, "--out", str(root)]) == 0
    [row] = store.list_runs(root).to_dict("records")
    return {"name": row["run"], "numbers": _numbers(store.load_run(row["run"], root)), "root": root}


def _numbers(run) -> list:
    """What must come back the same: per-seed test accuracy and every epoch's training and validation loss."""
    return [run.results["test_acc"].tolist(), run.metrics["train_loss"].tolist(), run.metrics["val_loss"].tolist()]


def _child(argv, out_file, kill_at_replace, after):
    """Run ``gradflow argv``; SIGKILL ourselves at the ``kill_at_replace``-th os.replace (before/after it)."""
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if kill_at_replace:
        real_replace, calls = os.replace, [0]

        def replace(src, dst, *args, **kwargs):
            calls[0] += 1
            if calls[0] == kill_at_replace and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst, *args, **kwargs)
            if calls[0] == kill_at_replace and after:
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace
    from gradflow.cli import main as cli_main
    sys.stdout.flush()
    os._exit(cli_main(argv))


def _spawn(ctx, argv, out_file, kill_at_replace=0, after=False):
    p = ctx.Process(target=_child, args=(argv, str(out_file), kill_at_replace, after))
    p.start()
    return p


def _assert_store_whole(root: Path) -> list[str]:
    """Every run listed loads whole; nothing listed as good is broken. Returns the good runs' names."""
    good = []
    for row in store.list_runs(root).to_dict("records") if root.is_dir() else []:
        assert not isinstance(row.get("error"), str), f"a killed writer left a damaged run: {row['error']}"
        run = store.load_run(row["run"], root)
        try:
            assert len(run.metrics) and all(run.model(s) is not None for s in run.seeds)
            assert run.recordings is not None and len(run.recordings.tables()["scalars"])
        except Exception:
            TOTALS["broken runs listed as good"] += 1
            raise
        good.append(row["run"])
    return good


def _recover_and_compare(root: Path, reference, cli_out=None) -> None:
    """The next command recovers: train again, same numbers as the undisturbed run, no leftovers."""
    assert main([*TRAIN, "--out", str(root)]) == 0, cli_out
    numbers = _numbers(store.load_run(reference["name"], root))
    if numbers != reference["numbers"]:
        TOTALS["runs lost"] += 1
    assert numbers == reference["numbers"]
    assert not [p for p in root.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_kill_9_at_every_kind_of_point_of_train(ctx, reference, tmp_path):
    """kill -9 at a random os.replace of the run's writing (before or after it) or at a random moment."""
    # how many renames one train makes, counted on an undisturbed child
    probe = tmp_path / "probe"
    p = _spawn(ctx, [*TRAIN, "--out", str(probe)], tmp_path / "probe.log")
    started = time.monotonic()
    p.join(120)
    full_s = time.monotonic() - started
    assert p.exitcode == 0, (tmp_path / "probe.log").read_text()
    renames = len([f for f in json.loads((probe / reference["name"] / MANIFEST).read_text())["files"]]) + 1
    rng = random.Random(11)
    root, kills, deadline = tmp_path / "runs", 0, time.monotonic() + KILL_BUDGET_S
    while time.monotonic() < deadline or kills < 6:
        log = tmp_path / f"kill-{kills}.log"
        if kills % 3 == 2:  # a random moment: data loading, training, diagnosis or writing
            p = _spawn(ctx, [*TRAIN, "--out", str(root), "--overwrite"], log)
            time.sleep(rng.uniform(0.05, full_s))
            p.kill()
        else:
            p = _spawn(ctx, [*TRAIN, "--out", str(root), "--overwrite"], log,
                       kill_at_replace=rng.randint(1, renames), after=rng.random() < 0.5)
        p.join(120)
        kills += 1
        TOTALS["faults tried"] += 1
        good = _assert_store_whole(root)  # killed or not, nothing broken is listed
        assert good in ([], [reference["name"]])
        if good:  # a run that is there is the undisturbed run's numbers
            assert _numbers(store.load_run(good[0], root)) == reference["numbers"]
        if kills % 4 == 0:  # now and then the next command runs undisturbed and must recover
            _recover_and_compare(root, reference, log.read_text())
    _recover_and_compare(root, reference)


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_files_damaged_after_the_fact(reference, tmp_path, damage, capsys):
    """Every file of a finished run, deleted, truncated or changed: named as DAMAGED, then retrained."""
    files = sorted(json.loads((reference["root"] / reference["name"] / MANIFEST).read_text())["files"])
    retrain = random.Random(damage).choice(files)  # retraining after each would take too long on 2 cores
    for name in [*files, MANIFEST]:
        root = tmp_path / f"{damage}-{name.replace('/', '_')}"
        shutil.copytree(reference["root"], root)
        path = root / reference["name"] / name
        if damage == "delete":
            path.unlink()
        elif damage == "truncate":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        else:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0x01
            path.write_bytes(bytes(data))
        TOTALS["faults tried"] += 1
        capsys.readouterr()
        assert main(["runs", "--out", str(root)]) == 0
        listed = capsys.readouterr().out.strip().splitlines()
        if not (len(listed) == 1 and listed[0].startswith(f"run {reference['name']} is DAMAGED: ")):
            TOTALS["broken runs listed as good"] += 1
        assert len(listed) == 1 and listed[0].startswith(f"run {reference['name']} is DAMAGED: "), listed
        shown = MANIFEST if name == MANIFEST else name
        assert shown in listed[0]
        assert not store.exists(reference["name"], root)
        if name == retrain:
            _recover_and_compare(root, reference)
            err = capsys.readouterr().err
            assert f"run {reference['name']} is DAMAGED" in err and "training it again" in err


def test_a_full_disk_while_writing(reference, tmp_path, monkeypatch, capsys):
    """Writes of a run raising ENOSPC in turn: one line, no run, no leftovers; then it recovers."""
    import gradflow.atomic as atomic
    writes = len(json.loads((reference["root"] / reference["name"] / MANIFEST).read_text())["files"]) + 1
    real = atomic._fsync
    points = sorted({1, writes, random.Random(28).randrange(2, writes)})  # the first, the last, one between
    for failing in points:
        root = tmp_path / f"full-{failing}"
        calls = [0]

        def fsync(path, failing=failing, calls=calls):
            calls[0] += 1
            if calls[0] == failing:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            real(path)
        monkeypatch.setattr(atomic, "_fsync", fsync)
        TOTALS["faults tried"] += 1
        capsys.readouterr()
        assert main([*TRAIN, "--out", str(root)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("gradflow: error: no space left on device: ") and "free some space" in line
        assert [p.name for p in root.iterdir()] == [".lock"]  # no run, no temporary file or folder
        monkeypatch.setattr(atomic, "_fsync", real)
        _recover_and_compare(root, reference)


def test_a_concurrent_writer_waits_then_finds_the_run(ctx, reference, tmp_path):
    """Two `gradflow train` on one runs folder: the second says it waits, then loads the first one's run."""
    root = tmp_path / "runs"
    slow = [*TRAIN, "--max-epochs", "3", "--out", str(root)]
    first = _spawn(ctx, slow, tmp_path / "first.log")
    deadline = time.monotonic() + 60
    while not ((root / ".lock").is_file() and (root / ".lock").read_text().startswith("pid")):
        assert time.monotonic() < deadline and first.exitcode is None, "the first writer never took the lock"
        time.sleep(0.005)
    second = _spawn(ctx, slow, tmp_path / "second.log")
    first.join(120)
    second.join(120)
    TOTALS["faults tried"] += 1
    out1, out2 = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()
    assert first.exitcode == 0 and second.exitcode == 0, (out1, out2)
    assert f"another gradflow process is writing to {root} (pid {first.pid}" in out2
    assert _assert_store_whole(root) == [reference["name"]]
    # both report the same run: the second loaded it instead of training it again
    assert out1.strip().splitlines()[-1] == out2.strip().splitlines()[-1]
    _recover_and_compare(root, reference)


def _pages_whole(out: Path) -> None:
    """Whatever a killed render left: every page and the index are complete, never half written."""
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        if not text.rstrip().endswith("</html>"):
            TOTALS["broken runs listed as good"] += 1
        assert text.rstrip().endswith("</html>"), f"{page.name} is cut short"
    if (out / "index.json").exists():
        json.loads((out / "index.json").read_text())  # parses: it was replaced in one step


def test_kill_9_of_report_leaves_no_half_page(tmp_path):
    """kill -9 of a render (the whole process group: the parent and its kernel) at random moments;
    the pages on disk stay whole and the next render recovers."""
    import subprocess

    out = tmp_path / "reports"
    code = ("import sys; from gradflow.report import render_all; "
            f"sys.exit(render_all({str(out)!r}, preset='smoke', runs_dir={str(tmp_path / 'runs')!r}, jobs=1, "
            "notebooks=['01_activation_functions'], parameters={'points': 201}))")
    (tmp_path / "runs").mkdir()

    def render() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    started = time.monotonic()
    assert render().wait(300) == 0  # undisturbed: how long one render takes here
    full_s = time.monotonic() - started
    rng = random.Random(5)
    for _ in range(3):
        p = render()
        time.sleep(rng.uniform(0.2, full_s))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(60)
        TOTALS["faults tried"] += 1
        _pages_whole(out)
    p = render()
    assert p.wait(300) == 0, p.stderr.read()  # the next render recovers
    _pages_whole(out)
    reports = json.loads((out / "index.json").read_text())["reports"]
    assert [(r["name"], r["status"]) for r in reports] == [("01_activation_functions", "ok")]


def test_fault_totals():
    """Printed for the README: every fault above tried, no run lost, nothing broken listed as good."""
    print("\n" + ", ".join(f"{k} {v}" for k, v in TOTALS.items()))
    assert TOTALS["faults tried"] >= 40
    assert TOTALS["runs lost"] == 0 and TOTALS["broken runs listed as good"] == 0
