"""Atomic file writes: every file gradflow writes appears whole under its name, or not at all.

The one way files are written (run store, recordings, reports): write to a temporary file in the
same folder, flush it to disk, then ``os.replace`` it over the final name. A reader therefore sees
the old file or the new one, never half of one; a crash, a kill -9 or a full disk leaves at most a
hidden ``.<name>.*.tmp`` file, which the failure path removes when it can.

One permission policy: the temporary file ``mkstemp`` makes is private (0600); the final file gets
the mode any other output would get, 0644 minus the user's umask, so reports and runs stay readable
by whoever could read the folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (single-threaded use is enough:
    # the value is read once per process and cached)
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def file_mode() -> int:
    """The mode of every file gradflow writes: readable like any other output (0644 minus the umask)."""
    return 0o644 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it becomes ``path`` in one step.

    For writers that want a file name (``df.to_parquet(tmp)``, ``save_file(state, tmp)``). On any
    exception (KeyboardInterrupt included) the temporary file is removed and the error re-raised.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _fsync(path: str) -> None:
    """Flush the file's data to disk before the rename, so a power cut cannot leave a named empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(tmp_path)`` writes the content; the result is moved to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_json(path: str | os.PathLike, obj, indent: int | None = 2, allow_nan: bool = True) -> Path:
    """JSON with a trailing newline; values JSON cannot hold (paths, dates) are written as strings."""
    text = json.dumps(obj, indent=indent, default=str, allow_nan=allow_nan) + "\n"
    return write_text(path, text)
