"""The one design registry: every design point that sim verifies, reports synthesize and the
benchmarks time.

A :class:`DesignPoint` names one exportable unit completely: its level (``mul`` = decoder +
multiplier only, ``mac``, ``dot``, ``systolic``, ``requant``), sizes, formats, multiplier
style, the accumulator sizing rule, and the synthesis-only Booth option. Its
:meth:`~DesignPoint.build` goes through :func:`hw.designs.build_design`, the same builder as
``python -m hw verilog``.

Accumulator sizing rules (:data:`ACC_RULES`), both computed by ``golden``:

- ``"equal"`` (the default): every weight format gets the INT8 x INT8 width for ``k_max``
  products, ``golden.acc_width_for(k_max, act, "int8")`` (25 bits for K = 256), so the
  half-unit LSB of dINT4/FP4 sits inside the same accumulator the INT8 baseline has. This is
  what the reports compare and what sim verifies.
- ``"need"``: each format gets ``golden.acc_width_for(k_max, act, weight)`` (width by need;
  the real-layer runs use it with the layer's K).

The default report (:func:`hw.pointsets.report_points`) and the default verification
(:func:`hw.pointsets.sim_points`)
are drawn from here; :func:`verified_by` says which verification covers a report point.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from amaranth.lib import wiring

from golden import acc_width_for, check_acc_width, get, min_acc_width

from .designs import build_design
from .lean import ARCHS, DEFAULT_ARCH, DEFAULT_LANES, LEAN_STYLES
from .params import HwError
from .styles import STYLES, effective_style
from .tile import DEFAULT_DEPTH

#: Levels, in report order.
LEVELS = ("mul", "mac", "dot", "systolic", "requant", "tile")
#: Accumulator sizing rules (see the module docstring).
ACC_RULES = ("equal", "need")
#: K every default design point's accumulator holds (equal width: 25 bits for int8 x int8).
ACC_K = 256
#: The weight format whose products set the "equal" width, and the report's baseline.
BASELINE_FORMAT = "int8"
#: Weight formats of the default report, baseline first.
REPORT_FORMATS = ("int8", "int4", "dint4_0.25", "dint4", "dint4_0.75", "fp4_e2m1")
#: Sizes of the default report per level (dot: lanes; systolic: rows = cols).
REPORT_SIZES = {"mul": (1,), "mac": (1,), "dot": (8, 16), "systolic": (4, 8, 16)}
#: Report levels (the requantizer is format-independent: verified, not compared).
REPORT_LEVELS = ("mul", "mac", "dot", "systolic")
#: Array architectures of the default report, and the sizes each is reported at.
REPORT_ARCHS = {"classic": (4, 8, 16), "lean": (4, 8, 16), "lean-col": (8,)}
#: Further lean-array options the report measures at 8 x 8 (every int8 and dint4 style),
#: beside the default (``hw.DEFAULT_LANES`` = 2 weights per PE, broadcast, no pipeline): one
#: and four weights per PE, a pipeline register before the psum adder, an activation
#: register every 4 PEs instead of a full-row broadcast.
LEAN_OPTIONS = (
    {"pe_lanes": 1},
    {"pe_lanes": 4},
    {"pe_lanes": DEFAULT_LANES, "pipeline": True},
    {"pe_lanes": DEFAULT_LANES, "a_reg_every": 4},
)
LEAN_OPTION_SIZE = 8
LEAN_OPTION_FORMATS = ("int8", "dint4")


@dataclass(frozen=True)
class DesignPoint:
    """One design point (see the module docstring).

    ``size`` is the lanes of ``dot`` and ``requant`` and the rows of ``systolic`` (``cols``
    defaults to ``size``: square); ``mul`` and ``mac`` have size 1. ``booth`` asks the
    synthesis flow for Booth multiplier mapping; it does not change the Verilog.
    ``acc_width`` fixes the width instead of a rule (the requantizer takes one). ``arch``
    names a systolic array architecture of :data:`hw.lean.ARCHS` (``classic`` is
    :class:`hw.SystolicArray`; a ``lean`` array's output is the tile sum, so its
    ``acc_width`` is ``golden.min_acc_width(rows)`` whatever the rule).
    """

    level: str
    weight_format: str = "dint4"
    style: str = "mul"
    size: int = 1
    cols: int | None = None
    pipeline: bool = False
    booth: bool = False
    k_max: int = ACC_K
    acc_rule: str = "equal"
    acc_width_fixed: int | None = None
    act_format: str = "int8"
    arch: str = "classic"
    pe_lanes: int = 1
    a_reg_every: int | None = None
    depth: int | None = None
    tags: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise HwError(f"unknown level {self.level!r}; choose from {', '.join(LEVELS)}")
        object.__setattr__(self, "weight_format", get(self.weight_format).name)
        object.__setattr__(self, "act_format", get(self.act_format).name)
        if self.arch not in ARCHS:
            raise HwError(
                f"unknown array architecture {self.arch!r}; choose from {', '.join(ARCHS)}"
            )
        if self.level == "tile":  # hw.Tile: a lean array inside, tokens per pass = depth
            if self.arch not in ("classic", DEFAULT_ARCH):
                raise HwError(f"a tile holds a {DEFAULT_ARCH} array, not {self.arch}")
            object.__setattr__(self, "arch", DEFAULT_ARCH)
            if self.depth is None:
                object.__setattr__(self, "depth", DEFAULT_DEPTH)
        elif self.depth is not None:
            raise HwError(f"only tiles have a depth (tokens per pass), not {self.level}")
        if self.arch != "classic" and self.level not in ("systolic", "tile"):
            raise HwError(f"only systolic arrays have an architecture, not {self.level}")
        lean_option = self.pe_lanes != 1 or self.a_reg_every is not None
        if (lean_option or (self.pipeline and self.level == "systolic")) and (
            self.arch == "classic"
        ):
            raise HwError(
                "pe_lanes, a_reg_every and pipeline are options of the lean array architectures"
            )
        if self.sums_k_outside:  # the output holds one tile: K outside the array
            object.__setattr__(self, "k_max", self.rows)
        allowed = LEAN_STYLES if self.arch != "classic" else STYLES
        if self.style not in allowed:
            raise HwError(
                f"unknown style {self.style!r} for {self.level} ({self.arch}); "
                f"choose from {', '.join(allowed)}"
            )
        if self.acc_rule not in ACC_RULES:
            raise HwError(
                f"unknown accumulator rule {self.acc_rule!r}; choose from {', '.join(ACC_RULES)}"
            )
        if self.level in ("mul", "mac") and self.size != 1:
            raise HwError(f"level {self.level} has size 1, got {self.size}")
        if self.level not in ("systolic", "tile") and self.cols is not None:
            raise HwError(f"only systolic arrays and tiles have cols, not {self.level}")
        if self.level in ("dot", "systolic", "requant", "tile") and not 1 <= self.size <= 256:
            raise HwError(f"{self.level} size must be in 1..256, got {self.size}")
        if self.booth and self.weight_format != BASELINE_FORMAT:
            raise HwError("booth applies to the generic int8 multiplier only")

    # ---- what is built --------------------------------------------------------------

    @property
    def rows(self) -> int:
        return self.size

    @property
    def columns(self) -> int:
        return self.cols if self.cols is not None else self.size

    @property
    def built_style(self) -> str:
        """The multiplier actually built (``shiftadd`` falls back to ``mul`` for int8)."""
        return effective_style(self.style, self.weight_format)

    @property
    def sums_k_outside(self) -> bool:
        """A lean array whose output is the tile sum (the next stage adds the K-tiles)."""
        return self.level == "systolic" and ARCHS[self.arch].ksum == "outside"

    @property
    def clock_gate(self) -> bool:
        """Whether the synthesis flow turns the stall enables into clock gates."""
        return self.level == "systolic" and ARCHS[self.arch].clock_gate

    @property
    def acc_width(self) -> int | None:
        """The accumulator width by the point's rule (``None`` for ``mul``; the tile-sum
        width of a lean array that sums K outside)."""
        if self.level == "mul":
            return None
        if self.sums_k_outside:
            return min_acc_width(self.rows, self.act_format, self.weight_format)
        if self.acc_width_fixed is not None:
            return self.acc_width_fixed
        ref = BASELINE_FORMAT if self.acc_rule == "equal" else self.weight_format
        width = acc_width_for(self.k_max, self.act_format, ref)
        if self.level != "requant":
            check_acc_width(self.k_max, width, self.act_format, self.weight_format)
        return width

    @property
    def macs_per_cycle(self) -> int:
        """Multiply-accumulates per clock cycle at full throughput."""
        array = self.rows * self.columns
        return {"dot": self.size, "systolic": array, "tile": array, "requant": 0}.get(self.level, 1)

    def build_kwargs(self) -> dict:
        """Keyword arguments of :func:`hw.designs.build_design` for this point."""
        kw: dict = {"design": self.level}
        if self.level != "requant":
            kw.update(weight_format=self.weight_format, act_format=self.act_format)
            kw["style"] = self.style
        if self.level == "mul":
            return kw
        if self.level == "requant":
            kw.update(lanes=self.size, acc_width=self.acc_width)
        else:
            kw.update(acc_width=self.acc_width, k_max=self.k_max)
        if self.level == "dot":
            kw["lanes"] = self.size
        if self.level == "tile":
            kw.update(rows=self.rows, cols=self.columns, lanes=self.pe_lanes, depth=self.depth)
        if self.level == "systolic":
            kw.update(rows=self.rows, cols=self.columns, arch=self.arch)
            if self.sums_k_outside:
                del kw["acc_width"], kw["k_max"]
            if self.arch != "classic":  # explicit: the lean default is DEFAULT_LANES
                kw["lanes"] = self.pe_lanes
            if self.a_reg_every is not None:
                kw["a_reg_every"] = self.a_reg_every
        if self.pipeline:
            kw["pipeline"] = True
        return kw

    def build(self) -> wiring.Component:
        """The Amaranth component of this point (through :func:`hw.designs.build_design`)."""
        return build_design(**self.build_kwargs())

    # ---- labels ---------------------------------------------------------------------

    @property
    def level_label(self) -> str:
        """``mul``, ``mac``, ``dot8``, ``sys4x4``, ``requant4``: the level and size."""
        if self.level == "dot":
            return f"dot{self.size}"
        if self.level == "systolic":
            return f"sys{self.rows}x{self.columns}"
        if self.level == "tile":
            return f"tile{self.rows}x{self.columns}d{self.depth}"
        if self.level == "requant":
            return f"requant{self.size}"
        return self.level

    @property
    def variant(self) -> str:
        """Format and style label, e.g. ``dint4/shiftadd`` or ``int8/mul+booth``."""
        return f"{self.weight_format}/{self.style}" + ("+booth" if self.booth else "")

    @property
    def name(self) -> str:
        """A file- and Verilog-safe unique name, e.g. ``dot8_dint4_0p25_shiftadd``."""
        fmt = re.sub(r"[^A-Za-z0-9_]", "_", self.weight_format.replace(".", "p"))
        if self.level == "requant":  # format-independent
            return f"{self.level_label}_a{self.acc_width}" + ("_pipe" if self.pipeline else "")
        name = f"{self.level_label}_{fmt}_{self.style}" + ("_booth" if self.booth else "")
        if self.pipeline:
            name += "_pipe"
        if self.pe_lanes != 1:
            name += f"_l{self.pe_lanes}"
        if self.a_reg_every is not None:
            name += f"_r{self.a_reg_every}"
        if self.level == "tile":
            return f"{name}_a{self.acc_width}"
        if self.arch != "classic":
            name += "_" + self.arch.replace("-", "")
        elif self.acc_rule != "equal" or self.k_max != ACC_K or self.acc_width_fixed is not None:
            name += f"_a{self.acc_width}" if self.level != "mul" else ""
        return name

    def rtl_key(self) -> tuple:
        """Identity of the generated Verilog: points with equal keys build the same RTL
        (``booth`` is a synthesis option; ``shiftadd`` of int8 builds ``mul``)."""
        return (
            self.level,
            self.weight_format,
            self.act_format,
            self.built_style,
            self.size,
            self.columns,
            self.pipeline,
            self.acc_width,
            self.k_max if self.level != "mul" and not self.sums_k_outside else None,
            self.arch,
            self.pe_lanes,
            self.a_reg_every,
            self.depth,
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("tags")
        return d
