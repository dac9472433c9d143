"""``gradflow train``: train the runs a comparison needs (or load them from the store)."""
from __future__ import annotations

from . import INIT_NAMES, NORM_NAMES, OPTIMIZER_NAMES, PRESET_NAMES, add_runs_dir


def add_arguments(t) -> None:
    t.add_argument("--act", nargs="+", default=["all"], metavar="NAME",
                   help="activation(s), space or comma separated; 'all' = the tutorial's six: sigmoid, tanh, "
                        "relu, leakyrelu, elu, swish (default: all; `gradflow activations` lists every name)")
    t.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                   help="recipe: tutorial = the tutorial's (50 epochs max), quick = the same for 4 epochs, "
                        "smoke = a tiny net on synthetic data (default: quick)")
    t.add_argument("--seeds", nargs="+", metavar="SEED",
                   help="seeds, e.g. 42 43 44 (default: the preset's: 42 43 44; smoke: 0 1)")
    t.add_argument("--n-seeds", type=int, metavar="N", help="use seeds 42 .. 42+N-1 instead of --seeds (default: off)")
    t.add_argument("--hidden", type=int, nargs="+", metavar="WIDTH",
                   help="hidden layer widths (default: the preset's: 512 256 256 128; smoke: 64 32)")
    t.add_argument("--init", metavar="SCHEME",
                   help=f"weight initialisation: {', '.join(INIT_NAMES)} (default: default, PyTorch's own)")
    t.add_argument("--norm", choices=NORM_NAMES, help="normalisation after each hidden layer (default: none)")
    t.add_argument("--dropout", type=float, metavar="P",
                   help="probability of DROPPING a hidden unit, PyTorch's meaning, in [0, 1) (default: 0)")
    t.add_argument("--output-act", metavar="NAME",
                   help="an activation on the logits, to reproduce that bug (default: none, plain logits)")
    t.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help="optimizer (default: sgd, as the tutorial)")
    t.add_argument("--lr", type=float, help="learning rate (default: 0.01, the tutorial's)")
    t.add_argument("--momentum", type=float, help="SGD/RMSprop momentum (default: 0.9)")
    t.add_argument("--weight-decay", type=float, help="L2 weight decay (default: 0)")
    t.add_argument("--batch-size", type=int, help="batch size, last partial batch dropped (default: 256; smoke: 64)")
    t.add_argument("--max-epochs", type=int, help="most epochs trained (default: tutorial 50, quick 4, smoke 3)")
    t.add_argument("--patience", type=int,
                   help="early stopping: epochs without a better validation accuracy (default: 7; smoke: 2)")
    t.add_argument("--dataset", choices=["fashion_mnist", "synthetic"],
                   help="training data (default: fashion_mnist; smoke: synthetic)")
    t.add_argument("--record", choices=["default", "every", "off"],
                   help="gradient recording: default = steps 0, 1, 4, 16, 64 then every 200th; every = each step; "
                        "off = none, so `gradflow diagnose` has only the metrics (default: default)")
    t.add_argument("--precision", choices=["fp32", "tf32", "bf16"],
                   help="arithmetic: fp32 = float32, the tutorial's numbers; tf32 = TensorFloat-32 CUDA matmuls "
                        "(no effect on a CPU); bf16 = bfloat16 autocast of the forward pass, CPU or CUDA "
                        "(default: fp32)")
    t.add_argument("--graph", choices=["auto", "on", "off"], default="auto",
                   help="the training step as a CUDA graph: auto = where it can be captured (CUDA, no dropout, "
                        "an optimizer that allows it), on = required, off = eager; same numbers (default: auto)")
    t.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    t.add_argument("--data-dir", metavar="DIR",
                   help="an existing folder holding FashionMNIST/raw/ or to put it in (default: $GRADFLOW_DATA "
                        "or ./data)")
    t.add_argument("--overwrite", action="store_true", help="train again even if the run is in the store")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--case-studies", action="store_true",
                   help="train (or load) the case-study page's runs instead (gradflow.case_studies; uses --preset)")
    add_runs_dir(t, writes=True)


def parse_activations(values: list[str]) -> list[str]:
    from ..activations import available_activations
    from ..cli import CliError
    from ..config import TUTORIAL_ACTIVATIONS
    names = []
    for v in values:
        for name in v.split(","):
            name = name.strip().lower()
            if name == "all":
                names.extend(TUTORIAL_ACTIVATIONS)
            elif name:
                if name not in available_activations():
                    raise CliError(f"unknown activation {name!r}; accepted: all, {', '.join(available_activations())}")
                names.append(name)
    return list(dict.fromkeys(names))


