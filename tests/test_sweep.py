"""gradflow sweep: the planner, bad axes, the table, resume after an interruption, a failing shard."""
from __future__ import annotations

import pandas as pd
import pytest

import gradflow.sweep_run as sweep_mod
from gradflow import cli, store, sweep_results
from gradflow.config import make_config
from gradflow.sweep_grid import SweepError, make_grid, read_grid_file
from gradflow.sweep_plan import DATA_BYTES, member_bytes, plan
from gradflow.sweep_run import sweep

# The smallest real training: the synthetic set, one epoch of 4 steps, no recording, two seeds.
TINY = dict(preset="smoke", max_epochs=1, record="off", n_seeds=2, train_subset=256)


def _quiet(*_):
    pass


def test_planner_groups_stackable_runs_and_keeps_learning_rates_together(tmp_path):
    grid = make_grid({"act": "relu,tanh", "lr": "0.05,0.1", "batch_size": "32,64", "preset": "smoke", "n_seeds": 3})
    p = plan(grid, runs_dir=tmp_path)
    assert len(p.configs) == 8 and p.n_cached == 0
    assert len(p.shards) == 2  # batch size splits; activations and learning rates do not
    for s in p.shards:
        assert len(s.configs) == 4 and s.members == 12
        assert len({c.batch_size for c in s.configs}) == 1 and len({c.lr for c in s.configs}) == 2
    # RMSprop too; but another optimizer is another shard
    p2 = plan(make_grid({"act": "relu", "optimizer": "sgd,adam", "lr": "0.01,0.02", "preset": "smoke"}), tmp_path)
    assert sorted(len(s.configs) for s in p2.shards) == [2, 2]


def test_memory_bound_splits_a_group_and_a_grid_too_big_is_refused(tmp_path):
    grid = make_grid({"act": "relu,tanh,elu", "lr": "0.05,0.1", "preset": "smoke", "n_seeds": 2})
    per_model = member_bytes(grid.configs()[0])
    budget = DATA_BYTES["synthetic"] + 5 * per_model  # room for 5 models: two runs of 2 seeds per shard
    p = plan(grid, runs_dir=tmp_path, memory=budget)
    assert [s.members for s in p.shards] == [4, 4, 4]
    assert all(s.est_bytes <= budget for s in p.shards)
    assert "memory per shard" in p.describe()
    assert [s.members for s in plan(grid, runs_dir=tmp_path, max_models=6).shards] == [6, 6]
    with pytest.raises(SweepError, match="grid too big for the device's memory"):
        plan(grid, runs_dir=tmp_path, memory=DATA_BYTES["synthetic"] + per_model)


def test_min_shards_splits_the_biggest_groups_and_never_a_runs_seeds(tmp_path):
    """Ray's CPU workers each take a shard: the planner splits until there is one per worker, the
    largest shards first, balanced, and stops at one run per shard (its seeds train together)."""
    grid = make_grid({"act": "relu,tanh,elu", "lr": "0.05,0.1", "preset": "smoke", "n_seeds": 2})
    assert [len(s.configs) for s in plan(grid, runs_dir=tmp_path).shards] == [6]
    assert [len(s.configs) for s in plan(grid, runs_dir=tmp_path, min_shards=2).shards] == [3, 3]
    assert [len(s.configs) for s in plan(grid, runs_dir=tmp_path, min_shards=3).shards] == [2, 2, 2]
    assert [len(s.configs) for s in plan(grid, runs_dir=tmp_path, min_shards=50).shards] == [1] * 6
    p = plan(grid, runs_dir=tmp_path, min_shards=2)
    assert sorted(c.run_name() for s in p.shards for c in s.configs) == sorted(c.run_name() for c in p.configs)
    assert "at least 2 shards" in p.describe() and p.to_dict()["min_shards"] == 2
    two_groups = make_grid({"act": "relu,tanh", "batch_size": "32,64", "preset": "smoke", "n_seeds": 2})
    assert [len(s.configs) for s in plan(two_groups, runs_dir=tmp_path, min_shards=2).shards] == [2, 2]  # already 2
    assert [len(s.configs) for s in plan(two_groups, runs_dir=tmp_path, min_shards=3).shards] == [1, 1, 2]
    with pytest.raises(SweepError, match="min_shards must be at least 1"):
        plan(grid, runs_dir=tmp_path, min_shards=0)


