"""One writer at a time per run store: two ``gradflow train`` (or sweep) processes on one runs folder.

The second process waits for the first, saying so once, then finds the first one's runs in the
cache instead of training them again. The lock is ``fcntl.flock`` on ``<runs>/.lock``: the
kernel drops it when its process dies, even by kill -9, so a crash never leaves a stale lock.
Within one process the lock is re-entrant (a sweep may call ``train_runs`` while holding it).
Readers (``gradflow runs``, reports) need no lock: runs appear by one atomic rename.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock, as before (documented in the README)
    fcntl = None

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # resolved lock path -> nesting depth, for the locks this process holds


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text().strip()
        if text:
            return f" ({text})"
    return ""


@contextlib.contextmanager
def runs_lock(runs_dir, poll_s: float = 0.2, timeout_s: float | None = None, say=None) -> Iterator[None]:
    """Hold the run store's writer lock; wait (printing one line) while another process holds it."""
    root = Path(runs_dir)
    root.mkdir(exist_ok=True)
    path = root / LOCK_FILE
    key = str(path.resolve())
    if key in _held:  # this process holds it already: nest
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = time.monotonic()
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    (say or _stderr)(f"gradflow: another gradflow process is writing to {root}{_holder(path)}; "
                                     "waiting for it to finish (Ctrl-C stops waiting)")
                    said = True
                if timeout_s is not None and time.monotonic() - waited > timeout_s:
                    raise TimeoutError(f"{root} is still being written by another gradflow process{_holder(path)} "
                                       f"after {timeout_s:.0f} s") from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(os.path.basename(a) for a in sys.argv[:3])}".encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
