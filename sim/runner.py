"""Run one testbench per configuration, collect its results, keep a wave of a failure.

For each :class:`~sim.configs.SimConfig`:

1. export the Verilog + sidecar into ``build/sim/<config>/src/`` (:mod:`sim.export`);
2. build it into ``build/sim/<config>/<simulator>/`` unless its stamp says it is already
   built (:mod:`sim.build`);
3. run the testbench with ``SIM_CONFIG`` pointing at ``run-<simulator>/config.json``
   (sidecar path, what the registry says about each design, seed, options, results file);
   each cocotb test appends a :class:`sim.report.Result`, and a test that died without one
   is recovered from cocotb's JUnit XML;
4. on a failure, rebuild with FST tracing into ``<simulator>-wave/`` and re-run the failing
   tests in ``wave/``, keeping the dump (normal builds are untraced: tracing costs compile
   and run time on every passing run).

Configurations run in parallel on :func:`tools.run_jobs` (costliest first; the local pool
or Ray tasks), each in its own build directory. A job's builds, waves and logs are written
where it runs (they are the job's working files); its :class:`~sim.report.Result` s come
back to the driver, which prints and writes the summary. On a cluster, give nodes a shared
``--build-dir`` to keep the waves of failures beside the summary.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tools import Job, atomic_write, run_jobs

from .build import build, prepare_env
from .configs import SimConfig
from .export import designs_json, export_config, progress
from .report import Result, load_results

log = logging.getLogger(__name__)

#: Default output root (relative to the current directory, like the rest of ``build/``).
BUILD_ROOT = Path("build") / "sim"


@dataclass(frozen=True)
class RunOptions:
    """How to run: simulator, output root, parallel jobs, quick mode, waves."""

    simulator: str = "verilator"
    build_root: Path = BUILD_ROOT
    jobs: int = 2
    quick: bool = False
    waves_on_failure: bool = True
    always_waves: bool = False
    #: g++ optimisation of the design's C++ (Verilator's OPT_FAST). cocotb's per-cycle Python
    #: dominates the run time, while -Os costs ~10x the compile time of -O0 on the arrays.
    opt_fast: str = "-O0"


@dataclass(frozen=True)
class Exported:
    """Where one configuration's exported sources and sidecar are."""

    sidecar: Path
    sources: list[Path]


def export_and_build(config: SimConfig, opts: RunOptions, build_dir: Path, waves: bool) -> Exported:
    """Export ``config`` under its directory and build it into ``build_dir`` (cached)."""
    src = Path(opts.build_root).resolve() / config.name / "src"
    meta = export_config(config, src)
    exported = Exported(src / f"{config.top}.json", [src / s for s in meta["sources"]])
    say, t0 = progress(config), time.perf_counter()
    say(f"building with {opts.simulator} (a 16x16 array takes ~1.5 min the first time)")
    built = build_sources(config, exported, build_dir, opts, waves)
    say(f"built in {time.perf_counter() - t0:.0f} s" if built else "build up to date")
    return exported


def build_sources(
    config: SimConfig, exported: Exported, build_dir: Path, opts: RunOptions, waves: bool
) -> bool:
    """:func:`sim.build.build` of the exported sources with ``opts``; False if up to date."""
    return build(
        config.top,
        exported.sources,
        build_dir,
        simulator=opts.simulator,
        jobs=opts.jobs,
        waves=waves,
        opt_fast=opts.opt_fast,
        label=config.name,
    )


def run_tests(
    config: SimConfig,
    sidecar: Path,
    build_dir: Path,
    work_dir: Path,
    opts: RunOptions,
    waves: bool,
    testcases: Sequence[str] | None,
) -> list[Result]:
    """Run ``config.testbench`` (all tests, or ``testcases``) on the model in ``build_dir``."""
    # Imported here for the same reason as in sim.build: a missing sim extra is reported by
    # toolchain.prepare, not as an ImportError of the CLI.
    from cocotb_tools.runner import get_runner

    work_dir.mkdir(parents=True, exist_ok=True)
    results_path = work_dir / "results.json"
    results_path.unlink(missing_ok=True)
    cfg_path = work_dir / "config.json"
    atomic_write(
        cfg_path,
        json.dumps(
            {
                "config": config.name,
                "sidecar": str(sidecar.resolve()),
                "designs": designs_json(config),
                "results": str(results_path.resolve()),
                "seed": config.seed,
                "quick": opts.quick,
                "options": config.options,
            },
            indent=1,
        ),
    )
    runner = get_runner(opts.simulator)
    runner.log.setLevel(logging.WARNING)
    log_file = work_dir / "sim.log"
    xml = (work_dir / "results.xml").resolve()
    xml.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        runner.test(
            test_module=config.testbench,
            hdl_toplevel=config.top,
            hdl_toplevel_lang="verilog",
            build_dir=str(build_dir),
            test_dir=str(work_dir),
            testcase=list(testcases) if testcases else None,
            seed=config.seed,
            extra_env={"SIM_CONFIG": str(cfg_path.resolve())},
            waves=waves,
            results_xml=str(xml),
            log_file=str(log_file),
            timescale=("1ns", "1ps"),
        )
    except (SystemExit, Exception) as e:
        log.warning("%s: runner.test raised %r", config.name, e)
    wall = time.perf_counter() - t0
    results = load_results(results_path) if results_path.exists() else []
    results = merge_junit(results, junit_cases(xml), config.name)
    if not results:
        tail = log_file.read_text()[-2000:] if log_file.exists() else "(no log)"
        results.append(
            Result(
                config.testbench,
                config.name,
                False,
                seconds=wall,
                message=f"{config.name}: simulation produced no results; see {log_file}:\n{tail}",
            )
        )
    return results


