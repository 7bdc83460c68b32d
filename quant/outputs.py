"""How quant's result files are rendered (JSON text, figures as PNG bytes) and where they
may go (:func:`check_output_dir` / :func:`check_output_file`, called before any long work).

The files are written with ``tools.atomic_write`` (one file) or ``tools.atomic_write_set``
(a table's ``.md`` + ``.json`` + ``.png`` as a set): temp file beside the target, ``fsync``,
mode 0644 under the usual umask, ``os.replace``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from matplotlib.figure import Figure

from .errors import QuantError

#: Resolution of every plot quant writes.
PLOT_DPI = 120


def json_text(obj) -> str:
    """``obj`` as indented JSON with a final newline."""
    return json.dumps(obj, indent=2) + "\n"


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, object]:
    """A figure with one axes. A bare ``Figure`` (no pyplot): no GUI backend, no global state."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def png_bytes(fig: Figure) -> bytes:
    """``fig`` laid out and rendered as PNG at :data:`PLOT_DPI`."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=PLOT_DPI)
    return buf.getvalue()


def check_output_dir(directory: str | os.PathLike) -> None:
    """Raise :class:`QuantError` unless ``directory`` is, or can be created as, a writable
    directory (checked before a run, so a long run never fails at its last step)."""
    directory = Path(directory)
    existing = next(p for p in (directory, *directory.parents) if p.exists() or p == Path("/"))
    if not existing.is_dir():
        raise QuantError(f"output directory {directory}: {existing} is a file; give a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise QuantError(f"output directory {directory}: cannot write in {existing}")


def check_output_file(path: str | os.PathLike) -> None:
    """Raise :class:`QuantError` unless the file ``path`` can be written (not a directory)."""
    path = Path(path)
    if path.is_dir():
        raise QuantError(f"output file {path} is a directory; give a file name")
    check_output_dir(path.parent)
