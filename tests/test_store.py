import json
import shutil

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
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]  # the writer lock's file, nothing else
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
    ("config.json", "{not json", "config.json is truncated"),
    ("results.json", None, "results.json is missing"),
    ("metrics.parquet", None, "metrics.parquet is missing"),
    ("metrics.parquet", "truncate", "metrics.parquet is truncated"),
    ("seed-0.safetensors", "flip", "seed-0.safetensors was altered after it was written"),
    ("findings.json", "append", "findings.json is longer than written"),
    ("manifest.json", None, "manifest.json is missing"),
    ("manifest.json", "{", "manifest.json is not a readable gradflow manifest"),
])
def test_damaged_runs_name_the_bad_file(run_dir, tmp_path, bad_file, damage, message):
    d = _copy(run_dir, tmp_path)
    path = d / bad_file
    if damage is None:
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-10])
    elif damage == "flip":  # same size, one byte changed: only the checksum can tell
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "append":
        path.write_bytes(path.read_bytes() + b" ")
    else:
        path.write_text(damage)
    with pytest.raises(RunStoreError, match=f"run {d.name} is DAMAGED: {message}"):
        store.load_run(d)
    assert store.status(d.name, tmp_path) == ("damaged", store.status(d.name, tmp_path)[1])
    assert not store.exists(d.name, tmp_path)
    [row] = store.list_runs(tmp_path).to_dict("records")
    assert message in row["error"]  # listed as damaged, not hidden, not as good


def test_a_damaged_run_is_never_served_from_the_cache_and_is_retrained_after_saying_so(run_dir, tmp_path, capsys):
    d = _copy(run_dir, tmp_path)
    (d / "metrics.parquet").unlink()
    data = synthetic(n_train=256, n_val=64, n_test=64)
    [run] = train.train_runs([make_config("relu", "smoke", record="off")], runs_dir=tmp_path, data=data,
                             progress=False)
    err = capsys.readouterr().err
    assert f"run {d.name} is DAMAGED: metrics.parquet is missing; training it again" in err
    assert run.path == d and store.status(d.name, tmp_path) == ("ok", "")
    assert len(run.metrics) > 0
    # the retrained run is the same numbers: same config, same seed
    assert run.results["test_acc"].tolist() == store.load_run(run_dir).results["test_acc"].tolist()


def test_a_killed_overwrite_puts_the_finished_run_back(run_dir, tmp_path):
    d = _copy(run_dir, tmp_path)
    aside = tmp_path / f".old-{d.name}-0123abcd"
    d.rename(aside)  # what a kill -9 between the two renames of an overwrite leaves
    (tmp_path / f".tmp-{d.name}-deadbeef").mkdir()
    store.recover_leftovers(tmp_path)
    assert store.exists(d.name, tmp_path) and not aside.exists()
    assert [p.name for p in tmp_path.iterdir()] == [d.name]


def test_run_origin_is_stored_and_listed(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    store.save_run("plain", {"run": {}}, frame, [{"seed": 0, "test_acc": 0.5, "epochs_trained": 1}], {},
                   runs_dir=tmp_path)
    with store.run_origin("case study"):
        store.save_run("story", {"run": {}}, frame, [{"seed": 0, "test_acc": 0.5, "epochs_trained": 1}], {},
                       runs_dir=tmp_path)
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["origin"] == "comparison"
    assert json.loads((tmp_path / "story" / "config.json").read_text())["origin"] == "case study"


def test_files_are_written_readable_and_no_temporaries_stay(run_dir):
    import os
    import stat
    umask = os.umask(0)
    os.umask(umask)
    for path in run_dir.rglob("*"):
        assert not path.name.startswith(".") or path.name == ".lock"
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask, path


def test_loading_never_unpickles(run_dir, tmp_path):
    d = _copy(run_dir, tmp_path)
    import pickle
    (d / "seed-0.safetensors").write_bytes(pickle.dumps({"evil": 1}))
    with pytest.raises(RunStoreError, match="seed-0.safetensors"):
        store.load_run(d).model(0)
    # and with a manifest rewritten to match the pickle, safetensors still refuses it: nothing is unpickled
    from gradflow.manifest import write_manifest
    write_manifest(d)
    with pytest.raises(RunStoreError, match="cannot read seed-0.safetensors"):
        store.load_run(d).model(0)


def test_missing_run_and_seed_errors(run_dir, tmp_path):
    with pytest.raises(RunStoreError, match="no run named .nope. in .*; runs there: .*gradflow runs"):
        store.load_run("nope", tmp_path)
    # a near miss lists the nearest names, not the first of the alphabet
    for name in ("case000-keras-quick-0000000000", "elu-quick-0000000000", "relu-quick-1111111111"):
        (tmp_path / name).mkdir()
    with pytest.raises(RunStoreError, match="the closest names there: relu-quick-1111111111"):
        store.load_run("relu-quick-typo", tmp_path)
    with pytest.raises(ValueError, match="has no seed 7; its seeds: \\[0, 1\\]"):
        store.load_run(run_dir).model(7)


def test_a_run_from_before_manifests_is_damaged_until_adopted(run_dir, tmp_path, capsys):
    from gradflow.cli import main
    d = _copy(run_dir, tmp_path)
    (d / "manifest.json").unlink()  # as gradflow wrote runs before manifests
    broken = _copy(run_dir, tmp_path / "other")
    (broken / "manifest.json").unlink()
    (broken / "seed-1.safetensors").write_bytes(b"not safetensors")
    shutil.move(str(broken), str(tmp_path / "broken-run"))
    assert main(["runs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"run {d.name} is DAMAGED: manifest.json is missing (written by a gradflow older" in out
    assert "`gradflow runs --adopt` seals it if every file reads" in out
    assert main(["runs", "--adopt", "--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("run broken-run is DAMAGED: cannot read seed-1.safetensors") and "not sealed" in lines[0]
    assert lines[1] == f"run {d.name}: every file reads; sealed with a manifest"
    assert store.exists(d.name, tmp_path) and not store.exists("broken-run", tmp_path)
