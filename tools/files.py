"""Atomic file writes and the project's cache directory.

Every output of the project (Verilog, sidecars, reports, layer files, plots) is written
through :func:`atomic_write` or :func:`atomic_write_set`: the data goes to a temporary file in
the destination directory, is flushed and ``fsync``-ed, gets mode ``0666 & ~umask`` (0644
under the usual umask; never the 0600 of ``mkstemp``) and is moved in place with
``os.replace``. A reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
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


def atomic_write_set(files: Mapping[str | os.PathLike, Data]) -> list[Path]:
    """Write several files as a set: every one is staged first, then all are moved in place.

    If staging any of them fails, none of the destinations is touched (e.g. Verilog and its
    sidecar, or ``results.md`` + ``results.json`` + a plot).
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            staged.append((_stage(Path(path), data), Path(path)))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    return [p for _, p in staged]
