"""The default sets of design points: what the report synthesizes (:func:`report_points`),
what sim verifies (:func:`sim_points`, :func:`layer_point`), what the benchmark times
(:func:`bench_point`), and how a report point is verified (:func:`verified_by`).

The points themselves and the constants that size them are :mod:`hw.registry`'s.
"""

from __future__ import annotations

from collections.abc import Iterable

from golden import FORMATS, acc_width_for, get

from .lean import ARCHS, DEFAULT_LANES, LEAN_STYLES
from .params import HwError
from .registry import (
    ACC_K,
    ACC_RULES,
    BASELINE_FORMAT,
    LEAN_OPTION_FORMATS,
    LEAN_OPTION_SIZE,
    LEAN_OPTIONS,
    REPORT_ARCHS,
    REPORT_FORMATS,
    REPORT_LEVELS,
    REPORT_SIZES,
    DesignPoint,
)
from .styles import STYLES, styles_of


def variants(
    formats: Iterable[str] = REPORT_FORMATS, styles=STYLES, arch: str = "classic"
) -> list[tuple[str, str, bool]]:
    """(format, style, booth) triples: every style that builds different hardware for a
    format, plus Booth mapping for the int8 baseline.

    Lean arrays (``arch`` other than ``classic``) add the ``shared`` style (row-shared
    multiples; radix-8 Booth sharing 3a for int8) and drop the generic ``mul`` PE for 4-bit
    formats (never smaller than ``shiftadd`` for them); int8 keeps ``mul`` with and without
    Booth mapping, so the INT8 baseline of every architecture is the best of three.
    """
    lean = arch != "classic"
    out = []
    for fmt in formats:
        fmt = get(fmt).name
        if fmt == BASELINE_FORMAT:
            # The baseline is always the generic multiplier, with and without Booth mapping.
            out += [(fmt, "mul", False), (fmt, "mul", True)]
            if lean:
                out.append((fmt, "shared", False))
            continue
        for style in styles:
            if style in styles_of(fmt) and not (lean and style == "mul"):
                out.append((fmt, style, False))
        if lean:
            out.append((fmt, "shared", False))
    return out


def report_points(
    levels: Iterable[str] = REPORT_LEVELS,
    sizes: dict[str, tuple[int, ...]] | None = None,
    formats: Iterable[str] = REPORT_FORMATS,
    styles=STYLES,
    archs: Iterable[str] | None = None,
) -> list[DesignPoint]:
    """Every point of the synthesis report (baseline format always included).

    Systolic arrays come in every architecture of ``archs`` (default :data:`REPORT_ARCHS`,
    each at its sizes there; sizes given for ``systolic`` apply to every architecture).
    """
    given = dict(sizes or {})
    sizes = {**REPORT_SIZES, **given}
    archs = tuple(REPORT_ARCHS if archs is None else archs)
    for a in archs:
        if a not in ARCHS:
            raise HwError(f"unknown array architecture {a!r}; choose from {', '.join(ARCHS)}")
    formats = tuple(formats)
    if BASELINE_FORMAT not in formats:
        formats = (BASELINE_FORMAT, *formats)  # ratios need the baseline
    out = []
    for level in levels:
        if level not in REPORT_SIZES:
            raise HwError(f"level {level!r} is not reported; choose from {REPORT_LEVELS}")
        for arch in archs if level == "systolic" else ("classic",):
            arch_sizes = sizes[level]
            if level == "systolic" and "systolic" not in given:
                arch_sizes = REPORT_ARCHS.get(arch, sizes[level])
            # A single MAC at both accumulator rules: equal width (the headline) and width
            # by need for the same K (each format gets golden.acc_width_for(ACC_K, ...)).
            rules = ACC_RULES if level == "mac" else ("equal",)
            for size in arch_sizes:
                for fmt, style, booth in variants(formats, styles, arch):
                    for rule in rules:
                        out.append(
                            DesignPoint(
                                level,
                                fmt,
                                style,
                                size=size,
                                booth=booth,
                                arch=arch,
                                acc_rule=rule,
                                pe_lanes=1 if arch == "classic" else DEFAULT_LANES,
                            )
                        )
            if level == "systolic" and arch == "lean" and LEAN_OPTION_SIZE in arch_sizes:
                fmts = [f for f in formats if f in LEAN_OPTION_FORMATS]
                for opt in LEAN_OPTIONS:
                    for fmt, style, booth in variants(fmts, styles, arch):
                        out.append(
                            DesignPoint(
                                level,
                                fmt,
                                style,
                                size=LEAN_OPTION_SIZE,
                                booth=booth,
                                arch=arch,
                                **opt,
                            )
                        )
    return out


