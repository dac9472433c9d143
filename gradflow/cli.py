"""The ``gradflow`` command. Errors are one line, not a traceback.

How commands are added (keeps this file a list, and ``--help`` fast): a command's code lives in the
module that owns it, which exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports
torch, pandas and the like only inside ``run``. Here it is one line of ``COMMANDS``: the module is
imported only when its command (or its ``--help``) is asked for, so ``gradflow --help`` imports
nothing heavy.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys

from . import __version__

# name -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gradflow.commands.train", "train (or load cached) runs: one per activation, all seeds batched together"),
    "runs": ("gradflow.commands.runs", "list the runs in the store: what differs between them, where each came from"),
    "diagnose": ("gradflow.commands.diagnose", "print the findings of a run or of a saved recording"),
    "report": ("gradflow.commands.report", "render the notebooks to HTML reports"),
    "activations": ("gradflow.commands.activations", "list the activation functions: names, parameters, config"),
    "data": ("gradflow.commands.data", "prepare FashionMNIST in the data folder (local files, Debian package "
                                       "or download)"),
}


class CliError(Exception):
    """A user error; main prints it as one line."""


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help, unless the help already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            return f"{text} (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An argument error is one line naming the command and where its help is, not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its options (None: the top level only)."""
    p = Parser(prog="gradflow", description="Gradient-flow diagnostics for PyTorch.",
                                formatter_class=HelpFormatter,
                                epilog="`gradflow COMMAND --help` describes a command's options.")
    p.add_argument("--version", action="version", version=f"gradflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_[:1].upper() + help_[1:] + ".",
                            formatter_class=HelpFormatter)
        if name == command:
            mod = importlib.import_module(module)
            mod.add_arguments(sp)
            sp.set_defaults(_run_command=mod.run)
    return p


def _command_in(argv: list[str]) -> str | None:
    # the top level takes only -h/--version, so the first word that is not an option is the command
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(argv)).parse_args(argv)
    from .paths import PathError  # light: stdlib only
    try:
        return args._run_command(args)
    except KeyboardInterrupt:
        print("gradflow: interrupted; finished runs are kept, the unfinished one was discarded", file=sys.stderr)
        return 130
    except OSError as exc:
        if not exc.strerror:  # an OSError raised with a message of ours
            print(f"gradflow: error: {exc}", file=sys.stderr)
            return 2
        where = f": {exc.filename}" if exc.filename else ""
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        print(f"gradflow: error: {exc.strerror.lower()}{where}" + (
            "; finished runs are kept and the unfinished one was discarded: free some space and run the command "
            "again" if full else ""), file=sys.stderr)
        return 2
    except (CliError, PathError, ValueError, RuntimeError, TypeError) as exc:
        print(f"gradflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
