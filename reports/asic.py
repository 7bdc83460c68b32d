"""ASIC flows: generic CMOS transistors (``cmos``) and a standard-cell Liberty (``osu018``).

- ``cmos`` — ``synth -noabc``, ``dfflegalize -cell $_DFF_P_ 01`` (so that every flip-flop is
  a plain ``$_DFF_P_`` that ``stat -tech cmos`` can count; enables and resets become gates),
  ``abc -g cmos``; area = Yosys's estimated transistor count.
- ``osu018`` — a real standard-cell Liberty (OSU 0.18 um by default, any file with
  ``liberty=``): ``dfflibmap`` + ``abc -liberty``; area = cell area in um^2 (``stat
  -liberty``); delay = the critical path of the flattened mapped netlist by the library's
  NLDM tables (:mod:`reports.sta`).

Both synthesize each distinct module of the design once, alone, and cache it
(:mod:`reports.modsynth`): a module's area depends only on its own text, the same module
costs the same in every design, and Yosys cannot fuse the accumulator's adder with the
multiplier into one ``$macc``. The area is rolled up per module and split by category
(:mod:`reports.hierarchy`); on the Liberty target the mapped modules are read back as one
design for ``stat`` (which must agree with the roll-up) and static timing.

**Clock gating** (``clock_gate=True``, Liberty flow): the RTL keeps its enables; after
``synth`` every group of at least :data:`CLOCK_GATE_MIN_FLOPS` flip-flops sharing a clock and
an enable loses the enable (and its multiplexer) and gets its clock from one clock gate
(Yosys's ``clockgate -pos``). OSU018 has no integrated clock-gating cell (and its ``LATCH``
has area 0, a library bug), so the gate is :data:`CLOCK_GATE`, built of real cells: a
``DFFNEGX1`` captures the enable at the falling clock edge, and ``AND2X2(CLK, captured)`` is
the gated clock. It is glitch-free (the captured enable changes only while the clock is
low), but the enable must settle within the clock's high half-cycle: static timing doubles
the time of that falling-edge endpoint (:mod:`reports.sta`). A flip-flop whose synchronous
reset overrides its enable is first given the enable ``en | rst`` (``dfflegalize`` to
``$_SDFFCE_``), so the reset still acts while the clock is gated. The gates' area is
counted (category ``clock gating``); the gated clock network is not timed (ideal clock).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from tools import ToolError

from . import liberty as liberty_mod
from .errors import ReportError
from .hierarchy import CLOCK_GATING, category_of, norm, rollup
from .modsynth import Design, ModuleResult, Recipe, register_roles, split_design, synthesize
from .result import FlowResult
from .sta import critical_path
from .toolchain import YOSYS, file_sha256, find_liberty, flow_revision, tool_version

#: The clock-gate module of ``clock_gate=True`` and the Liberty cells it is made of.
CLOCK_GATE = "dintmac_clock_gate"
CLOCK_GATE_CELLS = ("DFFNEGX1", "AND2X2")
#: Smallest group of flip-flops worth a gate: a gate (DFFNEGX1 + AND2X2, 128 um^2) costs
#: about three of the MUX2X1 (48 um^2) it saves per flip-flop; also the usual default of
#: commercial clock-gating insertion.
CLOCK_GATE_MIN_FLOPS = 3
_CLOCK_GATE_PORTS = "(CLK, E, GCLK);\n  input CLK;\n  input E;\n  output GCLK;\n"
#: Every flip-flop type but ``$_SDFFE_*`` (synchronous reset over enable): legalizing to
#: this set turns those into ``$_SDFFCE_*`` with the enable ``en | rst`` (exact).
_GATEABLE_FFS = (
    "$_DFF_?_ $_DFF_???_ $_DFFE_??_ $_DFFE_????_ $_SDFF_???_ $_SDFFCE_????_ $_DFFSR_???_ "
    "$_DFFSRE_????_ $_ALDFF_??_ $_ALDFFE_???_ $_SR_??_ $_DLATCH_?_ $_DLATCH_???_ "
    "$_DLATCHSR_???_"
).split()
_MODULE_CELL = re.compile(r"m_[0-9a-f]{16}")


def clock_gate_verilog() -> str:
    """The clock gate :data:`CLOCK_GATE` in OSU018 cells (see the module docstring)."""
    return (
        f"module {CLOCK_GATE}{_CLOCK_GATE_PORTS}"
        "  wire en_captured;\n"
        "  DFFNEGX1 capture (.CLK(CLK), .D(E), .Q(en_captured));\n"
        "  AND2X2 gate (.A(CLK), .B(en_captured), .Y(GCLK));\n"
        "endmodule\n"
    )


def clock_gate_commands() -> str:
    """The Yosys commands that turn enables into :data:`CLOCK_GATE` instances."""
    cells = " ".join(f"-cell {t} 01" for t in _GATEABLE_FFS)
    return (
        f"dfflegalize {cells}\nopt_merge\nopt_clean\n"
        f"clockgate -pos {CLOCK_GATE} E:CLK:GCLK -min_net_size {CLOCK_GATE_MIN_FLOPS}\n"
    )


def transistor_count(stat: dict, module: str) -> int:
    """A module's own ``estimated_num_transistors`` from ``stat -json -tech cmos``.

    Yosys appends ``+`` when some cell has no CMOS cost (e.g. a flip-flop with a reset it
    cannot price): the count is then a lower bound, so this raises instead of using it.
    """
    v = str(stat.get("estimated_num_transistors", "0")).strip()
    if v.endswith("+"):
        raise ToolError(
            f"stat -tech cmos undercounts module {module} ({v}): it has cells without a CMOS "
            "cost; the flow must legalise every flip-flop to $_DFF_P_ (see its log)"
        )
    return int(v)


def _own_stat(workdir: Path, name: str) -> dict:
    return {norm(k): v for k, v in json.loads((workdir / name).read_text())["modules"].items()}


def _rollup(design: Design, results: dict[str, ModuleResult], gate_area: float = 0.0):
    """Total, breakdown and per-module table (one entry per identity, under its first
    name) of a design from its module results."""

    def local(name: str) -> dict[str, float]:
        r = results[design.modules[name].ident]
        out = dict.fromkeys((category_of(name), CLOCK_GATING), 0.0)
        out[category_of(name)] += r.area - r.seq_area
        out[CLOCK_GATING] += r.clock_gates * gate_area
        for role, area in r.registers.items():
            out[role] = out.get(role, 0.0) + area
        return out

    total, breakdown, counts = rollup(design.tree(), design.top, local)
    first = {m.ident: m.name for m in design.distinct().values()}
    modules: dict[str, dict] = {}
    for name, k in counts.items():
        ident = design.modules[name].ident
        r = results[ident]
        entry = modules.setdefault(
            first[ident],
            {
                "module": ident,
                "instances": 0,
                "area": r.area + r.clock_gates * gate_area,
                "seq_area": r.seq_area,
                "clock_gates": r.clock_gates,
            },
        )
        entry["instances"] += k
    return total, breakdown, modules


def _settings(**more) -> dict:
    return {"tools": tool_version(YOSYS), "flows": flow_revision(), **more}


def cmos_flow(
    verilog: Path, top: str, workdir: Path, booth: bool = False, cache_dir: Path | None = None
) -> FlowResult:
    """Generic CMOS transistor count (``stat -tech cmos``) after ``abc -g cmos``, per module."""
    t0 = time.monotonic()
    design = split_design(verilog.read_text(), top)

    def measure(m: str, wd: Path, netlist: dict) -> ModuleResult:
        for c in netlist["cells"].values():
            if not c["type"].startswith("$_") and not _MODULE_CELL.fullmatch(c["type"]):
                raise ToolError(f"module {m}: cell type {c['type']} is not a CMOS gate")
        total = transistor_count(_own_stat(wd, f"{m}.stat.json").get(m, {}), m)
        seq = transistor_count(_own_stat(wd, f"{m}.seq.json").get(m, {}), m)
        flops = register_roles(netlist, {"$_DFF_P_": ("Q",)}, lambda t: 1.0)
        n = sum(flops.values())
        # every flip-flop is a $_DFF_P_ of the same cost
        return ModuleResult(float(total), float(seq), {k: seq * v / n for k, v in flops.items()})

    recipe = Recipe(
        "cmos",
        booth,
        "dfflegalize -cell $_DFF_P_ 01\nabc -g cmos\nopt_clean\n"
        "tee -q -o {m}.stat.json stat -json -tech cmos t:$_*\n"
        "tee -q -o {m}.seq.json stat -json -tech cmos t:$_DFF_P_\n",
        measure,
        _settings(),
    )
    results = synthesize(design, recipe, workdir, cache_dir or workdir / "modules")
    total, breakdown, modules = _rollup(design, results)
    return FlowResult(
        "cmos",
        top,
        total,
        "transistors",
        breakdown,
        modules,
        extra={"distinct_modules": len(results)},
        tools={"yosys": tool_version(YOSYS)},
        seconds=time.monotonic() - t0,
    )


@functools.cache
def _library(path: str) -> liberty_mod.Library:
    return liberty_mod.load(path)


def _liberty_recipe(lib, lib_sha: str, booth: bool, clock_gate: bool, target: str) -> Recipe:
    sequential = {n: c.outputs for n, c in lib.cells.items() if c.sequential}

    def measure(m: str, wd: Path, netlist: dict) -> ModuleResult:
        area = seq = 0.0
        gates = 0
        for typ, cnt in _own_stat(wd, f"{m}.stat.json")[m].get("num_cells_by_type", {}).items():
            t = norm(typ)
            if t in lib.cells:
                area += lib.cells[t].area * int(cnt)
                seq += lib.cells[t].area * int(cnt) if t in sequential else 0.0
            elif t == CLOCK_GATE:
                gates += int(cnt)
            elif not _MODULE_CELL.fullmatch(t):
                raise ToolError(f"module {m}: cell {typ} is neither a Liberty cell nor a module")
        roles = register_roles(netlist, sequential, lambda t: lib.cells[t].area)
        return ModuleResult(area, seq, roles, gates)

    commands = (clock_gate_commands() if clock_gate else "") + (
        "dfflibmap -liberty cells.lib\nabc -liberty cells.lib\nopt_clean\n"
        "tee -q -o {m}.stat.json stat -json -liberty cells.lib\n"
    )
    blackboxes = f"(* blackbox *)\nmodule {CLOCK_GATE}{_CLOCK_GATE_PORTS}endmodule\n"
    return Recipe(
        target,
        booth,
        commands,
        measure,
        _settings(liberty=lib_sha, clock_gate=clock_gate),
        blackboxes if clock_gate else "",
    )


def _gate_area(lib: liberty_mod.Library, lib_path: Path) -> float:
    missing = [c for c in CLOCK_GATE_CELLS if c not in lib.cells]
    if missing:
        raise ReportError(
            f"clock gating builds its gate from {' and '.join(CLOCK_GATE_CELLS)} (OSU018); "
            f"{lib_path} has no {', '.join(missing)}: run without clock_gate"
        )
    return sum(lib.cells[c].area for c in CLOCK_GATE_CELLS)


def liberty_flow(
    verilog: Path,
    top: str,
    workdir: Path,
    liberty: str | Path | None = None,
    booth: bool = False,
    target: str = "osu018",
    clock_gate: bool = False,
    cache_dir: Path | None = None,
) -> FlowResult:
    """Standard-cell area (per-module ``stat -liberty``) and NLDM critical path of the
    assembled mapped netlist; ``clock_gate``: replace enables by clock gates (module
    docstring); ``cache_dir``: the module cache shared by a run's designs (default: in
    ``workdir``)."""
    t0 = time.monotonic()
    lib_path = find_liberty(liberty)
    lib = _library(str(lib_path))
    lib_sha = file_sha256(lib_path)
    gate_area = _gate_area(lib, lib_path) if clock_gate else 0.0
    design = split_design(verilog.read_text(), top)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lib_path, workdir / "cells.lib")
    recipe = _liberty_recipe(lib, lib_sha, booth, clock_gate, target)
    read = "read_liberty -lib cells.lib\n"
    if clock_gate:
        (workdir / f"{CLOCK_GATE}.v").write_text(clock_gate_verilog())
        read += f"read_verilog {CLOCK_GATE}.v\n"
    assembly = (
        read,
        "tee -q -o stat_lib.json stat -json -liberty cells.lib\n"
        "tee -q -o stat_lib.txt stat -liberty cells.lib\n"
        "flatten\ndelete t:$scopeinfo\nopt_clean\nwrite_json mapped.json\n",
    )
    results = synthesize(design, recipe, workdir, cache_dir or workdir / "modules", assembly)
    total, breakdown, modules = _rollup(design, results, gate_area)
    gates = sum(m["clock_gates"] * m["instances"] for m in modules.values())
    top_m = design.top_ident
    top_stat = _own_stat(workdir, "stat_lib.json")[top_m]
    if abs(float(top_stat["area"]) - total) > 0.5 + 1e-6 * total:
        raise ToolError(
            f"area roll-up {total} disagrees with Yosys's {top_stat['area']} for {top}; "
            "the hierarchy walk is wrong"
        )
    netlist = json.loads((workdir / "mapped.json").read_text())
    timing = critical_path(netlist, lib, top=top_m)
    (workdir / "mapped.json").unlink()  # large; the statistics and the logs stay
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
            "liberty_sha256": lib_sha,
            "clock_gate": clock_gate,
            "clock_gates": gates,
            "distinct_modules": len(results),
        },
        tools={"yosys": tool_version(YOSYS)},
        seconds=time.monotonic() - t0,
    )
