"""``gradflow sweep``: a grid of settings, planned into shards of stacked models and trained.

    gradflow sweep --act relu,tanh --init default,kaiming --lr 1e-2,1e-1 --n-seeds 5 --dry-run
    gradflow sweep --config grid.toml --executor ray

Runs are cached in the run store like any run, so a sweep started again (after Ctrl-C, kill -9
or a lost Ray worker) trains only what is missing. A failing shard is reported and the other
shards finish. Executors: ``local`` (in-process, one shard at a time) and ``ray`` (one Ray task
per shard; see sweep_ray.py).
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

# Only the standard library at import time: `gradflow sweep --help` must not import torch.
EXECUTORS = ("local", "ray")


def train_shard(configs: list[dict], runs_dir: str | None = None, device: str | None = None,
                data_root: str | None = None, progress: bool = False) -> dict:
    """Train one shard's missing runs as one batch; returns the run paths, or the error.

    Takes and returns plain data (config dicts, paths), so it runs the same in-process and as
    a Ray task on another machine.
    """
    started = time.time()
    try:
        import torch

        from . import store
        from .config import RunConfig
        from .train import train_runs
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # Shards of one sweep train at the same time (Ray tasks are separate processes). train_runs
        # holds the run store's writer lock for all of its work, which would make them take turns;
        # its undecorated body takes the lock only while each run is renamed into place (save_run).
        train = getattr(train_runs, "__wrapped__", train_runs)
        with store.run_origin("sweep"):
            runs = train([RunConfig.from_dict(c) for c in configs], runs_dir=runs_dir, device=device,
                         progress=progress, data_root=data_root)
        return {"ok": True, "runs": [str(r.path) for r in runs], "started": started, "finished": time.time()}
    except Exception as exc:  # one shard's failure must not stop the others; the summary says why
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {"ok": False, "error": f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})",
                "started": started, "finished": time.time()}


@dataclass
class SweepResult:
    plan: object  # sweep_plan.Plan
    table: object  # pandas.DataFrame, one row per (run, seed)
    directory: Path
    status: dict

    @property
    def failed(self) -> list[dict]:
        """This invocation's failed shards (an earlier invocation's are kept in status.json for the record)."""
        return [s for s in self.status["shards"] if not s.get("ok") and not s.get("earlier")]


def build_grid(config_file=None, **spec):
    """The grid from a TOML/YAML file, with explicit arguments taking precedence over the file's."""
    from .sweep_grid import AXES, SweepError, make_grid, read_grid_file
    merged = dict(read_grid_file(config_file)) if config_file else {}
    merged.update({k: v for k, v in spec.items() if v is not None})
    if not any(k in merged for k in (*AXES, "activation", "activations")):
        raise SweepError("a sweep needs at least one axis, e.g. --act relu,tanh or --lr 1e-2,5e-2 "
                         f"(axes: {', '.join(AXES)})")
    return make_grid(merged)


