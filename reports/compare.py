"""``python -m reports compare A B``: do two reports hold the same results?

For checking one sweep against another: a Ray run against the local pool, a cluster against
one machine, a tool upgrade against the last report. Rows are matched by (design, target);
two rows are the same when every field is equal except those that say how the run went
rather than what it measured (:data:`RUN_FIELDS`: wall times and where the Liberty
file was on the machine that ran it), at any depth. Floats are compared with ``==``: the
flows are deterministic, so an equal run gives equal numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ReportError

#: Fields that describe the run, not the design: left out of the comparison at any depth.
RUN_FIELDS = frozenset({"seconds", "export_seconds", "liberty"})


def load_rows(path: str | Path) -> dict[tuple[str, str], dict]:
    """The rows of a report (its directory or its ``report.json``), by (design, target)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise ReportError(f"no report at {path}: give a report directory or its report.json")
    try:
        rows = json.loads(path.read_text())["rows"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReportError(f"{path} is not a report.json of python -m reports ({e})") from None
    out = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not {"design", "target"} <= r.keys():
            raise ReportError(f"{path}: row {i} has no design and target; is it a report.json?")
        key = (r["design"], r["target"])
        if key in out:
            raise ReportError(f"{path}: {key[0]} on {key[1]} is in the report twice")
        out[key] = r
    return out


def measured(value):
    """``value`` without :data:`RUN_FIELDS` (in every nested dict)."""
    if isinstance(value, dict):
        return {k: measured(v) for k, v in value.items() if k not in RUN_FIELDS}
    if isinstance(value, list):
        return [measured(v) for v in value]
    return value


@dataclass
class Comparison:
    """Which rows two reports share, and which of those differ (with the differing fields)."""

    equal: list[tuple[str, str]] = field(default_factory=list)
    differ: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    only_a: list[tuple[str, str]] = field(default_factory=list)
    only_b: list[tuple[str, str]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.differ or self.only_a or self.only_b)


def compare(a: dict[tuple[str, str], dict], b: dict[tuple[str, str], dict]) -> Comparison:
    """Compare two reports' rows (:func:`load_rows`)."""
    c = Comparison(only_a=[k for k in a if k not in b], only_b=[k for k in b if k not in a])
    for key in (k for k in a if k in b):
        ra, rb = measured(a[key]), measured(b[key])
        if ra == rb:
            c.equal.append(key)
        else:
            c.differ[key] = sorted(f for f in ra.keys() | rb.keys() if ra.get(f) != rb.get(f))
    return c


def render(c: Comparison, a: str, b: str, limit: int = 20) -> str:
    """The comparison as text: counts, then the rows that are not the same (``limit`` each)."""

    def listing(title: str, keys: list, detail=lambda key: "") -> list[str]:
        if not keys:
            return []
        shown = [f"  {d} on {t}{detail((d, t))}" for d, t in keys[:limit]]
        more = [f"  ... and {len(keys) - limit} more"] if len(keys) > limit else []
        return [title, *shown, *more]

    return "\n".join(
        [
            f"A: {a}",
            f"B: {b}",
            f"{len(c.equal) + len(c.differ)} rows in both: {len(c.equal)} the same, "
            f"{len(c.differ)} differ; {len(c.only_a)} only in A, {len(c.only_b)} only in B",
            *listing("differ (in):", list(c.differ), lambda k: ": " + ", ".join(c.differ[k])),
            *listing("only in A:", c.only_a),
            *listing("only in B:", c.only_b),
            "SAME RESULTS" if c.same else "DIFFERENT RESULTS",
        ]
    )