def parse_seeds(values: list[str] | None) -> list[int] | None:
    from ..cli import CliError
    if not values:
        return None
    try:
        return [int(s) for v in values for s in v.split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--seeds takes integers, e.g. --seeds 42 43 44; got {' '.join(values)}") from None


def run(args) -> int:
    from ..cli import CliError
    from ..paths import check_data_dir, check_output_dir, default_runs_dir
    # the doors first: nothing is loaded or trained before the folders are known to be usable
    check_output_dir(args.out if args.out is not None else default_runs_dir(), flag="--out")
    if args.data_dir is not None:
        check_data_dir(args.data_dir)
    if args.case_studies:
        _refuse_case_study_options(args)
        from ..case_studies import run as run_case_studies
        return run_case_studies(args)
    from ..train import compare, resolve_device
    if args.graph == "on" and resolve_device(args.device).type != "cuda":  # before any data is loaded
        raise CliError("--graph on needs a CUDA device (CUDA graphs); this run would train on the CPU. "
                       "Use --graph auto or off")
    seeds = parse_seeds(args.seeds)
    if args.n_seeds is not None:
        if args.n_seeds < 1:
            raise CliError(f"--n-seeds must be at least 1, got {args.n_seeds}")
        seeds = [42 + i for i in range(args.n_seeds)]
    overrides = dict(hidden_sizes=args.hidden, init=args.init, norm=args.norm, dropout=args.dropout,
                     optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size,
                     max_epochs=args.max_epochs, patience=args.patience, dataset=args.dataset,
                     record=args.record, output_act=args.output_act, weight_decay=args.weight_decay,
                     precision=args.precision)
    try:
        runs = compare(parse_activations(args.act), preset=args.preset, seeds=seeds, runs_dir=args.out,
                       overwrite=args.overwrite, device=args.device, progress=not args.no_progress,
                       data_root=args.data_dir, graph=args.graph, **overrides)
    except RuntimeError as exc:
        if not _out_of_memory(exc):
            raise
        raise CliError(_out_of_memory_line(exc, args, seeds)) from None
    for r in runs:
        s = r.summary()
        accs = ", ".join(f"{a * 100:.2f}" for a in s["test_acc"])
        print(f"{r.name}: test accuracy {s['test_acc_mean'] * 100:.2f} % (seeds {s['seeds']}: {accs})")
    return 0


# the options --case-studies uses; every other one is refused when given, not silently ignored (the case
# studies' settings are their own: their models, data, seeds and optimizers are fixed per case)
CASE_STUDY_OPTIONS = {"case_studies", "preset", "out", "overwrite", "no_progress", "data_dir"}


def _refuse_case_study_options(args) -> None:
    import argparse

    from ..cli import CliError
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    given = [f"--{dest.replace('_', '-')}" for dest, default in defaults.items()
             if dest not in CASE_STUDY_OPTIONS and getattr(args, dest, default) != default]
    if given:
        raise CliError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --case-studies (each "
                       "case trains its own fixed settings); accepted with it: --preset, --out, --overwrite, "
                       "--no-progress, --data-dir")


def _out_of_memory(exc: RuntimeError) -> bool:
    import torch
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc) \
        or "out of memory" in str(exc).lower()


def _out_of_memory_line(exc: RuntimeError, args, seeds) -> str:
    """One line for an allocation the machine cannot make: the sizes asked for and what makes them smaller."""
    import re

    from ..config import PRESETS
    preset = PRESETS[args.preset]
    hidden = args.hidden or list(preset.get("hidden_sizes", (512, 256, 256, 128)))
    n_seeds = len(seeds or preset.get("seeds", (42, 43, 44)))
    asked = re.search(r"allocate (\d+) bytes", str(exc)) or re.search(r"allocate ([\d.]+ [KMGT]iB)", str(exc))
    size = "" if not asked else (f" (one allocation of {int(asked.group(1)) / 2**30:.1f} GiB)"
                                 if asked.group(1).isdigit() else f" (one allocation of {asked.group(1)})")
    return (f"out of memory: hidden widths {' '.join(map(str, hidden))} x {n_seeds} seed(s) per activation, "
            f"batch size {args.batch_size or preset.get('batch_size', 256)}, do not fit in this device's memory"
            f"{size}; use smaller --hidden widths, fewer --seeds or a smaller --batch-size")