def sweep(config_file=None, *, act=None, init=None, norm=None, dropout=None, optimizer=None, lr=None,
          weight_decay=None, hidden=None, batch_size=None, preset=None, seeds=None, n_seeds=None,
          max_epochs=None, patience=None, momentum=None, dataset=None, record=None, train_subset=None,
          executor: str = "local", runs_dir=None, sweeps_dir=None, name: str | None = None, device=None,
          memory=None, max_models: int | None = None, dry_run: bool = False, progress: bool = True,
          data_root=None, ray_address: str | None = None, shards_per_gpu: int = 1,
          cpus_per_shard: float | None = None, overwrite: bool = False, log=print) -> SweepResult:
    """Plan a grid into shards and train what is missing; returns the plan, the table and the status.

    Axes take a list or a comma-separated string (``act="relu,tanh"``, ``lr=[1e-2, 5e-2]``).
    overwrite -- replace an earlier sweep of the same ``name`` with a different grid (else refused)
    """
    import pandas as pd

    from . import store, sweep_results
    from .sweep_estimate import estimate
    from .sweep_plan import plan
    check_execution(executor, shards_per_gpu, cpus_per_shard, max_models)  # before anything is read or written
    if name is not None:
        sweep_results.check_name(name)
    grid = build_grid(config_file, act=act, init=init, norm=norm, dropout=dropout, optimizer=optimizer, lr=lr,
                      weight_decay=weight_decay, hidden=hidden, batch_size=batch_size, preset=preset, seeds=seeds,
                      n_seeds=n_seeds, max_epochs=max_epochs, patience=patience, momentum=momentum,
                      dataset=dataset, record=record, train_subset=train_subset)
    if device is not None:
        from .train import resolve_device
        device = str(resolve_device(device))
    use_gpu = (device or "").startswith("cuda") or (device is None and _has_cuda())
    min_shards = 1
    if executor == "ray":
        from . import sweep_ray
        sweep_ray.import_ray()  # the missing extra is named before anything is written
        if not use_gpu:  # one CPU shard per CPU: a single big shard would leave the other CPUs idle
            min_shards = sweep_ray.cpu_slots(ray_address, cpus_per_shard)
    the_plan = plan(grid, runs_dir=runs_dir, device=device, memory=memory, max_models=max_models, name=name,
                    min_shards=min_shards)
    directory = Path(sweeps_dir or sweep_results.default_sweeps_dir(runs_dir)) / the_plan.name
    # refused before the plan is printed as if it would run: a name another grid already holds
    replaced = sweep_results.check_reuse(directory, [c.run_name() for c in the_plan.configs], overwrite)
    the_plan.runs_dir = str(Path(runs_dir or store.default_runs_dir()).resolve())  # absolute: Ray workers' cwd differs
    the_plan.estimate = estimate(the_plan.shards, the_plan.runs_dir)
    log(the_plan.describe())
    if dry_run:
        return SweepResult(the_plan, pd.DataFrame(), directory, {"shards": [], "dry_run": True})

    from .lock import runs_lock
    root = store.check_output_dir(runs_dir or store.default_runs_dir(), create=True)  # one line, before training
    earlier = [] if replaced else sweep_results.earlier_shards(directory)
    if replaced:
        sweep_results.clear_results(directory)  # the other grid's status and table are not this one's
        log(f"--overwrite: replacing the earlier sweep {the_plan.name!r} (a different grid)")
    sweep_results.save_sweep_files(directory, plan=the_plan)
    with runs_lock(root):
        store.recover_leftovers(root)  # what a killed writer left behind
    runs_dir_s = the_plan.runs_dir
    jobs = [{"configs": [c.to_dict() for c in s.configs], "runs_dir": runs_dir_s, "device": device,
             "data_root": None if data_root is None else str(Path(data_root).resolve())} for s in the_plan.shards]
    total_runs = sum(len(s.configs) for s in the_plan.shards)
    done_runs, t0 = [0], time.perf_counter()
    shard_status: list[dict] = [{"index": s.index, "runs": [c.run_name() for c in s.configs], "ok": None}
                                for s in the_plan.shards]
    retried = {run for s in shard_status for run in s["runs"]}
    earlier = [s for s in earlier if not retried & set(s.get("runs", []))]  # a retried shard's old word is stale

    def status() -> dict:
        # this invocation's shards, then the earlier invocations' that trained other runs of the grid
        return {"executor": executor, "shards": shard_status + earlier, "seconds": time.perf_counter() - t0}

    def report(i: int, result: dict) -> None:
        shard = the_plan.shards[i]
        done_runs[0] += len(shard.configs)
        shard_status[i] = {**shard_status[i], **{k: v for k, v in result.items() if k != "runs"},
                           "seconds": result.get("finished", 0) - result.get("started", 0)}
        sweep_results.save_sweep_files(directory, status=status())  # a kill -9 later still leaves this shard's word
        what = "done" if result.get("ok") else f"FAILED: {result.get('error')}"
        log(f"shard {i + 1}/{len(jobs)} ({_runs(len(shard.configs))}, {shard.members} models) {what} "
            f"[{shard_status[i]['seconds']:.1f} s]; overall {done_runs[0]}/{total_runs} runs, "
            f"{time.perf_counter() - t0:.0f} s")

    stopped = None
    try:
        if not jobs:
            log("nothing to train: every run of the grid is cached")
        elif executor == "local":
            for i, job in enumerate(jobs):
                log(f"shard {i + 1}/{len(jobs)}: training {_runs(len(job['configs']))}, "
                    f"{the_plan.shards[i].members} models")
                report(i, train_shard(**job, progress=progress))
        else:
            from . import sweep_ray
            started = sweep_ray.connect(ray_address)
            try:
                sweep_ray.run_tasks(train_shard, jobs, sweep_ray.resources(use_gpu, shards_per_gpu, cpus_per_shard),
                                    on_result=report)
            finally:
                if started:
                    sweep_ray.shutdown()
    except BaseException as exc:
        stopped = exc
        raise
    finally:  # also on Ctrl-C: what finished is in the table, the rest shows as not trained
        failures = {run: s["error"] for s in shard_status if s.get("ok") is False for run in s["runs"]}
        missing = (sweep_results.INTERRUPTED if isinstance(stopped, KeyboardInterrupt) else
                   sweep_results.NOT_TRAINED if stopped is None else
                   f"the sweep stopped on {type(stopped).__name__} before this run; the same command trains it")
        final = status()
        table = sweep_results.results_table(the_plan, runs_dir_s, failures, missing)
        sweep_results.save_sweep_files(directory, status=final, table=table)
    return SweepResult(the_plan, table, directory, final)


