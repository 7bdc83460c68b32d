"""Atomic file writes and the project's cache directory.

Every output of the project (Verilog, sidecars, reports, layer files, plots) is written
through :func:`atomic_write` or :func:`atomic_write_set`: the data goes to a temporary file in
the destination directory, is flushed and ``fsync``-ed, gets mode ``0666 & ~umask`` (0644
under the usual umask; never the 0600 of ``mkstemp``) and is moved in place with
``os.replace``. A reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

#: Environment variable that overrides the cache directory.
CACHE_ENV = "DINTMAC_CACHE"

Data = str | bytes | Callable[[IO[bytes]], None]


def cache_dir() -> Path:
    """The project's cache: ``$DINTMAC_CACHE``, else ``$XDG_CACHE_HOME/dintmac``, else
    ``~/.cache/dintmac`` (an empty variable counts as unset)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dintmac"


def file_mode() -> int:
    """``0o666 & ~umask``: the mode an ordinary ``open(path, "w")`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _stage(path: Path, data: Data) -> Path:
    """Write ``data`` to a temp file beside ``path``; return the temp file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: str | os.PathLike, data: Data) -> Path:
    """Write ``data`` (text, bytes, or a function that writes to a binary file) to ``path``.

    Temp file in the same directory, ``fsync``, mode ``0666 & ~umask``, ``os.replace``; the
    parent directory is created. On any error the destination is untouched.
    """
    path = Path(path)
    tmp = _stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Raise ``OSError`` (with a message naming ``path``) unless ``path`` can be written as a
    file: it is not a directory, and its nearest existing parent is a writable directory."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"cannot write {path}: it is a directory; remove it or choose another name"
        )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: {parent} is not a writable directory")
    return path


def atomic_write_set(files: Mapping[str | os.PathLike, Data]) -> list[Path]:
    """Write several files as a set: all of them or none.

    Every destination is checked (:func:`check_writable`) and every file staged first; only
    then are they moved in place. If a move still fails, the files already moved are put back
    as they were (restored from hard-linked backups, or removed if they did not exist), so
    e.g. a Verilog file is never left without its sidecar, nor results.md without its .json.
    """
    paths = [Path(p) for p in files]
    for p in paths:
        check_writable(p)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in zip(paths, files.values(), strict=True):
            staged.append((_stage(path, data), path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    backups: dict[Path, Path | None] = {}
    replaced: list[Path] = []
    try:
        for tmp, path in staged:
            backups[path] = _backup(path)
            os.replace(tmp, path)
            replaced.append(path)
    except BaseException:
        for path in replaced:  # put back what was moved in
            if backups[path] is not None:
                os.replace(backups[path], path)
            else:
                path.unlink(missing_ok=True)
        for tmp, path in staged:
            tmp.unlink(missing_ok=True)
            if path not in replaced and backups.get(path) is not None:
                backups[path].unlink(missing_ok=True)  # untouched: drop its backup link
        raise
    for backup in backups.values():
        if backup is not None:
            backup.unlink(missing_ok=True)
    return paths


def _backup(path: Path) -> Path | None:
    """A hard link (or copy) of an existing ``path`` beside it, to restore it on failure."""
    if not path.is_file():
        return None
    backup = path.with_name(f".{path.name}.{os.getpid()}.bak")
    backup.unlink(missing_ok=True)
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def tree_hash(directory: str | os.PathLike, pattern: str = "*.py") -> str:
    """SHA-256 of the names and bytes of ``directory``'s files matching ``pattern`` (sorted):
    a cache key part that changes whenever any of those sources does."""
    h = hashlib.sha256()
    for p in sorted(Path(directory).glob(pattern)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()
