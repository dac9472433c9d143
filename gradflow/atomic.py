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
import re
import shutil
import tempfile
import uuid
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


# --------------------------------------------------------------------------- whole folders
# A folder of several files (a run, a recording) is written into a hidden sibling ``.tmp-<name>-<8 hex>``
# and renamed into place; a folder already there is first moved aside to ``.old-<name>-<8 hex>`` and
# removed after. A kill at any point leaves the old folder or the new one under the name, never a mix,
# plus at most these hidden siblings, which ``recover_folder`` tidies (store.recover_leftovers applies
# the same rule to a whole runs folder).


def temp_folder(final: str | os.PathLike) -> Path:
    """A new, empty hidden folder beside ``final`` to write its next content into."""
    final = Path(final)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def swap_in(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Put the finished folder ``tmp`` at ``final`` by renames; the folder it replaces is removed."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        aside = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, aside)
        os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def leftovers(final: str | os.PathLike, kind: str) -> list[Path]:
    """The ``.tmp-`` (kind "tmp") or ``.old-`` (kind "old") siblings an interrupted swap of ``final`` left."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    # exactly "<name>-<8 hex>": the leftovers of folder "a" are not those of a folder named "a-b"
    pattern = re.compile(rf"\.{kind}-{re.escape(final.name)}-[0-9a-f]{{8}}")
    return sorted(p for p in final.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir())


def recover_folder(final: str | os.PathLike, unfinished: bool = True) -> None:
    """Tidy what an interrupted ``swap_in`` of ``final`` left: a folder moved aside goes back when
    ``final`` is missing (the old content, whole), the others are removed. ``unfinished``: also remove
    ``.tmp-`` folders, which only a writer that owns ``final`` may do (a reader leaves them)."""
    final = Path(final)
    for aside in leftovers(final, "old"):
        if not final.exists():
            os.replace(aside, final)
        else:
            shutil.rmtree(aside, ignore_errors=True)
    if unfinished:
        for tmp in leftovers(final, "tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