def check_execution(executor: str, shards_per_gpu, cpus_per_shard, max_models) -> None:
    """The execution settings, checked before the grid is planned, files are written or Ray starts."""
    from .sweep_grid import SweepError
    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}; accepted: {', '.join(EXECUTORS)}")
    if isinstance(shards_per_gpu, bool) or not isinstance(shards_per_gpu, int) or shards_per_gpu < 1:
        raise SweepError(f"--shards-per-gpu takes a whole number >= 1 (K shards share a GPU), got {shards_per_gpu!r}")
    if cpus_per_shard is not None and not (cpus_per_shard >= 0 and cpus_per_shard < float("inf")):
        raise SweepError(f"--cpus-per-shard takes a number >= 0, got {cpus_per_shard!r}")
    if max_models is not None and max_models < 1:
        raise SweepError(f"--max-models takes a whole number >= 1, got {max_models!r}")


def _runs(n: int) -> str:
    return f"{n} run{'s' * (n != 1)}"


def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


# --------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML (or YAML) file of axes; flags given here override it "
                                                    "(default: none, flags only)")
    g = p.add_argument_group("axes (comma-separated values; the grid is their product)")
    g.add_argument("--act", help="activations, e.g. relu,tanh; 'all' = the tutorial's six (default: relu)")
    g.add_argument("--init", help="inits: default, xavier, xavier_normal, kaiming, kaiming_normal, orthogonal, normal "
                                  "(default: the preset's)")
    g.add_argument("--norm", help="none, batch, layer (default: the preset's, none)")
    g.add_argument("--dropout", help="probabilities of DROPPING a unit, e.g. 0,0.2 (default: the preset's, 0)")
    g.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop (default: the preset's, sgd)")
    g.add_argument("--lr", help="learning rates, e.g. 1e-2,5e-2; they share a shard (default: the preset's)")
    g.add_argument("--weight-decay", help="weight decays, e.g. 0,1e-4 (default: the preset's, 0)")
    g.add_argument("--hidden", help="hidden sizes, widths joined by '-': 512-256-256-128,256-128 (default: the preset's)")
    g.add_argument("--batch-size", help="batch sizes, e.g. 128,256 (default: the preset's)")
    g.add_argument("--preset", help="presets: tutorial, quick, smoke (default: quick)")
    s = p.add_argument_group("seeds and fixed settings")
    s.add_argument("--seeds", help="seeds of every run, e.g. 42,43,44 (default: 42,43,44)")
    s.add_argument("--n-seeds", type=int, metavar="N", help="seeds 42 .. 42+N-1 (default: 3)")
    for flag, kind, what in (("--max-epochs", int, "most epochs per run"), ("--patience", int, "early-stopping patience"),
                             ("--momentum", float, "SGD/RMSprop momentum"),
                             ("--train-subset", int, "train on the first N examples")):
        s.add_argument(flag, type=kind, help=f"{what} (default: the preset's)")
    s.add_argument("--dataset", choices=["fashion_mnist", "synthetic"], help="dataset (default: the preset's)")
    s.add_argument("--record", choices=["default", "every", "off"],
                   help="gradient recording schedule (default: the preset's, default)")
    e = p.add_argument_group("execution")
    e.add_argument("--executor", default="local", choices=EXECUTORS, help="local or ray")
    e.add_argument("--ray-address", metavar="ADDR", help="Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    e.add_argument("--shards-per-gpu", type=int, default=1, metavar="K", help="Ray: K shards share a GPU (1/K each)")
    e.add_argument("--cpus-per-shard", type=float, metavar="N", help="Ray: CPUs per shard task (default: 1 on CPU, "
                                                                     "0 beside a GPU share)")
    e.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    e.add_argument("--memory", metavar="SIZE", help="memory budget per shard, e.g. 2GiB (default: half of the free "
                                                    "GPU memory or available RAM)")
    e.add_argument("--max-models", type=int, metavar="N", help="at most N models per shard (default: as many as memory allows; on "
                                                            "Ray without a GPU, also one shard or more per CPU)")
    e.add_argument("--dry-run", action="store_true", help="show the plan (runs, shards, cache) and train nothing")
    e.add_argument("--name", help="sweep name, a plain folder name (default: sweep-<hash of its runs>); a name "
                                  "another grid holds is refused")
    e.add_argument("--overwrite", action="store_true", help="let --name replace an earlier sweep of another grid "
                                                            "(its table and status; its runs stay in the store)")
    e.add_argument("--sweeps-dir", metavar="DIR", help="where sweep folders go (default: $GRADFLOW_SWEEPS, else sweeps/ beside the run "
                   "store: ./sweeps for the default store)")
    e.add_argument("--out", metavar="DIR", help="runs folder (default: $GRADFLOW_RUNS or ./checkpoints)")
    e.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $GRADFLOW_DATA or ./data)")
    e.add_argument("--no-progress", action="store_true", help="no per-epoch progress bars")


def run(args) -> int:
    from . import sweep_results
    result = sweep(args.config, act=args.act, init=args.init, norm=args.norm, dropout=args.dropout,
                   optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, hidden=args.hidden,
                   batch_size=args.batch_size, preset=args.preset, seeds=args.seeds, n_seeds=args.n_seeds,
                   max_epochs=args.max_epochs, patience=args.patience, momentum=args.momentum,
                   dataset=args.dataset, record=args.record, train_subset=args.train_subset,
                   executor=args.executor, runs_dir=args.out, sweeps_dir=args.sweeps_dir,
                   name=args.name, device=args.device, memory=args.memory, max_models=args.max_models,
                   dry_run=args.dry_run, progress=not args.no_progress, data_root=args.data_dir,
                   ray_address=args.ray_address, shards_per_gpu=args.shards_per_gpu,
                   cpus_per_shard=args.cpus_per_shard, overwrite=args.overwrite)
    if args.dry_run:
        return 0
    print(f"\nsweep table: {result.directory / sweep_results.TABLE_FILE} "
          f"({len(result.table)} rows; `gradflow runs --sweep {result.directory}` prints it)")
    print(sweep_results.format_summary(result.table))
    if result.failed:
        print(f"{len(result.failed)} shard(s) failed; run the same command again to retry only those",
              file=sys.stderr)
        return 1
    return 0
