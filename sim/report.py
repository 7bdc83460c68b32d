"""Results of simulation runs: the record each test writes, failure messages, the summary.

A testbench appends one :class:`Result` per cocotb test to the configuration's
results file; the runner collects them and writes ``build/sim/summary.{md,json}`` (a partial
run: ``summary-<label>.{md,json}``, see :mod:`sim.selection`), both files as a set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools import atomic_write, atomic_write_set


@dataclass(frozen=True)
class Mismatch:
    """The first element where the design disagreed with the golden model."""

    test: str
    config: str
    cycle: int
    element: str
    expected: int
    got: int
    context: str = ""

    def message(self) -> str:
        """One line a human can act on: where, what was expected, what came out."""
        text = (
            f"{self.test} [{self.config}] mismatch at cycle {self.cycle}, {self.element}: "
            f"expected {self.expected}, got {self.got}"
        )
        return f"{text} ({self.context})" if self.context else text


@dataclass(frozen=True)
class Result:
    """Outcome of one test on one configuration.

    ``macs`` counts multiply-accumulates whose result was compared with the golden
    model (for the requantizer: lanes requantized); ``seconds`` is the wall time
    of the simulation loop, so ``macs / seconds`` is the verified-MAC rate.
    """

    test: str
    config: str
    passed: bool
    cycles: int = 0
    macs: int = 0
    seconds: float = 0.0
    message: str = ""
    wave: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def macs_per_s(self) -> float:
        return self.macs / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["macs_per_s"] = round(self.macs_per_s, 1)
        return d

    @classmethod
    def from_json(cls, d: dict) -> Result:
        d = {k: v for k, v in d.items() if k != "macs_per_s"}
        return cls(**d)


def append_result(path: Path, result: Result) -> None:
    """Add one result to a configuration's results file (a JSON list)."""
    path = Path(path)
    results = load_results(path) if path.exists() else []
    results.append(result)
    atomic_write(path, json.dumps([r.to_json() for r in results], indent=1))


def load_results(path: Path) -> list[Result]:
    """Results written by :func:`append_result`."""
    return [Result.from_json(d) for d in json.loads(Path(path).read_text())]


def _rate(r: Result) -> str:
    # No simulated cycles (formal proofs, static checks): a rate would mean nothing.
    if not r.macs or r.seconds <= 0 or not r.cycles:
        return "-"
    v = r.macs_per_s
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k"


COLUMNS = ("test", "configuration", "cycles", "MACs checked", "MACs/s", "result")


def table_rows(results: Iterable[Result]) -> list[tuple[str, ...]]:
    """One row per result, in the order of :data:`COLUMNS`."""
    return [
        (
            r.test,
            r.config,
            f"{r.cycles:,}",
            f"{r.macs:,}",
            _rate(r),
            "pass" if r.passed else "FAIL",
        )
        for r in results
    ]


def format_table(results: Sequence[Result]) -> str:
    """A plain-text table for the terminal, failures listed below it."""
    rows = [COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    right = {2, 3, 4}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    failures = [r for r in results if not r.passed]
    if failures:
        lines.append("")
        lines.append(f"{len(failures)} FAILED:")
        for r in failures:
            lines.append(f"  {r.message or r.test + ' failed without a message'}")
            if r.wave:
                lines.append(f"    wave: {r.wave}")
    return "\n".join(lines)


def format_markdown(results: Sequence[Result], header: str = "") -> str:
    """The same table in Markdown (``build/sim/summary.md``)."""
    lines = [header, ""] if header else []
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|")
    for row in table_rows(results):
        lines.append("| " + " | ".join(row) + " |")
    failures = [r for r in results if not r.passed]
    if failures:
        lines.append("")
        lines.append("Failures:")
        lines.append("")
        for r in failures:
            wave = f" (wave: `{r.wave}`)" if r.wave else ""
            lines.append(f"- {r.message}{wave}")
    return "\n".join(lines) + "\n"


def summary_files(
    results: Sequence[Result], out_dir: Path, header: str = "", stem: str = "summary"
) -> dict[Path, str]:
    """``{<stem>.md: table, <stem>.json: results}`` in ``out_dir`` (for a set write)."""
    out_dir = Path(out_dir)
    payload = {
        "passed": all(r.passed for r in results) and bool(results),
        "header": header,
        "results": [r.to_json() for r in results],
    }
    return {
        out_dir / f"{stem}.md": format_markdown(results, header),
        out_dir / f"{stem}.json": json.dumps(payload, indent=1),
    }


def write_summary(
    results: Sequence[Result], out_dir: Path, header: str = "", stem: str = "summary"
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir`` as a set (both or neither);
    returns both paths. ``stem`` is ``summary`` for a full run, ``summary-<label>`` else."""
    md, js = atomic_write_set(summary_files(results, out_dir, header, stem))
    return md, js
