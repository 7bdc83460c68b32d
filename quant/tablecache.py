"""A cache of the comparison table's jobs under ``<out>/cache`` (one JSON file per job).

A job (the FP row, one format's paper rows, one format's improved rows and check) is cached
by a key of everything its rows depend on: the job's name and arguments, the table's
settings, the model file (path, size, modification time), the torch thread count, the
versions of torch and transformers, and the text of every ``quant`` and ``golden`` source
file (any edit invalidates every entry: coarse, but never stale). A rerun of the same table
takes seconds; a table with one more format runs only that format's jobs. ``--no-cache``
runs everything (and refreshes the entries).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import asdict
from pathlib import Path

import tools

from .checkpoint import Checkpoint
from .outputs import json_text
from .table import TableSettings

_PACKAGES = ("quant", "golden")


@functools.lru_cache(maxsize=1)
def source_revision() -> str:
    """Hash of every ``quant``/``golden`` source file and the torch/transformers versions."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for pkg in _PACKAGES:
        h.update(tools.tree_hash(root / pkg).encode())
    for dist in ("torch", "transformers"):
        try:
            h.update(f"{dist} {importlib.metadata.version(dist)}\0".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist} none\0".encode())
    return h.hexdigest()


def _model_id(model: str | Checkpoint) -> dict:
    if isinstance(model, Checkpoint):
        src = Path(model.source)
        target = src if src.is_file() else src / "config.json"
        st = target.stat() if target.exists() else None
        return {
            "name": model.name,
            "source": str(src),
            "size": st.st_size if st else None,
            "mtime_ns": st.st_mtime_ns if st else None,
        }
    return {"name": str(model)}


class JobCache:
    """Rows of finished table jobs, read and written by the driver (never by workers)."""

    def __init__(self, directory: Path, settings: TableSettings, model: str | Checkpoint):
        self.directory = Path(directory)
        self.base = {
            "settings": asdict(settings),
            "model": _model_id(model),
            "revision": source_revision(),
        }

    def key(self, name: str, args: tuple, threads: int) -> str:
        text = json.dumps(
            {**self.base, "job": name, "args": [repr(a) for a in args], "threads": threads},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def load(self, key: str) -> list[dict] | None:
        path = self.directory / f"{key}.json"
        try:
            return json.loads(path.read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or unreadable: run the job again

    def store(self, key: str, rows: list[dict]) -> None:
        tools.atomic_write(self.directory / f"{key}.json", json_text({"rows": rows}))
