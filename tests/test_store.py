import json

import pandas as pd
import pytest
import torch

from gradflow import store, train
from gradflow.config import make_config
from gradflow.data import synthetic
from gradflow.store import RunStoreError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data = synthetic(n_train=256, n_val=64, n_test=64)
    [run] = train.train_runs([make_config("relu", "smoke", record="off")], runs_dir=root, data=data, progress=False)
    return run.path


def _copy(run_dir, tmp_path):
    import shutil
    dst = tmp_path / run_dir.name
    shutil.copytree(run_dir, dst)
    return dst


def test_run_directory_contents(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.parquet", "results.json", "seed-0.safetensors", "seed-1.safetensors"} <= names
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["seeds"] == [0, 1] and config["device"] == "cpu"
    assert {"torch", "torchvision", "gradflow", "python"} <= set(config["versions"])
    assert config["data"]["name"] == "synthetic"  # never labelled as FashionMNIST
    from safetensors.torch import load_file

    from gradflow.models import BaseNetwork
    net = BaseNetwork.from_config(config["model"])
    net.load_state_dict(load_file(run_dir / "seed-1.safetensors"))  # an ordinary state dict


def test_a_crash_while_writing_leaves_no_run_and_no_leftovers(tmp_path):
    def crash(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.save_run("r1", {"run": {}}, pd.DataFrame({"a": [1]}), [{"seed": 0}], {0: {"w": torch.zeros(2)}},
                       runs_dir=tmp_path, extra=crash)
    assert list(tmp_path.iterdir()) == []
    assert not store.exists("r1", tmp_path)


def test_a_crash_during_overwrite_keeps_the_finished_run(run_dir, tmp_path):
    d = _copy(run_dir, tmp_path)
    before = (d / "results.json").read_text()

    def crash(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save_run(d.name, {"run": {}}, pd.DataFrame({"a": [1]}), [], {}, runs_dir=tmp_path, overwrite=True,
                       extra=crash)
    assert (d / "results.json").read_text() == before
    assert store.load_run(d.name, tmp_path).results["seed"].tolist() == [0, 1]
    with pytest.raises(RunStoreError, match="already exists"):
        store.save_run(d.name, {"run": {}}, pd.DataFrame(), [], {}, runs_dir=tmp_path)


def test_unfinished_temporary_directories_are_not_listed(run_dir, tmp_path):
    _copy(run_dir, tmp_path)
    (tmp_path / f".tmp-{run_dir.name}-dead").mkdir()
    table = store.list_runs(tmp_path)
    assert table["run"].tolist() == [run_dir.name]


@pytest.mark.parametrize("bad_file, damage, message", [
    ("config.json", "{not json", "config.json is not valid JSON"),
    ("results.json", "[1, 2", "results.json is not valid JSON"),
    ("results.json", None, "results.json is missing"),
    ("metrics.parquet", "garbage", "cannot read metrics.parquet"),
    ("seed-0.safetensors", "garbage", "cannot read seed-0.safetensors"),
])
def test_damaged_runs_name_the_bad_file(run_dir, tmp_path, bad_file, damage, message):
    d = _copy(run_dir, tmp_path)
    if damage is None:
        (d / bad_file).unlink()
    else:
        (d / bad_file).write_text(damage)
    with pytest.raises(RunStoreError, match=message):
        run = store.load_run(d)
        _ = run.metrics  # loads lazily: the damage shows here
        run.model(0)
    table = store.list_runs(tmp_path)
    if bad_file in ("config.json", "results.json"):
        assert message in table["error"].iloc[0]


def test_loading_never_unpickles(run_dir, tmp_path):
    d = _copy(run_dir, tmp_path)
    import pickle
    (d / "seed-0.safetensors").write_bytes(pickle.dumps({"evil": 1}))
    with pytest.raises(RunStoreError, match="seed-0.safetensors"):
        store.load_run(d).model(0)


def test_missing_run_and_seed_errors(run_dir, tmp_path):
    with pytest.raises(RunStoreError, match="no run named .nope. in .*; runs there: .*gradflow runs"):
        store.load_run("nope", tmp_path)
    with pytest.raises(ValueError, match="has no seed 7; its seeds: \\[0, 1\\]"):
        store.load_run(run_dir).model(7)
