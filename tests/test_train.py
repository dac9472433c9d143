import pytest
import torch

from gradflow import train
from gradflow.config import PRESETS, RunConfig, make_config
from gradflow.data import synthetic
from gradflow.record import sentinel
from gradflow.train import EarlyStopping


def test_early_stopping_on_a_scripted_curve_is_the_tutorials_rule():
    # The tutorial's sigmoid: epoch 1 is the best, so with patience 7 it stops at epoch 8.
    flat = [0.10, 0.10, 0.09, 0.10, 0.10, 0.10, 0.10, 0.10, 0.30, 0.50]
    # Another member improves at epochs 1, 3 and 6, so it runs on to epoch 13.
    rising = [0.5, 0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.99]
    stop = EarlyStopping(2, patience=7)
    improved = []
    for epoch in range(1, 15):
        improved.append(stop.update(epoch, [flat[min(epoch, len(flat)) - 1], rising[epoch - 1]]))
    assert stop.stopped_epoch == [8, 13]
    assert stop.best_epoch == [1, 6]
    assert [i[0] for i in improved] == [True] + [False] * 13  # the later rise is past the stop: not taken
    assert [e + 1 for e, i in enumerate(improved) if i[1]] == [1, 3, 6]
    assert not stop.past_stop(0, 8) and stop.past_stop(0, 9)
    assert stop.all_stopped


def test_fit_records_per_seed_metrics_and_marks_epochs_past_the_stop(tmp_path):
    data = synthetic(n_train=512, n_val=128, n_test=128, noise=3.0)
    configs = [make_config(a, "smoke", max_epochs=6, patience=1, record="off") for a in ("relu", "sigmoid")]
    runs = train.train_runs(configs, runs_dir=tmp_path, data=data, progress=False)
    for run in runs:
        m, r = run.metrics, run.results
        assert set(m["seed"]) == {0, 1} and len(r) == 2
        for seed, rows in m.groupby("seed"):
            res = r[r.seed == seed].iloc[0]
            stopped = res["stopped_epoch"]
            assert rows["epoch"].tolist() == list(range(1, len(rows) + 1))
            if stopped == stopped and stopped is not None:  # not NaN: this seed stopped early
                assert rows["past_stop"].tolist() == [e > stopped for e in rows["epoch"]]
                assert res["epochs_trained"] == stopped
            assert res["best_epoch"] == rows["val_acc"].iloc[: int(res["epochs_trained"])].idxmax() - rows.index[0] + 1
        assert run.config["batch"]["members"] == 4  # both activations x two seeds in one batch


def test_best_checkpoint_is_the_one_tested(tmp_path):
    data = synthetic(n_train=512, n_val=128, n_test=128, noise=3.0)
    [run] = train.train_runs([make_config("tanh", "smoke", max_epochs=4, seeds=(3,), record="off")],
                             runs_dir=tmp_path, data=data, progress=False)
    net = run.model(3)
    with torch.no_grad():
        val_acc = (net(data.val_x).argmax(1) == data.val_y).double().mean().item()
        test_acc = (net(data.test_x).argmax(1) == data.test_y).double().mean().item()
    res = run.results.iloc[0]
    assert val_acc == pytest.approx(res["best_val_acc"], abs=1e-9)
    assert test_acc == pytest.approx(res["test_acc"], abs=1e-9)
    best = run.metrics[run.metrics.epoch == res["best_epoch"]]["val_acc"].item()
    assert best == pytest.approx(val_acc, abs=1e-9)


def test_same_config_and_seed_give_the_same_numbers_on_cpu(tmp_path):
    data = synthetic(n_train=512, n_val=128, n_test=128)
    c = make_config("elu", "smoke", dropout=0.2, record="off")
    a = train.train_runs([c], runs_dir=tmp_path / "a", data=data, progress=False, device="cpu")[0]
    b = train.train_runs([c], runs_dir=tmp_path / "b", data=data, progress=False, device="cpu")[0]
    cols = ["train_loss", "val_loss", "val_acc"]
    assert a.metrics[cols].equals(b.metrics[cols])
    assert a.results["test_acc"].tolist() == b.results["test_acc"].tolist()


def test_compare_caches_runs_and_overwrite_retrains(tmp_path):
    data = synthetic(n_train=256, n_val=64, n_test=64)
    first = train.compare(["relu"], preset="smoke", runs_dir=tmp_path, data=data, progress=False, record="off")
    created = first[0].config["created"]
    stamp = (first[0].path / "results.json").stat().st_mtime_ns
    again = train.compare(["relu", "tanh"], preset="smoke", runs_dir=tmp_path, data=data, progress=False,
                          record="off")
    assert again[0].name == first[0].name
    assert (again[0].path / "results.json").stat().st_mtime_ns == stamp  # loaded, not retrained
    assert again[1].config["batch"]["members"] == 2  # only tanh's two seeds trained
    redo = train.compare(["relu"], preset="smoke", runs_dir=tmp_path, data=data, progress=False, record="off",
                         overwrite=True)
    assert redo[0].config["created"] >= created and (redo[0].path / "results.json").stat().st_mtime_ns != stamp
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".lock"]  # no temporary leftovers