def junit_cases(xml: Path) -> list[tuple[str, bool, str]]:
    """``(test name, passed, first line of the failure)`` of each case in cocotb's JUnit XML."""
    if not xml.exists():
        return []
    out = []
    with contextlib.suppress(ET.ParseError):
        for case in ET.parse(xml).getroot().iter("testcase"):
            fail = case.find("failure")
            if fail is None:
                fail = case.find("error")
            msg = ""
            if fail is not None:
                lines = (fail.get("message") or fail.text or "").strip().splitlines()
                msg = lines[0] if lines else ""
            out.append((case.get("name", "?"), fail is None, msg))
    return out


def merge_junit(
    results: list[Result], cases: list[tuple[str, bool, str]], config: str
) -> list[Result]:
    """Results plus what only the XML knows: a test that died before writing its record
    (crash, timeout, exception) becomes a failure; a recorded pass the XML failed is failed."""
    results = list(results)
    recorded = {r.test for r in results}
    for name, ok, msg in cases:
        if name not in recorded:
            message = "" if ok else f"{name} [{config}] {msg or 'failed'}"
            results.append(Result(name, config, ok, message=message))
        elif not ok:
            results = [
                r
                if r.test != name or not r.passed
                else Result(**{**asdict(r), "passed": False, "message": msg or "failed"})
                for r in results
            ]
    return results


def run_config(config: SimConfig, opts: RunOptions) -> list[Result]:
    """Export, build (cached) and simulate one configuration; never raises on a test failure.

    Errors before the simulation (export, build) become one failed :class:`Result`.
    """
    cdir = Path(opts.build_root).resolve() / config.name
    # Traced builds live apart, so switching --waves on and off does not rebuild.
    build_dir = cdir / (f"{opts.simulator}-wave" if opts.always_waves else opts.simulator)
    try:
        prepare_env(opts.simulator, Path(opts.build_root).resolve())
        exported = export_and_build(config, opts, build_dir, waves=opts.always_waves)
    except Exception as e:
        return [Result("build", config.name, False, message=f"{config.name}: {e}")]
    run_dir = cdir / f"run-{opts.simulator}"
    results = run_tests(config, exported.sidecar, build_dir, run_dir, opts, opts.always_waves, None)
    failed = [r.test for r in results if not r.passed and r.test.startswith("test_")]
    if opts.always_waves:
        wave = find_wave(run_dir) or find_wave(build_dir)
        results = [with_wave(r, wave) for r in results]
    elif failed and opts.waves_on_failure:
        wave_build, wave_run = cdir / f"{opts.simulator}-wave", cdir / "wave"
        try:
            build_sources(config, exported, wave_build, opts, waves=True)
            run_tests(config, exported.sidecar, wave_build, wave_run, opts, True, failed)
            # Verilator writes the dump where it runs; Icarus (cocotb) into its build dir.
            wave = find_wave(wave_run) or find_wave(wave_build)
        except Exception as e:
            log.warning("%s: could not record a wave: %s", config.name, str(e).splitlines()[0])
            wave = ""
        results = [r if r.passed else with_wave(r, wave) for r in results]
    return results


def find_wave(work_dir: Path) -> str:
    for pattern in ("*.fst", "*.vcd"):
        found = sorted(work_dir.glob(pattern))
        if found:
            return str(found[0])
    return ""


def with_wave(r: Result, wave: str) -> Result:
    return Result(**{**asdict(r), "wave": wave}) if wave else r


def error_result(job: Job, exc: BaseException) -> list[Result]:
    """A job that raised: one failed Result naming it (the others carry on)."""
    return [Result("error", job.name, False, message=f"{job.name}: {exc!r}")]


def config_job(config: SimConfig, opts: RunOptions) -> Job:
    return Job(config.name, functools.partial(run_config, config, opts), config.macs_hint)


def run_all(
    jobs: Sequence[Job],
    workers: int,
    on_done: Callable[[Job, list[Result]], None] | None = None,
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
) -> list[Result]:
    """Run jobs that return result lists on ``workers`` processes, or on Ray (``executor``,
    ``address``: see :func:`tools.run_jobs`), costliest first, with a progress bar; the
    results, flattened in ``jobs`` order."""
    per_job = run_jobs(
        jobs,
        workers,
        on_error=error_result,
        on_done=on_done,
        desc="sim",
        progress=progress,
        executor=executor,
        address=address,
    )
    return [r for results in per_job for r in results]


def run_configs(
    configs: Sequence[SimConfig],
    opts: RunOptions,
    on_done: Callable[[Job, list[Result]], None] | None = None,
    progress: bool = False,
) -> list[Result]:
    """Run configurations on ``opts.jobs`` worker processes; results in ``configs`` order."""
    prepare_env(opts.simulator, Path(opts.build_root))  # fail fast, once
    return run_all([config_job(c, opts) for c in configs], opts.jobs, on_done, progress)
