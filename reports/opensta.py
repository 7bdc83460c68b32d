"""The OpenSTA cross-check of :mod:`reports.power` (Debian OpenSTA 2.0.17; see
:func:`opensta_power` for what it corrects).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import tools

from .liberty import LibertyError
from .powerlib import load_power
from .powernames import norm_name, read_verilog

OPENSTA_INSTALL = "apt-get install opensta"

# ---- the OpenSTA cross-check --------------------------------------------------------------

_NUM = r"([-+0-9.eE]+|nan|-?inf)"
_ROW = re.compile(rf"^\s*{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+(\S+)\s*$")
_HEADER = re.compile(r"^power: internal (.+)/(\S+) \((\S+)\)\s*$")
_ARC = re.compile(
    rf"^power:\s+(\S+) -> (\S+)\s+(.*?)\s*{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+(?:no pg_pin|\S+)\s*$"
)


@dataclass
class OpenSTAInstance:
    """One instance of an OpenSTA run: (internal, switching, leakage) in W at global activity
    0 and 1, and its internal-power arcs at activity 1 as OpenSTA prints them (``set_debug
    power 2``): (pin, related pin, duty, energy in J = duty x (rise + fall) table energy)."""

    cell: str
    p0: tuple[float, float, float] = (0.0, 0.0, 0.0)
    p1: tuple[float, float, float] = (0.0, 0.0, 0.0)
    arcs: list[tuple[str, str, float, float]] = field(default_factory=list)


def run_sta(script: list[str], workdir: Path, name: str, exe: str) -> tuple[str, list[str]]:
    """Write ``script`` (empty lines dropped) as ``<name>.tcl`` in ``workdir``, run ``sta`` on
    it, keep its output in ``<name>.log``; returns the output and its ``Error`` lines."""
    (workdir / f"{name}.tcl").write_text("\n".join(s for s in script if s) + "\n")
    proc = tools.run_tool(
        "sta", ["-no_init", "-exit", f"{name}.tcl"], install=OPENSTA_INSTALL, cwd=workdir,
        exe=exe, timeout=3600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    (workdir / f"{name}.log").write_text(out)
    return out, [ln for ln in out.splitlines() if ln.startswith("Error")]


def run_opensta(
    mapped_v: str | Path,
    top: str,
    liberty_path: str | Path,
    clock_ns: float,
    workdir: str | Path,
    *,
    clock_port: str = "clk",
    input_slew_ns: float = 0.1,
    output_load_pf: float = 0.0,
) -> dict[str, OpenSTAInstance]:
    """Run Debian OpenSTA (``sta``) on a mapped netlist: a clock of ``clock_ns`` on
    ``clock_port`` (propagated, so its pins see ``input_slew_ns`` and not OpenSTA's zero ideal
    slew), every other input delayed 0 against it at ``input_slew_ns`` transition (without an
    input delay a cell fed only by inputs has no clock and OpenSTA gives it a fixed 0.1/s
    activity), outputs loaded with ``output_load_pf``; ``report_power -instances`` at global
    activity 0 and 1 (transitions per clock period), the second with the per-arc debug print.
    Per instance, see :class:`OpenSTAInstance`. ``mapped_v`` must not declare ports
    ``signed`` (this OpenSTA rejects it)."""
    exe = tools.find_tool("sta", OPENSTA_INSTALL)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    net = read_verilog(mapped_v, top)
    inputs = [p for p, d in net.ports.items() if d == "input" and p != clock_port]
    clock = f"[get_ports {{{clock_port}}}]" if clock_port in net.ports else ""
    report = "report_power -digits 10 -instances [get_cells *]"
    script = [
        f"read_liberty {{{Path(liberty_path).resolve()}}}",
        f"read_verilog {{{Path(mapped_v).resolve()}}}",
        f"link_design {{{top}}}",
        f"create_clock -name clk -period {clock_ns} {clock}",
        "set_propagated_clock [all_clocks]",
        f"set_input_transition {input_slew_ns} [all_inputs]",
        f"set_input_delay 0 -clock clk [get_ports {{{' '.join(inputs)}}}]" if inputs else "",
        "set_output_delay 0 -clock clk [all_outputs]",
        f"set_load {output_load_pf} [all_outputs]",
        "set_power_activity -global -activity 0",
        'puts "@@ activity 0"',
        report,
        "set_power_activity -global -activity 1",
        "sta::set_debug power 2",
        'puts "@@ activity 1"',
        report,
        'puts "@@ end"',
    ]
    out, errors = run_sta(script, workdir, "power", exe)
    if errors or "@@ end" not in out:
        raise tools.ToolError(
            f"OpenSTA failed on {mapped_v} (log: {workdir / 'power.log'}): "
            + "; ".join(errors[:5] or out.splitlines()[-5:])
        )
    result: dict[str, OpenSTAInstance] = {}
    for name, (cell, _) in net.instances.items():
        result[name] = OpenSTAInstance(cell)
    phase, inst = None, None
    for line in out.splitlines():
        if line.startswith("@@ activity"):
            phase = int(line.split()[-1])
            continue
        m = _HEADER.match(line)
        if m:
            inst = result.get(norm_name(m.group(1)))
            continue
        m = _ARC.match(line)
        if m and inst is not None:
            inst.arcs.append((m.group(2), m.group(1), float(m.group(5)), float(m.group(6))))
            continue
        m = _ROW.match(line)
        if m and phase is not None and norm_name(m.group(5)) in result:
            vals = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
            setattr(result[norm_name(m.group(5))], f"p{phase}", vals)
    if not any(i.p1 != (0.0, 0.0, 0.0) for i in result.values()):
        raise tools.ToolError(f"no instance power in the OpenSTA output ({workdir / 'power.log'})")
    return result


def opensta_power(
    mapped_v: str | Path,
    top: str,
    liberty_path: str | Path,
    toggles: dict[str, int],
    cycles: int,
    clock_ns: float,
    workdir: str | Path,
    *,
    method: str = "per-arc",
    clock_port: str = "clk",
    input_slew_ns: float = 0.1,
    output_load_pf: float = 0.0,
    clock_toggles_per_cycle: float = 2.0,
) -> float:
    """Total power (mW) of ``mapped_v`` with ``toggles`` over ``cycles`` at ``clock_ns``, from
    Debian OpenSTA 2.0.17, which cannot read VCD/SAIF and whose ``set_power_activity -pins`` is
    broken, via :func:`run_opensta` (global activity 0 and 1):

    - ``method="calibrated"`` (the workaround in the shared notes): each instance's power at
      activity 0 (leakage and clock pins) plus its activity-1 increment (its energy per output
      toggle, internal + switching, with its flip-flop D pin) times its output net's toggles
      per cycle (the mean over the outputs of a multi-output cell). This reproduces OpenSTA
      2.0.17's internal power, which is **not** energy per transition: it sums the rise and the
      fall table entries, each times a "duty" that is 1 for one-input arcs and the clock (2x
      the per-transition energy) and 0.5-0.75 per pin for others (AOI21: 0.5 + 0.5 + 0.75,
      1.75x); upstream OpenSTA later averaged the two edges (commit 77d507d0, April 2020) and
      normalised the pins' duties to weights (ba28f7e9, May 2020).
    - ``method="per-arc"`` (default): OpenSTA's own numbers with those two fixes applied: per
      output pin, its arcs' printed energies over 2 x the sum of their duties (= the
      duty-weighted mean over related pins of mean(rise, fall), at OpenSTA's own slews and
      loads) times the output net's toggles; an input pin's own arc (flip-flop ``CLK``, ``D``)
      energy / duty / 2 times that pin's net toggles (the clock net ``clock_toggles_per_cycle``
      when not in ``toggles``); switching = the activity-1 switching power times the output
      toggles; leakage as reported. It keeps OpenSTA's from-edge choice (rise from rise, not
      the arc's unateness) and its pin weights (inferred ``when`` duties, not toggles).
    """
    if method not in ("per-arc", "calibrated"):
        raise ValueError(f"method must be 'per-arc' or 'calibrated', not {method!r}")
    insts = run_opensta(
        mapped_v, top, liberty_path, clock_ns, workdir, clock_port=clock_port,
        input_slew_ns=input_slew_ns, output_load_pf=output_load_pf,
    )  # fmt: skip
    plib = load_power(liberty_path)
    net = read_verilog(mapped_v, top)
    tog = {norm_name(k): v / cycles for k, v in toggles.items()}
    period_s = clock_ns * 1e-9
    total_w = 0.0
    for name, inst in insts.items():
        cell = plib.timing.cells.get(inst.cell)
        if cell is None:
            raise LibertyError(f"instance {name} of {inst.cell!r}: not in {liberty_path}")
        pins = net.instances[name][1]
        clocks = plib.cells[inst.cell].clock_pins
        rate = {  # toggles per cycle of the net on each pin (named as the instance names it)
            p: tog.get(n, clock_toggles_per_cycle if p in clocks else 0.0) for p, n in pins.items()
        }
        outs = [p for p in cell.outputs if p in pins]
        r_out = sum(rate[p] for p in outs) / len(outs) if outs else 0.0
        if method == "calibrated":
            total_w += sum(inst.p0) + (sum(inst.p1) - sum(inst.p0)) * r_out
            continue
        total_w += inst.p0[2] + inst.p1[1] * r_out
        by_pin: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
        for pin, src, duty, e in inst.arcs:
            by_pin[pin].append((src, duty, e))
        for pin, arcs in by_pin.items():
            if pin in cell.inputs:
                for _src, duty, e in arcs:
                    if duty > 0:
                        total_w += e / duty / 2 * rate.get(pin, 0.0) / period_s
            else:
                duties = sum(d for _, d, _ in arcs)
                if duties > 0:
                    e = sum(e for _, _, e in arcs) / (2 * duties)
                    total_w += e * rate.get(pin, 0.0) / period_s
    return total_w * 1e3
