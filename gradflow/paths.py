"""Checks of the folders a user names, done at the door: before any data is loaded or model trained.

Each check raises ``PathError`` with one line saying what is wrong with the path and what is
accepted. Nothing here creates a folder the user did not ask for: a typo in ``--data-dir`` must not
become a new folder with 53 MB of FashionMNIST copied into it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def default_runs_dir() -> Path:
    """Where runs are stored unless ``--out``/``runs_dir`` says otherwise."""
    return Path(os.environ.get("GRADFLOW_RUNS", "checkpoints"))


class PathError(ValueError):
    """A folder given by the user cannot be used; the message is one line."""


def _probe_writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder``; else why not. A real probe: access() lies to root."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gradflow-write-probe-")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(probe)
    return None


def check_output_dir(path, flag: str = "--out", create: bool = False) -> Path:
    """A folder gradflow will write into: a folder or a new name in an existing, writable folder.

    With ``create`` the folder is made (only the last level: a missing parent is most likely a typo).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PathError(f"{flag} {path} is a file, not a folder; give a folder (it is created if missing)")
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            what = "is a file" if parent.exists() else "does not exist"
            raise PathError(f"{flag} {path}: its parent folder {parent} {what}; create the parent first "
                            "or give another folder")
        reason = _probe_writable(parent)
        if reason:
            raise PathError(f"{flag} {path} cannot be created in {parent}: {reason}; give a folder you can write to")
        if create:
            path.mkdir(exist_ok=True)
        return path
    reason = _probe_writable(path)
    if reason:
        raise PathError(f"{flag} {path} is not writable: {reason}; give a folder you can write to")
    return path


def check_input_dir(path, flag: str = "--out") -> Path:
    """A folder gradflow only reads: it may be missing (nothing there yet), but must not be a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PathError(f"{flag} {path} is a file, not a folder of runs")
    return path


def check_data_dir(path, flag: str = "--data-dir") -> Path:
    """A dataset root the user named: it must exist (FashionMNIST is then put in <it>/FashionMNIST/raw/)."""
    path = Path(path)
    if not path.exists():
        raise PathError(f"{flag} {path} does not exist; give an existing folder (FashionMNIST goes in "
                        f"{path}/FashionMNIST/raw/), create it first with mkdir, or leave {flag} unset "
                        "to use ./data")
    if not path.is_dir():
        raise PathError(f"{flag} {path} is a file, not a folder")
    return path
