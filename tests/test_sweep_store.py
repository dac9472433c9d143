"""A sweep's folder and its run store: names, the recorded store, interruptions, the plan's echo, bad values."""
from __future__ import annotations

import json
import stat

import pytest

import gradflow.sweep_run as sweep_mod
from gradflow import cli, sweep_results
from gradflow.sweep_grid import SweepError
from gradflow.sweep_run import sweep

TINY = dict(preset="smoke", max_epochs=1, record="off", n_seeds=2, train_subset=256)
TINY_ARGS = ["--preset", "smoke", "--max-epochs", "1", "--record", "off", "--n-seeds", "2", "--train-subset", "256",
             "--no-progress"]


def _quiet(*_):
    pass


@pytest.mark.parametrize("argv, message", [
    (["--momentum", "-1"], "setting momentum takes values >= 0.0 and < 1.0, got -1.0"),
    (["--momentum", "2"], "setting momentum takes values >= 0.0 and < 1.0, got 2.0"),
    (["--cpus-per-shard", "-1"], "--cpus-per-shard takes a number >= 0"),
    (["--shards-per-gpu", "0"], "--shards-per-gpu takes a whole number >= 1"),
    (["--shards-per-gpu", "0", "--executor", "ray"], "--shards-per-gpu takes a whole number >= 1"),
    (["--max-models", "0"], "--max-models takes a whole number >= 1"),
    (["--name", "../escape"], "sweep name '../escape' must be a plain folder name"),
    (["--name", "a/b"], "must be a plain folder name"),
    (["--name", ".."], "must be a plain folder name"),
])
def test_bad_values_are_one_line_before_anything_is_written(tmp_path, capsys, argv, message):
    """These passed the dry run (or, on Ray, failed only after Ray started and files were written)."""
    for dry in ([], ["--dry-run"]):
        code = cli.main(["sweep", "--act", "relu", *TINY_ARGS, *argv, *dry, "--out", str(tmp_path / "runs"),
                         "--sweeps-dir", str(tmp_path / "sw")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "runs").exists() and not (tmp_path / "sw").exists() and not (tmp_path / "escape").exists()


def test_a_name_another_grid_holds_is_refused_unless_overwrite(tmp_path):
    kw = dict(runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", name="mine", progress=False, log=_quiet, **TINY)
    first = sweep(act="relu", **kw)
    assert sweep(act="relu", **kw).plan.n_cached == 1  # the same grid again: a resume, not a clash
    with pytest.raises(SweepError, match="sweep name 'mine' is already used by a different grid .* --overwrite"):
        sweep(act="relu,tanh", dry_run=True, **kw)
    assert sweep_results.load_table(first.directory)["act"].tolist() == ["relu", "relu"]  # untouched
    replaced = sweep(act="tanh", overwrite=True, **kw)
    assert replaced.table["act"].unique().tolist() == ["tanh"]
    status = json.loads((first.directory / sweep_results.STATUS_FILE).read_text())
    assert all("tanh" in run for s in status["shards"] for run in s["runs"])  # the other grid's status is gone


def test_the_plan_records_its_run_store_and_readers_use_it(tmp_path, capsys):
    """`gradflow tensorboard SWEEP --out OTHER` read same-named runs from another store, silently."""
    result = sweep(act="relu", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", progress=False, log=_quiet,
                   **TINY)
    plan = sweep_results.load_plan(result.directory)
    assert plan["runs_dir"] == str((tmp_path / "runs").resolve())
    (tmp_path / "other").mkdir()
    assert cli.main(["tensorboard", str(result.directory), "--logdir", str(tmp_path / "tb"),
                     "--out", str(tmp_path / "other")]) == 0
    err = capsys.readouterr().err
    assert f"trained into the run store {(tmp_path / 'runs').resolve()}" in err and "not from" in err
    assert len(list((tmp_path / "tb").glob("*/seed-*"))) == 2
    assert sweep_results.runs_dir_of(result.directory) == plan["runs_dir"]


def test_an_interrupted_sweep_keeps_what_finished_and_says_interrupted(tmp_path, monkeypatch, capsys):
    """After kill -9 `gradflow runs --sweep` said "(it never finished a shard)" with 2 of 4 done; after
    Ctrl-C the summary said FAILED; status.json kept only the last invocation's shards."""
    real = sweep_mod.train_shard
    seen = []

    def stopped(**job):
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the third shard
        status = json.loads((tmp_path / "sw" / "four" / sweep_results.STATUS_FILE).read_text()) if seen else None
        seen.append(status)
        return real(**job)

    kw = dict(act="relu,tanh", lr="0.05,0.1", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", name="four",
              max_models=2, progress=False, log=_quiet, **TINY)
    monkeypatch.setattr(sweep_mod, "train_shard", stopped)
    with pytest.raises(KeyboardInterrupt):
        sweep(**kw)
    assert [s["ok"] for s in seen[1]["shards"]] == [True, None, None, None]  # written as each shard ends
    directory = tmp_path / "sw" / "four"
    summary = sweep_results.format_summary(sweep_results.load_table(directory))
    assert "FAILED" not in summary and "NOT TRAINED 2 runs" in summary and "interrupted (Ctrl-C)" in summary
    for name in (sweep_results.TABLE_FILE, sweep_results.CSV_FILE):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o644 & ~_umask()  # like plan.json, not 0600
    assert stat.S_IMODE((directory / sweep_results.TABLE_FILE).stat().st_mode) == \
        stat.S_IMODE((directory / sweep_results.PLAN_FILE).stat().st_mode)

    (directory / sweep_results.TABLE_FILE).unlink()  # as a kill -9 leaves it: no table at all
    assert cli.main(["runs", "--sweep", "four", "--sweeps-dir", str(tmp_path / "sw")]) == 0
    out = capsys.readouterr().out
    assert "never finished" not in out and "rebuilt from the run store" in out and "2 of 4 runs finished" in out
    assert cli.main(["runs", "--sweep", "four", "--sweeps-dir", str(tmp_path / "sw"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok", "missing"}

    monkeypatch.setattr(sweep_mod, "train_shard", real)
    again = sweep(**kw)
    shards = json.loads((directory / sweep_results.STATUS_FILE).read_text())["shards"]
    assert len(shards) == 4 and all(s["ok"] for s in shards)  # both invocations' shards, merged
    assert sum(bool(s.get("earlier")) for s in shards) == 2 and not again.failed


def _umask() -> int:
    import os
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_the_dry_run_echoes_the_fixed_settings_every_axis_per_shard_and_the_time(tmp_path):
    lines = []
    kw = dict(init="default,kaiming", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", max_models=2,
              progress=False, **TINY)
    sweep(act="relu,tanh", dry_run=True, log=lines.append, **kw)
    text = "\n".join(lines)
    assert "every run: up to 1 epoch (--max-epochs), patience 2, momentum 0.9, data synthetic, train subset 256 " \
           "(--train-subset), recording off (--record)" in text
    assert "; act relu; init kaiming" in text  # which inits each shard holds, not only its activations
    assert f"time: no estimate (no finished run of these shapes in {(tmp_path / 'runs').resolve()}" in text
    sweep(act="relu", log=_quiet, **kw)  # one finished run of this shape to measure from
    lines.clear()
    sweep(act="relu,tanh", dry_run=True, log=lines.append, **kw)
    assert any(line.startswith("time: at most about ") and "measured from finished runs" in line
               for line in "\n".join(lines).splitlines())