def sim_points() -> list[DesignPoint]:
    """The design points ``nox -s sim`` verifies with random and extreme data.

    Every MAC of every registered format and style at both accumulator rules (the report's
    MACs, exactly: equal width, and width by need for K = ``ACC_K``); dot products
    and systolic arrays chosen to cover each generator option (pipeline, non-square arrays,
    every format family), most of them the very points the report synthesizes; two
    requantizers. The real-layer runs add "need"-rule arrays sized for each layer's K.
    """
    pts = [DesignPoint("mac", f, s) for f in FORMATS for s in STYLES]
    pts += [
        DesignPoint("mac", f, s, acc_rule="need")
        for f in FORMATS
        for s in STYLES
        if f != BASELINE_FORMAT  # int8's width by need is the equal width: the same MAC
    ]
    dots = [
        ("dint4", 16, False, "shiftadd"),
        ("dint4", 16, True, "shiftadd"),
        ("int8", 8, False, "mul"),
        ("int4", 8, True, "shiftadd"),
        ("fp4_e2m1", 4, False, "shiftadd"),
        ("dint4_0.25", 8, False, "mul"),
    ]
    pts += [DesignPoint("dot", f, s, size=n, pipeline=p) for f, n, p, s in dots]
    arrays = [("dint4", 8, 8), ("dint4", 4, 8), ("int8", 8, 4), ("fp4_e2m1", 8, 8)]
    pts += [
        DesignPoint("systolic", f, styles_of(f)[-1], size=r, cols=None if r == c else c)
        for f, r, c in arrays
    ]
    # The lean architectures: the shared-multiple PE of every format at the report's 8x8
    # (with and without column accumulators), and the other PE styles once each.
    lanes = {"pe_lanes": DEFAULT_LANES}
    for arch in ("lean", "lean-col"):
        pts += [DesignPoint("systolic", f, "shared", size=8, arch=arch, **lanes) for f in FORMATS]
        pts.append(DesignPoint("systolic", "int8", "mul", size=8, arch=arch, **lanes))
    pts.append(DesignPoint("systolic", "dint4", "shiftadd", size=8, arch="lean", **lanes))
    pts.append(DesignPoint("systolic", "int4", "shiftadd", size=4, cols=8, arch="lean"))
    # The further options, on the shared PEs of the report (int8 and dint4) at 8x8.
    for opt in LEAN_OPTIONS:
        for f in LEAN_OPTION_FORMATS:
            pts.append(
                DesignPoint("systolic", f, "shared", size=LEAN_OPTION_SIZE, arch="lean", **opt)
            )
    pts += [
        DesignPoint("requant", size=4, acc_width_fixed=acc_width_for(ACC_K, "int8", "int8")),
        DesignPoint("requant", size=2, acc_width_fixed=48, pipeline=True),
    ]
    # The AXI4-Stream tile: small ones whose layers span several token blocks and passes,
    # and the default 8x8 array (sim's layer-smollm2-full adds the one sized for that layer).
    pts += [tile_point(f, size, size, k_max=TILE_SIM_K, depth=depth) for f, size, depth in TILE_SIM]
    return pts


def layer_point(
    weight_format: str, k: int, rows: int = 8, cols: int = 8
) -> tuple[DesignPoint, DesignPoint]:
    """The systolic array and requantizer that run a real layer of K inputs: the array's
    accumulator holds the whole layer's sum (width by need for ``max(k, ACC_K)``)."""
    k_max = max(int(k), ACC_K)
    sa = DesignPoint(
        "systolic",
        weight_format,
        styles_of(weight_format)[-1],
        size=rows,
        cols=None if rows == cols else cols,
        k_max=k_max,
        acc_rule="need",
    )
    rq = DesignPoint("requant", size=cols, acc_width_fixed=sa.acc_width)
    return sa, rq


#: The tiles sim verifies: (weight format, rows = cols, depth), accumulators for K up to
#: ``TILE_SIM_K``.
TILE_SIM = (("dint4", 4, 8), ("int4", 4, 8), ("dint4", 8, 16))
TILE_SIM_K = 64


def tile_point(
    weight_format: str = "dint4", rows: int = 8, cols: int = 8, k_max: int = ACC_K, depth=None
) -> DesignPoint:
    """An accelerator tile (:class:`hw.tile.Tile`): the lean array's defaults (shared PEs,
    ``DEFAULT_LANES`` weights per PE when the rows divide by it) and K-tile accumulators
    sized by need for ``k_max``."""
    return DesignPoint(
        "tile",
        weight_format,
        LEAN_STYLES[0],
        size=rows,
        cols=None if rows == cols else cols,
        k_max=k_max,
        acc_rule="need",
        pe_lanes=DEFAULT_LANES if rows % DEFAULT_LANES == 0 else 1,
        depth=depth,
    )


def bench_point() -> DesignPoint:
    """The design the simulation benchmark times: the 8x8 dint4 systolic array of the report."""
    return DesignPoint("systolic", "dint4", "shiftadd", size=8)


def verified_by(point: DesignPoint, verified: Iterable[DesignPoint] | None = None) -> str:
    """How ``nox -s sim`` covers ``point``: ``"exact"`` when a verified point builds the same
    Verilog, else a sentence saying why not and what covers the generator instead."""
    verified = list(sim_points() if verified is None else verified)
    if any(v.rtl_key() == point.rtl_key() for v in verified):
        return "exact"
    if point.level == "mul":
        return (
            "the MAC of the same format and style (exhaustive) contains this decoder + multiplier"
        )
    same_level = sorted(
        {f"{v.level_label} {v.weight_format}" for v in verified if v.level == point.level}
    )
    return (
        f"the {point.level} generator is verified as {', '.join(same_level)}; this "
        "(format, size, style) point is synthesized only"
        if same_level
        else "not verified in simulation"
    )
