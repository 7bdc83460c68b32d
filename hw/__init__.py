"""Amaranth generators of the dINT MAC hardware (no torch here).

Blocks (all ``amaranth.lib.wiring.Component``):

- :class:`~hw.decoder.WeightDecoder` — weight code -> ``Format.ints[code]``;
- :class:`~hw.mac.MAC` — one multiply-accumulate lane with a registered accumulator;
- :class:`~hw.dot.DotProduct` — N lanes, adder tree, one accumulator, streams;
- :class:`~hw.systolic.SystolicArray` — R x C weight-stationary array, streams;
- :class:`~hw.requant.Requantizer` — ``clamp((acc*M + 2**(sh-1)) >> sh, -127, 127)``.

:func:`hw.export.export_verilog` writes Verilog plus a JSON sidecar; ``python -m hw verilog``
is its command line; :func:`hw.designs.build_design` builds any of them by name.
"""

from .decoder import ShiftAddPlan, WeightDecoder
from .designs import DESIGNS, build_design
from .dot import DotProduct
from .export import VERILATOR_ALLOWED_WARNINGS, export_verilog, verilator_env
from .mac import MAC
from .params import STYLES, default_style
from .requant import Requantizer
from .systolic import SystolicArray

__all__ = [
    "DESIGNS",
    "MAC",
    "STYLES",
    "VERILATOR_ALLOWED_WARNINGS",
    "DotProduct",
    "Requantizer",
    "ShiftAddPlan",
    "SystolicArray",
    "WeightDecoder",
    "build_design",
    "default_style",
    "export_verilog",
    "verilator_env",
]
