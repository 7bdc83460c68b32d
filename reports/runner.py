"""Run the design x target matrix: export, synthesize (cached), on the shared process pool.

The designs are :class:`hw.DesignPoint` s of the one registry (:func:`hw.report_points`).
The cache (``<out>/cache/<key>.json``) is keyed by everything that decides a result: the
exported Verilog text (its SHA-256), the target, Booth mapping, clock gating, the nextpnr
seeds, the Liberty file's hash, the tool package versions and a hash of this package's flow
code. Change any of them and the design is synthesized again. The exported Verilog is itself
kept in ``<out>/work/<design>/`` and re-exported only when the generator sources (``hw/``,
``golden/``) change (a 16 x 16 array takes ~40 s to elaborate). A job is one design on
its ASIC targets, or on one FPGA target (:func:`design_jobs`). Jobs run on
:func:`tools.run_jobs` (costliest first, with progress; the local pool or Ray); a failing
job becomes error records and the others still run.

A job reads the cache where it runs but never writes it: it returns its new results
(:class:`JobOutput`) and the driver writes ``<out>/cache`` as each job finishes, with either
executor. The one exception is the ASIC flows' per-module cache ``<out>/module-cache/``
(:mod:`reports.modsynth`): jobs write it as they synthesize each distinct module, each file
atomically, so that the designs of a run share their modules (a decoder is synthesized once
for all of them). Scratch files (the exported Verilog, the flow logs and netlists under
``<out>/work/<design>/``) stay where the job ran: on one machine, or on a cluster whose nodes
share the output directory, that is the driver's ``<out>``; on nodes without a shared file
system they stay on the node (and so does the module cache), and only the cache and the
report are the driver's.

The driver also notes each design's Verilog hash in ``<out>/verilog/<design>.json``
(with the generator revision it came from), so that a later run finds the cached targets
itself, without exporting: it runs only the targets that are not cached, and a sweep that is
all cached starts no job at all (so a resumed sweep, or one on nodes that do not share
``<out>``, does not redo finished work).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import golden
import hw
import tools
from tools import ToolError

from .flows import run_flow
from .fpga import FPGA_TARGETS, NEXTPNR
from .toolchain import YOSYS, file_sha256, find_liberty, flow_revision, tool_version

log = logging.getLogger(__name__)


@functools.cache
def generator_revision() -> str:
    """Hash of what turns a design point into Verilog: the ``hw/`` and ``golden/`` sources."""
    h = hashlib.sha256()
    h.update(tools.tree_hash(Path(hw.__file__).parent).encode())
    h.update(tools.tree_hash(Path(golden.__file__).parent).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One design point and the targets to run on it in one go (one export of the Verilog
    serves them all; :func:`design_jobs` says which targets share a job)."""

    point: hw.DesignPoint
    targets: tuple[str, ...]
    seeds: int = 3
    liberty: str | None = None

    @property
    def name(self) -> str:
        """The job's name in progress and logs: ``design@target[,target...]``."""
        return f"{self.point.name}@{','.join(self.targets)}"

    @property
    def cost(self) -> float:
        """Rough relative run time, to start the big jobs first."""
        fpga = sum(t in FPGA_TARGETS for t in self.targets) * self.seeds
        return self.point.macs_per_cycle * (1 + len(self.targets) + fpga)


def design_jobs(
    point: hw.DesignPoint, targets: tuple[str, ...], seeds: int = 3, liberty: str | None = None
) -> list[Job]:
    """The jobs that run ``point`` on ``targets``: the ASIC targets together (one export, one
    job: each run is seconds to minutes), each FPGA target on its own.

    An FPGA run of a large array is the longest unit of a sweep (one nextpnr seed of a 16 x 16
    array on the ECP5 without DSPs takes ~15 min), so one job per FPGA target lets a cluster
    run a design's targets side by side and lets an interrupted sweep keep each finished
    target (the driver writes the cache per job). Each of those jobs exports the Verilog
    where it runs, unless a job before it on the same file system already did (an FPGA
    target's export is small next to its nextpnr runs). The records keep ``targets``' order.
    """
    groups: list[list[str]] = []
    for t in targets:
        if t in FPGA_TARGETS or not groups or groups[-1][-1] in FPGA_TARGETS:
            groups.append([t])
        else:
            groups[-1].append(t)
    return [Job(point, tuple(g), seeds, liberty) for g in groups]


