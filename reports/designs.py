"""The designs the report synthesizes: every level, size, weight format and multiplier style.

A :class:`DesignSpec` names one unit: its level (``mul`` = decoder + multiplier only, ``mac``,
``dot`` with ``size`` lanes, ``systolic`` with ``size`` x ``size`` PEs), weight format,
multiplier style (``mul`` = decoder to ``Format.ints`` then a generic ``*``; ``shiftadd`` =
decoder to shift/add controls; see :mod:`hw.multiplier`) and whether Yosys's Booth multiplier
mapping is used (``synth -booth``; only meaningful with a generic ``*``).

Fairness rules, applied to every format alike:

- **equal accumulator width at a level**: ``acc_width = golden.acc_width_for(ACC_K_MAX, int8,
  int8)`` (the INT8 x INT8 width for K = :data:`ACC_K_MAX`) for every weight format, so the
  half-unit LSB of dINT4/FP4 sits inside the same accumulator the INT8 baseline has;
- every unit comes from the same generator (:mod:`hw`), int8 weights included;
- the INT8 baseline is reported with and without ``synth -booth``; the headline denominator is
  the smaller of the two (:func:`reports.tables.baseline_of`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from golden import FORMATS, acc_width_for, get

#: K the accumulators are sized for (DESIGN's rule with INT8 x INT8 products, for every format).
ACC_K_MAX = 256

#: Levels in report order, with the sizes the default report builds.
LEVELS = ("mul", "mac", "dot", "systolic")
DEFAULT_SIZES = {"mul": (1,), "mac": (1,), "dot": (8, 16), "systolic": (4, 8, 16)}

#: Weight formats of the default report (registry names), baseline first.
DEFAULT_FORMATS = ("int8", "int4", "dint4_0.25", "dint4", "dint4_0.75", "fp4_e2m1")
BASELINE_FORMAT = "int8"
STYLES = ("mul", "shiftadd")


@dataclass(frozen=True)
class DesignSpec:
    """One unit to synthesize (see the module docstring)."""

    level: str
    size: int
    weight_format: str
    style: str
    booth: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}; choose from {', '.join(LEVELS)}")
        get(self.weight_format)  # FormatError listing the known names
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; choose from {', '.join(STYLES)}")
        if self.level in ("mul", "mac") and self.size != 1:
            raise ValueError(f"level {self.level} has size 1, got {self.size}")
        if self.level in ("dot", "systolic") and not 1 <= self.size <= 64:
            raise ValueError(f"{self.level} size must be in 1..64, got {self.size}")

    @property
    def macs_per_cycle(self) -> int:
        """Multiply-accumulates per clock cycle at full throughput."""
        return {"mul": 1, "mac": 1, "dot": self.size, "systolic": self.size * self.size}[self.level]

    @property
    def level_label(self) -> str:
        """``mul``, ``mac``, ``dot8``, ``sys4x4``: the level and size."""
        if self.level == "dot":
            return f"dot{self.size}"
        if self.level == "systolic":
            return f"sys{self.size}x{self.size}"
        return self.level

    @property
    def variant(self) -> str:
        """Format and style label, e.g. ``dint4/shiftadd`` or ``int8/mul+booth``."""
        return f"{self.weight_format}/{self.style}" + ("+booth" if self.booth else "")

    @property
    def name(self) -> str:
        """A file- and Verilog-safe unique name, e.g. ``dot8_dint4_0p25_shiftadd``."""
        fmt = re.sub(r"[^A-Za-z0-9_]", "_", self.weight_format.replace(".", "p"))
        return f"{self.level_label}_{fmt}_{self.style}" + ("_booth" if self.booth else "")

    @property
    def acc_width(self) -> int:
        return acc_width_for(ACC_K_MAX, "int8", BASELINE_FORMAT)

    def build(self):
        """The Amaranth component (from :mod:`hw`) for this spec."""
        if self.level == "mul":
            return MultiplierUnit(self.weight_format, self.style)
        from hw.designs import build_design

        kwargs = {"acc_width": self.acc_width, "style": self.style}
        if self.level == "mac":
            return build_design("mac", self.weight_format, **kwargs)
        if self.level == "dot":
            return build_design("dot", self.weight_format, lanes=self.size, **kwargs)
        return build_design(
            "systolic", self.weight_format, rows=self.size, cols=self.size, **kwargs
        )

    def export(self, directory: str | Path) -> tuple[Path, str]:
        """Write ``directory/design.v`` (+ sidecar); return (path, top module name)."""
        from hw import export_verilog

        path = Path(directory) / "design.v"
        top = self.name
        export_verilog(self.build(), top, path)
        return path, top

    def to_json(self) -> dict:
        return {
            "level": self.level,
            "size": self.size,
            "weight_format": self.weight_format,
            "style": self.style,
            "booth": self.booth,
        }


def MultiplierUnit(weight_format: str, style: str):  # noqa: N802 (a component factory)
    """Decoder + multiplier only: ``product = a * ints[w]``, combinational.

    Built from :func:`hw.multiplier.build_product`, so it is exactly the pair every MAC, dot
    product and PE instantiates (``decoder`` and ``multiplier`` submodules).
    """
    from amaranth.hdl import Module, signed, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.multiplier import build_product
    from golden import product_width

    act, weight = get("int8"), get(weight_format)

    class _MultiplierUnit(wiring.Component):
        design = "mul"

        def __init__(self):
            self.weight_format, self.act_format, self.style = weight, act, style
            super().__init__(
                {
                    "a": In(signed(act.bits)),
                    "w": In(unsigned(weight.bits)),
                    "product": Out(signed(product_width(act, weight))),
                }
            )

        def parameters(self) -> dict:
            return {"weight_format": weight.name, "style": style}

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.product.eq(build_product(m, self.a, self.w, weight, act, style))
            return m

    return _MultiplierUnit()


def has_shiftadd(weight_format: str) -> bool:
    """Whether ``shiftadd`` differs from ``mul`` for this format (it falls back otherwise)."""
    from hw.decoder import ShiftAddPlan

    return ShiftAddPlan.from_format(get(weight_format)) is not None


def variants(formats=DEFAULT_FORMATS, styles=STYLES) -> list[tuple[str, str, bool]]:
    """(format, style, booth) triples: every style a format really has, plus Booth for int8."""
    out = []
    for fmt in formats:
        get(fmt)
        if fmt == BASELINE_FORMAT:
            # The baseline is always the generic multiplier, with and without Booth mapping.
            out += [(fmt, "mul", False), (fmt, "mul", True)]
            continue
        for style in styles:
            if style == "shiftadd" and not has_shiftadd(fmt):
                continue
            out.append((fmt, style, False))
    return out


def design_matrix(
    levels=LEVELS,
    sizes: dict[str, tuple[int, ...]] | None = None,
    formats=DEFAULT_FORMATS,
    styles=STYLES,
) -> list[DesignSpec]:
    """Every (level, size, format, style, booth) of the report, baseline included."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    if BASELINE_FORMAT not in formats:
        formats = (BASELINE_FORMAT, *formats)  # ratios need the baseline
    specs = []
    for level in levels:
        for size in sizes[level]:
            for fmt, style, booth in variants(formats, styles):
                specs.append(DesignSpec(level, size, fmt, style, booth))
    return specs


__all__ = [
    "ACC_K_MAX",
    "DEFAULT_FORMATS",
    "DEFAULT_SIZES",
    "FORMATS",
    "LEVELS",
    "DesignSpec",
    "design_matrix",
    "variants",
]