def test_config_validation_and_presets():
    assert PRESETS["tutorial"] == {}
    tut = make_config("relu", "tutorial")
    assert (tut.lr, tut.momentum, tut.batch_size, tut.max_epochs, tut.patience, tut.optimizer) == \
        (1e-2, 0.9, 256, 50, 7, "sgd")
    assert make_config("relu", "tutorial").key() == make_config("relu", "tutorial").key()
    assert make_config("relu", "tutorial").key() != make_config("relu", "tutorial", lr=0.1).key()
    for bad, message in [({"preset": "fast"}, "unknown preset 'fast'"), ({"lr": -1}, "lr must be"),
                         ({"optimizer": "lbfgs"}, "unknown optimizer"), ({"seeds": ()}, "at least one seed"),
                         ({"seeds": (1, 1)}, "distinct"), ({"patience": 0}, "patience"),
                         ({"colour": 1}, "unknown setting")]:
        with pytest.raises(ValueError, match=message):
            make_config("relu", **{"preset": "smoke", **bad})
    with pytest.raises(ValueError, match="unknown activation"):
        RunConfig(activation="nope")


@pytest.mark.parametrize("record", ["off", "default"])
def test_training_steps_never_wait_for_the_device(monkeypatch, record):
    """On a GPU every .item()/.tolist()/bool(tensor) stalls the launch queue. Count such host reads
    during fit(): doubling the steps per epoch must not add a single one (per-epoch reads are fine).
    The sentinel's CPU shortcut reads one sum per tensor each step (free on a CPU, never taken on a
    GPU); it is switched off here so the CPU runs the device-side fold a GPU runs."""
    monkeypatch.setattr(sentinel, "_all_finite_on_cpu", lambda *args: False)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _f=original, _n=name, **k: (reads.append(_n), _f(self, *a, **k))[1])
    counts = []
    for n_train in (1024, 2048):  # 4 and 8 steps per epoch of 256
        data = synthetic(n_train=n_train, n_val=128, n_test=128, seed=0)
        configs = [make_config(a, "smoke", max_epochs=2, seeds=(0, 1), record=record) for a in ("relu", "tanh")]
        reads.clear()
        train.fit(configs, data, device="cpu", progress=False)
        counts.append(len(reads))
    assert counts[0] > 0 and counts[1] == counts[0], counts


def test_a_device_this_machine_lacks_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"no usable CUDA GPU \(torch.cuda.is_available\(\) is False\); use --device cpu"):
        train.resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        train.resolve_device("gpu0")
    assert train.resolve_device(None) == torch.device("cpu") and train.resolve_device("cpu") == torch.device("cpu")
    data = synthetic(n_train=512, n_val=128, n_test=128)
    with pytest.raises(ValueError, match="no usable CUDA GPU"):
        train.fit([make_config("relu", "smoke", record="off")], data, device="cuda:0", progress=False)


def test_a_dropout_run_s_numbers_do_not_depend_on_the_models_beside_it(tmp_path):
    """Each member draws its dropout masks from its own seed's stream: relu trained alone and relu
    trained in one batch with tanh (same name, same cache entry) must give the same numbers."""
    data = synthetic(n_train=512, n_val=128, n_test=128)
    relu, tanh = (make_config(a, "smoke", dropout=0.2, record="off") for a in ("relu", "tanh"))
    alone = train.train_runs([relu], runs_dir=tmp_path / "a", data=data, progress=False, device="cpu")[0]
    pair = train.train_runs([relu, tanh], runs_dir=tmp_path / "b", data=data, progress=False, device="cpu")[0]
    assert alone.name == pair.name
    cols = ["train_loss", "val_loss", "val_acc"]
    assert alone.metrics[cols].equals(pair.metrics[cols])
    assert alone.results["test_acc"].tolist() == pair.results["test_acc"].tolist()


def test_a_run_another_process_stored_meanwhile_is_used_not_an_error(tmp_path, monkeypatch, capsys):
    """Two sweeps (or a sweep and a train) on one store may train the same config at once; the one that
    finishes second keeps the first one's run instead of failing with 'already exists'."""
    data = synthetic(n_train=256, n_val=64, n_test=64)
    c = make_config("relu", "smoke", record="off")
    first = train.train_runs([c], runs_dir=tmp_path, data=data, progress=False, device="cpu")[0]
    monkeypatch.setattr(train.store, "cached_run", lambda name, runs_dir=None: None)  # it was not there at the start
    second = train.train_runs([c], runs_dir=tmp_path, data=data, progress=False, device="cpu")[0]
    assert second.path == first.path and second.results["test_acc"].tolist() == first.results["test_acc"].tolist()
    assert "stored by another process while this one trained; using that run" in capsys.readouterr().err
