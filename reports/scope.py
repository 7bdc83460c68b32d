"""Which design runs on which target by default (the FPGA flows are the slow ones).

The ASIC flows run every level and size of :func:`hw.report_points`; the FPGA flows
(nextpnr, several seeds) dominate the run time, so they run the MAC, the 8-lane dot product
and (iCE40, ECP5 without DSPs) the 4 x 4 array — an 8 x 8 INT8 array does not fit the iCE40
HX8K's 7,680 LUTs anyway. The 16 x 16 arrays (40-60 s to elaborate each) and the FPGA targets
use :data:`KEY_FORMATS`: the dINT special-value variants (0.25, 0.75) cost the same as dint4
and are left to the smaller ASIC configurations. The lean array architectures
(``hw.ARCHS``) run on :data:`LEAN_TARGETS` only: the Liberty flow (where their clock gating
is built) and iCE40 (the 4 x 4 array's LUT count). ``--all-targets`` lifts every restriction.
"""

from __future__ import annotations

import hw

from .flows import FPGA_TARGETS

#: Every level label of the default report, in report order (``mul``, ``mac``, ``dot8``, ...).
ALL_LEVELS = tuple(
    hw.DesignPoint(level, hw.BASELINE_FORMAT, size=size).level_label
    for level in hw.REPORT_LEVELS
    for size in hw.REPORT_SIZES[level]
)
#: The formats of the expensive runs (one per format family, baseline first).
KEY_FORMATS = (hw.BASELINE_FORMAT, "int4", "dint4", "fp4_e2m1")
#: The level label whose every format is expensive to elaborate.
LARGEST_ASIC_LEVEL = ALL_LEVELS[-1]
#: The targets of the lean array architectures by default.
LEAN_TARGETS = ("osu018", "ice40")
#: Which levels each target runs by default.
DEFAULT_TARGET_LEVELS: dict[str, tuple[str, ...]] = {
    "cmos": ALL_LEVELS,
    "osu018": ALL_LEVELS,
    "ice40": ("mac", "dot8", "sys4x4"),
    "ecp5": ("mac", "dot8"),
    "ecp5_nodsp": ("mac", "dot8", "sys4x4"),
}


def default_targets(point: hw.DesignPoint, targets) -> tuple[str, ...]:
    """The targets of ``targets`` that run ``point`` by default (see the module docstring)."""
    out = []
    for t in targets:
        if point.level_label not in DEFAULT_TARGET_LEVELS.get(t, ()):
            continue
        if point.arch != "classic" and t not in LEAN_TARGETS:
            continue
        expensive = t in FPGA_TARGETS or point.level_label == LARGEST_ASIC_LEVEL
        if expensive and point.weight_format not in KEY_FORMATS:
            continue
        out.append(t)
    return tuple(out)
