"""A small grid as gradflow's shards against the same grid one model per task, on the same executor.

    python benchmarks/bench_sweep.py              # local executor, then Ray (a local instance)
    python benchmarks/bench_sweep.py --smoke      # seconds: the tests run this
    python benchmarks/bench_sweep.py --executor local

Prints models per minute for both ways and their ratio; on Ray, also the scheduler's round trip
for an empty task and the grid's wall time against the local executor's. Every side trains
into its own fresh run store, so nothing is served from a cache; each way runs twice (shards,
single, single, shards) after an untimed warm-up that pays the process's one-time imports.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradflow import sweep_ray  # noqa: E402
from gradflow.sweep_grid import make_grid  # noqa: E402
from gradflow.sweep_run import sweep, train_shard  # noqa: E402


def grid_spec(smoke: bool) -> dict:
    if smoke:  # 2 runs x 2 seeds, 4 steps of one epoch
        return {"act": "relu,tanh", "lr": "0.05", "preset": "smoke", "n_seeds": 2, "max_epochs": 1,
                "train_subset": 256, "record": "off"}
    # 12 runs x 2 seeds = 24 models of the smoke net on the synthetic set, 2 epochs each
    return {"act": "relu,tanh,elu", "init": "default,kaiming", "lr": "0.05,0.1", "preset": "smoke", "n_seeds": 2,
            "max_epochs": 2, "record": "off"}


def one_model_jobs(spec: dict, runs_dir: Path) -> list[dict]:
    """Every (run, seed) of the grid as its own job: what a per-trial scheduler would run."""
    configs = make_grid(spec).configs()
    jobs = []
    for c in configs:
        for seed in c.seeds:
            d = c.to_dict()
            d["seeds"] = [seed]
            jobs.append({"configs": [d], "runs_dir": str(runs_dir), "device": "cpu"})
    return jobs


def empty_task() -> dict:
    return {"ok": True, "started": time.time(), "finished": time.time()}


def run_shards(executor: str, spec: dict, runs_dir: Path, sweeps_dir: Path) -> tuple[float, int]:
    """gradflow's way: the grid packed into shards. Returns (seconds, shards)."""
    t0 = time.perf_counter()
    result = sweep(executor=executor, runs_dir=runs_dir, sweeps_dir=sweeps_dir, device="cpu", progress=False,
                   log=lambda *_: None, **spec)
    seconds = time.perf_counter() - t0
    assert not result.failed, result.failed
    return seconds, len(result.plan.shards)


def run_single(executor: str, spec: dict, runs_dir: Path) -> tuple[float, int]:
    """Every model its own task. Returns (seconds, tasks)."""
    jobs = one_model_jobs(spec, runs_dir)
    t0 = time.perf_counter()
    if executor == "local":
        single = [train_shard(**job) for job in jobs]
    else:
        single = sweep_ray.run_tasks(train_shard, jobs, sweep_ray.resources(use_gpu=False))
    seconds = time.perf_counter() - t0
    assert all(r["ok"] for r in single), [r.get("error") for r in single if not r["ok"]]
    return seconds, len(jobs)


def bench(executor: str, spec: dict, root: Path) -> dict:
    """Both ways, twice, in the order shards, single, single, shards, after an untimed warm-up.

    The warm-up runs the smoke grid both ways: a process's first training pays one-time costs
    that are nobody's per-model time (torch imports its compiler stack, ~2 s, the first time an
    optimizer is built; pandas and pyarrow load their writers). Untimed, whichever side ran first
    paid them: that made the shards look slower than one model per task. On Ray the warm-up's
    single-model tasks reach the workers the timed tasks will use."""
    smoke = grid_spec(smoke=True)
    t0 = time.perf_counter()
    run_shards(executor, smoke, root / f"{executor}-warm-shards", root / "sweeps")
    run_single(executor, smoke, root / f"{executor}-warm-single")
    warm_s = time.perf_counter() - t0
    n_models = len(make_grid(spec).configs()) * len(make_grid(spec).seeds)
    shards_s, single_s = [], []
    for k, order in enumerate((("shards", "single"), ("single", "shards"))):
        for way in order:  # every side trains into its own fresh run store: nothing is served from a cache
            if way == "shards":
                seconds, n_shards = run_shards(executor, spec, root / f"{executor}-shards-{k}", root / "sweeps")
                shards_s.append(seconds)
            else:
                seconds, n_tasks = run_single(executor, spec, root / f"{executor}-single-{k}")
                single_s.append(seconds)
    return {"models": n_models, "shards": n_shards, "tasks": n_tasks, "shards_s": sum(shards_s) / 2,
            "single_s": sum(single_s) / 2, "warm_s": warm_s}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a tiny grid, seconds (for the tests)")
    p.add_argument("--executor", choices=["local", "ray", "both"], default="both")
    args = p.parse_args(argv)
    import torch
    spec = grid_spec(args.smoke)
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, "
          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}; training on cpu")
    executors = ["local", "ray"] if args.executor == "both" else [args.executor]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        results = {}
        for ex in executors:
            started_ray = False
            if ex == "ray":
                t0 = time.perf_counter()
                started_ray = sweep_ray.connect()
                print(f"ray: connected in {time.perf_counter() - t0:.1f} s")
                sweep_ray.run_tasks(empty_task, [{}] * 2, sweep_ray.resources(use_gpu=False))  # warm the workers
                t0 = time.perf_counter()
                n_empty = 20
                sweep_ray.run_tasks(empty_task, [{}] * n_empty, sweep_ray.resources(use_gpu=False))
                print(f"ray: empty task round trip {1000 * (time.perf_counter() - t0) / n_empty:.1f} ms per task "
                      f"({n_empty} tasks)")
            try:
                r = results[ex] = bench(ex, spec, Path(tmp))
            finally:
                if started_ray:
                    sweep_ray.shutdown()
            per_min_shards = r["models"] / (r["shards_s"] / 60)
            per_min_single = r["models"] / (r["single_s"] / 60)
            print(f"{ex:>5}: warm-up (smoke grid both ways, untimed: one-time imports) {r['warm_s']:.1f} s; "
                  "below, the mean of two runs per way")
            print(f"{ex:>5}: gradflow shards      {r['models']} models in {r['shards']} shard task(s): "
                  f"{r['shards_s']:6.1f} s  {per_min_shards:7.1f} models/min")
            print(f"{ex:>5}: one model per task   {r['models']} models in {r['tasks']} task(s):       "
                  f"{r['single_s']:6.1f} s  {per_min_single:7.1f} models/min")
            print(f"{ex:>5}: shards vs one model per task: {r['single_s'] / r['shards_s']:.2f}x the runs per minute")
        if "local" in results and "ray" in results:
            lo, ra = results["local"], results["ray"]
            print(f"ray vs local, gradflow shards: {ra['shards_s']:.2f} s in {ra['shards']} task(s) against "
                  f"{lo['shards_s']:.2f} s for {lo['shards']} shard(s) in this process ({ra['shards_s'] / lo['shards_s']:.2f}x "
                  "the time; Ray gives each CPU a shard of its own, the local executor trains one shard at a time "
                  "on all CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
