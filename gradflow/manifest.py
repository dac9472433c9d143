"""A run directory that proves itself complete: ``manifest.json`` lists every file with its size and checksum.

The manifest is the last file written into a run, so a run without one was never finished (or was
written by a gradflow older than the manifest). Checking a run reads every listed file once
(SHA-256, a few milliseconds per megabyte) and names the first file that is missing, shorter or
longer than written, or changed. Files not listed (a note a user put there) are left alone.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import atomic

MANIFEST = "manifest.json"
FORMAT = "gradflow.manifest"
VERSION = 1
_CHUNK = 1 << 20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(directory: Path) -> list[Path]:
    """Every regular file under ``directory`` except the manifest and hidden temporary files."""
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))


def write_manifest(directory) -> Path:
    """List every file of ``directory`` (relative path -> size, sha256), written atomically, last."""
    directory = Path(directory)
    files = {p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": sha256(p)}
             for p in _files(directory)}
    return atomic.write_json(directory / MANIFEST, {"format": FORMAT, "version": VERSION, "files": files})


def problem(directory) -> str | None:
    """None when every listed file is there, whole and unchanged; otherwise one phrase naming the file."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        return (f"{MANIFEST} is missing (written by a gradflow older than run manifests, or never finished), "
                "so nothing proves its files whole; `gradflow runs --adopt` seals it if every file reads")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(files, dict):
            raise ValueError("not a gradflow manifest")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return f"{MANIFEST} is not a readable gradflow manifest"
    for name, entry in files.items():
        file = directory / name
        if not file.is_file():
            return f"{name} is missing"
        size = file.stat().st_size
        if size != entry.get("size"):
            how = "truncated" if size < entry.get("size", 0) else "longer than written"
            return f"{name} is {how} ({size} bytes, {entry.get('size')} written)"
        if sha256(file) != entry.get("sha256"):
            return f"{name} was altered after it was written (its checksum differs)"
    return None
