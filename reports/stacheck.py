"""The OpenSTA cross-check of :mod:`reports.sta`: the same mapped netlist timed by Debian
OpenSTA 2.0.17 (``report_checks``) under the conventions of :func:`reports.sta.critical_path`.

:func:`opensta_min_period` sets OpenSTA up as :mod:`reports.sta` models the design: an ideal
clock (zero latency and skew) whose edges have ``input_slew_ns`` transition (the clock slew our
clock-to-Q and setup lookups use), every other input switching at t = 0 of that clock
(``set_input_delay 0``) with ``input_slew_ns`` transition, outputs loaded with
``output_load_pf`` and required at the next edge (``set_output_delay 0``), no wire load. The
worst setup path's ``period - slack`` is then what ``critical_path_ns`` reports: arrival plus
the flip-flop's setup time at a D pin, arrival at an output; paths from inputs, registers and
to outputs all count. OpenSTA has no counterpart of :mod:`reports.sta`'s ideal buffer trees on
nets loaded beyond one buffer stage: :func:`without_buffer_trees` turns them off on our side,
or ``buffer_trees`` builds them in OpenSTA's netlist (:func:`buffer_tree_tcl`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import tools

from .liberty import Cell, LibertyError, Library
from .opensta import OPENSTA_INSTALL, run_sta
from .powernames import read_verilog

_NUM = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"


@dataclass(frozen=True)
class OpenSTAPath:
    """The worst setup path of an OpenSTA ``report_checks``: ``min_period_ns`` = period -
    slack (arrival + setup at a flip-flop, arrival at an output with output delay 0)."""

    min_period_ns: float
    arrival_ns: float
    slack_ns: float
    startpoint: str
    endpoint: str
    report: str


class _NoBufferTrees(Library):
    @property
    def buffer(self) -> Cell | None:
        return None


def without_buffer_trees(library: Library) -> Library:
    """``library`` without a buffer, so :func:`reports.sta.critical_path` drives every load
    directly (no ideal buffer trees), as OpenSTA does without design repair."""
    return _NoBufferTrees(library.name, library.cells, library.time_unit_ns, library.cap_unit_pf)


def buffer_tree_tcl(
    mapped_v: str | Path, top: str, library: Library, output_load_pf: float, clock_port: str
) -> list[str]:
    """OpenSTA netlist edits that build :mod:`reports.sta`'s buffer trees: on each net (the
    clock net aside: its timing is ideal on both sides) whose load exceeds
    ``library.stage_load_pf``, ``n = ceil(load / limit)`` of ``library.buffer`` in parallel,
    the net's input pins split among them by load (largest first, to the least loaded); the
    top-level output pins stay on the root. One level only: :class:`LibertyError` for a net
    whose ``n`` buffers would load the root beyond the limit."""
    buf = library.buffer
    if buf is None:
        return []
    limit = library.stage_load_pf
    c_in = next(iter(buf.inputs.values()))
    net = read_verilog(mapped_v, top)
    sinks: dict[str, list[tuple[float, str]]] = defaultdict(list)
    load: dict[str, float] = defaultdict(float)
    for inst, (cell, pins) in net.instances.items():
        lc = library.cells[cell]
        for pin, n in pins.items():
            if pin in lc.inputs:
                sinks[n].append((lc.inputs[pin], f"{inst}/{pin}"))
                load[n] += lc.inputs[pin]
    outputs = {n for n in load if n.split("[")[0] in net.ports}
    for n in outputs:
        if net.ports[n.split("[")[0]] == "output":
            load[n] += output_load_pf
    tcl: list[str] = []
    k = 0
    for n, total in load.items():
        if total <= limit or n == clock_port:
            continue
        count = math.ceil(total / limit)
        if count * c_in > limit:
            raise LibertyError(f"net {n}: a buffer tree deeper than one level is not built")
        groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(count)]
        for cap, pin in sorted(sinks[n], reverse=True):
            i = min(range(count), key=lambda j: groups[j][0])
            groups[i] = (groups[i][0] + cap, groups[i][1] + [pin])
        tcl.append(f"set root [get_nets -of_objects [get_pins {{{sinks[n][0][1]}}}]]")
        for _, pins in groups:
            b, bn = f"stacheck_buf{k}", f"stacheck_net{k}"
            k += 1
            tcl += [f"make_instance {b} {buf.name}", f"make_net {bn}"]
            tcl += [f"connect_pin $root {b}/{next(iter(buf.inputs))}"]
            tcl += [f"connect_pin {bn} {b}/{buf.outputs[0]}"]
            for pin in pins:
                tcl += [f"disconnect_pin $root {{{pin}}}", f"connect_pin {bn} {{{pin}}}"]
    return tcl


def opensta_min_period(
    mapped_v: str | Path,
    top: str,
    liberty_path: str | Path,
    workdir: str | Path,
    *,
    input_slew_ns: float = 0.1,
    output_load_pf: float = 0.0,
    clock_port: str = "clk",
    period_ns: float = 10.0,
    buffer_trees: Library | None = None,
) -> OpenSTAPath:
    """Run ``sta`` on ``mapped_v`` (no ``signed`` declarations) with the conventions of the
    module docstring and parse its worst ``report_checks -path_delay max`` path; with
    ``buffer_trees``, that library's buffer trees are built first (:func:`buffer_tree_tcl`)."""
    exe = tools.find_tool("sta", OPENSTA_INSTALL)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ports = read_verilog(mapped_v, top).ports
    inputs = [p for p, d in ports.items() if d == "input" and p != clock_port]
    script = [
        f"read_liberty {{{Path(liberty_path).resolve()}}}",
        f"read_verilog {{{Path(mapped_v).resolve()}}}",
        f"link_design {{{top}}}",
        *(
            buffer_tree_tcl(mapped_v, top, buffer_trees, output_load_pf, clock_port)
            if buffer_trees is not None
            else []
        ),
        f"create_clock -name clk -period {period_ns} [get_ports {{{clock_port}}}]",
        f"set_clock_transition {input_slew_ns} [all_clocks]",
        f"set_input_delay 0 -clock clk [get_ports {{{' '.join(inputs)}}}]" if inputs else "",
        f"set_input_transition {input_slew_ns} [all_inputs]",
        "set_output_delay 0 -clock clk [all_outputs]",
        f"set_load {output_load_pf} [all_outputs]",
        'puts "@@ begin"',
        "report_checks -path_delay max -format full -digits 6",
        'puts "@@ end"',
    ]
    out, errors = run_sta(script, workdir, "timing", exe)
    report = out.split("@@ begin", 1)[-1].split("@@ end", 1)[0]
    arrival = re.search(rf"^\s*{_NUM}\s+data arrival time\s*$", report, re.M)
    slack = re.search(rf"^\s*{_NUM}\s+slack \((?:MET|VIOLATED)\)\s*$", report, re.M)
    start = re.search(r"^Startpoint: (\S+)", report, re.M)
    end = re.search(r"^Endpoint: (\S+)", report, re.M)
    if errors or not (arrival and slack and start and end):
        raise tools.ToolError(
            f"no timing path in the OpenSTA output for {mapped_v} (log: {workdir / 'timing.log'})"
            + (": " + "; ".join(errors[:5]) if errors else "")
        )
    s = float(slack.group(1))
    return OpenSTAPath(
        period_ns - s, float(arrival.group(1)), s, start.group(1), end.group(1), report
    )
