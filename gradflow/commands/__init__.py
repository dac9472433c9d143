"""The built-in ``gradflow`` commands, one module each, registered in ``gradflow.cli.COMMANDS``.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports only the
standard library at module level: building a command's parser (its ``--help``) must not import
torch or pandas. Names the parser needs from heavy modules are repeated here and checked equal to
the originals by tests/test_cli.py.
"""

PRESET_NAMES = ("tutorial", "quick", "smoke")                     # gradflow.config.PRESETS
INIT_NAMES = ("default", "xavier", "xavier_normal", "kaiming", "kaiming_normal", "orthogonal", "normal")
NORM_NAMES = ("none", "batch", "layer")                           # gradflow.models.NORMS
OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop")             # gradflow.config.OPTIMIZERS


def add_runs_dir(parser, writes: bool) -> None:
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="runs folder (default: $GRADFLOW_RUNS or ./checkpoints)"
                             + ("; created if missing, its parent must exist" if writes else ""))