def tool_versions(targets) -> dict[str, str]:
    """Versions of the tools the targets run: ``yosys`` always, ``nextpnr-<family>`` for
    FPGA targets (in the cache keys and the report's header)."""
    v = {"yosys": tool_version(YOSYS)}
    for t in targets:
        if t in NEXTPNR:
            tool = NEXTPNR[t][0]
            v[tool.removeprefix("yowasp-")] = tool_version(tool)
    return v


def clock_gate(point: hw.DesignPoint) -> bool:
    """Whether the osu018 flow gates ``point``'s clocks (its ``clock_gate`` property)."""
    return bool(getattr(point, "clock_gate", False))


def cache_key(verilog_sha: str, point: hw.DesignPoint, target: str, seeds: int, liberty_sha: str):
    """The cache key of one (design, target) result (see the module docstring)."""
    parts = {
        "verilog": verilog_sha,
        "top": point.name,
        "booth": point.booth,
        "clock_gate": clock_gate(point) if target == "osu018" else None,
        "target": target,
        "seeds": seeds if target in FPGA_TARGETS else None,
        "liberty": liberty_sha if target == "osu018" else None,
        "tools": tool_versions([target]),
        "flows": flow_revision(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def export(point: hw.DesignPoint, directory: Path) -> tuple[Path, str]:
    """Write ``directory/design.v`` (+ its JSON sidecar); return (path, top module name)."""
    path = Path(directory) / "design.v"
    hw.export_verilog(point.build(), point.name, path)
    return path, point.name


def export_cached(point: hw.DesignPoint, work: Path) -> tuple[Path, str, float]:
    """``point``'s Verilog in ``work`` (re-exported only when the generator sources changed).

    Returns (path, top, seconds spent exporting).
    """
    stamp = work / "design.rev"
    verilog = work / "design.v"
    rev = generator_revision()
    if verilog.is_file() and stamp.is_file() and stamp.read_text() == rev:
        return verilog, point.name, 0.0
    t0 = time.monotonic()
    verilog, top = export(point, work)
    tools.atomic_write(stamp, rev)
    return verilog, top, time.monotonic() - t0


def record(point: hw.DesignPoint, target: str, **fields) -> dict:
    """One (design, target) record of the report: what was built, and ``fields`` (the
    ``result`` or the ``error``). ``verified`` says how ``nox -s sim`` covers the design
    (:func:`hw.verified_by`: ``"exact"`` or why not)."""
    return {
        "design": point.name,
        "spec": point.to_json(),
        "level": point.level,
        "size": point.size,
        "level_label": point.level_label,
        "variant": point.variant,
        "macs_per_cycle": point.macs_per_cycle,
        "acc_width": point.acc_width,
        "verified": hw.verified_by(point),
        "target": target,
        **fields,
    }


@dataclass(frozen=True)
class JobOutput:
    """What a job returns to the driver: its records, the new cache entries (key -> result)
    the driver writes, and the SHA-256 of the Verilog it ran ("" if it failed first)."""

    records: list[dict]
    cache: dict[str, dict]
    verilog_sha: str = ""


@functools.cache
def liberty_sha(liberty: str | None) -> str:
    """SHA-256 of the Liberty file ``liberty`` names (default: OSU018), for the cache keys."""
    return file_sha256(find_liberty(liberty))


def job_key(job: Job, target: str, verilog_sha: str) -> str:
    """The cache key of ``job``'s design on ``target``, its Verilog hashing to ``verilog_sha``."""
    lib_sha = liberty_sha(job.liberty) if target == "osu018" else ""
    return cache_key(verilog_sha, job.point, target, job.seeds, lib_sha)


def cache_path(out: Path, key: str) -> Path:
    """Where the driver keeps the result of cache key ``key``."""
    return out / "cache" / f"{key}.json"


def verilog_note(out: Path, point: hw.DesignPoint) -> Path:
    """Where the driver notes ``point``'s Verilog hash (:func:`known_verilog`)."""
    return out / "verilog" / f"{point.name}.json"


def cached_result(out: Path, key: str) -> dict | None:
    """The result cached in ``out/cache`` under ``key``, if any."""
    path = cache_path(out, key)
    return json.loads(path.read_text()) if path.is_file() else None


def run_job(job: Job, out: Path) -> JobOutput:
    """Run each target on ``job.point`` (or take it from the cache); one record each (a
    target whose flow fails gets an error record; the other targets still run)."""
    point = job.point
    work = out / "work" / point.name
    verilog, top, export_s = export_cached(point, work)
    verilog_sha = file_sha256(verilog)
    records, fresh = [], {}
    for target in job.targets:
        key = job_key(job, target, verilog_sha)
        result = cached_result(out, key)
        hit = result is not None
        if not hit:
            try:
                res = run_flow(
                    target,
                    verilog,
                    top,
                    work / target,
                    liberty=job.liberty,
                    booth=point.booth,
                    seeds=job.seeds,
                    clock_gate=clock_gate(point) and target == "osu018",
                    cache_dir=out / "module-cache",
                )
            except (ToolError, ValueError, OSError) as exc:
                # One target failing (e.g. nextpnr not finishing) keeps the others' results.
                records.append(record(point, target, error=f"{type(exc).__name__}: {exc}"))
                continue
            res.extra["export_seconds"] = export_s
            res.extra["verilog_sha256"] = verilog_sha
            result = fresh[key] = res.to_json()
        records.append(record(point, target, cached=hit, result=result))
    return JobOutput(records, fresh, verilog_sha)


def failed_records(job: Job, exc: BaseException) -> JobOutput:
    """The records of a job that raised: one per target, with the error."""
    return JobOutput(
        [record(job.point, t, error=f"{type(exc).__name__}: {exc}") for t in job.targets], {}
    )


def write_cache(out: Path, job: Job, output: JobOutput) -> None:
    """Write a finished job's new results into ``out/cache``, and note its Verilog's hash
    (:func:`known_verilog`), in the driver."""
    for key, result in output.cache.items():
        tools.atomic_write(cache_path(out, key), json.dumps(result, indent=1))
    if output.verilog_sha:
        entry = {"generator": generator_revision(), "sha256": output.verilog_sha}
        tools.atomic_write(verilog_note(out, job.point), json.dumps(entry))


def known_verilog(out: Path, point: hw.DesignPoint) -> str | None:
    """The SHA-256 of ``point``'s Verilog as a job of an earlier run reported it, if the
    generator sources have not changed since (else None: a job must export it)."""
    path = verilog_note(out, point)
    if not path.is_file():
        return None
    entry = json.loads(path.read_text())
    return entry["sha256"] if entry["generator"] == generator_revision() else None


def split_cached(out: Path, job: Job) -> tuple[dict[str, dict], Job | None]:
    """``job``'s targets whose results the driver finds in ``out/cache`` (target -> result),
    and a job for the other targets (None if there are none)."""
    sha = known_verilog(out, job.point)
    hits = {}
    for target in job.targets if sha else ():
        result = cached_result(out, job_key(job, target, sha))
        if result is not None:
            hits[target] = result
    rest = tuple(t for t in job.targets if t not in hits)
    return hits, dataclasses.replace(job, targets=rest) if rest else None


def run_all(
    jobs: list[Job],
    out: str | Path,
    workers: int = 2,
    executor: str = "local",
    address: str | None = None,
) -> list[dict]:
    """Run every job (costliest first) on ``workers`` processes, or on Ray (``executor``,
    ``address``: see :func:`tools.run_jobs`); records in job order.

    Targets the driver finds cached (:func:`split_cached`) are not run again: only a job of
    the remaining targets goes to the pool. A failing job is logged with its error and
    reported in the records as ``error``; the others still run.
    """
    # Absolute: a Ray worker may not start in this process's directory.
    out = Path(out).resolve()
    (out / "cache").mkdir(parents=True, exist_ok=True)
    # Resolve tools and the Liberty file once, before forking, so errors surface early.
    all_targets = sorted({t for j in jobs for t in j.targets})
    tool_versions(all_targets)
    if "osu018" in all_targets:
        find_liberty(jobs[0].liberty)
    plans = [(job, *split_cached(out, job)) for job in jobs]
    to_run = [rest for _, _, rest in plans if rest is not None]
    log.info(
        "%d of %d synthesis runs from the cache; %d jobs to run",
        sum(len(hits) for _, hits, _ in plans),
        sum(len(j.targets) for j in jobs),
        len(to_run),
    )
    outputs = {}
    if to_run:
        by_name = {j.name: j for j in to_run}
        results = tools.run_jobs(
            [tools.Job(j.name, functools.partial(run_job, j, out), j.cost) for j in to_run],
            workers,
            on_error=lambda pool_job, exc: failed_records(by_name[pool_job.name], exc),
            on_done=lambda pool_job, output: write_cache(out, by_name[pool_job.name], output),
            desc="synthesis",
            executor=executor,
            address=address,
        )
        outputs = {j.name: output for j, output in zip(to_run, results, strict=True)}
    records = []
    for job, hits, rest in plans:
        ran = {r["target"]: r for r in outputs[rest.name].records} if rest else {}
        for t in job.targets:
            records.append(
                record(job.point, t, cached=True, result=hits[t]) if t in hits else ran[t]
            )
    return records
