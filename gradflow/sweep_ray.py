"""The Ray adapter: every call gradflow makes into Ray is in this file.

Ray's reporting APIs changed twice in two years, so gradflow uses only its oldest, stablest
core: ``ray.init``, ``ray.remote(...).options(...)``, ``ray.wait`` and ``ray.get``. One Ray
task trains one shard (tens of tasks for a grid, not one per model) and returns the paths of
the runs it wrote, never models. On a cluster every node must see the same run store: a
shared filesystem (NFS, a mounted bucket) at the same path, and gradflow installed.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from .sweep_grid import SweepError

EXTRA_HINT = "pip install 'gradflow-suite[ray]'"
# A local Ray on a small, busy machine: its dashboard agent can take tens of seconds to start.
# Newer Rays read agent_register_timeout_ms for the raylet's wait on it; Ray 2.60 waits a fixed
# 15 s and the raylet aborts, so start_local also tries again. A user's own settings win.
PATIENT_START = {"RAY_agent_register_timeout_ms": "120000", "RAY_raylet_start_wait_time_s": "60"}


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError(f"--executor ray needs Ray, which is not installed; install the extra: {EXTRA_HINT}") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Join the cluster at ``address`` or $RAY_ADDRESS, else start a local Ray with explicit resources.

    Returns True when this call started Ray (the caller shuts it down), False when Ray was
    already running in this process or a cluster was joined.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return False
    import torch
    env = {k: os.environ[k] for k in ("PYTHONPATH", "GRADFLOW_RUNS", "GRADFLOW_DATA") if k in os.environ}
    start_local(num_cpus=num_cpus or os.cpu_count() or 1,
                num_gpus=torch.cuda.device_count() if num_gpus is None else num_gpus,
                runtime_env={"env_vars": env} if env else None)
    return True


def start_local(num_cpus: int, num_gpus: float, attempts: int = 3, **kwargs) -> None:
    """``ray.init`` of a local instance with explicit logical resources, tried again if it fails to start.

    On a loaded machine Ray's raylet sometimes gives up waiting for its metrics agent; a second
    start (with the agent's files now in the page cache) usually comes up.
    """
    ray = import_ray()
    for k, v in PATIENT_START.items():
        os.environ.setdefault(k, v)
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False, **kwargs)
            return
        except Exception as exc:  # Ray raises a bare Exception when its node times out at startup
            ray.shutdown()
            if attempt == attempts:
                raise RuntimeError(f"a local Ray instance did not start in {attempts} attempts: {exc}") from None


def shutdown() -> None:
    import_ray().shutdown()


def resources(use_gpu: bool, shards_per_gpu: int = 1, cpus_per_shard: float | None = None) -> dict:
    """A shard task's Ray resources: a 1/k share of a GPU, or CPUs."""
    if shards_per_gpu < 1:
        raise SweepError(f"shards_per_gpu must be at least 1, got {shards_per_gpu}")
    if use_gpu:
        return {"num_gpus": 1 / shards_per_gpu, "num_cpus": 0 if cpus_per_shard is None else cpus_per_shard}
    return {"num_gpus": 0, "num_cpus": 1 if cpus_per_shard is None else cpus_per_shard}


def cpu_slots(address: str | None = None, cpus_per_shard: float | None = None) -> int:
    """How many CPU shard tasks Ray runs at once, as far as is known before the sweep connects: a Ray
    already running in this process says; a local Ray that ``connect`` will start gets every CPU;
    a cluster joined by address is not known until joined (1: the plan keeps its memory-bound
    shards; ``--max-models`` splits them)."""
    ray = import_ray()
    if ray.is_initialized():
        cpus = ray.cluster_resources().get("CPU", 1)
    elif address or os.environ.get("RAY_ADDRESS"):
        return 1
    else:
        cpus = os.cpu_count() or 1
    return max(1, int(cpus // (cpus_per_shard or 1)))


def run_tasks(fn: Callable[..., dict], jobs: list[dict], task_resources: dict,
              on_result: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Run ``fn(**job)`` for every job as a Ray task; results in job order.

    ``fn`` returns a dict; a task that dies (a lost worker, a node gone) gives
    ``{"ok": False, "error": ...}`` instead, so the other tasks still finish. Each result gets
    ``submitted`` and ``received`` wall-clock times (for the scheduler overhead).
    """
    ray = import_ray()
    remote = ray.remote(fn).options(max_retries=1, **task_resources)
    submitted = time.time()
    pending = {remote.remote(**job): i for i, job in enumerate(jobs)}
    results: list[dict | None] = [None] * len(jobs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:  # worker crashed or was lost: report, keep going
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                result = {"ok": False, "error": f"Ray task lost: {type(exc).__name__}: {first}"}
            result = {**result, "submitted": submitted, "received": time.time()}
            results[i] = result
            if on_result is not None:
                on_result(i, result)
    return results
