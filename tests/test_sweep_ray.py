"""The Ray executor on a local Ray instance with logical resources (no GPU needed).

Ray starts once for this module (seconds) with ``num_cpus=2, num_gpus=1``: resources are
logical, so four ``num_gpus=0.25`` tasks are placed at once on a CPU-only machine.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import ray

from gradflow import sweep_ray
from gradflow.sweep_grid import SweepError
from gradflow.sweep_run import sweep

TINY = dict(act="relu,tanh", lr="0.05,0.1", preset="smoke", max_epochs=1, record="off", n_seeds=2,
            train_subset=256, max_models=4, progress=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    sweep_ray.start_local(num_cpus=2, num_gpus=1)  # logical resources: no GPU needed
    yield
    ray.shutdown()


def _hold(seconds: float) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"ok": True, "started": start, "finished": time.time()}


def _meet(folder: str, me: int, others: int, timeout: float = 90.0) -> dict:
    """A barrier: returns ok only if all ``others`` tasks were running at the same time as this one."""
    (Path(folder) / f"started-{me}").touch()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(list(Path(folder).glob("started-*"))) == others:
            return {"ok": True}
        time.sleep(0.05)
    return {"ok": False, "error": "the other tasks never ran alongside this one"}


def test_four_quarter_gpu_tasks_run_at_once(local_ray, tmp_path):
    assert not sweep_ray.connect()  # Ray already running in this process: reused, not restarted
    res = sweep_ray.resources(use_gpu=True, shards_per_gpu=4)
    assert res == {"num_gpus": 0.25, "num_cpus": 0}
    seen = []
    jobs = [{"folder": str(tmp_path), "me": i, "others": 4} for i in range(4)]
    results = sweep_ray.run_tasks(_meet, jobs, res, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3]
    assert all(r["ok"] for r in results), results  # all four placed at once on one logical GPU


def test_ray_sweep_gives_the_local_table(local_ray, tmp_path):
    local = sweep(runs_dir=tmp_path / "local", sweeps_dir=tmp_path / "sw-local", **TINY)
    on_ray = sweep(executor="ray", runs_dir=tmp_path / "ray", sweeps_dir=tmp_path / "sw-ray", **TINY)
    assert len(on_ray.plan.shards) == 2 and all(s["ok"] for s in on_ray.status["shards"])
    cols = ["run", "act", "lr", "seed", "test_acc", "epochs_trained", "finding_codes"]
    assert on_ray.table[cols].equals(local.table[cols])  # same configs and seeds: the same numbers on CPU
    again = sweep(executor="ray", runs_dir=tmp_path / "ray", sweeps_dir=tmp_path / "sw-ray", **TINY)
    assert again.plan.n_cached == 4 and again.plan.shards == []


def test_cpu_shards_one_per_ray_cpu_slot(local_ray, monkeypatch):
    assert sweep_ray.cpu_slots() == 2  # this process's Ray: num_cpus=2
    assert sweep_ray.cpu_slots(cpus_per_shard=2) == 1
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(sweep_ray.os, "cpu_count", lambda: 6)
    assert sweep_ray.cpu_slots() == 6  # the local Ray the sweep would start gets every CPU
    assert sweep_ray.cpu_slots("ray://cluster:10001") == 1  # a cluster: unknown before joining
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert sweep_ray.cpu_slots() == 1


def test_a_lost_task_is_reported_and_the_others_finish(local_ray):
    results = sweep_ray.run_tasks(_die_or_hold, [{"die": False}, {"die": True}, {"die": False}],
                                  {"num_cpus": 0, "num_gpus": 0})
    assert [r["ok"] for r in results] == [True, False, True]
    assert "Ray task lost" in results[1]["error"]


def _die_or_hold(die: bool) -> dict:
    if die:
        import os
        os._exit(1)  # the worker process dies, as on a lost node
    return _hold(0.1)


def test_without_ray_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SweepError, match=r"gradflow-suite\[ray\]"):
        sweep(executor="ray", runs_dir=tmp_path / "runs", sweeps_dir=tmp_path / "sw", **TINY)
    assert not (tmp_path / "sw").exists()


def test_benchmark_smoke_prints_both_ways_and_the_ratio(local_ray, capsys):
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep.py"
    spec = importlib.util.spec_from_file_location("bench_sweep", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--executor", "both"]) == 0
    out = capsys.readouterr().out
    for executor in ("local", "ray"):
        assert f"{executor}: gradflow shards" in out and f"{executor}: one model per task" in out
        assert f"{executor}: shards vs one model per task:" in out
    assert "ray: empty task round trip" in out and "ray vs local, gradflow shards:" in out
    assert ray.is_initialized()  # the benchmark reused this Ray and left it running
