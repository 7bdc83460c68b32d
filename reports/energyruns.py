"""Energy per MAC of the report's units from gate-level simulation, as cached jobs (issue 12).

One job is one design point on one operand source (:mod:`reports.operands`): it maps the
point onto the OSU018 Liberty module by module (:func:`reports.gatesim.map_netlist`; the
mapping is kept in ``<out>/energy-work/<name>`` and reused while its inputs are unchanged),
builds the workload (:mod:`reports.workload`: dot products of ``k`` on the MAC and the dot
products, a real layer's weight tiles of ``tokens`` tokens on the classic arrays and the lean
ones, which are clock-gated as in the area flow), simulates
it with iverilog zero-delay and with the cells' delays (every cycle's outputs checked
against golden), and computes the power from the Liberty (:func:`reports.power.energy`),
split by the area breakdown's categories (:mod:`reports.hierarchy`: combinational cells by
the module they came from, flip-flops by the role of the signal they hold). On the MACs the
total is cross-checked with OpenSTA (:func:`reports.opensta.opensta_power`).

Energy per MAC = the run's energy / the multiply-accumulates it performs (an array's weight
loads and drain cycles are in the run: its rows say so in ``workload``).

The cache (``<out>/energy-cache/<key>.json``, one row per key) is keyed by everything that
decides a row: the point, Booth, the operand source and its files, the settings, the
activity, the Liberty's hash, the yosys and iverilog versions and the sources of ``hw``,
``golden`` and this flow. As with the area runs, a job returns its new rows and the driver
writes the cache, whichever executor ran it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import hw
import tools

from . import gatesim, operands
from .energymeasure import (  # noqa: F401 (Settings, unit_label: this module's API too)
    IVERILOG,
    OPENSTA_LEVELS,
    Settings,
    build_workload,
    flow_revision,
    iverilog_version,
    measure,
    prepare,
    unit_label,
)
from .toolchain import YOSYS, file_sha256, find_liberty, tool_version

#: Variants measured on the MAC and the dot products: (weight format, style, Booth).
VARIANTS = (
    ("int8", "mul", False),
    ("int8", "mul", True),
    ("int4", "mul", False),
    ("dint4", "mul", False),
    ("dint4", "shiftadd", False),
    ("fp4_e2m1", "mul", False),
)
#: Variants measured on the arrays (the INT8 baseline and dINT4 styles).
ARRAY_VARIANTS = (
    ("int8", "mul", False),
    ("int8", "mul", True),
    ("dint4", "mul", False),
    ("dint4", "shiftadd", False),
)
#: Variants measured on the lean arrays: the INT8 baselines of the area report's lean group
#: (``shared`` = radix-8 Booth digits sharing 3a per row) and the dINT4 styles.
LEAN_VARIANTS = (
    ("int8", "mul", False),
    ("int8", "mul", True),
    ("int8", "shared", False),
    ("dint4", "shiftadd", False),
    ("dint4", "shared", False),
)
#: Levels and sizes of the default energy runs (arrays: rows = cols).
SIZES = {"mul": (1,), "mac": (1,), "dot": (8, 16), "systolic": (4, 8)}
#: Array architectures with energy runs (``lean`` in its default configuration, clock-gated
#: as in the area flow).
ARRAY_ARCHS = ("classic", "lean")
ACTIVITIES = ("zero-delay", "glitch")


def energy_points(
    levels=tuple(SIZES), sizes: dict | None = None, archs=ARRAY_ARCHS
) -> list[hw.DesignPoint]:
    """The default energy design points of ``levels`` (arrays: classic, and lean unless
    ``archs`` leaves it out)."""
    sizes = {**SIZES, **(sizes or {})}
    points = []
    for level in levels:
        if level not in SIZES:
            raise ValueError(f"no energy runs for level {level!r}; choose from {', '.join(SIZES)}")
        for size in sizes[level]:
            if level != "systolic":
                points += [hw.DesignPoint(level, f, s, size=size, booth=b) for f, s, b in VARIANTS]
                continue
            for f, s, b in ARRAY_VARIANTS:
                points.append(hw.DesignPoint(level, f, s, size=size, booth=b))
            if "lean" in archs:
                lanes = hw.DEFAULT_LANES if size % hw.DEFAULT_LANES == 0 else 1
                for f, s, b in LEAN_VARIANTS:
                    points.append(
                        hw.DesignPoint(level, f, s, size=size, booth=b, arch="lean", pe_lanes=lanes)
                    )
    return points


def sources_for(point: hw.DesignPoint, sources) -> list[str]:
    """Synthetic operands run on the MAC and dot products (an array needs real tiles)."""
    return [s for s in sources if s == "smollm2" or point.level != "systolic"]


def _operand_files(source: str) -> str:
    if source != "smollm2":
        return source
    h = hashlib.sha256()
    for d in sorted({*operands.SAMPLES.values()}):
        for p in sorted(d.glob("*")):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def cache_key(
    point: hw.DesignPoint, source: str, activity: str, settings: Settings, lib_sha: str
) -> str:
    parts = {
        "point": point.to_json(),
        "operands": source,
        "operand_files": _operand_files(source),
        "activity": activity,
        "settings": asdict(settings),
        "liberty": lib_sha,
        "tools": {"yosys": tool_version(YOSYS), "iverilog": iverilog_version()},
        "flow": flow_revision(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class EnergyJob:
    """One design point on its operand sources, every activity: one job maps the point once
    (two jobs must never share a point's work directory)."""

    point: hw.DesignPoint
    sources: tuple[str, ...]
    settings: Settings
    liberty: str | None = None
    activities: tuple[str, ...] = ACTIVITIES

    @property
    def name(self) -> str:
        return self.point.name

    @property
    def cost(self) -> float:
        return self.point.macs_per_cycle * self.point.size * len(self.sources)


def run_job(job: EnergyJob, out: Path) -> dict:
    """The job's rows (from the cache where it has them) and its new cache entries."""
    liberty = find_liberty(job.liberty)
    lib_sha = file_sha256(liberty)
    rows, new = [], {}
    netlist = None
    work = out / "energy-work" / job.point.name
    for source in job.sources:
        built = None  # the workload: one per source, for every activity
        for activity in job.activities:
            key = cache_key(job.point, source, activity, job.settings, lib_sha)
            cached = out / "energy-cache" / f"{key}.json"
            if cached.is_file():
                rows.append({**json.loads(cached.read_text()), "cached": True})
                continue
            netlist = netlist or prepare(job.point, work, liberty)
            built = built or build_workload(job.point, source, job.settings)
            row = measure(job.point, source, activity, job.settings, netlist, work, built)
            new[key] = row
            rows.append({**row, "cached": False})
    return {"rows": rows, "cache": new}


def run_energy(
    jobs: list[EnergyJob],
    out: Path,
    workers: int = 2,
    executor: str = "local",
    address: str | None = None,
) -> list[dict]:
    """Run ``jobs`` on the shared executor; the driver writes the cache; rows in job order."""
    for tool, install in (IVERILOG, ("vvp", gatesim.IVERILOG_INSTALL)):
        tools.find_tool(tool, install)  # before any work
    gatesim.cells_verilog()
    (out / "energy-cache").mkdir(parents=True, exist_ok=True)

    def on_done(_job, output):
        for key, row in output.get("cache", {}).items():
            tools.atomic_write(out / "energy-cache" / f"{key}.json", json.dumps(row, indent=1))

    def on_error(pool_job, exc):
        job = by_name[pool_job.name]
        return {
            "rows": [
                {
                    "unit": unit_label(job.point),
                    "variant": job.point.variant,
                    "operands": src,
                    "activity": a,
                    "error": str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc),
                }
                for src in job.sources
                for a in job.activities
            ]
        }

    by_name = {j.name: j for j in jobs}
    pool_jobs = [
        tools.Job(j.name, functools.partial(run_job, j, out.resolve()), j.cost) for j in jobs
    ]
    results = tools.run_jobs(
        pool_jobs,
        workers,
        on_error=on_error,
        on_done=on_done,
        desc="energy",
        executor=executor,
        address=address,
    )
    return [row for r in results for row in r["rows"]]


def default_jobs(
    levels=tuple(SIZES),
    sizes: dict | None = None,
    sources=("smollm2", "synthetic"),
    settings: Settings | None = None,
    liberty: str | None = None,
) -> list[EnergyJob]:
    settings = settings or Settings()
    settings.check()
    bad = sorted(set(sources) - set(operands.SOURCES))
    if bad:
        raise ValueError(f"unknown operand source {bad[0]!r}; choose from {operands.SOURCES}")
    return [
        EnergyJob(p, tuple(sources_for(p, sources)), settings, liberty)
        for p in energy_points(levels, sizes)
    ]
