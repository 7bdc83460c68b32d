"""Power of a mapped netlist from the Liberty power data and per-net toggle counts.

**Liberty power data** (:func:`load_power`, :class:`PowerLibrary`): each cell's
``internal_power`` groups (per pin: ``related_pin``, optional ``when``, ``rise_power`` /
``fall_power`` tables over output load and input transition, or over the input transition
only for an input pin's own "passive" power), its leakage, the pin capacitances and timing
arcs of :mod:`reports.liberty`, ``nom_voltage`` (the default operating condition's voltage
when there is one) and the units. An internal-power table entry is an **energy per
transition** in ``capacitive_load_unit x voltage_unit^2`` (OSU018: 1 pF x 1 V^2 = 1 pJ;
OpenSTA reads the same tables as pJ, see :func:`opensta_power`). Leakage rule: the cell's
``cell_leakage_power``; without it, the ``leakage_power`` groups (the unconditional ones, or,
when there are ``when`` groups, their sum weighted by the probability of each ``when`` with
independent inputs at probability 0.5); ``leakage_power_unit`` (OSU018: nW). OSU018 has
``cell_leakage_power`` only, no ``when`` on internal power, and **no wire-load model**.

**Energy** (:func:`energy`), per cell instance and clock cycle, from ``toggles`` (transitions
of each net over ``cycles`` cycles, keyed by the scalar bit names of the netlist's Verilog,
e.g. ``acc[3]``, ``_0123_``; see :func:`net_names`):

- *internal*, per toggle of an output pin: each ``internal_power`` group of that pin is
  looked up at the net's load (the input-pin capacitances it drives, plus
  ``wire_cap_pf_per_fanout`` per driven pin as an optional wire estimate, plus
  ``output_load_pf`` on a top-level output) and at the related input's transition; the
  energy of a toggle is the mean of the rise and the fall entry (a toggle is a rise or a fall,
  equally often over a run), each read at the input edge that causes it (the arc's
  ``timing_sense``); the groups of the related pins are averaged with weights proportional to
  the related pin's toggles times the probability that the output is sensitive to it (Boolean
  difference with the other inputs at probability 0.5: the transition-density model), times
  the probability of a ``when``. An input pin's own power (flip-flop ``CLK`` and ``D``) is the
  mean of its rise and fall entries per toggle of that pin. A clock net missing from
  ``toggles`` toggles ``clock_toggles_per_cycle`` (2) times per cycle.
- *transition* (input slew): ``slew_ns=None`` propagates rise/fall transitions through the
  netlist with :mod:`reports.sta` (top-level inputs and the clock at ``input_slew_ns``);
  a number uses that slew everywhere.
- *switching*, per toggle of a net: ``0.5 C V^2`` with ``C`` the load above, charged to the
  net's driver; nets driven by top-level inputs (the clock included) are reported apart
  (``input_switching_mw``, not in the total: their driver is outside the design, and
  OpenSTA leaves them out too).
- *leakage*: per the rule above, whatever the activity.

Power in mW is energy per cycle (pJ) / clock period (ns). :class:`PowerReport` splits it by
kind, by cell type and by category (``clock pins``, ``sequential``, ``combinational``); a
flattened, ABC-mapped netlist has no module names on its cells.

**Cross-check** (:func:`opensta_power`): Debian OpenSTA 2.0.17 on the Verilog of the same
netlist. Its switching power (0.5 C V^2 per transition, pin capacitances only) and leakage
agree with ours to 0.2 % and exactly; its internal power does not follow the Liberty
semantics (it charges rise + fall per transition, ~2x, 3.5x on an AOI21), so the check
rebuilds OpenSTA's internal energy per transition from its own per-arc table look-ups with
the two fixes upstream made in 2020 (see the docstring). On the mapped dINT4 MAC the totals
agree within 1.3 %; the rest is the input edge (this OpenSTA reads rise energy at the input's
rise slew even through an inverting arc): with its choice the difference is 0.1 %.
:func:`estimate_toggles` gives a toggle pattern without simulation (transition densities).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import liberty, sta
from .liberty import LibertyError, Library
from .powerlib import PowerLibrary, load_power, probability, sensitivity
from .powernames import net_names, norm_name

# ---- energy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerReport:
    """Result of :func:`energy`: power in mW at ``clock_ns``; energies in pJ per cycle."""

    clock_ns: float
    cycles: int
    internal_mw: float
    switching_mw: float
    leakage_mw: float
    input_switching_mw: float  # nets driven by top-level inputs: not in the total
    clock_pin_mw: float  # flip-flop clock pins (part of internal_mw)
    by_cell_type: dict[str, dict[str, float]]  # type -> count, internal/switching/leakage mW
    by_category: dict[str, float]  # "clock pins" | "sequential" | "combinational" -> mW
    slew: str
    wire_cap_pf_per_fanout: float
    missing_nets: int  # driven nets absent from the toggles (counted as not toggling)
    unknown_toggles: int  # toggling keys that name no net (a constant's name toggles 0)
    by_group: dict[str, float] = field(default_factory=dict)  # ``groups`` label -> mW

    @property
    def total_mw(self) -> float:
        return self.internal_mw + self.switching_mw + self.leakage_mw

    @property
    def energy_pj_per_cycle(self) -> float:
        return self.total_mw * self.clock_ns

    def split(self) -> dict[str, float]:
        """Shares of the total: internal, switching, leakage."""
        t = self.total_mw or 1.0
        return {
            "internal": self.internal_mw / t,
            "switching": self.switching_mw / t,
            "leakage": self.leakage_mw / t,
        }


def _module(netlist_json, top) -> tuple[dict, dict[int, list[str]]]:
    """The top module without its ``$scopeinfo`` cells (no hardware; ``flatten`` leaves them
    behind and the Verilog backend skips them), and its Verilog net names."""
    if isinstance(netlist_json, str | Path):
        netlist_json = json.loads(Path(netlist_json).read_text())
    module = sta.top_module(netlist_json, top)
    names = net_names(module)
    cells = {k: c for k, c in module["cells"].items() if c["type"] != "$scopeinfo"}
    return {**module, "cells": cells}, names


def _library(library) -> PowerLibrary:
    return library if isinstance(library, PowerLibrary) else load_power(library)


def _rates(module, names, toggles, cycles):
    """Per net bit: toggles per cycle (the first of its names found); and how many keys with
    toggles matched no net."""
    tog = {norm_name(k): v for k, v in toggles.items()}
    known = set()
    rate: dict[int, float] = {}
    for b, ns in names.items():
        hits = [n for n in ns if n in tog]
        if hits:
            rate[b] = tog[hits[0]] / cycles
            known.update(hits)
    return rate, sum(1 for n in set(tog) - known if tog[n])


def net_slews(module: dict, library: Library, input_slew_ns: float, loads: dict[int, float]):
    """Rise/fall transition (ns) of every net at the given ``loads`` (pF), propagated with
    :mod:`reports.sta` (inputs at ``input_slew_ns``; a net beyond one buffer stage gets the
    slew after sta's ideal buffer tree)."""
    run = sta._Timing(module, library, input_slew_ns, 0.0)
    run.load_pf = defaultdict(float, loads)
    regs = [c for c, lc in run.lib_cells.items() if lc.sequential]
    run.launch_inputs()
    run.launch_registers(regs)
    run.propagate([c for c, lc in run.lib_cells.items() if not lc.sequential])
    slews = {b: a.slew for b, a in run.at.items()}
    for port in module["ports"].values():
        if port["direction"] == "input":
            for b in sta._bits(port["bits"]):
                slews[b] = (input_slew_ns, input_slew_ns)
    return slews


def _arc_sense(cell: liberty.Cell, related: str, pin: str) -> str:
    for arc in cell.arcs.get(pin, ()):
        if arc.related_pin == related:
            return arc.sense
    return "positive_unate"


def energy(
    netlist_json,
    top: str | None,
    library,
    toggles: dict[str, int],
    cycles: int,
    clock_ns: float,
    *,
    input_slew_ns: float = 0.1,
    slew_ns: float | None = None,
    output_load_pf: float = 0.0,
    wire_cap_pf_per_fanout: float = 0.0,
    clock_toggles_per_cycle: float = 2.0,
    groups: dict[str, str] | None = None,
) -> PowerReport:
    """Power of a flattened mapped netlist (Yosys JSON: dict or path) with ``toggles`` over
    ``cycles`` cycles at a ``clock_ns`` clock; ``library`` a :class:`PowerLibrary` or a
    Liberty path. The model is in the module docstring. ``groups`` (cell name -> label, e.g.
    a breakdown category) also sums each cell's total into :attr:`PowerReport.by_group`."""
    lib = _library(library)
    module, names = _module(netlist_json, top)
    lib_cells = sta.library_cells(module, lib.timing)
    rate, unknown = _rates(module, names, toggles, cycles)
    loads = sta.net_loads(module, lib_cells, output_load_pf)
    fanout: dict[int, int] = defaultdict(int)
    driven = set()
    clock_nets = set()
    for cname, c in module["cells"].items():
        lc, pc = lib_cells[cname], lib.cells[c["type"]]
        for pin, bits in c["connections"].items():
            for b in sta._bits(bits):
                if pin in lc.inputs:
                    fanout[b] += 1
                    if pin in pc.clock_pins:
                        clock_nets.add(b)
                elif pin in lc.outputs:
                    driven.add(b)
    for b in clock_nets:
        rate.setdefault(b, clock_toggles_per_cycle)
    missing = sum(1 for b in driven if b not in rate)
    if toggles and not any(b in rate for b in driven):
        raise LibertyError(
            "no net of the netlist is in the toggles: are they keyed by the Verilog names of "
            f"the same netlist? e.g. {sorted(toggles)[:3]} against "
            f"{[names[b][0] for b in sorted(driven)[:3]]}"
        )
    for b in fanout:
        loads[b] += wire_cap_pf_per_fanout * fanout[b]
    if slew_ns is None:
        slews = net_slews(module, lib.timing, input_slew_ns, loads)
        slew_rule = f"propagated (inputs and clock {input_slew_ns} ns)"
    else:
        slews = {}
        slew_rule = f"fixed {slew_ns} ns"
    fixed = (slew_ns if slew_ns is not None else input_slew_ns,) * 2
    half_v2 = 0.5 * lib.voltage**2
    by_type: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_cat: dict[str, float] = defaultdict(float)
    by_group: dict[str, float] = defaultdict(float)
    group_of = groups  # (the loop below reuses the name for Liberty power groups)
    tot = {"internal": 0.0, "switching": 0.0, "leakage": 0.0, "clock": 0.0}
    for cname, c in module["cells"].items():
        lc, pc = lib_cells[cname], lib.cells[c["type"]]
        conn = {p: sta._bits(bits) for p, bits in c["connections"].items()}
        internal = switching = clock = 0.0  # pJ per cycle
        for pin, groups in pc.internal.items():
            for b in conn.get(pin, ()):
                if pin in lc.inputs:  # the pin's own power, per toggle of the pin
                    s = slews.get(b, fixed)
                    e = sum(g.energy(0.0, s[0], s[1]) for g in groups if not g.related_pin)
                    internal += e * rate.get(b, 0.0)
                    if pin in pc.clock_pins:
                        clock += e * rate.get(b, 0.0)
                    continue
                internal += _output_energy(lc, groups, conn, loads[b], slews, fixed, rate) * (
                    rate.get(b, 0.0)
                )
        for pin in lc.outputs:
            for b in conn.get(pin, ()):
                switching += half_v2 * loads[b] * rate.get(b, 0.0)
        leak = pc.leakage_nw * 1e-6 * clock_ns  # pJ per cycle
        t = by_type[c["type"]]
        t["count"] += 1
        t["internal_mw"] += internal / clock_ns
        t["switching_mw"] += switching / clock_ns
        t["leakage_mw"] += leak / clock_ns
        cat = "sequential" if lc.sequential else "combinational"
        by_cat[cat] += (internal - clock + switching + leak) / clock_ns
        by_cat["clock pins"] += clock / clock_ns
        if group_of is not None:
            by_group[group_of.get(cname, "other")] += (internal + switching + leak) / clock_ns
        tot["internal"] += internal
        tot["switching"] += switching
        tot["leakage"] += leak
        tot["clock"] += clock
    inputs = sum(
        half_v2 * loads[b] * rate.get(b, 0.0)
        for p in module["ports"].values()
        if p["direction"] == "input"
        for b in set(sta._bits(p["bits"]))
    )
    return PowerReport(
        clock_ns,
        cycles,
        tot["internal"] / clock_ns,
        tot["switching"] / clock_ns,
        tot["leakage"] / clock_ns,
        inputs / clock_ns,
        tot["clock"] / clock_ns,
        {k: dict(v) for k, v in sorted(by_type.items())},
        dict(by_cat),
        slew_rule,
        wire_cap_pf_per_fanout,
        missing,
        unknown,
        dict(by_group),
    )


def _output_energy(lc, groups, conn, load, slews, fixed, rate) -> float:
    """Internal energy (pJ) per toggle of an output at ``load``: the related pins' groups
    weighted by toggles x sensitivity (x P(when)); module docstring."""
    pin = groups[0].pin
    func = lc.functions.get(pin, "")
    parts = []
    for g in groups:
        if not g.related_pin:
            continue
        src = (conn.get(g.related_pin) or [None])[0]
        s = slews.get(src, fixed)
        if _arc_sense(lc, g.related_pin, pin) == "negative_unate":
            s = (s[1], s[0])  # an output rise comes from an input fall
        sens = sensitivity(func, g.related_pin) if func else 1.0
        if g.when:
            sens *= probability(g.when)
        parts.append((g.energy(load, s[0], s[1]), sens, rate.get(src, 0.0)))
    if not parts:
        return 0.0
    for weights in ([p[1] * p[2] for p in parts], [p[1] for p in parts], [1.0] * len(parts)):
        if sum(weights) > 0:
            return sum(w * p[0] for w, p in zip(weights, parts, strict=True)) / sum(weights)
    return 0.0


# ---- activity without simulation ----------------------------------------------------------


def estimate_toggles(
    netlist_json,
    top: str | None,
    library,
    input_rate: float | dict[str, float],
    cycles: int,
    iterations: int = 50,
    clock_toggles_per_cycle: float = 2.0,
) -> dict[str, int]:
    """Toggles per net (keyed by Verilog names, as :func:`energy` takes them) from the
    transition-density model instead of a simulation: top-level inputs toggle ``input_rate``
    times per cycle (one number, or per port name), clock nets ``clock_toggles_per_cycle``; a
    combinational output's density is the sum over its inputs of density x P(∂f/∂input)
    (other inputs at 0.5); a flip-flop output
    toggles when an odd number of its input's transitions fell in the cycle, (1 - e^(-2d))/2
    for a density ``d`` (Poisson transitions); the register loops are iterated to a fixed
    point. It counts the transitions a glitching circuit makes in the density model's sense,
    not a simulation's; use it for tests and first estimates only."""
    lib = _library(library)
    module, names = _module(netlist_json, top)
    lib_cells = sta.library_cells(module, lib.timing)
    d: dict[int, float] = defaultdict(float)
    for pname, p in module["ports"].items():
        if p["direction"] == "input":
            r = input_rate.get(pname, 0.0) if isinstance(input_rate, dict) else input_rate
            for b in sta._bits(p["bits"]):
                d[b] = r
    for c in module["cells"].values():
        for pin in lib.cells[c["type"]].clock_pins:
            for b in sta._bits(c["connections"].get(pin, [])):
                d[b] = clock_toggles_per_cycle
    comb = [c for c, lc in lib_cells.items() if not lc.sequential]
    regs = [c for c, lc in lib_cells.items() if lc.sequential]
    order = _topological(module, lib_cells, comb)
    for _ in range(iterations):
        old = dict(d)
        for cname in order:
            c, lc = module["cells"][cname], lib_cells[cname]
            for out in lc.outputs:
                func = lc.functions.get(out, "")
                dens = sum(
                    d[b] * (sensitivity(func, pin) if func else 1.0)
                    for pin in lc.inputs
                    for b in sta._bits(c["connections"].get(pin, []))
                )
                for b in sta._bits(c["connections"].get(out, [])):
                    d[b] = dens
        for cname in regs:
            c, lc = module["cells"][cname], lib_cells[cname]
            pc = lib.cells[c["type"]]
            data = [
                b
                for pin in lc.inputs
                if pin not in pc.clock_pins
                for b in sta._bits(c["connections"].get(pin, []))
            ]
            dd = max((d[b] for b in data), default=0.0)
            for out in lc.outputs:
                for b in sta._bits(c["connections"].get(out, [])):
                    d[b] = (1 - math.exp(-2 * dd)) / 2
        if all(abs(d[b] - old.get(b, 0.0)) < 1e-9 for b in d):
            break
    return {n: round(v * cycles) for b, v in d.items() for n in names.get(b, [])}


def _topological(module, lib_cells, comb: list[str]) -> list[str]:
    drivers = {}
    for cname in comb:
        for out in lib_cells[cname].outputs:
            for b in sta._bits(module["cells"][cname]["connections"].get(out, [])):
                drivers[b] = cname
    order, state = [], {}
    for start in comb:
        stack = [(start, False)]
        while stack:
            cname, done = stack.pop()
            if done:
                state[cname] = 2
                order.append(cname)
                continue
            if state.get(cname):
                continue
            state[cname] = 1
            stack.append((cname, True))
            c = module["cells"][cname]
            for pin in lib_cells[cname].inputs:
                for b in sta._bits(c["connections"].get(pin, [])):
                    if b in drivers and not state.get(drivers[b]):
                        stack.append((drivers[b], False))
    return order
