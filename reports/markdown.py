"""Number formatting and Markdown tables shared by the report's prose modules
(:mod:`reports.render`, :mod:`reports.paper`, :mod:`reports.goals`)."""

from __future__ import annotations

import math

from tabulate import tabulate


def fmt(x, digits=2) -> str:
    """A number for the report: ``–`` for None/NaN, thousands separators from 1,000."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def times(x, digits=2) -> str:
    """A ratio as ``1.23x`` (``–`` when not measured)."""
    s = fmt(x, digits)
    return s if s == "–" else s + "x"


def pct(part, whole, digits=0) -> str:
    """``part`` as a percentage of ``whole`` (``–`` when not measured)."""
    if not whole or part is None or (isinstance(part, float) and math.isnan(part)):
        return "–"
    return f"{100.0 * part / whole:.{digits}f}%"


def md_table(header: list[str], body: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells."""
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)
