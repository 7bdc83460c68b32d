"""ASIC flows: generic CMOS transistors (``cmos``) and a standard-cell Liberty (``osu018``).

- ``cmos`` — ``synth -noabc``, ``dfflegalize -cell $_DFF_P_ 01`` (so that every flip-flop is
  a plain ``$_DFF_P_`` that ``stat -tech cmos`` can count; enables and resets become gates),
  ``abc -g cmos``; area = Yosys's estimated transistor count.
- ``osu018`` — a real standard-cell Liberty (OSU 0.18 um by default, any file with
  ``liberty=``): ``dfflibmap`` + ``abc -liberty``; area = cell area in um^2 (``stat
  -liberty``); delay = the critical path of the flattened mapped netlist by the library's
  NLDM tables (:mod:`reports.sta`).

Both keep the design's hierarchy (no ``-flatten``): each module is optimised alone, so Yosys
cannot fuse the accumulator's adder with the multiplier into one ``$macc``, and the area is
rolled up per module (:mod:`reports.hierarchy`).
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from tools import ToolError

from . import liberty as liberty_mod
from .hierarchy import norm, rollup
from .netlist import find_top, read_script, stage
from .result import FlowResult
from .sta import critical_path
from .toolchain import YOSYS, file_sha256, find_liberty, run_yosys, tool_version


def transistor_count(stat: dict, module: str) -> int:
    """A module's own ``estimated_num_transistors`` from ``stat -json -tech cmos``.

    Yosys appends ``+`` when some cell has no CMOS cost (e.g. a flip-flop with a reset it
    cannot price): the count is then a lower bound, so this raises instead of using it.
    """
    v = str(stat.get("estimated_num_transistors", "0")).strip()
    if v.endswith("+"):
        raise ToolError(
            f"stat -tech cmos undercounts module {module} ({v}): it has cells without a CMOS "
            "cost; the flow must legalise every flip-flop to $_DFF_P_ (see stat_cmos.txt)"
        )
    return int(v)


def _synth(top: str, booth: bool) -> str:
    return f"synth -top {top} -noabc{' -booth' if booth else ''}\n"


def cmos_flow(verilog: Path, top: str, workdir: Path, booth: bool = False) -> FlowResult:
    """Generic CMOS transistor count (``stat -tech cmos``) after ``abc -g cmos``."""
    t0 = time.monotonic()
    stage(verilog, workdir, top)
    run_yosys(
        read_script(verilog, top)
        + _synth(top, booth)
        + "dfflegalize -cell $_DFF_P_ 01\n"
        + "abc -g cmos\nopt_clean\n"
        + "tee -q -o stat_cmos.json stat -json -tech cmos\n"
        + "tee -q -o stat_cmos_seq.json stat -json -tech cmos t:$_DFF_P_\n"
        + "tee -q -o stat_cmos.txt stat -tech cmos\n",
        workdir,
    )
    st = json.loads((workdir / "stat_cmos.json").read_text())["modules"]
    seq = json.loads((workdir / "stat_cmos_seq.json").read_text())["modules"]
    seq_by = {norm(k): v for k, v in seq.items()}
    total, breakdown, modules = rollup(
        st,
        top,
        lambda n, s: transistor_count(s, n),
        lambda n, s: transistor_count(seq_by.get(n, {}), n),
    )
    return FlowResult(
        "cmos",
        top,
        total,
        "transistors",
        breakdown,
        modules,
        tools={"yosys": tool_version(YOSYS)},
        seconds=time.monotonic() - t0,
    )


@functools.cache
def _library(path: str) -> liberty_mod.Library:
    return liberty_mod.load(path)


def _cell_area(lib: liberty_mod.Library, modules: set[str], name: str, stat: dict, seq: bool):
    """A module's own Liberty cell area (``seq``: its flip-flops only)."""
    area = 0.0
    for typ, cnt in stat.get("num_cells_by_type", {}).items():
        t = norm(typ)
        if t in lib.cells:
            if not seq or lib.cells[t].sequential:
                area += lib.cells[t].area * int(cnt)
        elif t not in modules:
            raise ToolError(f"module {name}: cell {typ} is neither a Liberty cell nor a module")
    return area


def liberty_flow(
    verilog: Path,
    top: str,
    workdir: Path,
    liberty: str | Path | None = None,
    booth: bool = False,
    target: str = "osu018",
) -> FlowResult:
    """Standard-cell area (``stat -liberty``) and NLDM critical path of the mapped netlist."""
    t0 = time.monotonic()
    lib_path = find_liberty(liberty)
    stage(verilog, workdir, top)
    shutil.copyfile(lib_path, workdir / "cells.lib")
    run_yosys(
        read_script(verilog, top)
        + _synth(top, booth)
        + "dfflibmap -liberty cells.lib\n"
        + "abc -liberty cells.lib\nopt_clean\n"
        + "tee -q -o stat_lib.json stat -json -liberty cells.lib\n"
        + "tee -q -o stat_lib.txt stat -liberty cells.lib\n"
        + "flatten\ndelete t:$scopeinfo\nopt_clean\n"
        + "write_json mapped.json\n",
        workdir,
    )
    lib = _library(str(lib_path))
    st = json.loads((workdir / "stat_lib.json").read_text())["modules"]
    names = {norm(k) for k in st}
    total, breakdown, modules = rollup(
        st,
        top,
        lambda n, s: _cell_area(lib, names, n, s, seq=False),
        lambda n, s: _cell_area(lib, names, n, s, seq=True),
    )
    top_stat = {norm(k): v for k, v in st.items()}[norm(top)]
    if "area" in top_stat and abs(float(top_stat["area"]) - total) > 0.5 + 1e-6 * total:
        raise ToolError(
            f"area roll-up {total} disagrees with Yosys's {top_stat['area']} for {top}; "
            "the hierarchy walk is wrong"
        )
    netlist = json.loads((workdir / "mapped.json").read_text())
    timing = critical_path(netlist, lib, top=find_top(netlist, top))
    (workdir / "mapped.json").unlink()  # large; the statistics and the log stay
    return FlowResult(
        target,
        top,
        total,
        "um^2",
        breakdown,
        modules,
        delay_ns=timing.critical_path_ns,
        extra={
            "timing": asdict(timing),
            "liberty": str(lib_path),
            "liberty_sha256": file_sha256(lib_path),
        },
        tools={"yosys": tool_version(YOSYS)},
        seconds=time.monotonic() - t0,
    )
