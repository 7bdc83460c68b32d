"""How quant's result files are rendered: JSON text, and figures as PNG bytes.

The files are written with ``tools.atomic_write`` (one file) or ``tools.atomic_write_set``
(a table's ``.md`` + ``.json`` + ``.png`` as a set): temp file beside the target, ``fsync``,
mode 0644 under the usual umask, ``os.replace``.
"""

from __future__ import annotations

import io
import json

from matplotlib.figure import Figure

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