@pytest.mark.parametrize("argv, message", [
    (["--act", "relu,swishh"], "unknown value 'swishh' on axis act; accepted: all, "),
    (["--act", ","], "axis act is empty"),
    (["--act", "relu", "--init", "kaiming,he"], "unknown value 'he' on axis init"),
    (["--act", "relu", "--lr", "0.1,-1"], "axis lr takes values > 0.0"),
    (["--act", "relu", "--hidden", "64-x"], "axis hidden takes layer widths"),
    (["--act", "relu", "--memory", "1MB"], "grid too big for the device's memory"),
    (["--act", "relu", "--preset", "smoke,huge"], "unknown value 'huge' on axis preset; accepted: tutorial, quick"),
    (["--n-seeds", "2"], "a sweep needs at least one axis"),
])
def test_bad_axes_are_one_line_before_anything_trains(tmp_path, capsys, argv, message):
    code = cli.main(["sweep", *argv, "--out", str(tmp_path / "runs"), "--sweeps-dir", str(tmp_path / "sw")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sw").exists()  # nothing written, nothing trained


def test_unknown_axis_in_a_toml_file(tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text('act = ["relu", "tanh"]\nlearning_rate = [0.1]\n')
    with pytest.raises(SweepError, match="unknown axis 'learning_rate'; accepted: act, init"):
        sweep(f, runs_dir=tmp_path, sweeps_dir=tmp_path, dry_run=True, log=_quiet)
    f.write_text('[sweep]\nact = ["relu", "tanh"]\nlr = [0.05, 0.1]\nhidden = [[64, 32]]\npreset = "smoke"\n'
                 'n_seeds = 2\nmax_epochs = 1\n')
    grid = make_grid(read_grid_file(f))
    assert grid.axes["hidden"] == [(64, 32)] and grid.seeds == (42, 43) and grid.fixed == {"max_epochs": 1}
    r = sweep(f, runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", dry_run=True, log=_quiet)
    assert len(r.plan.configs) == 4 and not (tmp_path / "sw").exists()  # a dry run writes nothing


def test_sweep_resumes_after_an_interruption_and_then_trains_nothing(tmp_path, monkeypatch):
    calls = []
    real = sweep_mod.train_shard

    def interrupted(**job):
        calls.append([c["activation"]["name"] for c in job["configs"]])
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second shard
        return real(**job)

    kw = dict(act="relu,tanh", lr="0.05,0.1", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw",
              max_models=4, progress=False, log=_quiet, **TINY)
    monkeypatch.setattr(sweep_mod, "train_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(**kw)
    first = sweep_results.load_table(sweep_results.latest_sweep(tmp_path / "sw"))
    assert sorted(first["status"].unique()) == ["missing", "ok"]  # the table shows what finished
    monkeypatch.setattr(sweep_mod, "train_shard", real)

    trained = []
    monkeypatch.setattr(sweep_mod, "train_shard", lambda **job: trained.append(job) or real(**job))
    again = sweep(**kw)
    assert again.plan.n_cached == 2 and len(trained) == 1 and len(trained[0]["configs"]) == 2
    t = again.table
    assert (t["status"] == "ok").all() and len(t) == 8  # 4 runs x 2 seeds
    for col in ("act", "init", "lr", "preset", "hidden", "seed", "test_acc", "epochs_trained", "seconds",
                "finding_codes", "run"):
        assert col in t
    assert t["test_acc"].between(0, 1).all() and set(t["lr"]) == {0.05, 0.1}
    trained.clear()
    third = sweep(**kw)
    assert trained == [] and third.plan.n_cached == 4
    assert third.table[["run", "seed", "test_acc"]].equals(t[["run", "seed", "test_acc"]])


def test_a_failing_shard_is_reported_and_the_others_finish(tmp_path, monkeypatch, capsys):
    import gradflow.train as train_mod
    real_fit = train_mod.fit

    def fit(configs, *a, **k):
        if configs[0].activation_name == "tanh":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_fit(configs, *a, **k)

    monkeypatch.setattr(train_mod, "fit", fit)
    argv = ["sweep", "--act", "relu,tanh", "--preset", "smoke", "--max-epochs", "1", "--record", "off",
            "--n-seeds", "2", "--train-subset", "256", "--max-models", "2", "--no-progress", "--out", str(tmp_path / "runs"),
            "--sweeps-dir", str(tmp_path / "sw"), "--name", "failing"]
    assert cli.main(argv) == 1
    out = capsys.readouterr()
    assert "FAILED" in out.out and "CUDA out of memory (simulated)" in out.out and "1 shard(s) failed" in out.err
    table = sweep_results.load_table("failing", tmp_path / "sw")
    by_act = table.groupby("act")["status"].first().to_dict()
    assert by_act == {"relu": "ok", "tanh": "failed"}
    assert table.loc[table["act"] == "tanh", "error"].str.contains("RuntimeError: CUDA out of memory").all()
    relu = make_config("relu", "smoke", max_epochs=1, record="off", seeds=[42, 43], train_subset=256)
    assert store.exists(relu.run_name(), tmp_path / "runs")
    # the sweep's table is what `gradflow runs --sweep` prints
    assert cli.main(["runs", "--sweep", "failing", "--sweeps-dir", str(tmp_path / "sw")]) == 0
    printed = capsys.readouterr().out
    assert "relu" in printed and "FAILED" in printed


def test_runs_failing_for_one_reason_are_summarised_in_one_line():
    """36 runs of a shard that failed on a missing data folder read as one line, not 36."""
    rows = [{"run": f"r{i}", "seed": s, "status": "failed", "error": "PathError: no data", "act": "relu",
             "test_acc": None, "finding_codes": ""} for i in range(5) for s in (42, 43)]
    rows.append({"run": "other", "seed": 42, "status": "failed", "error": "RuntimeError: boom", "act": "tanh",
                 "test_acc": None, "finding_codes": ""})
    text = sweep_results.format_summary(pd.DataFrame(rows))
    failed = [line for line in text.splitlines() if "FAILED" in line]
    assert len(failed) == 2
    assert "5 runs (r0, r1, r2, ...): PathError: no data" in failed[0] and "other: RuntimeError: boom" in failed[1]


def test_sweeps_go_beside_the_run_store_so_the_report_finds_them_from_the_runs_folder(tmp_path, monkeypatch):
    """`gradflow sweep --out DIR` and `gradflow report --runs DIR` must agree on where the sweep is."""
    monkeypatch.delenv("GRADFLOW_SWEEPS", raising=False)
    monkeypatch.delenv("GRADFLOW_RUNS", raising=False)
    runs = tmp_path / "elsewhere" / "runs"
    r = sweep(act="relu", runs_dir=runs, name="beside", dry_run=True, log=_quiet, **TINY)
    assert r.directory == tmp_path / "elsewhere" / "sweeps" / "beside"
    assert sweep_results.default_sweeps_dir(runs) == r.directory.parent
    assert str(sweep_results.default_sweeps_dir()) == "sweeps"  # the default store ./checkpoints: ./sweeps, as before
    monkeypatch.setenv("GRADFLOW_SWEEPS", str(tmp_path / "mine"))
    assert sweep_results.default_sweeps_dir(runs) == tmp_path / "mine"  # the variable wins


def test_the_sweep_page_prefers_the_newest_sweep_of_its_own_preset(tmp_path):
    """With a quick and a tutorial sweep side by side, the quick report shows the quick one even
    when the tutorial one finished later; a preset with no sweep falls back to the newest."""
    import json
    import os
    for age, preset in ((100, "quick"), (0, "tutorial")):  # the tutorial sweep is the newer
        d = tmp_path / f"grid-{preset}"
        d.mkdir()
        (d / sweep_results.PLAN_FILE).write_text(json.dumps({"grid": {"axes": {"preset": [preset]}}}))
        table = d / sweep_results.TABLE_FILE
        pd.DataFrame({"run": ["r"]}).to_parquet(table)
        os.utime(table, (1_000_000 - age, 1_000_000 - age))
    assert sweep_results.latest_sweep(tmp_path).name == "grid-tutorial"
    assert sweep_results.latest_sweep(tmp_path, "quick").name == "grid-quick"
    assert sweep_results.latest_sweep(tmp_path, "smoke").name == "grid-tutorial"


@pytest.mark.parametrize("init", ["default", "xavier", "xavier_normal", "kaiming", "kaiming_normal", "orthogonal",
                                  "normal"])
def test_every_init_gives_the_same_weights_with_one_thread_and_two(init):
    """A Ray task trains on 1 CPU, the local executor on every core: orthogonal's QR rounded differently with
    1 and 2 threads, so the same sweep gave other weights (and accuracies) on Ray. The thread count is restored."""
    import torch

    from gradflow.models import BaseNetwork
    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            weights.append(BaseNetwork("tanh", hidden_sizes=(300, 200), init=init).state_dict())
            assert torch.get_num_threads() == threads  # the init put the caller's count back
    finally:
        torch.set_num_threads(before)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), init


def test_a_sweep_made_without_preset_counts_as_the_quick_one_it_trained(tmp_path):
    """Its plan has no preset axis, so the quick page skipped it for an older `--preset quick` sweep."""
    import json
    import os
    for age, name, plan_json in ((100, "older-quick", {"grid": {"axes": {"preset": ["quick"]}}, "configs": [{"preset": "quick"}]}),
                            (0, "newer-no-flag", {"grid": {"axes": {"act": ["relu"]}}, "configs": [{"preset": "quick"}]})):
        d = tmp_path / name
        d.mkdir()
        (d / sweep_results.PLAN_FILE).write_text(json.dumps(plan_json))
        pd.DataFrame({"run": ["r"]}).to_parquet(d / sweep_results.TABLE_FILE)
        os.utime(d / sweep_results.TABLE_FILE, (1_000_000 - age, 1_000_000 - age))
    assert sweep_results.latest_sweep(tmp_path, "quick").name == "newer-no-flag"
    assert [p.name for p in sweep_results.sweeps_newest_first(tmp_path)] == ["newer-no-flag", "older-quick"]
